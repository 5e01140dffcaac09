"""simpledb_replication against three real MariaDB servers on loopback: set up, idempotence,
failover, switchover, a diverged former primary, and secrets kept out of the result."""

from __future__ import annotations

import threading
import time

import pymysql
import pytest

from tests.fixtures.ansible_module import run_module

REPLICATION_PASSWORD = "repl-secret-4711"


@pytest.fixture
def group(mariadb_factory):
    """Three fresh servers as the SimpleDB role configures them: binary log with GTIDs, a server id
    each, read-only at start."""
    servers = []
    for index in range(3):
        server = mariadb_factory(
            [
                "--log-bin=mariadb-bin",
                "--log-slave-updates=ON",
                "--binlog-format=ROW",
                f"--server-id={1000 + index}",
                "--read-only=ON",
            ]
        )
        # The fixture's bootstrap (the root user for TCP) went to the binary log; a fresh server of
        # the role's has none of its own.
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("RESET MASTER")
        servers.append(server)
    return servers


def args(group, **extra):
    return {
        "servers": [
            {"name": f"db-{i}", "host": s.host, "port": s.port, "ready": True} for i, s in enumerate(group)
        ],
        "login_password": group[0].password,
        "replication_password": REPLICATION_PASSWORD,
        "connect_retry": 1,
        "wait_timeout": 30,
        **extra,
    }


def query(server, sql: str, database: str | None = None) -> list[tuple]:
    with server.connect(database) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def slave_status(server) -> list[dict]:
    with server.connect() as conn, conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SHOW SLAVE STATUS")
        return list(cur.fetchall())


def wait_rows(server, sql: str, expected, database: str = "app", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    rows = None
    while time.monotonic() < deadline:
        rows = query(server, sql, database)
        if rows == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"{sql} gave {rows}, expected {expected}")


def write(server, ids: range) -> None:
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS app")
        cur.execute("CREATE TABLE IF NOT EXISTS app.t (id INT PRIMARY KEY)")
        cur.executemany("INSERT INTO app.t VALUES (%s)", [(i,) for i in ids])


def by_name(result: dict) -> dict[str, dict]:
    return {s["name"]: s for s in result["servers"]}


def test_one_primary_and_replicas_then_nothing_changes(group):
    result = run_module("simpledb_replication", args(group))
    assert not result.get("failed"), result
    assert result["changed"] and result["primary"] == "db-0"
    states = by_name(result)
    assert states["db-0"]["state"] == "Primary" and states["db-0"]["read_only"] is False
    assert [states[n]["state"] for n in ("db-1", "db-2")] == ["Streaming", "Streaming"]
    assert all(states[n]["read_only"] for n in ("db-1", "db-2"))

    write(group[0], range(1, 101))
    for replica in group[1:]:
        wait_rows(replica, "SELECT COUNT(*), SUM(id) FROM t", [(100, 5050)])
        assert [row["Master_Port"] for row in slave_status(replica)] == [group[0].port]

    again = run_module("simpledb_replication", args(group))
    assert not again.get("failed"), again
    assert again["changed"] is False and again["actions"] == []
    # The password is neither returned nor in the messages.
    assert REPLICATION_PASSWORD not in str(result) + str(again)


def test_failover_promotes_the_most_advanced_replica_and_the_others_follow(group):
    run_module("simpledb_replication", args(group))
    write(group[0], range(1, 51))
    for replica in group[1:]:
        wait_rows(replica, "SELECT COUNT(*) FROM t", [(50,)])
    # db-1 stops applying: db-2 is now the most advanced.
    with group[1].connect() as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE")
    write(group[0], range(51, 61))
    wait_rows(group[2], "SELECT COUNT(*) FROM t", [(60,)])
    group[0].stop()

    spec = args(group, failover=True)
    spec["servers"][0]["ready"] = False
    result = run_module("simpledb_replication", spec)
    assert not result.get("failed"), result
    assert result["primary"] == "db-2"
    assert result["failover"]["from"] == "db-0" and result["failover"]["to"] == "db-2"
    states = by_name(result)
    assert states["db-0"]["state"] == "Unreachable"
    assert states["db-1"]["state"] == "Streaming"
    wait_rows(group[1], "SELECT COUNT(*) FROM t", [(60,)])
    write(group[2], range(61, 71))
    wait_rows(group[1], "SELECT COUNT(*), SUM(id) FROM t", [(70, 2485)])

    # The old primary returns read-only, in sync: it rejoins as a replica of db-2.
    group[0].start(["--log-bin=mariadb-bin", "--log-slave-updates=ON", "--server-id=1000", "--read-only=ON"])
    rejoined = run_module("simpledb_replication", args(group, primary="db-2"))
    assert by_name(rejoined)["db-0"]["state"] == "Streaming", rejoined
    wait_rows(group[0], "SELECT COUNT(*), SUM(id) FROM t", [(70, 2485)])


