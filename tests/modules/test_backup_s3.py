"""simpledb_backup → S3 → simpledb_restore, and simpledb_backup_remove, run the way Ansible runs
them (`ansible localhost -m ...`) against real MariaDB servers and MinIO.

The data file is large enough (random, incompressible blobs) to go up in several parts. A
damaged, missing or unreadable artifact must fail the restore with the reason and leave the
target database as it was and writable; no credential may appear in any result.
"""

from __future__ import annotations

import json
import os
import random

import pytest

from tests.fixtures.ansible_module import run_module

MIB = 1024 * 1024
DATABASE = "s3shop"


def checksums(server, database: str) -> dict[str, tuple[int, int]]:
    """Row count and CHECKSUM TABLE of every table."""
    conn = server.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = "
                "'BASE TABLE' ORDER BY 1",
                (database,),
            )
            result = {}
            for (table,) in cur.fetchall():
                cur.execute(f"SELECT COUNT(*) FROM `{table}`")
                rows = cur.fetchone()[0]
                cur.execute(f"CHECKSUM TABLE `{table}` EXTENDED")
                result[table] = (rows, cur.fetchone()[1])
            return result
    finally:
        conn.close()


def read_only(server) -> int:
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.read_only")
            return cur.fetchone()[0]
    finally:
        conn.close()


def assert_no_secret(result: dict, *secrets: str) -> None:
    text = json.dumps(result)
    for secret in secrets:
        assert secret not in text


@pytest.fixture(scope="module")
def source(mariadb):
    """A database whose data file (gzip) is about 12 MiB: random blobs do not compress."""
    rng = random.Random(9)
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        cur.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        cur.execute(f"USE {DATABASE}")
        cur.execute("CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100), note TEXT NULL)")
        cur.executemany(
            "INSERT INTO customers VALUES (%s, %s, %s)",
            [(i, f"customer {i} ü 😀", None if i % 7 else "n'ote") for i in range(1, 2001)],
        )
        cur.execute("CREATE TABLE blobs (id INT PRIMARY KEY, payload LONGBLOB)")
        for i in range(1, 7):
            cur.execute("INSERT INTO blobs VALUES (%s, %s)", (i, rng.randbytes(2 * MIB)))
        cur.execute("CREATE VIEW big_customers AS SELECT id, name FROM customers WHERE id > 1000")
    conn.close()
    return mariadb


@pytest.fixture(scope="module")
def bucket(minio):
    return minio.create_bucket()


@pytest.fixture(scope="module")
def backup(source, minio, bucket):
    result = run_module(
        "simpledb_backup",
        {
            **source.login(),
            "database": DATABASE,
            "name": "nightly",
            "s3": minio.s3_option(bucket, "simpledb/apps/shop/nightly", part_size=5),
        },
    )
    assert result.get("failed") is not True, result.get("msg")
    return result


@pytest.fixture
def target(mariadb_factory):
    """A server whose s3shop holds other data: a failed restore must leave it as it is."""
    server = mariadb_factory()
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {DATABASE}")
        cur.execute(f"CREATE TABLE {DATABASE}.customers (id INT PRIMARY KEY, name VARCHAR(100), note TEXT)")
        cur.execute(f"INSERT INTO {DATABASE}.customers VALUES (1, 'the current data', NULL)")
    conn.close()
    return server


def restore(server, location: str, s3: dict | None) -> dict:
    return run_module(
        "simpledb_restore", {**server.login(), "location": location, **({"s3": s3} if s3 else {})}
    )


def assert_unchanged_and_writable(server, before: dict) -> None:
    assert checksums(server, DATABASE) == before
    assert read_only(server) == 0
    conn = server.connect(DATABASE)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO customers VALUES (2, 'still writable', NULL)")
        cur.execute("DELETE FROM customers WHERE id = 2")
    conn.close()


