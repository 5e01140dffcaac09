"""Backups and restores end to end: the operator on the local control plane, a real mariadbd
behind every SimpleDB pod (the pod runtime), a volume path on this machine (the operator runs
here, so a temporary directory is its "mounted volume") and MinIO for S3. Issue 9's acceptance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.backups import (
    assert_writable,
    backup_object,
    change_data,
    databases,
    definitions,
    events,
    fingerprint,
    kill_operator,
    make_database,
    restore_object,
    s3_destination,
    s3_secret,
    scalar,
    wait_until,
)
from tests.e2e.conftest import seed, start_simpledb_operator

pytestmark = [pytest.mark.cluster, pytest.mark.podruntime, pytest.mark.operator]


def phase(expected: str):
    return lambda obj: obj.get("status", {}).get("phase") == expected


class Shop:
    """A Ready SimpleDB `shop` with application data, and where its backups go."""

    def __init__(self, sdb, minio, tmp_path: Path, blob_mib: int = 0) -> None:
        self.sdb = sdb
        self.minio = minio
        self.volume = tmp_path / "backups"
        self.volume.mkdir()
        self.bucket = minio.create_bucket()
        sdb.apply(s3_secret("backup-s3", minio.access_key, minio.secret_key))
        sdb.apply(s3_secret("wrong-s3", minio.access_key, "not-" + minio.secret_key))
        sdb.apply(seed("shop"))
        sdb.wait_ready("shop", timeout=300)
        make_database(self.connect, "shop", blob_mib=blob_mib, create=False)

    def connect(self, database=None):
        return self.sdb.connect("shop", database=database)

    def app(self):
        return lambda: self.connect("shop")

    def destination(self, kind: str, secret: str = "backup-s3") -> dict:
        if kind == "volume":
            return {"volume": {"path": str(self.volume)}}
        return {"s3": s3_destination(self.minio, self.bucket, secret, prefix="simpledb")}

    def backup(self, name: str, kind: str, **spec) -> dict:
        self.sdb.apply(backup_object(name, "shop", self.destination(kind), **spec))
        return self.sdb.wait_for(name, phase("Succeeded"), kind="simpledbbackup", timeout=300)

    def restore(self, name: str, expected: str, **spec) -> dict:
        self.sdb.apply(restore_object(name, "shop", **spec))
        return self.sdb.wait_for(name, phase(expected), kind="simpledbrestore", timeout=300)


@pytest.fixture
def shop(simpledb_operator, sdb, minio, tmp_path):
    return Shop(sdb, minio, tmp_path)


@pytest.mark.parametrize("kind", ["volume", "s3"])
def test_restore_returns_the_data_to_the_backup_point(shop, sdb, kind):
    backup = shop.backup("shop-b1", kind)
    assert backup["status"]["tables"] == 3  # customers, orders and the migration history
    at_backup = fingerprint(shop.app(), "shop")
    shapes = definitions(shop.app(), "shop")
    change_data(shop.app())
    assert fingerprint(shop.app(), "shop") != at_backup

    restore = shop.restore("shop-r1", "Succeeded", backup="shop-b1")
    assert restore["status"]["verified"] is True
    assert restore["status"]["restoredFrom"] == backup["status"]["location"]
    assert fingerprint(shop.app(), "shop") == at_backup
    assert definitions(shop.app(), "shop") == shapes
    obj = sdb.wait_ready("shop")
    assert obj["status"]["restore"]["phase"] == "Succeeded"
    assert obj["status"]["schemaVersion"] == 1
    assert_writable(shop.connect, "shop")
    # The application's own login writes too.
    app = sdb.connect("shop", user="app", database="shop")
    with app.cursor() as cur:
        cur.execute("INSERT INTO customers (email) VALUES ('app@example.com')")
    app.close()
    assert obj["status"]["lastBackup"]["name"] == "shop-b1"


@pytest.mark.parametrize(
    "damage", ["corrupt-artifact", "wrong-checksum", "missing-object", "wrong-credentials"]
)
def test_a_failed_restore_leaves_the_database_unchanged_and_writable(shop, sdb, minio, damage):
    kind = "volume" if damage in ("corrupt-artifact", "wrong-checksum") else "s3"
    location = shop.backup("shop-b1", kind)["status"]["location"]
    if kind == "volume":
        manifest_path = Path(location)
        data_path = Path(location.replace(".manifest.json", ".sql.gz"))
        if damage == "corrupt-artifact":
            data = bytearray(data_path.read_bytes())
            data[len(data) // 2] ^= 0x01
            data_path.write_bytes(bytes(data))
        else:
            manifest = json.loads(manifest_path.read_text())
            manifest["data"]["sha256"] = "0" * 64
            manifest_path.write_text(json.dumps(manifest))
        spec = {"source": {"volume": {"path": str(manifest_path)}}}
        reason = f"The data file {data_path} does not match its manifest"
    else:
        key = location.split("/", 3)[3]
        secret = "wrong-s3" if damage == "wrong-credentials" else "backup-s3"
        if damage == "missing-object":
            key = key.replace("shop-b1.manifest.json", "nothing.manifest.json")
            reason = f"s3://{shop.bucket}/{key} does not exist"
        else:
            reason = f"S3 at {minio.endpoint} refused to read {location}"
        spec = {"source": {"s3": s3_destination(minio, shop.bucket, secret, key=key)}}
    change_data(shop.app())
    before = fingerprint(shop.app(), "shop")

    restore = shop.restore("shop-r1", "Failed", **spec)
    assert reason in restore["status"]["message"], restore["status"]["message"]
    obj = sdb.get("shop")
    assert obj["status"]["phase"] == "Degraded"
    assert reason in obj["status"]["message"]
    assert sdb.condition(obj, "Degraded")["reason"] == "RestoreFailed"
    assert fingerprint(shop.app(), "shop") == before
    assert_writable(shop.connect, "shop")
    assert ("Warning", "RestoreFailed") in [
        (t, r) for t, r, _ in events(sdb.kubectl, sdb.namespace, "SimpleDB", "shop")
    ]


def test_a_schedule_takes_backups_and_prunes_them(simpledb_operator, sdb, minio, tmp_path):
    bucket = minio.create_bucket()
    sdb.apply(s3_secret("backup-s3", minio.access_key, minio.secret_key))
    body = seed("shop")
    body["spec"]["backup"] = {
        "schedule": "*/1 * * * *",
        "destination": {"s3": s3_destination(minio, bucket, "backup-s3")},
        "retention": {"count": 2},
    }
    sdb.apply(body)

    def scheduled():
        return sdb.kubectl.get(
            "-n", sdb.namespace, "simpledbbackups", "-l", "simpledb.example.com/scheduled=true"
        )["items"]

    # Every minute a backup; with count 2, the third success prunes the first.
    first = wait_until(
        lambda: [b for b in scheduled() if b.get("status", {}).get("phase") == "Succeeded"],
        200,
        "the first scheduled backup",
        interval=2,
    )[0]["metadata"]["name"]
    wait_until(
        lambda: first not in [b["metadata"]["name"] for b in scheduled()],
        300,
        "the first to be pruned",
        interval=2,
    )
    prefix = f"{sdb.namespace}/shop/{first}/"
    wait_until(lambda: not [k for k in minio.keys(bucket) if k.startswith(prefix)], 60, "its artifact to go")
    status = sdb.get("shop")["status"]
    names = [b["name"] for b in status["backups"]]
    assert first not in names and 2 <= len(names) <= 3
    assert status["backupSchedule"]["schedule"] == "*/1 * * * *"
    assert status["phase"] == "Ready"
    reasons = [r for _, r, _ in events(sdb.kubectl, sdb.namespace, "SimpleDB", "shop")]
    assert reasons.count("BackupScheduled") >= 3 and "BackupsPruned" in reasons


@pytest.mark.parametrize("kind", ["volume", "s3"])
def test_operator_killed_mid_backup_and_mid_restore_converges(
    operator, simpledb_crds, cluster, sdb, minio, tmp_path, kind
):
    running = start_simpledb_operator(operator, cluster)
    shop = Shop(sdb, minio, tmp_path, blob_mib=40)
    folder = shop.volume / sdb.namespace / "shop" / "shop-b1"

    def partial():
        if kind == "volume":
            return folder.is_dir() and list(folder.glob(".partial-*"))
        return minio.uploads(shop.bucket)

    sdb.apply(backup_object("shop-b1", "shop", shop.destination(kind)))
    wait_until(partial, 180, "the backup to be half written")
    kill_operator(running)
    assert partial()
    running = start_simpledb_operator(operator, cluster)
    backup = sdb.wait_for("shop-b1", phase("Succeeded"), kind="simpledbbackup", timeout=300)
    assert not partial()
    assert backup["status"]["rows"] == 1521  # and one migration history row
    at_backup = fingerprint(shop.app(), "shop")

    change_data(shop.app())
    sdb.apply(restore_object("shop-r1", "shop", backup="shop-b1"))
    wait_until(lambda: "shop__sdb_restore" in databases(shop.connect), 180, "the restore to load")
    kill_operator(running)
    obj = sdb.get("shop")
    assert obj["status"]["phase"] == "Restoring" and sdb.condition(obj, "Ready")["status"] == "False"
    assert scalar(shop.connect, "SELECT @@GLOBAL.read_only") == 1

    start_simpledb_operator(operator, cluster)
    restore = sdb.wait_for("shop-r1", phase("Succeeded"), kind="simpledbrestore", timeout=300)
    assert restore["status"]["verified"] is True
    assert fingerprint(shop.app(), "shop") == at_backup
    sdb.wait_ready("shop")
    assert_writable(shop.connect, "shop")
    assert not {"shop__sdb_restore", "shop__sdb_previous"} & databases(shop.connect)
