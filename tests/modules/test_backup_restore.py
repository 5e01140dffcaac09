"""simpledb_backup and simpledb_restore against real servers.

A database with every kind of content (tests/fixtures/sample_data.sql plus multi-megabyte
blobs) is backed up, restored by the module into a fresh server and loaded by the stock
client into another: both must be identical to the source in row counts, CHECKSUM TABLE,
SHOW CREATE of every object and the history rows of versioned tables. Damaged artifacts
and bad logins must fail with a message that says what to do and change nothing.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ansible.module_utils.simpledb.connection import connect
from ansible.module_utils.simpledb.dump import Dumper, DumpOptions
from ansible.module_utils.simpledb.load import RestoreOptions, Restorer, deferrable_keys, referenced_tables
from ansible.module_utils.simpledb.storage import PathStorage

from tests.fixtures.mariadb import free_port

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "fixtures" / "sample_data.sql"
# Runs a module file the way Ansible does (arguments in a JSON file, result on stdout),
# with the project's module_utils importable as ansible.module_utils.simpledb.
RUNNER = (
    "import runpy, sys, ansible.module_utils as m; "
    f"m.__path__.append({str(ROOT / 'plugins' / 'module_utils')!r}); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)
BLOB_MB = 3


def run_module(name: str, args: dict, tmp_path: Path, check_mode: bool = False) -> dict:
    args_file = tmp_path / f"{name}-{time.monotonic_ns()}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode}}))
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(ROOT / "plugins" / "modules" / f"{name}.py"), str(args_file)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    result = json.loads(proc.stdout)
    result["_raw"] = proc.stdout
    return result


def client(server, database: str, sql: str | None = None, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(
        [*server.client_args(), "--default-character-set=utf8mb4", "--batch", database]
        + (["-e", sql] if sql else []),
        input=stdin,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def describe(server, database: str) -> dict:
    """Everything a restore must reproduce, in comparable form."""
    conn = server.connect()
    out: dict = {}
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
            "WHERE SCHEMA_NAME = %s",
            (database,),
        )
        out["database"] = cur.fetchone()
        cur.execute(f"USE {quote(database)}")
        cur.execute(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY 1",
            (database,),
        )
        for name, kind in cur.fetchall():
            q = quote(name)
            if kind == "VIEW":
                cur.execute(f"SHOW CREATE VIEW {q}")
                out[f"view {name}"] = cur.fetchone()[1:]
                continue
            if kind == "SEQUENCE":
                cur.execute(f"SHOW CREATE SEQUENCE {q}")
                create = cur.fetchone()[1]
                cur.execute(f"SELECT * FROM {q}")
                out[f"sequence {name}"] = (create, cur.fetchall())
                continue
            cur.execute(f"SHOW CREATE TABLE {q}")
            create = cur.fetchone()[1]
            versioned = kind == "SYSTEM VERSIONED"
            cur.execute(f"SELECT COUNT(*) FROM {q}" + (" FOR SYSTEM_TIME ALL" if versioned else ""))
            rows = cur.fetchone()[0]
            cur.execute(f"CHECKSUM TABLE {q} EXTENDED")
            checksum = cur.fetchone()[1]
            out[f"table {name}"] = (create, rows, checksum)
            if versioned:
                cur.execute(
                    "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                    "AND TABLE_NAME = %s AND GENERATION_EXPRESSION IN ('ROW START', 'ROW END') "
                    "ORDER BY GENERATION_EXPRESSION DESC",
                    (database, name),
                )
                period = [r[0] for r in cur.fetchall()] or ["row_start", "row_end"]
                cur.execute(f"SELECT *, {quote(period[0])}, {quote(period[1])} FROM {q} FOR SYSTEM_TIME ALL")
                out[f"history {name}"] = sorted(map(repr, cur.fetchall()))
        for kind in ("FUNCTION", "PROCEDURE"):
            cur.execute(
                "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s "
                "AND ROUTINE_TYPE = %s ORDER BY 1",
                (database, kind),
            )
            for (name,) in cur.fetchall():
                cur.execute(f"SHOW CREATE {kind} {quote(name)}")
                out[f"{kind.lower()} {name}"] = cur.fetchone()[1:]
        cur.execute(
            "SELECT TRIGGER_NAME, ACTION_ORDER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
            (database,),
        )
        for name, order in cur.fetchall():
            cur.execute(f"SHOW CREATE TRIGGER {quote(name)}")
            row = cur.fetchone()
            out[f"trigger {name}"] = (order, *row[1:6])  # without the Created timestamp
        cur.execute("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s", (database,))
        for (name,) in cur.fetchall():
            cur.execute(f"SHOW CREATE EVENT {quote(name)}")
            out[f"event {name}"] = cur.fetchone()[1:]
    conn.close()
    return out


def databases(server) -> set[str]:
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        names = {r[0] for r in cur.fetchall()}
    conn.close()
    return names


def login(server) -> dict:
    return server.login()


@pytest.fixture(scope="module")
def source(mariadb):
    """The shared server with database `shop`: the sample data plus blobs of several MB."""
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS shop")
        cur.execute("CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    client(mariadb, "shop", stdin=SAMPLE.read_bytes())
    rng = random.Random(5)
    with conn.cursor() as cur:
        cur.execute("USE shop")
        cur.execute(
            "CREATE TABLE blobs (id INT NOT NULL PRIMARY KEY, payload LONGBLOB, note MEDIUMTEXT) "
            "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        )
        for i in range(1, 4):
            # Rows of several MB: ranges of one row, and rows over a chunk's size limit.
            cur.execute(
                "INSERT INTO blobs VALUES (%s, %s, %s)",
                (i, rng.randbytes(BLOB_MB * 1024 * 1024), "ü'\\\n" * (200_000 * i)),
            )
    yield mariadb
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE shop")
        cur.execute("DROP DATABASE IF EXISTS bank")
    conn.close()


@pytest.fixture(scope="module")
def backup(source, tmp_path_factory):
    path = tmp_path_factory.mktemp("backups")
    result = run_module(
        "simpledb_backup", {**login(source), "database": "shop", "path": str(path), "name": "shop-full"}, path
    )
    assert result.get("failed") is not True, result.get("msg")
    return result


@pytest.fixture(scope="module")
def target(mariadb_factory):
    return mariadb_factory()


@pytest.fixture(scope="module")
def restored(backup, target, tmp_path_factory):
    return run_module(
        "simpledb_restore",
        {**login(target), "location": backup["location"], "read_only": True},
        tmp_path_factory.mktemp("restore"),
    )


def test_backup_reports_what_it_wrote(backup, source):
    assert backup["changed"] is True
    data = Path(backup["location"])
    assert data.name == "shop-full.sql.gz" and data.stat().st_size == backup["size"]
    manifest = json.loads(Path(backup["manifest"]).read_text())
    assert manifest["data"]["sha256"] == backup["sha256"]
    assert backup["schema_version"] == 2
    assert backup["engine_version"].startswith("10.11")
    assert backup["tables"] == 20
    tables = {t["name"]: t for t in manifest["tables"]}
    assert tables["prices"]["rows"] == 5 and tables["prices"]["versioned"] is True
    assert tables["order_seq"] == {
        "name": "order_seq",
        "kind": "sequence",
        "engine": "InnoDB",
        "rows": 0,
        "next_value": 150,
    }
    assert backup["rows"] == sum(t["rows"] for t in tables.values())
    expected = describe(source, "shop")
    for name, entry in tables.items():
        if entry["kind"] == "table":
            assert entry["checksum"] == expected[f"table {name}"][2], name
    assert manifest["objects"]["views"] == ["a_view_on_view", "v_emp", "v_types"]
    assert manifest["objects"]["triggers"] == ["dept_au", "gen_bi_1", "gen_bi_2"]
    assert manifest["objects"]["functions"] == ["f_add"] and manifest["objects"]["procedures"] == ["p_count"]
    assert manifest["objects"]["events"] == ["ev_cleanup", "ev_once"]
    assert len(backup["progress"]) == 20
    assert source.password not in backup["_raw"]


def test_restore_into_fresh_server_is_identical(restored, source, target):
    assert restored.get("failed") is not True, restored.get("msg")
    assert restored["verified"] is True and restored["mismatches"] == []
    assert restored["tables"] == 20 and restored["schema_version"] == 2
    assert describe(target, "shop") == describe(source, "shop")
    assert not {"shop__sdb_restore", "shop__sdb_previous"} & databases(target)
    conn = target.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.read_only")
        assert cur.fetchone()[0] == 0
    conn.close()


def test_stock_client_loads_the_same_file(backup, source, mariadb_factory):
    server = mariadb_factory()
    client(server, "", "CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    with gzip.open(backup["location"], "rb") as data:
        client(server, "shop", stdin=data.read())
    assert describe(server, "shop") == describe(source, "shop")


def test_restore_replaces_what_the_target_had(restored, backup, source, target, tmp_path):
    conn = target.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE other")
        cur.execute("CREATE TABLE other.extra (id INT PRIMARY KEY)")
        cur.execute("CREATE VIEW other.v_types AS SELECT 1 AS x")
        cur.execute("CREATE TABLE other.dept (id INT PRIMARY KEY, legacy TEXT)")
        cur.execute(
            "CREATE TRIGGER other.dept_bi BEFORE INSERT ON other.dept FOR EACH ROW SET NEW.legacy = 'x'"
        )
    conn.close()
    result = run_module(
        "simpledb_restore",
        {**login(target), "location": backup["manifest"], "database": "other", "jobs": 1},
        tmp_path,
    )
    assert result["verified"] is True, result.get("msg")
    restored_db = describe(target, "other")
    restored_db.pop("database")
    expected = describe(source, "shop")
    expected.pop("database")
    assert restored_db == expected


def test_uncompressed_single_connection_backup_restores_identically(source, target, tmp_path):
    result = run_module(
        "simpledb_backup",
        {**login(source), "database": "shop", "path": str(tmp_path), "compression": "none", "jobs": 1},
        tmp_path,
    )
    assert result["location"].endswith(".sql") and result["tables"] == 20
    head = Path(result["location"]).read_bytes()[:200]
    assert head.startswith(b"-- SimpleDB logical backup of database `shop`")
    restore = run_module(
        "simpledb_restore",
        {**login(target), "location": result["location"], "database": "plain", "read_only": False},
        tmp_path,
    )
    assert restore["verified"] is True, restore.get("msg")
    plain = describe(target, "plain")
    expected = describe(source, "shop")
    assert plain.pop("database") == expected.pop("database")
    assert plain == expected


def _damage_copy(backup, tmp_path, damage: str) -> str:
    """A copy of the backup with one kind of damage; returns the location to restore."""
    for name in ("shop-full.sql.gz", "shop-full.manifest.json"):
        shutil.copy(Path(backup["location"]).parent / name, tmp_path / name)
    data, manifest_file = tmp_path / "shop-full.sql.gz", tmp_path / "shop-full.manifest.json"
    manifest = json.loads(manifest_file.read_text())

    def reseal():
        import hashlib

        manifest["data"]["size"] = data.stat().st_size
        manifest["data"]["sha256"] = hashlib.sha256(data.read_bytes()).hexdigest()

    if damage == "truncated":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif damage == "corrupt-gzip":
        raw = bytearray(data.read_bytes())
        middle = len(raw) // 2
        raw[middle : middle + 64] = bytes(64)
        data.write_bytes(bytes(raw))
        reseal()  # so that only decompression can find it
    elif damage == "truncated-resealed":
        raw = gzip.decompress(data.read_bytes())
        data.write_bytes(gzip.compress(raw[: int(len(raw) * 0.9)]))
        reseal()
    elif damage == "checksum":
        next(t for t in manifest["tables"] if t["name"] == "types")["checksum"] += 1
    elif damage == "rows":
        next(t for t in manifest["tables"] if t["name"] == "emp")["rows"] = 4
    elif damage == "missing-table":
        manifest["tables"] = [t for t in manifest["tables"] if t["name"] != "dept"]
    elif damage == "bad-json":
        manifest_file.write_text("{not json")
        return str(data)
    elif damage == "missing-data":
        data.unlink()
        return str(manifest_file)
    elif damage == "missing-manifest":
        manifest_file.unlink()
        return str(data)
    manifest_file.write_text(json.dumps(manifest))
    return str(data)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncated", "does not match its manifest.*truncated, damaged"),
        ("corrupt-gzip", "cannot be decompressed.*damaged"),
        ("truncated-resealed", "ends in the middle"),
        ("checksum", "does not match the backup's manifest: table 'types' checksum"),
        ("rows", "table 'emp' has 3 rows, backup 4"),
        ("missing-table", "table 'dept' is not in the manifest"),
        ("bad-json", "is not valid JSON"),
        ("missing-data", "shop-full.sql.gz does not exist"),
        ("missing-manifest", "shop-full.manifest.json does not exist"),
    ],
)
def test_damaged_backup_fails_and_changes_nothing(damage, message, restored, backup, target, tmp_path):
    before = describe(target, "shop")
    location = _damage_copy(backup, tmp_path, damage)
    result = run_module("simpledb_restore", {**login(target), "location": location}, tmp_path)
    assert result["failed"] is True
    assert result["verified"] is False
    assert re.search(message, result["msg"]), result["msg"]
    assert "nothing was changed" in result["msg"].lower() or "not changed" in result["msg"]
    assert result["state"] == "unchanged"
    assert describe(target, "shop") == before
    assert not {"shop__sdb_restore", "shop__sdb_previous"} & databases(target)
    conn = target.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.read_only")
        assert cur.fetchone()[0] == 0
    conn.close()


def test_wrong_password_is_reported_without_the_secret(source, backup, target, tmp_path):
    args = {**login(source), "login_password": "not-the-Secret-42", "database": "shop", "path": str(tmp_path)}
    result = run_module("simpledb_backup", args, tmp_path)
    assert result["failed"] is True
    assert "refused the login of user 'root'" in result["msg"] and "password" in result["msg"]
    assert "not-the-Secret-42" not in result["_raw"]
    before = describe(target, "shop")
    args = {**login(target), "login_password": "not-the-Secret-42", "location": backup["location"]}
    result = run_module("simpledb_restore", args, tmp_path)
    assert result["failed"] is True and result["state"] == "unchanged"
    assert "refused the login" in result["msg"] and "not-the-Secret-42" not in result["_raw"]
    assert describe(target, "shop") == before


def test_unreachable_server_names_the_address(backup, tmp_path):
    port = free_port()
    args = {"login_host": "127.0.0.1", "login_port": port, "login_password": "x", "connect_timeout": 2}
    result = run_module("simpledb_backup", {**args, "database": "shop", "path": str(tmp_path)}, tmp_path)
    assert result["failed"] is True and f"127.0.0.1:{port}" in result["msg"]
    result = run_module("simpledb_restore", {**args, "location": backup["location"]}, tmp_path)
    assert result["failed"] is True and f"127.0.0.1:{port}" in result["msg"]
    assert list(tmp_path.glob("*.sql*")) == []


def test_missing_database_is_named(source, tmp_path):
    result = run_module(
        "simpledb_backup", {**login(source), "database": "no_such_db", "path": str(tmp_path)}, tmp_path
    )
    assert result["failed"] is True
    assert "The database 'no_such_db' does not exist" in result["msg"]
    assert list(tmp_path.glob("no_such_db*")) == []


def test_existing_backup_name_needs_overwrite(source, backup, tmp_path):
    path = str(Path(backup["location"]).parent)
    args = {**login(source), "database": "shop", "path": path, "name": "shop-full"}
    result = run_module("simpledb_backup", args, tmp_path)
    assert result["failed"] is True and "already exists" in result["msg"] and "overwrite" in result["msg"]
    assert Path(backup["location"]).stat().st_size == backup["size"]


def test_check_mode_writes_nothing(source, tmp_path):
    out = tmp_path / "out"
    result = run_module(
        "simpledb_backup", {**login(source), "database": "shop", "path": str(out)}, tmp_path, check_mode=True
    )
    assert result["changed"] is True and result["location"].startswith(str(out))
    assert not out.exists()


def test_backup_is_one_snapshot_under_concurrent_writes(source, target, tmp_path):
    """Transfers between two tables run during a parallel backup; the restored total is exact."""
    conn = source.connect()
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS bank")
        cur.execute("CREATE DATABASE bank")
        for table in ("acct_a", "acct_b"):
            cur.execute(f"CREATE TABLE bank.{table} (id INT PRIMARY KEY, balance BIGINT NOT NULL)")
            cur.execute(f"INSERT INTO bank.{table} SELECT seq, 1000 FROM bank.seq_1_to_20000")
    stop = threading.Event()
    transfers = []

    def transfer():
        writer = source.connect("bank")
        rng = random.Random(1)
        with writer.cursor() as cur:
            while not stop.is_set():
                a, b, amount = rng.randint(1, 20000), rng.randint(1, 20000), rng.randint(1, 50)
                cur.execute("BEGIN")
                cur.execute("UPDATE acct_a SET balance = balance - %s WHERE id = %s", (amount, a))
                cur.execute("UPDATE acct_b SET balance = balance + %s WHERE id = %s", (amount, b))
                cur.execute("COMMIT")
                transfers.append(amount)
        writer.close()

    thread = threading.Thread(target=transfer)
    thread.start()
    try:
        time.sleep(0.3)
        result = run_module(
            "simpledb_backup",
            {**login(source), "database": "bank", "path": str(tmp_path), "jobs": 2, "compression": "none"},
            tmp_path,
        )
    finally:
        stop.set()
        thread.join()
    assert len(transfers) > 10, "the writer did not run during the backup"
    restore = run_module(
        "simpledb_restore", {**login(target), "location": result["location"], "read_only": False}, tmp_path
    )
    assert restore["verified"] is True, restore.get("msg")
    check = target.connect("bank")
    with check.cursor() as cur:
        cur.execute("SELECT (SELECT SUM(balance) FROM acct_a) + (SELECT SUM(balance) FROM acct_b)")
        assert cur.fetchone()[0] == 2 * 20000 * 1000
    check.close()
    conn.close()


def test_module_runs_under_ansible(source, tmp_path):
    """The same module through the ansible CLI, with ansible.cfg's library and module_utils."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_LOCALHOST_WARNING": "false"}
    args = json.dumps({**login(source), "database": "shop", "path": str(tmp_path), "jobs": 1})
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible"),
            "localhost",
            "-m",
            "simpledb_backup",
            "-a",
            args,
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"changed": true' in proc.stdout and '"schema_version": 2' in proc.stdout
    assert source.password not in proc.stdout


