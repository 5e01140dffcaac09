"""Asynchronous GTID replication of a group of MariaDB servers: one primary, the rest replicas.

Used by the simpledb_replication module. Every function takes open PyMySQL connections (root,
autocommit) and changes only what differs, so that a second call with nothing changed changes
nothing. The replicas replicate with ``MASTER_USE_GTID=slave_pos``; their positions are compared
per GTID domain by sequence number, the order MariaDB itself uses within a domain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

try:
    import pymysql
    import pymysql.cursors
except ImportError:  # pragma: no cover - modules call require_pymysql() first
    pymysql = None

# Server error codes a replica's IO thread reports.
ER_MASTER_FATAL_ERROR_READING_BINLOG = 1236  # the primary's binlog lacks the replica's position
# A replica's state, as reported in the module's result and the SimpleDB's status.
STREAMING = "Streaming"  # both threads run and the replica has caught up
CATCHING_UP = "CatchingUp"  # both threads run, still behind
CONNECTING = "Connecting"  # the IO thread is (re)connecting to the primary
DIVERGED = "Diverged"  # it has transactions the primary lacks: it must be rebuilt
STOPPED = "Error"  # a replication thread stopped with an error
UNREACHABLE = "Unreachable"  # the operator could not log in to it
NOT_SEEDABLE = "NotSeedable"  # empty, and the primary's binary log no longer reaches back far enough

Gtid = tuple[int, int, int]  # (domain, server_id, seq_no)


def parse_gtid_list(text: str | None) -> dict[int, Gtid]:
    """``"0-1-10,1-2-5"`` -> ``{0: (0, 1, 10), 1: (1, 2, 5)}`` (the last GTID of each domain)."""
    result: dict[int, Gtid] = {}
    for item in (text or "").replace("\n", "").split(","):
        item = item.strip()
        if not item:
            continue
        domain, server_id, seq_no = (int(part) for part in item.split("-"))
        result[domain] = (domain, server_id, seq_no)
    return result


def gtids(text: str | None) -> list[Gtid]:
    """``"0-1-10,0-2-5"`` -> every GTID listed, in order (a gtid_binlog_state has several per domain)."""
    result = []
    for item in (text or "").replace("\n", "").split(","):
        item = item.strip()
        if item:
            domain, server_id, seq_no = (int(part) for part in item.split("-"))
            result.append((domain, server_id, seq_no))
    return result


def position_key(position: dict[int, Gtid]) -> tuple[int, ...]:
    """A sort key for "most advanced": the sum of sequence numbers over the domains, then per domain."""
    seqs = [position[d][2] for d in sorted(position)]
    return (sum(seqs), *seqs)


def contains(binlog_state: str | None, position: dict[int, Gtid]) -> bool:
    """Whether a server whose binary log state is ``binlog_state`` (``@@gtid_binlog_state``) holds
    every transaction up to ``position``: for each domain, the position's GTID was logged there
    (same server id, a seq_no at least as high). A position it lacks means the other server wrote
    transactions of its own: it diverged and cannot replicate from this one."""
    highest: dict[tuple[int, int], int] = {}
    for domain, server_id, seq_no in gtids(binlog_state):
        highest[(domain, server_id)] = max(seq_no, highest.get((domain, server_id), 0))
    return all(highest.get((d, s), -1) >= n for d, s, n in position.values())


def format_position(position: dict[int, Gtid]) -> str:
    return ",".join(f"{d}-{s}-{n}" for d, s, n in (position[k] for k in sorted(position)))


@dataclass
class Server:
    """What the operator knows about one server of the group."""

    name: str
    host: str  # DNS name the replicas use to reach it
    address: str  # where the operator connects (an IP address, or the same DNS name)
    port: int = 3306
    conn: Any = None
    error: str = ""
    read_only: bool = False
    server_id: int = 0
    binlog_pos: str = ""
    binlog_state: str = ""
    current_pos: str = ""
    slave_pos: str = ""
    slave: dict[str, Any] = field(default_factory=dict)

    @property
    def reachable(self) -> bool:
        return self.conn is not None

    @property
    def position(self) -> dict[int, Gtid]:
        return parse_gtid_list(self.current_pos)


def query(conn: Any, sql: str, args: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def execute(conn: Any, sql: str, args: Any = None) -> None:
    with conn.cursor() as cur:
        cur.execute(sql, args)


def inspect(server: Server) -> None:
    """Read the server's replication state into ``server``."""
    row = query(
        server.conn,
        "SELECT @@GLOBAL.read_only AS read_only, @@GLOBAL.server_id AS server_id, "
        "@@GLOBAL.gtid_binlog_pos AS binlog_pos, @@GLOBAL.gtid_binlog_state AS binlog_state, "
        "@@GLOBAL.gtid_current_pos AS current_pos, @@GLOBAL.gtid_slave_pos AS slave_pos",
    )[0]
    server.read_only = str(row["read_only"]).upper() not in ("0", "OFF")
    server.server_id = int(row["server_id"])
    server.binlog_pos = row["binlog_pos"] or ""
    server.binlog_state = row["binlog_state"] or ""
    server.current_pos = row["current_pos"] or ""
    server.slave_pos = row["slave_pos"] or ""
    rows = query(server.conn, "SHOW SLAVE STATUS")
    server.slave = rows[0] if rows else {}


