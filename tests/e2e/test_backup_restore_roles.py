"""The simpledbbackup and simpledbrestore roles under the operator, on the test bed's API server,
with a real MariaDB and a real S3 server (MinIO), without the pod runtime.

A SimpleDB here is an object whose status says Ready, as the simpledb role writes it, with its
credentials Secret; the operator reaches "its server", a local mariadbd, through
SIMPLEDB_ENDPOINT_OVERRIDE (the documented out-of-cluster setting). Only the backup and restore
kinds are watched. tests/e2e/test_backup_restore.py runs the same scenarios on real SimpleDBs.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.simpledb.schedule import parse_time

from tests.conftest import ROOT
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
from tests.e2e.conftest import last_result

pytestmark = [pytest.mark.cluster, pytest.mark.operator]


@pytest.fixture(scope="module")
def server(mariadb_factory):
    """The MariaDB server that every SimpleDB of this module stands for."""
    return mariadb_factory()


def connect_to(server, database=None):
    return lambda: server.connect(database)


def finished(phase: str):
    return lambda obj: obj.get("status", {}).get("phase") == phase


class Bed:
    """One test's operator, namespace and stand-in SimpleDBs."""

    def __init__(self, operator, sdb, server, kubectl, tmp_path: Path) -> None:
        self.operator = operator
        self.sdb = sdb
        self.server = server
        self.kubectl = kubectl
        self.volume = tmp_path / "backups"
        self.volume.mkdir()
        self.running = None

    def start(self):
        watches = [
            w
            for w in yaml.safe_load((ROOT / "watches.yaml").read_text())
            if w["kind"] in ("SimpleDBBackup", "SimpleDBRestore")
        ]
        self.running = self.operator.start(
            watches,
            env={
                "SIMPLEDB_ENDPOINT_OVERRIDE": f"127.0.0.1:{self.server.port}",
                "SIMPLEDB_S3_PART_SIZE_MIB": "5",
            },
        )
        return self.running

    def simpledb(self, name: str, database: str) -> None:
        """A Ready SimpleDB named `name` whose database `database` is on the server."""
        self.sdb.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{name}-credentials"},
                "stringData": {"root-password": self.server.password, "password": "unused"},
            }
        )
        self.sdb.apply(
            {
                "apiVersion": "example.com/v1alpha1",
                "kind": "SimpleDB",
                "metadata": {"name": name},
                "spec": {"version": 1, "database": database},
            }
        )
        status = {
            "phase": "Ready",
            "secretName": f"{name}-credentials",
            "message": "stand-in for the simpledb role",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "ServerReady",
                    "message": "stand-in",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        }
        self.kubectl.run(
            "patch",
            "-n",
            self.sdb.namespace,
            f"simpledb/{name}",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": status}),
        )

    def patch_spec(self, name: str, spec: dict) -> None:
        self.sdb.patch(name, spec)

    def get(self, kind: str, name: str) -> dict:
        return self.sdb.get(name, kind)

    def wait(self, kind: str, name: str, phase: str, timeout: float = 180) -> dict:
        return self.sdb.wait_for(name, finished(phase), timeout=timeout, kind=kind)


@pytest.fixture
def bed(operator, sdb, server, kubectl, simpledb_crds, tmp_path):
    return Bed(operator, sdb, server, kubectl, tmp_path)