def test_backup_streams_to_s3_in_parts(backup, minio, bucket, source):
    prefix = "simpledb/apps/shop/nightly"
    assert backup["changed"] is True
    assert backup["location"] == f"s3://{bucket}/{prefix}/nightly.sql.gz"
    assert backup["manifest"] == f"s3://{bucket}/{prefix}/nightly.manifest.json"
    assert minio.keys(bucket, prefix) == [f"{prefix}/nightly.manifest.json", f"{prefix}/nightly.sql.gz"]
    assert minio.uploads(bucket) == []
    head = minio.client().head_object(Bucket=bucket, Key=f"{prefix}/nightly.sql.gz")
    assert head["ContentLength"] == backup["size"] > 10 * MIB
    assert head["ETag"].strip('"').endswith("-3")  # 5 + 5 + the rest, in MiB
    manifest = json.loads(
        minio.client().get_object(Bucket=bucket, Key=f"{prefix}/nightly.manifest.json")["Body"].read()
    )
    assert manifest["data"]["sha256"] == backup["sha256"]
    assert backup["tables"] == 2 and backup["rows"] == 2006
    assert_no_secret(backup, minio.secret_key, minio.access_key, source.password)


def test_restore_from_s3_reproduces_the_source(backup, minio, source, target):
    result = restore(target, backup["manifest"], minio.s3_option("ignored"))
    assert result.get("failed") is not True, result.get("msg")
    assert result["verified"] is True and result["mismatches"] == []
    assert result["restored_from"] == backup["location"]
    assert checksums(target, DATABASE) == checksums(source, DATABASE)
    assert read_only(target) == 0
    assert_no_secret(result, minio.secret_key, minio.access_key)


def test_restore_with_wrong_credentials_changes_nothing(backup, minio, target):
    before = checksums(target, DATABASE)
    wrong = minio.s3_option("ignored", secret_key="wrong-" + minio.secret_key)
    result = restore(target, backup["manifest"], wrong)
    assert result["failed"] is True
    assert f"S3 at {minio.endpoint} refused to read {backup['manifest']}" in result["msg"]
    assert "Nothing was changed" in result["msg"] or "nothing was changed" in result["msg"]
    assert result["state"] == "unchanged"
    assert_no_secret(result, minio.secret_key, "wrong-" + minio.secret_key, minio.access_key)
    assert_unchanged_and_writable(target, before)


def test_restore_of_a_missing_object_changes_nothing(backup, minio, bucket, target):
    before = checksums(target, DATABASE)
    location = f"s3://{bucket}/simpledb/apps/shop/gone/gone.manifest.json"
    result = restore(target, location, minio.s3_option("ignored"))
    assert result["failed"] is True
    assert f"{location} does not exist" in result["msg"]
    assert result["state"] == "unchanged"
    assert_unchanged_and_writable(target, before)


