"""Connecting to MariaDB: the shared argument spec, and connections that fail with a message.

Every module that talks to a server takes the same ``login_*`` options, built here once.
"""

from __future__ import annotations

from typing import Any

try:
    import pymysql
    import pymysql.cursors

    HAS_PYMYSQL = True
    PYMYSQL_IMPORT_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - reported by require_pymysql()
    HAS_PYMYSQL = False
    PYMYSQL_IMPORT_ERROR = str(exc)


class ConnectionFailed(Exception):
    """The server could not be reached or refused the login; the message says which."""


def connection_argument_spec() -> dict[str, dict[str, Any]]:
    """The ``login_*`` options every database module accepts."""
    return {
        "login_host": {"type": "str", "default": "127.0.0.1"},
        "login_port": {"type": "int", "default": 3306},
        "login_user": {"type": "str", "default": "root"},
        "login_password": {"type": "str", "no_log": True},
        "login_unix_socket": {"type": "str"},
        "connect_timeout": {"type": "int", "default": 10},
    }


def require_pymysql(module: Any) -> None:
    """Fail the module with an install hint when PyMySQL is missing."""
    if not HAS_PYMYSQL:
        module.fail_json(
            msg="The Python library PyMySQL is required on the host that runs this module "
            "(pip install PyMySQL): " + str(PYMYSQL_IMPORT_ERROR)
        )


def connect(
    host: str = "127.0.0.1",
    port: int = 3306,
    user: str = "root",
    password: str | None = None,
    unix_socket: str | None = None,
    database: str | None = None,
    connect_timeout: int = 10,
    read_timeout: int | None = None,
    autocommit: bool = True,
    streaming: bool = False,
    **kwargs: Any,
) -> pymysql.connections.Connection:
    """Open a connection with utf8mb4 and binary-safe settings.

    ``streaming`` returns rows one at a time (SSCursor) so memory stays bounded.
    Raises ConnectionFailed with a message that names the address and the reason.
    """
    params: dict[str, Any] = {
        "user": user,
        "password": password or "",
        "database": database,
        "charset": "utf8mb4",
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        "autocommit": autocommit,
        "cursorclass": pymysql.cursors.SSCursor if streaming else pymysql.cursors.Cursor,
        **kwargs,
    }
    if unix_socket:
        params["unix_socket"] = unix_socket
        where = unix_socket
    else:
        params["host"] = host
        params["port"] = port
        where = f"{host}:{port}"
    try:
        return pymysql.connect(**params)
    except pymysql.err.OperationalError as exc:
        code = exc.args[0] if exc.args else None
        detail = exc.args[1] if len(exc.args) > 1 else str(exc)
        if code == 1045:
            raise ConnectionFailed(
                f"MariaDB at {where} refused the login of user '{user}': check the password "
                f"(the credentials Secret) and the user's host grants. Server said: {detail}"
            ) from exc
        if code == 1049:
            raise ConnectionFailed(
                f"MariaDB at {where} has no database '{database}': create it first. Server said: {detail}"
            ) from exc
        raise ConnectionFailed(
            f"Cannot connect to MariaDB at {where} as '{user}': {detail} (error {code}). "
            "Check that the server is running and reachable from here."
        ) from exc
    except (OSError, pymysql.err.MySQLError) as exc:
        raise ConnectionFailed(f"Cannot connect to MariaDB at {where} as '{user}': {exc}") from exc


def connect_from_params(params: dict[str, Any], **kwargs: Any) -> pymysql.connections.Connection:
    """connect() with a module's ``login_*`` parameters."""
    return connect(
        host=params["login_host"],
        port=params["login_port"],
        user=params["login_user"],
        password=params.get("login_password"),
        unix_socket=params.get("login_unix_socket"),
        connect_timeout=params["connect_timeout"],
        **kwargs,
    )


def quote_identifier(name: str) -> str:
    """Quote a schema object name for SQL (backticks doubled)."""
    return "`" + name.replace("`", "``") + "`"