def test_read_only_needs_read_only_admin(restored, backup, target, tmp_path):
    """MariaDB 10.11: SUPER neither sets read_only nor writes under it; READ_ONLY ADMIN does."""
    conn = target.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE USER 'restorer'@'127.0.0.1' IDENTIFIED BY 'restorer-pw'")
        cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'restorer'@'127.0.0.1'")
        cur.execute("REVOKE READ_ONLY ADMIN ON *.* FROM 'restorer'@'127.0.0.1'")
    before = describe(target, "shop")
    args = {**login(target), "login_user": "restorer", "login_password": "restorer-pw"}
    result = run_module("simpledb_restore", {**args, "location": backup["location"]}, tmp_path)
    assert result["failed"] is True and result["state"] == "unchanged"
    assert "READ_ONLY ADMIN" in result["msg"] and "not changed" in result["msg"]
    assert describe(target, "shop") == before
    result = run_module(
        "simpledb_restore", {**args, "location": backup["location"], "read_only": False}, tmp_path
    )
    assert result["verified"] is True, result.get("msg")
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.read_only")
        assert cur.fetchone()[0] == 0
        cur.execute("DROP USER 'restorer'@'127.0.0.1'")
    conn.close()


def test_oversized_chunks_are_split_and_rows_streamed(source, tmp_path):
    """With a 64 KB limit per chunk and a 4 MB target, growing key ranges overflow and are
    halved, and rows larger than the limit are streamed one by one: all restore exactly."""
    conn = source.connect()
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS chunky")
        cur.execute("CREATE DATABASE chunky")
        cur.execute("CREATE TABLE chunky.many (id INT PRIMARY KEY, v VARCHAR(200))")
        cur.execute(
            "INSERT INTO chunky.many SELECT seq, REPEAT(CHAR(65 + seq % 26), 100) FROM chunky.seq_1_to_5000"
        )
        cur.execute("CREATE TABLE chunky.wide (id INT PRIMARY KEY, b LONGBLOB)")
        cur.execute("INSERT INTO chunky.wide SELECT seq, RANDOM_BYTES(1000) FROM chunky.seq_1_to_3")
        cur.execute("UPDATE chunky.wide SET b = REPEAT(b, 200)")

    def opener(**kwargs):
        return connect(host=source.host, port=source.port, password=source.password, **kwargs)

    storage = PathStorage(str(tmp_path))
    options = DumpOptions(
        jobs=2, chunk_bytes=4 << 20, max_chunk_bytes=64 * 1024, max_statement_bytes=16 * 1024
    )
    Dumper(opener, "chunky", options).run(storage, "chunky")
    with gzip.open(tmp_path / "chunky.sql.gz", "rb") as data:
        lines = [line for line in data if line.startswith(b"INSERT")]
    assert sum(1 for line in lines if line.startswith(b"INSERT INTO `wide`")) == 3
    assert max(len(line) for line in lines if line.startswith(b"INSERT INTO `many`")) < 17 * 1024
    result = Restorer(opener, storage, "chunky", "chunky_copy", RestoreOptions(read_only=False)).run()
    assert result["verified"] is True and result["rows"] == 5003
    restored, expected = describe(source, "chunky_copy"), describe(source, "chunky")
    assert restored.pop("database") == expected.pop("database")
    assert restored == expected
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE chunky")
        cur.execute("DROP DATABASE chunky_copy")
    conn.close()


