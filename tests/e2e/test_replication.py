"""Replication end to end (issue 11): one primary and asynchronous GTID replicas, each pod a real
mariadbd on the test bed; scale, failover and switchover. docs/replication.md describes the design."""

from __future__ import annotations

import datetime
import itertools
import json
import os
import pathlib
import threading
import time

import pymysql
import pytest

from tests.e2e.conftest import fetch_all, seed

pytestmark = [pytest.mark.cluster, pytest.mark.podruntime, pytest.mark.operator]

ARTIFACTS = pathlib.Path("/tmp/ansible-operator/runner/example.com/v1alpha1/SimpleDB")


def replicated(sdb, name: str, replicas: int, timeout: float = 600, primary: str | None = None) -> dict:
    """Wait until the spec is reconciled, the SimpleDB is Ready and every replica is Streaming. Runs
    with replicas end with requeue_after, so the operator's Successful condition is not awaited."""
    deadline = time.monotonic() + timeout
    obj: dict = {}
    while time.monotonic() < deadline:
        obj = sdb.get(name)
        status = obj.get("status", {})
        states = [r.get("state") for r in status.get("replicas", [])]
        if (
            status.get("observedGeneration") == obj["metadata"]["generation"]
            and status.get("phase") == "Ready"
            and sdb.condition(obj, "Ready").get("status") == "True"
            and states == ["Streaming"] * (replicas - 1)
            and (primary is None or status.get("currentPrimary") == primary)
        ):
            return obj
        time.sleep(1)
    raise AssertionError(
        f"{name} did not replicate in {timeout}s: " + json.dumps(obj.get("status", {}), indent=1)
    )


def pod_connect(sdb, name: str, pod: str, user: str = "root", database: str | None = None):
    secret = sdb.secret(f"{name}-credentials")
    return pymysql.connect(
        host=sdb.resolve(f"{pod}.{name}-headless.{sdb.namespace}.svc.cluster.local"),
        port=3306,
        user=user,
        password=secret["root-password" if user == "root" else "password"],
        database=database,
        autocommit=True,
        connect_timeout=5,
        read_timeout=10,
        write_timeout=10,
    )


def pod_query(sdb, name: str, pod: str, sql: str, database: str | None = None) -> list[tuple]:
    return fetch_all(pod_connect(sdb, name, pod, database=database), sql)


def wait_rows(sdb, name: str, pod: str, sql: str, expected, database: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    rows = None
    while time.monotonic() < deadline:
        rows = pod_query(sdb, name, pod, sql, database)
        if rows == expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"{pod}: {sql} gave {rows}, expected {expected}")


def endpoint_pods(sdb, service: str) -> set[str]:
    """The pods a Service routes to (its ready endpoints), as kube-proxy would."""
    selector = f"-l=kubernetes.io/service-name={service}"
    slices = sdb.kubectl.get("-n", sdb.namespace, "endpointslices", selector)["items"]
    return {
        endpoint["targetRef"]["name"]
        for endpoint_slice in slices
        for endpoint in endpoint_slice.get("endpoints") or []
        if endpoint.get("conditions", {}).get("ready")
    }


