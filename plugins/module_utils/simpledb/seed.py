"""Seeding a replica by cloning its primary: a consistent logical copy plus the matching GTID position.

Used by the simpledb_replication module when a replica cannot replicate from the primary's
binary log (an empty server whose primary's binary log no longer reaches back to the first
transaction), and to rebuild a diverged server when the user asked for it.

1. The replica stops replicating and loses everything of its own: its non-system databases are
   dropped and its binary log is reset (a diverged server's extra transactions go here).
2. The primary's accounts, except the ones every server creates for itself at initialisation
   (root, mariadb.sys, healthcheck), are copied with their grants: ``mysql.*`` is not part of a
   copy of the application database, and the application and replication users reached the
   other replicas through the binary log, which this replica does not replay.
3. The application database is copied with the backup's Dumper (one consistent snapshot) into a
   temporary directory on the operator's side, and loaded with the Restorer (verified against
   the manifest). The Dumper records the binary log position that matches its snapshot as a
   GTID position (``BINLOG_GTID_POS`` of ``binlog_snapshot_file``/``binlog_snapshot_position``).
4. The replica's ``gtid_binlog_state`` and ``gtid_slave_pos`` are set to that position, so it
   replicates from exactly there, and its binary log says it does not start at the first
   transaction (a server seeded from it is cloned too, not replayed from an incomplete log).

Everything written on the replica is written with ``sql_log_bin = 0``: it is the primary's
history, not new transactions of the replica.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

from ansible.module_utils.simpledb.dump import BackupError, Dumper, DumpOptions
from ansible.module_utils.simpledb.load import RestoreError, RestoreOptions, Restorer
from ansible.module_utils.simpledb.replication import Gtid, execute, gtids, parse_gtid_list, query
from ansible.module_utils.simpledb.storage import PathStorage

SYSTEM_DATABASES = ("mysql", "information_schema", "performance_schema", "sys")
# Accounts every server creates for itself (the image's initialisation, with sql_log_bin = 0).
SERVER_OWN_USERS = ("root", "mariadb.sys", "healthcheck")
_CLONE_NAME = "simpledb-clone"

Connect = Callable[..., Any]


class SeedError(Exception):
    """The clone failed; the replica is left stopped and is cloned again by the next run."""


def discarded_gtids(position: dict[int, Gtid], primary_binlog_state: str, slave_pos: str = "") -> list[str]:
    """The server's transactions the primary lacks, per domain as ``d-s-first..d-s-last``: what a
    rebuild throws away. When the primary has none of that server's, they start after what the
    server last replicated (its ``gtid_slave_pos``), else the message says ``up to d-s-n``."""
    replicated = parse_gtid_list(slave_pos)
    highest: dict[tuple[int, int], int] = {}
    for domain, server_id, seq_no in gtids(primary_binlog_state):
        highest[(domain, server_id)] = max(seq_no, highest.get((domain, server_id), 0))
    result = []
    for domain, server_id, seq_no in (position[d] for d in sorted(position)):
        known = highest.get((domain, server_id))
        if known is None and domain in replicated and replicated[domain][2] < seq_no:
            known = replicated[domain][2]
        if known is None:
            result.append(f"up to {domain}-{server_id}-{seq_no}")
        elif known < seq_no:
            first = f"{domain}-{server_id}-{known + 1}"
            last = f"{domain}-{server_id}-{seq_no}"
            result.append(first if first == last else f"{first}..{last}")
    return result


def _no_binlog(connect: Connect) -> Connect:
    def open_connection(**kwargs: Any) -> Any:
        conn = connect(**kwargs)
        execute(conn, "SET SESSION sql_log_bin = 0")
        return conn

    return open_connection


def _user_databases(conn: Any) -> list[str]:
    rows = query(conn, "SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA")
    return [row["name"] for row in rows if row["name"].lower() not in SYSTEM_DATABASES]


def _accounts(conn: Any) -> list[tuple[str, str]]:
    # Filtered here, not in SQL: the view's computed is_role has the collation of the server's
    # installation, which a comparison with a literal of the connection's may not match.
    rows = query(conn, "SELECT User AS user, Host AS host, is_role FROM mysql.user")
    return sorted(
        (r["user"], r["host"])
        for r in rows
        if r["is_role"] != "Y" and r["user"] and r["user"] not in SERVER_OWN_USERS
    )


def _binlog_state_at(position: str, binlog_state: str) -> str:
    """The primary's gtid_binlog_state as of ``position``: a domain's sequence numbers grow with
    time, so an entry beyond the position's in its domain came later and is left out."""
    snapshot = parse_gtid_list(position)
    state = {(d, s): n for d, s, n in gtids(binlog_state) if d in snapshot and n <= snapshot[d][2]}
    for domain, server_id, seq_no in snapshot.values():
        state[(domain, server_id)] = seq_no
    return ",".join(f"{d}-{s}-{n}" for (d, s), n in sorted(state.items()))