def test_volume_backup_then_restore_returns_to_the_backup_point(bed, server, kubectl):
    database = "vol_" + secrets.token_hex(3)
    make_database(server.connect, database)
    bed.simpledb("shop", database)
    bed.start()
    volume = {"volume": {"path": str(bed.volume)}}
    bed.sdb.apply(backup_object("shop-b1", "shop", volume))
    backup = bed.wait("simpledbbackup", "shop-b1", "Succeeded")
    status = backup["status"]
    folder = bed.volume / bed.sdb.namespace / "shop" / "shop-b1"
    assert status["location"] == str(folder / "shop-b1.manifest.json")
    assert sorted(p.name for p in folder.iterdir()) == ["shop-b1.manifest.json", "shop-b1.sql.gz"]
    manifest = json.loads((folder / "shop-b1.manifest.json").read_text())
    assert status["size"] == (folder / "shop-b1.sql.gz").stat().st_size == manifest["data"]["size"]
    assert status["sha256"] == manifest["data"]["sha256"]
    assert status["tables"] == 2 and status["rows"] == 1500
    assert status["engineVersion"] == scalar(connect_to(server), "SELECT VERSION()")
    assert status["startTime"] <= status["completionTime"]
    assert bed.sdb.condition(backup, "Ready")["status"] == "True"
    assert bed.sdb.condition(backup, "Progressing")["status"] == "False"
    reasons = [reason for _, reason, _ in events(kubectl, bed.sdb.namespace, "SimpleDBBackup", "shop-b1")]
    assert reasons == ["BackupStarted", "BackupSucceeded"]
    last = bed.get("simpledb", "shop")["status"]["lastBackup"]
    assert last == {
        "name": "shop-b1",
        "completionTime": status["completionTime"],
        "location": status["location"],
    }

    at_backup = fingerprint(connect_to(server), database)
    shapes = definitions(connect_to(server), database)
    change_data(connect_to(server, database))
    assert fingerprint(connect_to(server), database) != at_backup

    bed.sdb.apply(restore_object("shop-r1", "shop", backup="shop-b1"))
    restore = bed.wait("simpledbrestore", "shop-r1", "Succeeded")
    assert restore["status"]["verified"] is True
    assert restore["status"]["restoredFrom"] == status["location"]
    assert restore["status"]["tables"] == 2 and restore["status"]["rows"] == 1500
    assert fingerprint(connect_to(server), database) == at_backup
    assert definitions(connect_to(server), database) == shapes
    assert_writable(server.connect, database)
    assert not {f"{database}__sdb_restore", f"{database}__sdb_previous"} & databases(connect_to(server))
    simpledb = bed.get("simpledb", "shop")["status"]
    assert simpledb["phase"] == "Ready"
    assert simpledb["restore"]["name"] == "shop-r1" and simpledb["restore"]["phase"] == "Succeeded"
    reasons = [reason for _, reason, _ in events(kubectl, bed.sdb.namespace, "SimpleDB", "shop")]
    assert reasons == ["Restoring", "Restored"]

    # One-shot: a restarted operator reconciles both again and changes nothing.
    objects = (("simpledbbackup", "shop-b1"), ("simpledbrestore", "shop-r1"))
    completions = {name: last_result(bed.get(kind, name))["completion"] for kind, name in objects}
    bed.running.stop()
    bed.start()
    for kind, name in objects:
        before = completions[name]
        obj = bed.sdb.wait_for(name, lambda o, b=before: last_result(o).get("completion", "") > b, kind=kind)
        assert last_result(obj)["changed"] == 0, (kind, last_result(obj))
        assert obj["status"]["phase"] == "Succeeded"
    assert fingerprint(connect_to(server), database) == at_backup


def test_s3_backup_restore_and_artifact_deletion(bed, server, minio):
    database = "s3_" + secrets.token_hex(3)
    make_database(server.connect, database, blob_mib=12)
    bucket = minio.create_bucket()
    bed.simpledb("orders", database)
    bed.sdb.apply(s3_secret("backup-s3", minio.access_key, minio.secret_key))
    bed.start()
    destination = {"s3": s3_destination(minio, bucket, "backup-s3", prefix="simpledb")}
    bed.sdb.apply(backup_object("orders-b1", "orders", destination, deleteArtifactOnDelete=True))
    status = bed.wait("simpledbbackup", "orders-b1", "Succeeded")["status"]
    prefix = f"simpledb/{bed.sdb.namespace}/orders/orders-b1"
    assert status["location"] == f"s3://{bucket}/{prefix}/orders-b1.manifest.json"
    assert minio.keys(bucket) == [f"{prefix}/orders-b1.manifest.json", f"{prefix}/orders-b1.sql.gz"]
    head = minio.client().head_object(Bucket=bucket, Key=f"{prefix}/orders-b1.sql.gz")
    assert head["ContentLength"] == status["size"] and head["ETag"].strip('"').endswith("-3")
    at_backup = fingerprint(connect_to(server), database)
    change_data(connect_to(server, database))

    # From the location, as for a backup made elsewhere.
    source = {"s3": s3_destination(minio, bucket, "backup-s3", key=f"{prefix}/orders-b1.manifest.json")}
    bed.sdb.apply(restore_object("orders-r1", "orders", source=source))
    restore = bed.wait("simpledbrestore", "orders-r1", "Succeeded")
    assert restore["status"]["verified"] is True
    assert fingerprint(connect_to(server), database) == at_backup
    assert_writable(server.connect, database)

    log = bed.running.log()
    assert minio.secret_key not in log and server.password not in log

    bed.kubectl.run(
        "delete", "-n", bed.sdb.namespace, "simpledbbackup/orders-b1", "--wait=true", "--timeout=120s"
    )
    assert minio.keys(bucket) == [] and minio.uploads(bucket) == []