KEYED_TABLES = {
    # Plain keys deferred: a prefix key, a key with a comment and one on a virtual column,
    # around unique keys that stay in the CREATE.
    "deferred": "CREATE TABLE keyed.deferred (id INT NOT NULL PRIMARY KEY, a INT NOT NULL, b VARCHAR(40), "
    "c TEXT, v INT AS (a * 3) VIRTUAL, KEY kb (b), UNIQUE KEY ua (a), KEY kc (c(8), b) COMMENT 'it''s c', "
    "UNIQUE KEY ub (b, a), KEY kv (v), KEY ka (a)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    # The AUTO_INCREMENT column's only index is a plain key: it must stay.
    "auto_key": "CREATE TABLE keyed.auto_key (n INT NOT NULL AUTO_INCREMENT, code CHAR(3) NOT NULL, "
    "PRIMARY KEY (code), KEY kn (n), KEY kother (code, n)) ENGINE=InnoDB",
    # A foreign key needs indexes on both sides: neither table defers.
    "parent": "CREATE TABLE keyed.parent (id INT NOT NULL PRIMARY KEY, grp INT NOT NULL, KEY kgrp (grp)) "
    "ENGINE=InnoDB",
    "child": "CREATE TABLE keyed.child (id INT NOT NULL PRIMARY KEY, grp INT NOT NULL, KEY kchild (grp), "
    "CONSTRAINT to_parent FOREIGN KEY (grp) REFERENCES parent (grp)) ENGINE=InnoDB",
    "versioned": "CREATE TABLE keyed.versioned (id INT NOT NULL PRIMARY KEY, a INT, KEY ka (a)) "
    "WITH SYSTEM VERSIONING",
    "fulltext": "CREATE TABLE keyed.fulltext (id INT NOT NULL PRIMARY KEY, body TEXT, a INT, KEY ka (a), "
    "FULLTEXT KEY fbody (body)) ENGINE=InnoDB",
    "aria": "CREATE TABLE keyed.aria (id INT NOT NULL PRIMARY KEY, a INT, KEY ka (a)) ENGINE=Aria",
}


