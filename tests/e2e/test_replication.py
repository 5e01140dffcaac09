"""Replication end to end (issue 11): one primary and asynchronous GTID replicas, each pod a real
mariadbd on the test bed; scale, failover and switchover. docs/replication.md describes the design."""

from __future__ import annotations

import datetime
import json
import pathlib
import time

import pymysql
import pytest

from tests.e2e.conftest import seed

pytestmark = [pytest.mark.cluster, pytest.mark.podruntime, pytest.mark.operator]

ARTIFACTS = pathlib.Path("/tmp/ansible-operator/runner/example.com/v1alpha1/SimpleDB")


def replicated(sdb, name: str, replicas: int, timeout: float = 300, primary: str | None = None) -> dict:
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
    conn = pod_connect(sdb, name, pod, database=database)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


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