def reset_replica(replica: Any) -> None:
    """Step 1: stop replicating and drop what the replica holds of its own."""
    execute(replica, "SET SESSION sql_log_bin = 0")
    execute(replica, "STOP SLAVE")
    execute(replica, "RESET SLAVE ALL")
    for name in _user_databases(replica):
        execute(replica, f"DROP DATABASE `{name.replace('`', '``')}`")
    execute(replica, "RESET MASTER")


def copy_accounts(primary: Any, replica: Any) -> list[str]:
    """Step 2; returns the accounts copied. Their password hashes pass through memory only."""
    copied = []
    execute(replica, "SET SESSION sql_log_bin = 0")
    for user, host in _accounts(primary):
        create = query(primary, "SHOW CREATE USER %s@%s", (user, host))[0]
        grants = query(primary, "SHOW GRANTS FOR %s@%s", (user, host))
        execute(replica, "DROP USER IF EXISTS %s@%s", (user, host))
        execute(replica, next(iter(create.values())))
        for grant in grants:
            execute(replica, next(iter(grant.values())))
        copied.append(f"{user}@{host}")
    return copied


def clone(
    primary: Any,
    replica: Any,
    connect_primary: Connect,
    connect_replica: Connect,
    database: str,
    primary_binlog_state: str,
) -> dict[str, Any]:
    """Steps 1-4 (``primary``/``replica`` are open root connections, ``connect_*`` open more).
    Returns the GTID position the replica starts from and what was copied."""
    others = [name for name in _user_databases(primary) if name != database]
    if others:
        raise SeedError(
            f"the primary has databases besides {database!r} ({', '.join(sorted(others))}), which a clone "
            "does not copy; drop them or move them into the application database"
        )
    reset_replica(replica)
    accounts = copy_accounts(primary, replica)
    tables = rows = 0
    position = ""
    if database in _user_databases(primary):
        with tempfile.TemporaryDirectory(prefix="simpledb-clone-") as directory:
            storage = PathStorage(directory)
            try:
                dumped = Dumper(connect_primary, database, DumpOptions(jobs=1, compression="none")).run(
                    storage, _CLONE_NAME
                )
                loaded = Restorer(
                    _no_binlog(connect_replica),
                    storage,
                    _CLONE_NAME,
                    database,
                    RestoreOptions(jobs=2, read_only=False),
                ).run()
            except (BackupError, RestoreError) as exc:
                raise SeedError(f"copying database {database!r} failed: {exc}") from exc
        position = dumped["manifest"].get("gtid_position") or ""
        tables, rows = loaded["tables"], loaded["rows"]
    else:
        # Nothing to copy yet: the primary's binary log position now is the clone's.
        position = query(primary, "SELECT @@GLOBAL.gtid_binlog_pos AS pos")[0]["pos"] or ""
    if position:
        execute(
            replica, "SET GLOBAL gtid_binlog_state = %s", (_binlog_state_at(position, primary_binlog_state),)
        )
    execute(replica, "SET GLOBAL gtid_slave_pos = %s", (position,))
    return {"position": position, "accounts": accounts, "tables": tables, "rows": rows}