def test_plain_secondary_keys_are_added_after_the_rows(source, target, tmp_path):
    """The restore creates a qualifying table without its plain keys and adds them after the
    load; every table comes back identical, keys in the same order, and stays consistent."""
    conn = source.connect()
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS keyed")
        cur.execute("CREATE DATABASE keyed")
        for create in KEYED_TABLES.values():
            cur.execute(create)
        cur.execute(
            "INSERT INTO keyed.deferred (id, a, b, c) SELECT seq, seq * 7, CONCAT('b', seq % 500, '-', seq), "
            "REPEAT(CHAR(65 + seq % 26), seq % 30) FROM keyed.seq_1_to_3000"
        )
        cur.execute("INSERT INTO keyed.auto_key (code) SELECT LPAD(seq, 3, '0') FROM keyed.seq_1_to_300")
        cur.execute("INSERT INTO keyed.parent SELECT seq, seq % 10 FROM keyed.seq_1_to_100")
        cur.execute("INSERT INTO keyed.child SELECT seq, seq % 10 FROM keyed.seq_1_to_50")
        cur.execute("INSERT INTO keyed.versioned SELECT seq, seq FROM keyed.seq_1_to_20")
        cur.execute("UPDATE keyed.versioned SET a = a + 1 WHERE id < 5")
        cur.execute("INSERT INTO keyed.fulltext SELECT seq, CONCAT('word', seq), seq FROM keyed.seq_1_to_20")
        cur.execute("INSERT INTO keyed.aria SELECT seq, seq FROM keyed.seq_1_to_20")
        creates = {}
        for name in KEYED_TABLES:
            cur.execute(f"SHOW CREATE TABLE keyed.{name}")
            creates[name] = cur.fetchone()[1].encode()
    referenced = referenced_tables(list(creates.values()))
    assert referenced == {b"`parent`"}
    split = deferrable_keys(creates["deferred"], referenced)
    assert split is not None
    name, create, add_keys = split
    assert name == b"`deferred`" and b"KEY `kb`" not in create and b"UNIQUE KEY `ua`" in create
    assert add_keys == (
        b"ALTER TABLE `deferred` ADD KEY `kb` (`b`), ADD KEY `kc` (`c`(8),`b`) COMMENT 'it''s c', "
        b"ADD KEY `kv` (`v`), ADD KEY `ka` (`a`)"
    )
    kept = [name for name in KEYED_TABLES if deferrable_keys(creates[name], referenced) is None]
    assert kept == ["auto_key", "parent", "child", "versioned", "fulltext", "aria"]

    def opener(**kwargs):
        return connect(host=source.host, port=source.port, password=source.password, **kwargs)

    storage = PathStorage(str(tmp_path))
    Dumper(opener, "keyed", DumpOptions(jobs=2)).run(storage, "keyed")
    result = Restorer(opener, storage, "keyed", "keyed_copy", RestoreOptions(read_only=False)).run()
    assert result["verified"] is True
    restored, expected = describe(source, "keyed_copy"), describe(source, "keyed")
    assert restored.pop("database") == expected.pop("database")
    assert restored == expected
    with conn.cursor() as cur:
        cur.execute("CHECK TABLE keyed_copy.deferred EXTENDED")
        assert cur.fetchall()[-1][2:] == ("status", "OK")
        cur.execute("SELECT COUNT(*) FROM keyed_copy.deferred FORCE INDEX (kc) WHERE c LIKE 'C%'")
        assert cur.fetchone()[0] == sum(1 for i in range(1, 3001) if i % 26 == 2 and i % 30)
        cur.execute("DROP DATABASE keyed")
        cur.execute("DROP DATABASE keyed_copy")
    conn.close()