def test_switchover_waits_for_the_target_and_loses_nothing(group):
    run_module("simpledb_replication", args(group))
    write(group[0], range(1, 1001))
    result = run_module("simpledb_replication", args(group, switchover_to="db-1"))
    assert not result.get("failed"), result
    assert result["primary"] == "db-1" and result["switchover"]["from"] == "db-0"
    states = by_name(result)
    assert states["db-0"]["read_only"] is True and states["db-0"]["state"] == "Streaming"
    assert states["db-1"]["read_only"] is False
    assert query(group[1], "SELECT COUNT(*) FROM app.t") == [(1000,)]
    write(group[1], range(1001, 1011))
    for server in (group[0], group[2]):
        wait_rows(server, "SELECT COUNT(*) FROM t", [(1010,)])


def test_a_former_primary_with_writes_of_its_own_is_diverged(group):
    run_module("simpledb_replication", args(group))
    write(group[0], range(1, 11))
    wait_rows(group[1], "SELECT COUNT(*) FROM t", [(10,)])
    # db-0 acknowledges a write no replica gets, then db-1 is promoted.
    with group[1].connect() as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE")
    with group[2].connect() as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE")
    write(group[0], range(11, 12))
    spec = args(group, failover=True)
    spec["servers"][0]["ready"] = False
    promoted = run_module("simpledb_replication", spec)
    assert promoted["primary"] in ("db-1", "db-2")
    with group[0].connect() as conn, conn.cursor() as cur:
        cur.execute("SET GLOBAL read_only = ON")  # as after a restart
    after = run_module("simpledb_replication", args(group, primary=promoted["primary"]))
    assert by_name(after)["db-0"]["state"] == "Diverged", after
    assert "rebuild" in by_name(after)["db-0"]["message"]
    assert slave_status(group[0]) == []
    # A Warning Event once per transition: listed when the recorded state was another one only.
    assert after["transitions"] == [
        {"name": "db-0", "state": "Diverged", "message": by_name(after)["db-0"]["message"]}
    ]
    recorded = {name: row["state"] for name, row in by_name(after).items()}
    again = run_module(
        "simpledb_replication", args(group, primary=promoted["primary"], known_states=recorded)
    )
    assert by_name(again)["db-0"]["state"] == "Diverged" and again["transitions"] == []


def test_a_returning_primary_ahead_of_every_replica_stays_and_the_replicas_resume(group):
    run_module("simpledb_replication", args(group))
    write(group[0], range(1, 11))
    for replica in group[1:]:
        wait_rows(replica, "SELECT COUNT(*) FROM t", [(10,)])
        # Only the IO thread, as a failover's drain leaves it.
        with replica.connect() as conn, conn.cursor() as cur:
            cur.execute("STOP SLAVE IO_THREAD")
    write(group[0], range(11, 21))
    # Judged lost (say its pod was replaced), but it is back and holds writes no replica has.
    result = run_module("simpledb_replication", args(group, failover=True))
    assert not result.get("failed"), result
    assert result["primary"] == "db-0" and result["failover"] is None
    assert any("stays the primary" in action for action in result["actions"])
    for replica in group[1:]:
        wait_rows(replica, "SELECT COUNT(*), SUM(id) FROM t", [(20, 210)])


