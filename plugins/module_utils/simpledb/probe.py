"""Version probe of a MariaDB server: engine version, schema version, read-only and replication.

The operator probes before it acts, so an unreachable server is an answer here, not an
error: ``probe_server`` reports it and the caller decides.
"""

from __future__ import annotations

import re
from typing import Any

from ansible.module_utils.simpledb.connection import ConnectionFailed, connect_from_params
from ansible.module_utils.simpledb.migrations import history_exists, read_schema_version

try:
    import pymysql
except ImportError:  # pragma: no cover - modules call require_pymysql() first
    pymysql = None

# Why a probe could not read the server, in the result's ``error``.
UNREACHABLE = "unreachable"  # nothing answered, the connection broke, or the server refused it
ACCESS_DENIED = "access_denied"  # the server answered but refused the login

# Client and server errors that mean the login itself was refused.
_ACCESS_DENIED_CODES = {
    1044,  # ER_DBACCESS_DENIED_ERROR
    1045,  # ER_ACCESS_DENIED_ERROR
    1130,  # ER_HOST_NOT_PRIVILEGED
    1698,  # ER_ACCESS_DENIED_NO_PASSWORD_ERROR
}
# The server shut down or the connection broke after the login (a restarting pod).
_CONNECTION_LOST_CODES = {
    1053,  # ER_SERVER_SHUTDOWN
    2006,  # CR_SERVER_GONE_ERROR
    2013,  # CR_SERVER_LOST
}
_ER_SPECIFIC_ACCESS_DENIED = 1227
_VERSION_NUMBER = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


def parse_version(version: str) -> tuple[int, int, int] | None:
    """``"10.11.14-MariaDB-0+deb12u2"`` -> ``(10, 11, 14)``; None when it does not start so."""
    match = _VERSION_NUMBER.match(version)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else None


def server_address(params: dict[str, Any]) -> str:
    return params.get("login_unix_socket") or f"{params['login_host']}:{params['login_port']}"


def probe_server(params: dict[str, Any], database: str | None, history_table: str) -> dict[str, Any]:
    """Connect with the module's ``login_*`` params and read what the operator needs to know."""
    result: dict[str, Any] = {
        "address": server_address(params),
        "reachable": False,
        "error": None,
        "msg": "",
        "version": None,
        "version_number": None,
        "major_minor": None,
        "database": database,
        "database_exists": None,
        "history_table_exists": None,
        "schema_version": None,
        "read_only": None,
        "replication_role": None,
        "replication": {},
    }
    try:
        conn = connect_from_params(params)
    except ConnectionFailed as exc:
        code = exc.__cause__.args[0] if exc.__cause__ is not None and exc.__cause__.args else None
        result["error"] = ACCESS_DENIED if code in _ACCESS_DENIED_CODES else UNREACHABLE
        result["msg"] = str(exc)
        return result
    try:
        result.update(_engine(conn))
        result.update(_replication(conn))
        if database:
            result["database_exists"] = _database_exists(conn, database)
            if result["database_exists"]:
                result["history_table_exists"] = history_exists(conn, database, history_table)
                result["schema_version"] = read_schema_version(conn, database, history_table)
    except pymysql.err.OperationalError as exc:
        if not exc.args or exc.args[0] not in _CONNECTION_LOST_CODES:
            raise
        result["error"] = UNREACHABLE
        result["msg"] = f"MariaDB at {result['address']} went away during the probe: {exc.args[-1]}"
        return result
    finally:
        conn.close()
    result["reachable"] = True
    result["msg"] = _summary(result)
    return result


def _engine(conn: Any) -> dict[str, Any]:
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION(), @@GLOBAL.read_only")
        version, read_only = cur.fetchone()
    number = parse_version(version)
    return {
        "version": version,
        "version_number": ".".join(map(str, number)) if number else None,
        "major_minor": f"{number[0]}.{number[1]}" if number else None,
        # read_only is 0/1 up to 11.x and may be a mode name (NO_LOCK, ...) later; OFF means writable.
        "read_only": str(read_only).upper() not in ("0", "OFF"),
    }


def _replication(conn: Any) -> dict[str, Any]:
    """primary (replicas are connected), replica (a replication source is configured) or standalone."""
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SHOW ALL SLAVES STATUS")
            sources = cur.fetchall()
            cur.execute(
                "SELECT COUNT(*) AS replicas FROM information_schema.PROCESSLIST "
                "WHERE COMMAND LIKE 'Binlog Dump%'"
            )
            replicas = cur.fetchone()["replicas"]
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] == _ER_SPECIFIC_ACCESS_DENIED:
            return {
                "replication_role": None,
                "replication": {
                    "error": "the login user lacks the privilege to read replication status "
                    "(REPLICA MONITOR or SUPER): " + str(exc.args[1])
                },
            }
        raise
    if sources:
        return {
            "replication_role": "replica",
            "replication": {
                "sources": [
                    {
                        "connection_name": row.get("Connection_name", ""),
                        "primary_host": row.get("Master_Host"),
                        "primary_port": row.get("Master_Port"),
                        "io_running": row.get("Slave_IO_Running"),
                        "sql_running": row.get("Slave_SQL_Running"),
                        "seconds_behind_primary": row.get("Seconds_Behind_Master"),
                        "gtid_io_pos": row.get("Gtid_IO_Pos"),
                        "last_error": row.get("Last_Error") or row.get("Last_IO_Error") or "",
                    }
                    for row in sources
                ],
                "replicas_connected": replicas,
            },
        }
    return {
        "replication_role": "primary" if replicas else "standalone",
        "replication": {"replicas_connected": replicas},
    }


def _database_exists(conn: Any, database: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (database,))
        return cur.fetchone()[0] > 0


def _summary(result: dict[str, Any]) -> str:
    parts = [
        f"MariaDB {result['version']} at {result['address']}",
        result["replication_role"] or "role unknown",
    ]
    if result["read_only"]:
        parts.append("read-only")
    if result["database"]:
        if not result["database_exists"]:
            parts.append(f"no database {result['database']!r}")
        elif result["schema_version"] is None:
            parts.append(f"no schema history in {result['database']!r}")
        else:
            parts.append(f"schema version {result['schema_version']}")
    return ", ".join(parts)