def wait_endpoints(sdb, service: str, pods: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while endpoint_pods(sdb, service) != pods:
        if time.monotonic() > deadline:
            raise AssertionError(f"Service {service} routes to {endpoint_pods(sdb, service)}, not {pods}")
        time.sleep(0.5)


def finished_runs(sdb, name: str) -> list[dict]:
    """Every finished run of the SimpleDB, oldest first, from the runner's artifacts: when it
    started, its play stats and the tasks that reported a change."""
    runs = []
    for events in (ARTIFACTS / sdb.namespace / name / "artifacts").glob("*/job_events"):
        parsed = []
        for path in events.glob("*-*.json"):
            if path.name.endswith("-partial.json"):
                continue  # being written
            try:
                parsed.append(json.loads(path.read_text()))
            except FileNotFoundError:  # rotated away meanwhile
                continue
        stats = [e for e in parsed if e.get("event") == "playbook_on_stats"]
        starts = [e["created"] for e in parsed if e.get("event") == "playbook_on_start"]
        if stats and starts:
            changed_tasks = [
                (e["event_data"].get("task"), e["event_data"].get("res"))
                for e in parsed
                if e.get("event") == "runner_on_ok" and e["event_data"].get("res", {}).get("changed")
            ]
            runs.append({"started": starts[0], "changed_tasks": changed_tasks, **stats[0]["event_data"]})
    return sorted(runs, key=lambda r: r["started"])


def assert_runs_change_nothing(sdb, name: str, runs: int = 2, timeout: float = 180) -> None:
    """With nothing changed, the periodic runs (requeue) change nothing."""
    since = datetime.datetime.now(datetime.UTC).isoformat()
    deadline = time.monotonic() + timeout
    later: list[dict] = []
    statuses: list[dict] = []
    while time.monotonic() < deadline:
        status = sdb.get(name)["status"]
        status["conditions"] = [
            c for c in status["conditions"] if c["type"] in ("Ready", "Progressing", "Degraded")
        ]
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        later = [r for r in finished_runs(sdb, name) if r["started"] > since]
        if len(later) >= runs:
            break
        time.sleep(0.5)
    assert len(later) >= runs, f"only {len(later)} runs finished in {timeout}s"
    for run in later:
        if sum(run.get("changed", {}).values()):
            print(json.dumps(run["changed_tasks"], indent=1))
        assert sum(run.get("changed", {}).values()) == 0, [task for task, _ in run["changed_tasks"]]
        assert not run.get("failures"), run


def test_three_replicas_replicate_writes_and_serve_reads(simpledb_operator, sdb):
    sdb.apply(seed("shop", replicas=3))
    obj = replicated(sdb, "shop", 3)
    status = obj["status"]
    assert status["currentPrimary"] == "shop-0"
    assert [r["name"] for r in status["replicas"]] == ["shop-1", "shop-2"]
    assert all(r["lagSeconds"] == 0 for r in status["replicas"])

    # Writes on the primary (as the application, through the -primary Service's endpoint) appear
    # on both replicas; the replicas refuse the application's writes.
    wait_endpoints(sdb, "shop-primary", {"shop-0"})
    wait_endpoints(sdb, "shop", {"shop-0"})
    wait_endpoints(sdb, "shop-replicas", {"shop-1", "shop-2"})
    app = pod_connect(sdb, "shop", "shop-0", user="app", database="shop")
    with app.cursor() as cur:
        cur.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20))")
        cur.executemany("INSERT INTO items VALUES (%s, %s)", [(i, f"item {i}") for i in range(100)])
    app.close()
    for replica in ("shop-1", "shop-2"):
        wait_rows(sdb, "shop", replica, "SELECT COUNT(*), SUM(id) FROM items", [(100, 4950)], "shop")
        assert pod_query(sdb, "shop", replica, "SELECT @@read_only") == [(1,)]
        conn = pod_connect(sdb, "shop", replica, user="app", database="shop")
        with pytest.raises(pymysql.err.OperationalError, match="read-only"):
            with conn.cursor() as cur:
                cur.execute("INSERT INTO items VALUES (1000, 'no')")
        conn.close()
    assert pod_query(sdb, "shop", "shop-0", "SELECT @@read_only") == [(0,)]
    rows = pod_query(sdb, "shop", "shop-1", "SHOW SLAVE STATUS")
    assert rows, "shop-1 has no replication source"
    # The replication user's password comes from the credentials Secret.
    assert "replication-password" in sdb.secret("shop-credentials")

    assert_runs_change_nothing(sdb, "shop")