def test_restore_of_a_corrupt_object_changes_nothing(backup, minio, bucket, target):
    # A copy of the backup whose data file has one byte changed in the middle.
    client = minio.client()
    prefix = "simpledb/apps/shop/nightly"
    data = bytearray(client.get_object(Bucket=bucket, Key=f"{prefix}/nightly.sql.gz")["Body"].read())
    data[len(data) // 2] ^= 0xFF
    manifest = client.get_object(Bucket=bucket, Key=f"{prefix}/nightly.manifest.json")["Body"].read()
    client.put_object(Bucket=bucket, Key="corrupt/nightly.sql.gz", Body=bytes(data))
    client.put_object(Bucket=bucket, Key="corrupt/nightly.manifest.json", Body=manifest)
    before = checksums(target, DATABASE)
    result = restore(target, f"s3://{bucket}/corrupt/nightly.manifest.json", minio.s3_option("ignored"))
    assert result["failed"] is True
    assert f"The data file s3://{bucket}/corrupt/nightly.sql.gz does not match its manifest" in result["msg"]
    assert result["state"] == "unchanged"
    assert_unchanged_and_writable(target, before)


def test_an_s3_location_needs_the_s3_option(backup, target):
    result = restore(target, backup["manifest"], None)
    assert result["failed"] is True
    assert "is in S3: give the s3 option" in result["msg"]


def test_backup_with_wrong_credentials_leaves_nothing(source, minio, bucket):
    result = run_module(
        "simpledb_backup",
        {
            **source.login(),
            "database": DATABASE,
            "name": "refused",
            "s3": minio.s3_option(bucket, "simpledb/apps/shop/refused", access_key="AKIDNOTKNOWN"),
        },
    )
    assert result["failed"] is True
    assert f"S3 at {minio.endpoint} refused to" in result["msg"]
    assert "check the access key id and secret access key" in result["msg"]
    assert_no_secret(result, minio.secret_key, "AKIDNOTKNOWN")
    assert minio.keys(bucket, "simpledb/apps/shop/refused") == []
    assert minio.uploads(bucket) == []


def test_backup_refuses_to_overwrite_an_existing_one(backup, source, minio, bucket):
    result = run_module(
        "simpledb_backup",
        {
            **source.login(),
            "database": DATABASE,
            "name": "nightly",
            "s3": minio.s3_option(bucket, "simpledb/apps/shop/nightly"),
        },
    )
    assert result["failed"] is True
    assert f"already exists at s3://{bucket}/simpledb/apps/shop/nightly/nightly" in result["msg"]


def test_backup_needs_exactly_one_destination(source, minio, bucket, tmp_path):
    common = {**source.login(), "database": DATABASE}
    neither = run_module("simpledb_backup", common)
    assert neither["failed"] is True and "one of the following is required: path, s3" in neither["msg"]
    both = run_module("simpledb_backup", {**common, "path": str(tmp_path), "s3": minio.s3_option(bucket)})
    assert both["failed"] is True and "mutually exclusive: path|s3" in both["msg"]


def test_remove_deletes_a_backup_and_what_an_interrupted_one_left(source, minio, bucket):
    prefix = "simpledb/apps/shop/to-remove"
    s3 = minio.s3_option(bucket, prefix)
    made = run_module(
        "simpledb_backup", {**source.login(), "database": DATABASE, "name": "to-remove", "s3": s3}
    )
    assert made.get("failed") is not True, made.get("msg")
    # What a killed backup leaves: an upload that was never completed nor aborted.
    minio.client().create_multipart_upload(Bucket=bucket, Key=f"{prefix}/to-remove.sql.gz")

    checked = run_module(
        "simpledb_backup_remove", {"name": "to-remove", "s3": s3, "discard_incomplete": True}, check=True
    )
    assert checked["changed"] is True and len(checked["removed"]) == 2
    assert len(minio.keys(bucket, prefix)) == 2

    removed = run_module(
        "simpledb_backup_remove", {"name": "to-remove", "s3": s3, "discard_incomplete": True}
    )
    assert removed["changed"] is True
    assert removed["removed"] == [made["manifest"], made["location"]]
    assert removed["discarded"] == 1
    assert minio.keys(bucket, prefix) == [] and minio.uploads(bucket) == []
    assert_no_secret(removed, minio.secret_key, minio.access_key)

    again = run_module("simpledb_backup_remove", {"name": "to-remove", "s3": s3, "discard_incomplete": True})
    assert again["changed"] is False and again["removed"] == [] and again["discarded"] == 0


def test_remove_from_a_directory_removes_the_emptied_directory(source, tmp_path):
    folder = tmp_path / "apps" / "shop" / "b1"
    made = run_module(
        "simpledb_backup", {**source.login(), "database": DATABASE, "path": str(folder), "name": "b1"}
    )
    assert made.get("failed") is not True, made.get("msg")
    (folder / ".partial-killed").write_bytes(b"left by a killed backup")
    removed = run_module(
        "simpledb_backup_remove", {"name": "b1", "path": str(folder), "discard_incomplete": True}
    )
    assert removed["changed"] is True and removed["discarded"] == 1
    assert removed["removed"] == [str(folder / "b1.manifest.json"), str(folder / "b1.sql.gz")]
    assert not folder.exists() and os.path.isdir(tmp_path / "apps" / "shop")
    gone = run_module("simpledb_backup_remove", {"name": "b1", "path": str(folder)})
    assert gone["changed"] is False