# Byte strings that are not UTF-8 (a lone lead byte, a lead byte before a quote or a
# backslash, a stray continuation byte, an overlong form, a surrogate, 0xFE/0xFF), and the
# bytes the dump itself frames values with, which force a chunk onto the row-by-row path.
INVALID_UTF8 = [
    b"\xc3",
    b"\xc3'",
    b"\xc3\\",
    b"\xe2\x82",
    b"\xe2\x82'x",
    b"\xf0\x9f\x98",
    b"\x80\\'",
    b"\x81\\\\'",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xff\xfe\x00\x1a",
    b"\xfe\x01\xa7\xfd\xfe\x02\xa7\xfd\x01\x02",
]


@pytest.fixture(scope="module")
def binary_source(source):
    """Database `raw_bytes`: every byte value alone and in context, all 256 in one value, and
    invalid UTF-8, in binary columns of a table dumped in key ranges and of one without a key
    (dumped row by row)."""
    conn = source.connect()
    rows = [
        (i, bytes([i]), bytes([i, i, 0x5C, i, 0x27, i]) * 3, bytes([i, 0, 0xFF, 0x27])) for i in range(256)
    ]
    rows.append((300, bytes(range(256)), bytes(range(255, -1, -1)) * 40, None))
    rows += [
        (400 + i, value, value * 2 + bytes(range(256)), value[:4]) for i, value in enumerate(INVALID_UTF8)
    ]
    rows.append((500, b"", b"", None))
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS raw_bytes")
        cur.execute("CREATE DATABASE raw_bytes CHARACTER SET utf8mb4")
        cur.execute(
            "CREATE TABLE raw_bytes.keyed (id INT NOT NULL PRIMARY KEY, vb VARBINARY(300) NOT NULL, "
            "bl BLOB NOT NULL, bn BINARY(4) NULL, note VARCHAR(20) NOT NULL DEFAULT 'ü''\\\\x') ENGINE=InnoDB"
        )
        cur.executemany("INSERT INTO raw_bytes.keyed (id, vb, bl, bn) VALUES (%s, %s, %s, %s)", rows)
        cur.execute("CREATE TABLE raw_bytes.unkeyed ENGINE=InnoDB SELECT * FROM raw_bytes.keyed")
    conn.close()
    yield source
    with source.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP DATABASE raw_bytes")