class Writer(threading.Thread):
    """A client writing in a loop to whatever the <name>-primary Service routes to, as an
    application would: one row per transaction, acknowledged when the commit returns."""

    def __init__(self, sdb, name: str) -> None:
        super().__init__(daemon=True)
        self.sdb, self.name = sdb, name
        self.stop = threading.Event()
        self.acked: list[tuple[int, float]] = []
        self.errors: list[tuple[float, str]] = []
        self.password = sdb.secret(f"{name}-credentials")["password"]

    def run(self) -> None:
        next_id, conn = 1, None
        while not self.stop.is_set():
            try:
                if conn is None:
                    pods = endpoint_pods(self.sdb, f"{self.name}-primary")
                    if not pods:
                        raise RuntimeError("no endpoint")
                    conn = pymysql.connect(
                        host=self.sdb.resolve(
                            f"{pods.pop()}.{self.name}-headless.{self.sdb.namespace}.svc.cluster.local"
                        ),
                        user="app",
                        password=self.password,
                        database=self.name,
                        autocommit=True,
                        connect_timeout=2,
                        read_timeout=5,
                        write_timeout=5,
                    )
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO writes (id) VALUES (%s)", (next_id,))
                self.acked.append((next_id, time.monotonic()))
                next_id += 1
                time.sleep(0.05)
            except Exception as exc:  # any failure: the client reconnects, as applications do
                self.errors.append((time.monotonic(), str(exc)))
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
                conn = None
                time.sleep(0.2)

    def longest_gap(self) -> float:
        times = [t for _, t in self.acked]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def start_writer(sdb, name: str) -> Writer:
    app = pod_connect(sdb, name, f"{name}-0", user="app", database=name)
    with app.cursor() as cur:
        cur.execute("CREATE TABLE writes (id INT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))")
    app.close()
    writer = Writer(sdb, name)
    writer.start()
    deadline = time.monotonic() + 30
    while len(writer.acked) < 20:
        assert time.monotonic() < deadline, writer.errors[-3:]
        time.sleep(0.2)
    return writer


def stop_writer(writer: Writer, more: int = 20, timeout: float = 600) -> None:
    """Let it write `more` rows after its last error (writes work again), then stop it."""
    deadline = time.monotonic() + timeout
    while True:
        last_error = writer.errors[-1][0] if writer.errors else 0.0
        if len([t for _, t in writer.acked if t > last_error]) >= more:
            break
        assert time.monotonic() < deadline, f"writes did not resume: {writer.errors[-3:]}"
        time.sleep(0.2)
    writer.stop.set()
    writer.join(10)


def assert_every_ack_on(sdb, name: str, pods: list[str], writer: Writer, timeout: float = 60) -> None:
    ids = [i for i, _ in writer.acked]
    for pod in pods:
        deadline = time.monotonic() + timeout
        while True:
            present = {r[0] for r in pod_query(sdb, name, pod, "SELECT id FROM writes", name)}
            missing = [i for i in ids if i not in present]
            if not missing:
                break
            assert time.monotonic() < deadline, f"{pod} lacks acknowledged writes {missing[:9]}"
            time.sleep(1)


def test_failover_promotes_a_replica_and_the_old_primary_rejoins(simpledb_operator, sdb, record_property):
    sdb.apply(seed("shop", replicas=3))
    replicated(sdb, "shop", 3, primary="shop-0")
    writer = start_writer(sdb, "shop")

    deleted_at = time.monotonic()
    sdb.kubectl.run("delete", "-n", sdb.namespace, "pod/shop-0", "--wait=false")
    deadline = time.monotonic() + 600
    while True:
        obj = sdb.get("shop")
        if obj.get("status", {}).get("currentPrimary") not in (None, "shop-0"):
            break
        assert time.monotonic() < deadline, json.dumps(obj.get("status", {}), indent=1)
        time.sleep(0.5)
    promoted = obj["status"]["currentPrimary"]
    assert promoted in ("shop-1", "shop-2")
    assert obj["status"]["replication"]["lastFailover"]["from"] == "shop-0"
    assert obj["status"]["replication"]["lastFailover"]["to"] == promoted
    wait_endpoints(sdb, "shop-primary", {promoted})
    stop_writer(writer)
    gap = writer.longest_gap()
    last_error = max((t for t, _ in writer.errors), default=deleted_at)
    promoted_after = min(t for _, t in writer.acked if t > last_error) - deleted_at
    record_property("failover_write_gap_seconds", round(gap, 1))
    # Measured and reported against the target (under 30 s on the test bed); the gap is one check
    # period plus part of a reconcile, so it grows with the machine's load.
    print(
        f"failover: {promoted} promoted; longest write gap {gap:.1f} s (target 30 s: "
        f"{'met' if gap < 30 else 'missed'}; load average {os.getloadavg()[0]:.1f}); "
        f"{len(writer.acked)} writes acknowledged; writes resumed {promoted_after:.1f} s after the deletion"
    )

    # Nothing acknowledged is lost, and the old primary rejoins as a replica with every write.
    obj = replicated(sdb, "shop", 3, primary=promoted)
    assert "shop-0" in [r["name"] for r in obj["status"]["replicas"]]
    assert pod_query(sdb, "shop", "shop-0", "SELECT @@read_only") == [(1,)]
    assert_every_ack_on(sdb, "shop", ["shop-0", "shop-1", "shop-2"], writer)
    events = sdb.kubectl.get("-n", sdb.namespace, "events", "--field-selector=reason=Failover")["items"]
    assert any(promoted in e["message"] for e in events), events