def binlog_complete(server: Server) -> bool:
    """Whether the server's binary log reaches back to its first transaction, so that an empty
    replica can be seeded by replaying it: the first log's Gtid_list (what came before it) is empty."""
    logs = query(server.conn, "SHOW BINARY LOGS")
    if not logs:
        return False
    first = logs[0]["Log_name"]
    for event in query(server.conn, "SHOW BINLOG EVENTS IN %s LIMIT 4", (first,)):
        if event["Event_type"] == "Gtid_list":
            return event["Info"].strip() == "[]"
    return False


def set_read_only(server: Server, read_only: bool) -> bool:
    if server.read_only == read_only:
        return False
    execute(server.conn, f"SET GLOBAL read_only = {'ON' if read_only else 'OFF'}")
    server.read_only = read_only
    return True


def ensure_replication_user(server: Server, user: str, password: str) -> bool:
    """The replication user on the primary (written to the binary log, so the replicas get it too
    and any of them can become the primary). Returns whether anything changed."""
    rows = query(
        server.conn,
        "SELECT Repl_slave_priv AS repl, authentication_string = PASSWORD(%s) AS same_password "
        "FROM mysql.user WHERE User = %s AND Host = '%%'",
        (password, user),
    )
    if not rows:
        execute(server.conn, "CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        execute(server.conn, "GRANT REPLICATION SLAVE ON *.* TO %s@'%%'", (user,))
        return True
    changed = False
    if not rows[0]["same_password"]:
        execute(server.conn, "ALTER USER %s@'%%' IDENTIFIED BY %s", (user, password))
        changed = True
    if rows[0]["repl"] != "Y":
        execute(server.conn, "GRANT REPLICATION SLAVE ON *.* TO %s@'%%'", (user,))
        changed = True
    return changed


def make_primary(server: Server) -> bool:
    """Stop replicating and accept writes. Returns whether anything changed."""
    changed = False
    if server.slave:
        execute(server.conn, "STOP SLAVE")
        execute(server.conn, "RESET SLAVE ALL")
        server.slave = {}
        changed = True
    return set_read_only(server, False) or changed


def replicates_from(server: Server, primary: Server, user: str) -> bool:
    slave = server.slave
    return bool(slave) and (
        slave.get("Master_Host") == primary.host
        and int(slave.get("Master_Port") or 0) == primary.port
        and slave.get("Master_User") == user
        and slave.get("Using_Gtid") == "Slave_Pos"
    )


def point_to(server: Server, primary: Server, user: str, password: str, connect_retry: int) -> None:
    """Replicate from ``primary`` from the server's own GTID position (what it applied as a replica
    and what it wrote itself as a former primary)."""
    execute(server.conn, "STOP SLAVE")
    execute(server.conn, "SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_current_pos")
    execute(
        server.conn,
        "CHANGE MASTER TO MASTER_HOST = %s, MASTER_PORT = %s, MASTER_USER = %s, MASTER_PASSWORD = %s, "
        "MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = %s",
        (primary.host, primary.port, user, password, connect_retry),
    )
    execute(server.conn, "START SLAVE")


def wait_applied(server: Server, position: str, timeout: float) -> bool:
    """Wait until the server has applied ``position`` (MASTER_GTID_WAIT); False on timeout."""
    if not position:
        return True
    rows = query(server.conn, "SELECT MASTER_GTID_WAIT(%s, %s) AS outcome", (position, timeout))
    return rows[0]["outcome"] == 0


def drain_relay_log(server: Server, timeout: float) -> None:
    """Before choosing a new primary: stop fetching from the lost primary and apply what was fetched."""
    if not server.slave:
        return
    execute(server.conn, "STOP SLAVE IO_THREAD")
    received = query(server.conn, "SHOW SLAVE STATUS")
    io_pos = received[0].get("Gtid_IO_Pos", "") if received else ""
    if received and received[0].get("Slave_SQL_Running") == "Yes":
        wait_applied(server, io_pos, timeout)
    inspect(server)


def replica_state(server: Server, caught_up_seconds: int) -> tuple[str, str]:
    """(state, message) of a replica from SHOW SLAVE STATUS."""
    slave = server.slave
    if not slave:
        return CONNECTING, "not configured yet"
    io_errno = int(slave.get("Last_IO_Errno") or 0)
    if io_errno == ER_MASTER_FATAL_ERROR_READING_BINLOG:
        return (
            DIVERGED,
            f"the primary's binary log lacks this server's position: {slave['Last_IO_Error']}",
        )
    if slave.get("Slave_SQL_Running") != "Yes":
        error = slave.get("Last_SQL_Error") or "the SQL thread is stopped"
        return STOPPED, error
    if slave.get("Slave_IO_Running") != "Yes":
        return CONNECTING, slave.get("Last_IO_Error") or f"connecting to {slave.get('Master_Host')}"
    lag = slave.get("Seconds_Behind_Master")
    if lag is None or int(lag) > caught_up_seconds:
        return CATCHING_UP, f"{lag if lag is not None else 'unknown'} s behind the primary"
    return STREAMING, "replicating"


def wait_caught_up(server: Server, caught_up_seconds: int, timeout: float) -> None:
    """Give a (re)started replica a moment to connect and apply what it missed."""
    deadline = time.monotonic() + timeout
    while True:
        inspect(server)
        state, _ = replica_state(server, caught_up_seconds)
        if state in (STREAMING, DIVERGED, STOPPED) or time.monotonic() > deadline:
            return
        time.sleep(0.5)