@pytest.mark.parametrize("damage", ["corrupt-artifact", "missing-object", "wrong-credentials"])
def test_a_failed_restore_says_why_and_changes_nothing(bed, server, minio, damage):
    database = "bad_" + secrets.token_hex(3)
    make_database(server.connect, database)
    bucket = minio.create_bucket()
    bed.simpledb("shop", database)
    bed.sdb.apply(s3_secret("backup-s3", minio.access_key, minio.secret_key))
    bed.sdb.apply(s3_secret("wrong-s3", minio.access_key, "not-" + minio.secret_key))
    bed.start()
    if damage == "corrupt-artifact":
        bed.sdb.apply(backup_object("shop-b1", "shop", {"volume": {"path": str(bed.volume)}}))
        location = bed.wait("simpledbbackup", "shop-b1", "Succeeded")["status"]["location"]
        data_file = Path(location.replace(".manifest.json", ".sql.gz"))
        damaged = bytearray(data_file.read_bytes())
        damaged[len(damaged) // 2] ^= 0x01
        data_file.write_bytes(bytes(damaged))
        spec = {"backup": "shop-b1"}
        reason = f"The data file {data_file} does not match its manifest"
    else:
        secret = "wrong-s3" if damage == "wrong-credentials" else "backup-s3"
        destination = {"s3": s3_destination(minio, bucket, "backup-s3")}
        bed.sdb.apply(backup_object("shop-b1", "shop", destination))
        location = bed.wait("simpledbbackup", "shop-b1", "Succeeded")["status"]["location"]
        key = location.split("/", 3)[3]
        if damage == "missing-object":
            key = key.replace("shop-b1.manifest.json", "gone.manifest.json")
            reason = f"s3://{bucket}/{key} does not exist"
        else:
            reason = f"S3 at {minio.endpoint} refused to read {location}"
        spec = {"source": {"s3": s3_destination(minio, bucket, secret, key=key)}}
    change_data(connect_to(server, database))
    before = fingerprint(connect_to(server), database)

    bed.sdb.apply(restore_object("shop-r1", "shop", **spec))
    restore = bed.wait("simpledbrestore", "shop-r1", "Failed")
    assert reason in restore["status"]["message"], restore["status"]["message"]
    assert restore["status"]["verified"] is False
    simpledb = bed.get("simpledb", "shop")
    assert simpledb["status"]["phase"] == "Degraded"
    assert simpledb["status"]["restore"]["phase"] == "Failed"
    assert reason in simpledb["status"]["restore"]["message"]
    assert bed.sdb.condition(simpledb, "Degraded")["reason"] == "RestoreFailed"
    assert fingerprint(connect_to(server), database) == before
    assert_writable(server.connect, database)
    log = bed.running.log()
    assert minio.secret_key not in log and server.password not in log

    if damage == "wrong-credentials":
        # A later restore that succeeds clears the Degraded state.
        bed.sdb.apply(restore_object("shop-r2", "shop", backup="shop-b1"))
        bed.wait("simpledbrestore", "shop-r2", "Succeeded")
        simpledb = bed.get("simpledb", "shop")
        assert simpledb["status"]["phase"] == "Ready"
        assert bed.sdb.condition(simpledb, "Degraded")["status"] == "False"


def test_a_backup_waits_for_its_simpledb(bed, server):
    database = "wait_" + secrets.token_hex(3)
    make_database(server.connect, database)
    bed.start()
    bed.sdb.apply(backup_object("late-b1", "late", {"volume": {"path": str(bed.volume)}}))
    pending = bed.sdb.wait_for(
        "late-b1", lambda o: bed.sdb.condition(o, "Failure").get("status") == "True", kind="simpledbbackup"
    )
    assert pending["status"]["phase"] == "Pending"
    assert pending["status"]["message"] == (
        f"Waiting for SimpleDB late does not exist in namespace {bed.sdb.namespace}"
    )
    bed.simpledb("late", database)
    bed.wait("simpledbbackup", "late-b1", "Succeeded", timeout=300)


@pytest.mark.parametrize("destination", ["volume", "s3"])
def test_operator_killed_mid_backup_converges(bed, server, minio, destination):
    database = "kill_" + secrets.token_hex(3)
    make_database(server.connect, database, blob_mib=40)
    bucket = minio.create_bucket()
    bed.simpledb("shop", database)
    bed.sdb.apply(s3_secret("backup-s3", minio.access_key, minio.secret_key))
    running = bed.start()
    folder = bed.volume / bed.sdb.namespace / "shop" / "shop-b1"
    if destination == "volume":
        spec = {"volume": {"path": str(bed.volume)}}

        def partial():
            return folder.is_dir() and list(folder.glob(".partial-*"))
    else:
        spec = {"s3": s3_destination(minio, bucket, "backup-s3")}

        def partial():
            return minio.uploads(bucket)

    bed.sdb.apply(backup_object("shop-b1", "shop", spec))
    wait_until(partial, 120, "the backup to be half written")
    kill_operator(running)
    assert partial(), "the killed backup left nothing behind to clean up"
    assert bed.get("simpledbbackup", "shop-b1")["status"]["phase"] == "Running"

    bed.start()
    status = bed.wait("simpledbbackup", "shop-b1", "Succeeded")["status"]
    assert not partial()
    if destination == "volume":
        assert sorted(p.name for p in folder.iterdir()) == ["shop-b1.manifest.json", "shop-b1.sql.gz"]
    else:
        assert len(minio.keys(bucket)) == 2
    assert status["rows"] == 1520
    reasons = [reason for _, reason, _ in events(bed.kubectl, bed.sdb.namespace, "SimpleDBBackup", "shop-b1")]
    assert "BackupRetrying" in reasons and reasons[-1] == "BackupSucceeded"


def test_operator_killed_mid_restore_converges(bed, server):
    database = "rkill_" + secrets.token_hex(3)
    make_database(server.connect, database, blob_mib=40)
    bed.simpledb("shop", database)
    running = bed.start()
    bed.sdb.apply(backup_object("shop-b1", "shop", {"volume": {"path": str(bed.volume)}}))
    bed.wait("simpledbbackup", "shop-b1", "Succeeded")
    at_backup = fingerprint(connect_to(server), database)
    change_data(connect_to(server, database))

    bed.sdb.apply(restore_object("shop-r1", "shop", backup="shop-b1"))
    wait_until(
        lambda: f"{database}__sdb_restore" in databases(connect_to(server)), 120, "the restore to load"
    )
    kill_operator(running)
    simpledb = bed.get("simpledb", "shop")
    assert simpledb["status"]["phase"] == "Restoring"
    assert bed.sdb.condition(simpledb, "Ready")["status"] == "False"
    assert scalar(connect_to(server), "SELECT @@GLOBAL.read_only") == 1  # left fenced by the killed run

    bed.start()
    restore = bed.wait("simpledbrestore", "shop-r1", "Succeeded")
    assert restore["status"]["verified"] is True
    assert fingerprint(connect_to(server), database) == at_backup
    assert_writable(server.connect, database)
    assert not {f"{database}__sdb_restore", f"{database}__sdb_previous"} & databases(connect_to(server))
    assert bed.get("simpledb", "shop")["status"]["phase"] == "Ready"


SCHEDULE_PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Derive the simpledb role's facts
      ansible.builtin.include_role:
        name: simpledb
        tasks_from: spec.yml
        public: true
    - name: Run the simpledb role's schedule step
      ansible.builtin.include_role:
        name: simpledb
        tasks_from: backup_schedule.yml
"""


def run_schedule_step(bed, tmp_path) -> dict:
    """The simpledb role's backup_schedule.yml, as the end of a SimpleDB reconcile runs it."""
    cr = bed.get("simpledb", "shop")
    facts = {
        "ansible_operator_meta": {"name": "shop", "namespace": bed.sdb.namespace},
        "_example_com_simpledb": cr,
        "_example_com_simpledb_spec": cr["spec"],
    }
    (tmp_path / "facts.json").write_text(json.dumps(facts))
    (tmp_path / "schedule.yml").write_text(SCHEDULE_PLAYBOOK)
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            str(tmp_path / "schedule.yml"),
            "-e",
            f"@{tmp_path / 'facts.json'}",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "K8S_AUTH_KUBECONFIG": bed.operator.kubeconfig,
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_STDOUT_CALLBACK": "json",
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    output = json.loads(result.stdout)
    [requeue] = [
        t["hosts"]["localhost"]
        for t in output["plays"][0]["tasks"]
        if t["task"]["name"].endswith("Come back at the next scheduled time")
    ]
    return {
        "requeue_after": requeue["period"],
        "changed": output["stats"]["localhost"]["changed"],
    }


def scheduled_backups(bed) -> list[dict]:
    items = bed.kubectl.get(
        "-n", bed.sdb.namespace, "simpledbbackups", "-l", "simpledb.example.com/scheduled=true"
    )["items"]
    return sorted(items, key=lambda b: b["metadata"]["name"])


def sleep_until(moment: str) -> None:
    wait = (parse_time(moment) - datetime.datetime.now(datetime.UTC)).total_seconds() + 1
    if wait > 0:
        time.sleep(wait)


def test_a_schedule_takes_backups_and_retention_prunes_them(bed, server, tmp_path):
    database = "sched_" + secrets.token_hex(3)
    make_database(server.connect, database)
    bed.simpledb("shop", database)
    bed.patch_spec(
        "shop",
        {
            "backup": {
                "schedule": "*/1 * * * *",
                "destination": {"volume": {"path": str(bed.volume)}},
                "retention": {"count": 1},
            }
        },
    )
    bed.start()

    # Just created: the first scheduled time after the SimpleDB's creation is awaited.
    first = run_schedule_step(bed, tmp_path)
    assert scheduled_backups(bed) == []
    status = bed.get("simpledb", "shop")["status"]
    assert status["backups"] == [] and "lastScheduleTime" not in status["backupSchedule"]
    next_time = status["backupSchedule"]["nextScheduleTime"]
    seconds = int(first["requeue_after"].rstrip("s"))
    assert 0 < seconds <= 62 and next_time.endswith(":00Z")

    sleep_until(next_time)
    run_schedule_step(bed, tmp_path)
    [b1] = scheduled_backups(bed)
    assert (
        b1["metadata"]["name"] == "shop-" + next_time.replace("-", "").replace(":", "").replace("T", "-")[:-1]
    )
    assert b1["metadata"]["annotations"]["simpledb.example.com/scheduled-time"] == next_time
    assert b1["metadata"]["ownerReferences"][0]["kind"] == "SimpleDB"
    assert b1["spec"]["deleteArtifactOnDelete"] is True
    status = bed.get("simpledb", "shop")["status"]
    assert status["backupSchedule"]["lastScheduleTime"] == next_time
    assert [(b["name"], b["phase"]) for b in status["backups"]] == [(b1["metadata"]["name"], "Pending")]
    location1 = bed.wait("simpledbbackup", b1["metadata"]["name"], "Succeeded")["status"]["location"]
    assert Path(location1).exists()

    second_time = bed.get("simpledb", "shop")["status"]["backupSchedule"]["nextScheduleTime"]
    sleep_until(second_time)
    run_schedule_step(bed, tmp_path)
    b1_again, b2 = scheduled_backups(bed)
    assert b1_again["metadata"]["name"] == b1["metadata"]["name"]
    bed.wait("simpledbbackup", b2["metadata"]["name"], "Succeeded")

    # The newer one succeeded: retention (count 1) removes the older, artifact and all.
    run_schedule_step(bed, tmp_path)
    wait_until(
        lambda: [b["metadata"]["name"] for b in scheduled_backups(bed)] == [b2["metadata"]["name"]],
        60,
        "the older backup to be pruned",
    )
    wait_until(lambda: not Path(location1).parent.exists(), 60, "the pruned backup's folder to go")
    history = bed.get("simpledb", "shop")["status"]["backups"]
    assert [(b["name"], b["phase"]) for b in history] == [(b2["metadata"]["name"], "Succeeded")]
    reasons = [reason for _, reason, _ in events(bed.kubectl, bed.sdb.namespace, "SimpleDB", "shop")]
    assert reasons.count("BackupScheduled") == 2 and "BackupsPruned" in reasons

    # Nothing due, nothing to prune: the step changes nothing (a yearly schedule, so that no
    # scheduled time passes between the two runs).
    bed.patch_spec("shop", {"backup": {"schedule": "@yearly"}})
    run_schedule_step(bed, tmp_path)
    assert run_schedule_step(bed, tmp_path)["changed"] == 0


GATE_PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Derive the simpledb role's facts
      ansible.builtin.include_role:
        name: simpledb
        tasks_from: spec.yml
        public: true
    - name: Run the pre-upgrade backup gate
      ansible.builtin.include_role:
        name: simpledb
        tasks_from: backup_gate.yml
        public: true
    - name: Show the recorded backup
      ansible.builtin.debug:
        var: _simpledb_last_backup
"""


def test_the_pre_upgrade_backup_goes_to_s3(bed, server, minio, tmp_path):
    database = "gate_" + secrets.token_hex(3)
    make_database(server.connect, database)
    bucket = minio.create_bucket()
    bed.sdb.apply(s3_secret("backup-s3", minio.access_key, minio.secret_key))
    bed.simpledb("shop", database)
    bed.patch_spec(
        "shop", {"backup": {"destination": {"s3": s3_destination(minio, bucket, "backup-s3", prefix="p")}}}
    )
    cr = bed.get("simpledb", "shop")
    facts = {
        "ansible_operator_meta": {"name": "shop", "namespace": bed.sdb.namespace},
        "_example_com_simpledb": cr,
        "_example_com_simpledb_spec": cr["spec"],
        # What the probes found before the upgrade.
        "_simpledb_login_host": "127.0.0.1",
        "_simpledb_login_port": server.port,
        "_simpledb_root_password": server.password,
        "_simpledb_running_engine": "10.11.19-MariaDB",
    }
    (tmp_path / "facts.json").write_text(json.dumps(facts))
    (tmp_path / "gate.yml").write_text(GATE_PLAYBOOK)
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            str(tmp_path / "gate.yml"),
            "-e",
            f"@{tmp_path / 'facts.json'}",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "K8S_AUTH_KUBECONFIG": bed.operator.kubeconfig,
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_STDOUT_CALLBACK": "json",
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert minio.secret_key not in result.stdout and server.password not in result.stdout
    recorded = json.loads(result.stdout)["plays"][0]["tasks"][-1]["hosts"]["localhost"][
        "_simpledb_last_backup"
    ]
    name = recorded["name"]
    assert name.startswith("pre-upgrade-10.11.19-")
    prefix = f"p/{bed.sdb.namespace}/shop/{name}"
    assert recorded["location"] == f"s3://{bucket}/{prefix}/{name}.manifest.json"
    assert minio.keys(bucket) == [f"{prefix}/{name}.manifest.json", f"{prefix}/{name}.sql.gz"]