def insert_rows(sdb, name: str, pod: str, ids: range) -> None:
    conn = pod_connect(sdb, name, pod, user="app", database=name)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS kept (id INT PRIMARY KEY)")
        cur.executemany("INSERT INTO kept VALUES (%s)", [(i,) for i in ids])
    conn.close()


def pods_of(sdb, name: str) -> list[str]:
    items = sdb.kubectl.get("-n", sdb.namespace, "pods", f"-l=app.kubernetes.io/instance={name}")["items"]
    return sorted(p["metadata"]["name"] for p in items)


def test_scale_three_to_one_to_three_keeps_the_data_and_the_primary(simpledb_operator, sdb):
    sdb.apply(seed("shop", replicas=3))
    replicated(sdb, "shop", 3, primary="shop-0")
    insert_rows(sdb, "shop", "shop-0", range(1, 51))

    sdb.patch("shop", {"replicas": 1})
    obj = replicated(sdb, "shop", 1, primary="shop-0")
    assert obj["status"]["replicas"] == []
    deadline = time.monotonic() + 120
    while pods_of(sdb, "shop") != ["shop-0"]:
        assert time.monotonic() < deadline, pods_of(sdb, "shop")
        time.sleep(1)
    assert not sdb.exists("service", "shop-replicas")
    # Alone, the server accepts writes again (it starts without read-only).
    insert_rows(sdb, "shop", "shop-0", range(51, 101))

    sdb.patch("shop", {"replicas": 3})
    replicated(sdb, "shop", 3, primary="shop-0")
    for pod in ("shop-0", "shop-1", "shop-2"):
        wait_rows(sdb, "shop", pod, "SELECT COUNT(*), SUM(id) FROM kept", [(100, 5050)], "shop")
    wait_endpoints(sdb, "shop-replicas", {"shop-1", "shop-2"})


def test_switchover_loses_no_write_and_scale_down_keeps_the_primary(simpledb_operator, sdb):
    sdb.apply(seed("shop", replicas=3))
    replicated(sdb, "shop", 3, primary="shop-0")
    writer = start_writer(sdb, "shop")

    sdb.patch("shop", {"replication": {"switchoverTo": 2}})
    obj = replicated(sdb, "shop", 3, primary="shop-2")
    assert obj["status"]["replication"]["switchoverTo"] == 2
    wait_endpoints(sdb, "shop-primary", {"shop-2"})
    stop_writer(writer)
    assert_every_ack_on(sdb, "shop", ["shop-0", "shop-1", "shop-2"], writer)
    assert pod_query(sdb, "shop", "shop-0", "SELECT @@read_only") == [(1,)]
    assert pod_query(sdb, "shop", "shop-2", "SELECT @@read_only") == [(0,)]
    events = sdb.kubectl.get("-n", sdb.namespace, "events", "--field-selector=reason=Switchover")["items"]
    assert any("shop-2" in e["message"] for e in events), events
    assert_runs_change_nothing(sdb, "shop")

    # Scaling down would remove the primary (ordinal 2): it moves to pod 0 first, nothing lost.
    sdb.patch("shop", {"replicas": 1, "replication": {"switchoverTo": None}})
    replicated(sdb, "shop", 1, primary="shop-0")
    assert_every_ack_on(sdb, "shop", ["shop-0"], writer)


def purge_binary_logs(sdb, name: str, pod: str, timeout: float = 60) -> None:
    """As for a database whose binary log no longer reaches back to its first transaction."""
    conn = pod_connect(sdb, name, pod)
    with conn.cursor() as cur:
        cur.execute("FLUSH BINARY LOGS")
        cur.execute("SHOW MASTER STATUS")
        last = cur.fetchone()[0]
        deadline = time.monotonic() + timeout
        while True:
            # A log InnoDB has not checkpointed yet is kept (with a warning): try again.
            cur.execute("PURGE BINARY LOGS TO %s", (last,))
            cur.execute("SHOW BINARY LOGS")
            if cur.fetchone()[0] == last:
                break
            assert time.monotonic() < deadline, "the first binary log was not purged"
            time.sleep(0.5)
    conn.close()