def test_a_diverged_server_is_rebuilt_from_the_primary_only_when_asked(group):
    run_module("simpledb_replication", args(group))
    write(group[0], range(1, 11))
    for replica in group[1:]:
        wait_rows(replica, "SELECT COUNT(*) FROM t", [(10,)])
        with replica.connect() as conn, conn.cursor() as cur:
            cur.execute("STOP SLAVE")
    write(group[0], range(11, 13))  # acknowledged by db-0 only (its GTIDs 0-1000-6 and 7)
    spec = args(group, failover=True)
    spec["servers"][0]["ready"] = False
    promoted = run_module("simpledb_replication", spec)
    with group[0].connect() as conn, conn.cursor() as cur:
        cur.execute("SET GLOBAL read_only = ON")
    primary = group[int(promoted["primary"][-1])]
    write(primary, range(100, 105))

    kept = run_module("simpledb_replication", args(group, primary=promoted["primary"], database="app"))
    message = by_name(kept)["db-0"]["message"]
    assert by_name(kept)["db-0"]["state"] == "Diverged" and "its own GTIDs: 0-1000-6..0-1000-7" in message
    assert query(group[0], "SELECT COUNT(*) FROM app.t") == [(12,)]

    rebuilt = run_module(
        "simpledb_replication",
        args(group, primary=promoted["primary"], database="app", rebuild_diverged=True),
    )
    assert not rebuilt.get("failed"), rebuilt
    assert by_name(rebuilt)["db-0"]["state"] == "Streaming", rebuilt
    assert any("discarding its own GTIDs 0-1000-6..0-1000-7" in action for action in rebuilt["actions"])
    assert query(group[0], "SELECT COUNT(*), SUM(id) FROM app.t") == [(15, 55 + 510)]
    write(primary, range(105, 107))
    wait_rows(group[0], "SELECT COUNT(*) FROM t", [(17,)])


def test_an_empty_server_is_cloned_when_the_primary_binary_log_is_incomplete(group):
    primary, replicas = group[0], group[1:]
    first = run_module("simpledb_replication", args(group[:1]))
    assert first["primary"] == "db-0" and by_name(first)["db-0"]["read_only"] is False
    write(primary, range(1, 201))
    with primary.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER app@'%' IDENTIFIED BY 'app-secret'")
        cur.execute("GRANT ALL ON app.* TO app@'%'")
        # As for a database created before its binary log was complete: the first log is gone.
        cur.execute("FLUSH BINARY LOGS")
        cur.execute("SHOW MASTER STATUS")
        last = cur.fetchone()[0]
        # A log InnoDB has not checkpointed yet is kept (with a warning): try again.
        deadline = time.monotonic() + 30
        while query(primary, "SHOW BINARY LOGS")[0][0] != last and time.monotonic() < deadline:
            cur.execute("PURGE BINARY LOGS TO %s", (last,))
            time.sleep(0.2)
    write(primary, range(201, 301))

    refused = run_module("simpledb_replication", args(group))
    assert [by_name(refused)[n]["state"] for n in ("db-1", "db-2")] == ["NotSeedable", "NotSeedable"]
    assert [t["name"] for t in refused["transitions"]] == ["db-1", "db-2"]

    # A client keeps writing while the replicas are cloned: the snapshot's GTID position must
    # make them replicate exactly what the copy lacks (a duplicate stops the SQL thread).
    stop = threading.Event()
    written = []

    def keep_writing():
        with primary.connect() as conn, conn.cursor() as cur:
            key = 1000
            while not stop.is_set():
                cur.execute("INSERT INTO app.t VALUES (%s)", (key,))
                written.append(key)
                key += 1
                time.sleep(0.01)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        cloned = run_module("simpledb_replication", args(group, database="app"))
    finally:
        stop.set()
        writer.join()
    assert not cloned.get("failed"), cloned
    assert [by_name(cloned)[n]["state"] for n in ("db-1", "db-2")] == ["Streaming", "Streaming"], cloned
    assert sum("cloned db-0's database app" in action for action in cloned["actions"]) == 2
    assert cloned["transitions"] == []
    expected = [(300 + len(written), sum(range(1, 301)) + sum(written))]
    for replica in replicas:
        wait_rows(replica, "SELECT COUNT(*), SUM(id) FROM t", expected)
        # The accounts came along, the application user logs in with its password.
        with pymysql.connect(host=replica.host, port=replica.port, user="app", password="app-secret") as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM app.t")
                assert cur.fetchone() == expected[0][:1]
        # Its binary log does not start at the first transaction: a server seeded from it is cloned too.
        assert query(replica, "SELECT @@GLOBAL.gtid_binlog_state") != [("",)]
    assert "app-secret" not in str(cloned)

    again = run_module("simpledb_replication", args(group, database="app"))
    assert again["changed"] is False and again["actions"] == [], again
    # A clone becomes the primary; an empty server replicates from it after a clone as well.
    switched = run_module("simpledb_replication", args(group, database="app", switchover_to="db-1"))
    assert switched["primary"] == "db-1" and by_name(switched)["db-0"]["state"] == "Streaming", switched