def _binary_contents(server, database: str) -> dict:
    conn = server.connect(database=database)
    found = {}
    with conn.cursor() as cur:
        for table in ("keyed", "unkeyed"):
            cur.execute(f"CHECKSUM TABLE {table} EXTENDED")
            checksum = cur.fetchone()[1]
            cur.execute(f"SELECT id, HEX(vb), HEX(bl), HEX(bn), note FROM {table} ORDER BY id")
            found[table] = (checksum, cur.fetchall())
    conn.close()
    return found


def test_binary_values_round_trip_as_escaped_raw_bytes(binary_source, target, tmp_path):
    """Every byte value and invalid UTF-8 in binary columns come back exactly through
    simpledb_restore and through the stock client, whatever the client's character set."""
    result = run_module(
        "simpledb_backup",
        {**login(binary_source), "database": "raw_bytes", "path": str(tmp_path), "compression": "none"},
        tmp_path,
    )
    assert result.get("failed") is not True, result.get("msg")
    data = Path(result["location"]).read_bytes()
    # Raw bytes, not hex: a lone lead byte before an escaped quote is in the file as it is.
    assert b"(401,_binary '\xc3\\''," in data
    expected = _binary_contents(binary_source, "raw_bytes")
    assert len(expected["keyed"][1]) == 256 + 1 + len(INVALID_UTF8) + 1

    restore = run_module(
        "simpledb_restore", {**login(target), "location": result["location"], "read_only": False}, tmp_path
    )
    assert restore["verified"] is True, restore.get("msg")
    assert _binary_contents(target, "raw_bytes") == expected

    for charset in ("utf8mb4", "latin1", "binary"):
        database = f"raw_bytes_{charset}"
        client(binary_source, "", f"CREATE DATABASE {database}")
        proc = subprocess.run(
            [*binary_source.client_args(), f"--default-character-set={charset}", database],
            input=data,
            capture_output=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert _binary_contents(binary_source, database) == expected, charset
        client(binary_source, "", f"DROP DATABASE {database}")