def test_a_new_replica_is_cloned_when_the_primary_binary_log_is_incomplete(simpledb_operator, sdb):
    sdb.apply(seed("shop", replicas=1))
    replicated(sdb, "shop", 1, primary="shop-0")
    insert_rows(sdb, "shop", "shop-0", range(1, 101))
    purge_binary_logs(sdb, "shop", "shop-0")
    insert_rows(sdb, "shop", "shop-0", range(101, 111))

    sdb.patch("shop", {"replicas": 2})
    replicated(sdb, "shop", 2, primary="shop-0")
    wait_rows(sdb, "shop", "shop-1", "SELECT COUNT(*), SUM(id) FROM kept", [(110, 6105)], "shop")
    # The application user came with the clone (it logs in to the replica), and later writes follow.
    conn = pod_connect(sdb, "shop", "shop-1", user="app", database="shop")
    assert fetch_all(conn, "SELECT COUNT(*) FROM kept") == [(110,)]
    insert_rows(sdb, "shop", "shop-0", range(111, 121))
    wait_rows(sdb, "shop", "shop-1", "SELECT COUNT(*), SUM(id) FROM kept", [(120, 7260)], "shop")
    events = sdb.kubectl.get("-n", sdb.namespace, "events", "--field-selector=reason=Replication")["items"]
    assert any("shop-1: seeded" in e["message"] and "cloned shop-0" in e["message"] for e in events), events


def wait_replica_state(sdb, name: str, replica: str, state: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        rows = {r["name"]: r for r in sdb.get(name).get("status", {}).get("replicas", [])}
        if rows.get(replica, {}).get("state") == state:
            return rows[replica]
        assert time.monotonic() < deadline, rows
        time.sleep(1)


def test_a_diverged_replica_is_reported_once_and_rebuilt_when_asked(simpledb_operator, sdb):
    sdb.apply(seed("shop", replicas=2))
    replicated(sdb, "shop", 2, primary="shop-0")
    insert_rows(sdb, "shop", "shop-0", range(1, 11))
    wait_rows(sdb, "shop", "shop-1", "SELECT COUNT(*) FROM kept", [(10,)], "shop")
    # shop-1 commits a transaction of its own (root may write on a read-only server), then loses
    # its replication source: re-pointed, it would hold a GTID the primary lacks.
    conn = pod_connect(sdb, "shop", "shop-1")
    with conn.cursor() as cur:
        cur.execute("INSERT INTO shop.kept VALUES (9999)")
        cur.execute("STOP SLAVE")
        cur.execute("RESET SLAVE ALL")
    conn.close()

    diverged = wait_replica_state(sdb, "shop", "shop-1", "Diverged")
    assert "its own GTIDs: 0-10001-" in diverged["message"], diverged
    time.sleep(20)  # several runs: still one Warning Event
    selector = "--field-selector=reason=ReplicaDiverged"
    events = sdb.kubectl.get("-n", sdb.namespace, "events", selector)["items"]
    assert len(events) == 1 and events[0].get("count", 1) == 1, events
    assert events[0]["type"] == "Warning" and "shop-1" in events[0]["message"]
    assert pod_query(sdb, "shop", "shop-1", "SELECT COUNT(*) FROM shop.kept") == [(11,)]

    sdb.patch("shop", {"replication": {"rebuildDiverged": True}})
    replicated(sdb, "shop", 2, primary="shop-0")
    assert pod_query(sdb, "shop", "shop-1", "SELECT COUNT(*), SUM(id) FROM shop.kept") == [(10, 55)]
    insert_rows(sdb, "shop", "shop-0", range(11, 21))
    wait_rows(sdb, "shop", "shop-1", "SELECT COUNT(*), SUM(id) FROM kept", [(20, 210)], "shop")
    events = sdb.kubectl.get("-n", sdb.namespace, "events", "--field-selector=reason=Replication")["items"]
    assert any("discarding its own GTIDs 0-10001-" in e["message"] for e in events), events
