"""Versioned schema migrations (``V<N>__<description>.sql``) and their history table.

The flow of one run (see docs/migrations.md for the user's view):

1. ``load_mapping``/``load_directory`` read and check the source: names, duplicates, gaps.
2. Under a server-side lock (GET_LOCK), ``read_history`` reads what was applied before.
3. ``plan`` decides what to run, or refuses: a downgrade, a changed checksum, a missing
   version, a failed migration that was not fixed. It is pure, so a refusal changes nothing.
4. ``Migrator.run`` runs each planned script statement by statement on a fresh session and
   records it in the history table (a row is written before the script starts, so a run that
   dies half-way leaves an "interrupted" record instead of nothing).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.simpledb.connection import quote_identifier
from ansible.module_utils.simpledb.sql_script import ScriptError, Statement, split_statements

try:
    import pymysql
except ImportError:  # pragma: no cover - modules call require_pymysql() first
    pymysql = None

DEFAULT_HISTORY_TABLE = "simpledb_schema_history"
MIGRATION_NAME = re.compile(r"^V(?P<version>[0-9]+)__(?P<description>[A-Za-z0-9][A-Za-z0-9_.-]*)\.sql$")
NAME_FORM = "V<N>__<description>.sql (for example V1__create_orders.sql)"
# MariaDB limits user-level lock names to 64 characters.
_LOCK_NAME_MAX = 64
# SERVER_STATUS_IN_TRANS in the server's OK packet: a transaction is open.
_SERVER_STATUS_IN_TRANS = 1
_ERROR_TEXT_MAX = 4000
# Statements that may carry a password (CREATE USER ... IDENTIFIED BY, SET PASSWORD,
# CHANGE MASTER ... MASTER_PASSWORD), and string literals in SQL.
_MENTIONS_PASSWORD = re.compile(r"IDENTIFIED|PASSWORD", re.IGNORECASE)
_QUOTED_BY_SERVER = re.compile(r"near '.*' at line (\d+)", re.DOTALL)
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.|'')*'" + r'|"(?:[^"\\]|\\.|"")*"')

HISTORY_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
  installed_rank INT UNSIGNED NOT NULL AUTO_INCREMENT
    COMMENT 'order of the attempts',
  version INT UNSIGNED NOT NULL
    COMMENT 'the N of V<N>__<description>.sql, or the baseline version',
  description VARCHAR(255) NOT NULL,
  type ENUM('SQL', 'BASELINE') NOT NULL
    COMMENT 'SQL: a script was run; BASELINE: the version was recorded, nothing ran',
  script VARCHAR(255) NULL COMMENT 'file name, NULL for a baseline',
  checksum CHAR(64) NULL COMMENT 'sha256 of the script (UTF-8 bytes), NULL for a baseline',
  success TINYINT(1) NULL
    COMMENT '1 applied, 0 failed, NULL running or interrupted (the run died)',
  statements_total INT UNSIGNED NOT NULL DEFAULT 0,
  statements_applied INT UNSIGNED NOT NULL DEFAULT 0
    COMMENT 'statements that completed; DDL before a failure stays applied',
  error TEXT NULL COMMENT 'why the attempt failed: statement, line and server error',
  applied_by VARCHAR(384) NOT NULL COMMENT 'CURRENT_USER() of the session that ran it',
  applied_from VARCHAR(255) NOT NULL COMMENT 'host name of the client that ran it',
  connection_id BIGINT UNSIGNED NULL COMMENT 'CONNECTION_ID() of the session that ran it',
  engine_version VARCHAR(64) NOT NULL COMMENT 'VERSION() when it ran',
  applied_at DATETIME(6) NOT NULL COMMENT 'UTC start time',
  duration_ms INT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (installed_rank),
  KEY version (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
  COMMENT='Schema migrations applied by the SimpleDB operator (simpledb_migrations)'
"""

_HISTORY_COLUMNS = (
    "installed_rank, version, description, type, script, checksum, success, statements_total, "
    "statements_applied, error, applied_at, connection_id"
)


class MigrationRefused(Exception):
    """Nothing was changed: the source, the history or the request is inconsistent."""


class MigrationFailed(Exception):
    """A script failed on the server; the attempt is recorded in the history table."""

    def __init__(self, message: str, failure: dict[str, Any]) -> None:
        super().__init__(message)
        self.failure = failure
        self.run: MigrationRun | None = None  # what the run did before the failure


@dataclass(frozen=True)
class Migration:
    """One ``V<N>__<description>.sql`` script."""

    version: int
    description: str
    script: str
    sql: str
    checksum: str


@dataclass(frozen=True)
class HistoryRow:
    installed_rank: int
    version: int
    description: str
    type: str
    script: str | None
    checksum: str | None
    success: bool | None
    statements_total: int
    statements_applied: int
    error: str | None
    applied_at: str
    connection_id: int | None


@dataclass(frozen=True)
class History:
    """The rows of the history table, oldest first."""

    rows: tuple[HistoryRow, ...] = ()

    @property
    def schema_version(self) -> int | None:
        """The highest version applied successfully (or recorded as baseline); None if none."""
        versions = [row.version for row in self.rows if row.success]
        return max(versions) if versions else None

    @property
    def has_scripts(self) -> bool:
        return any(row.type == "SQL" for row in self.rows)

    def applied(self) -> dict[int, HistoryRow]:
        """The successful script row of each version."""
        return {row.version: row for row in self.rows if row.type == "SQL" and row.success}

    def last_attempt(self, version: int) -> HistoryRow | None:
        rows = [row for row in self.rows if row.version == version]
        return rows[-1] if rows else None

    def unfinished(self) -> list[HistoryRow]:
        """Rows of attempts that never finished: still running, or their run died."""
        return [row for row in self.rows if row.success is None]


@dataclass(frozen=True)
class PlanStep:
    """One thing a run does: apply a script, retry a failed one, or record a baseline."""

    action: str  # "apply", "retry" or "baseline"
    version: int
    description: str
    script: str | None = None
    checksum: str | None = None
    reason: str = ""
    statements: tuple[Statement, ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "action": self.action,
            "version": self.version,
            "description": self.description,
            "script": self.script,
            "checksum": self.checksum,
        }
        if self.action != "baseline":
            data["statements"] = len(self.statements)
        if self.reason:
            data["reason"] = self.reason
        return data


# ---------------------------------------------------------------- the source


def checksum(sql: str) -> str:
    """The recorded checksum: sha256 of the script's UTF-8 bytes, in hex."""
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


def load_mapping(mapping: Mapping[str, Any]) -> list[Migration]:
    """Migrations from a mapping of file name to SQL text (a ConfigMap's ``data``)."""
    texts: dict[str, str] = {}
    for name, sql in mapping.items():
        if not isinstance(sql, str):
            raise MigrationRefused(f"migrations[{name!r}] must be SQL text, got {type(sql).__name__}")
        texts[str(name)] = sql
    return _parse_source(texts, where="migrations")


def load_directory(path: str) -> list[Migration]:
    """Migrations from the files of a directory (a mounted ConfigMap works: ``..data`` is skipped)."""
    if not os.path.isdir(path):
        raise MigrationRefused(f"migrations_dir {path} is not a directory")
    texts: dict[str, str] = {}
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        # Hidden entries include the ..data and ..<timestamp> links of a ConfigMap volume.
        if name.startswith(".") or not os.path.isfile(full):
            continue
        with open(full, "rb") as handle:
            raw = handle.read()
        try:
            texts[name] = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MigrationRefused(f"{full} is not UTF-8 text: {exc}") from exc
    return _parse_source(texts, where=path)


def _parse_source(texts: Mapping[str, str], where: str) -> list[Migration]:
    by_version: dict[int, Migration] = {}
    for name in sorted(texts):
        match = MIGRATION_NAME.match(name)
        if not match:
            raise MigrationRefused(f"{where}: {name!r} is not a migration name; name files {NAME_FORM}")
        version = int(match.group("version"))
        if version == 0:
            raise MigrationRefused(f"{where}: {name!r}: versions start at 1 (V1__...)")
        if version in by_version:
            raise MigrationRefused(
                f"{where}: {by_version[version].script!r} and {name!r} both have version {version}; "
                "each version must have exactly one file"
            )
        sql = texts[name]
        by_version[version] = Migration(
            version=version,
            description=match.group("description").replace("_", " "),
            script=name,
            sql=sql,
            checksum=checksum(sql),
        )
    migrations = [by_version[v] for v in sorted(by_version)]
    for before, after in itertools.pairwise(migrations):
        if after.version != before.version + 1:
            missing = _versions_text(range(before.version + 1, after.version))
            raise MigrationRefused(
                f"{where}: gap in the migrations: {before.script!r} is followed by {after.script!r}; "
                f"{missing} missing"
            )
    return migrations


def _versions_text(versions: range) -> str:
    if len(versions) == 1:
        return f"V{versions[0]} is"
    return f"V{versions[0]}..V{versions[-1]} are"


# ---------------------------------------------------------------- planning


def plan(
    history: History,
    migrations: list[Migration] | None,
    target_version: int,
    retry_failed: bool = False,
    backslash_escapes: bool = True,
) -> list[PlanStep]:
    """What a run must do to reach ``target_version``, or MigrationRefused (nothing changed).

    ``migrations`` None means there is no source: the target is recorded as a baseline.
    """
    current = history.schema_version or 0
    if target_version < current:
        raise MigrationRefused(
            f"target_version {target_version} is lower than the applied schema version {current}: "
            "migrations only go forward; to undo a change, write a new migration that reverts it"
        )
    if migrations is None:
        return _plan_baseline(history, current, target_version)

    source = {m.version: m for m in migrations}
    for version, row in sorted(history.applied().items()):
        migration = source.get(version)
        if migration and migration.checksum != row.checksum:
            raise MigrationRefused(
                f"{migration.script} (version {version}) was changed after it was applied on "
                f"{row.applied_at} UTC: its checksum is {migration.checksum}, the recorded one is "
                f"{row.checksum}. Applied migrations must not change: restore the original file "
                "and put the change in a new migration"
            )
    if target_version == current:
        return []

    wanted = range(current + 1, target_version + 1)
    missing = [v for v in wanted if v not in source]
    if missing:
        have = f"V{migrations[0].version}..V{migrations[-1].version}" if migrations else "no migrations"
        raise MigrationRefused(
            f"target_version {target_version} needs V{wanted[0]}..V{wanted[-1]} (schema version is "
            f"{current}) but the source has {have}: V{missing[0]} is missing"
        )

    steps: list[PlanStep] = []
    for version in wanted:
        migration = source[version]
        action, reason = "apply", ""
        last = history.last_attempt(version)
        if last is not None and not last.success:
            what = (
                "was interrupted (its run stopped before it finished)" if last.success is None else "failed"
            )
            if migration.checksum != last.checksum:
                action, reason = "retry", f"{what} on {last.applied_at} UTC and was changed since"
            elif retry_failed:
                action, reason = "retry", f"{what} on {last.applied_at} UTC; retry_failed is set"
            else:
                raise MigrationRefused(
                    f"{migration.script} (version {version}) {what} on {last.applied_at} UTC after "
                    f"{last.statements_applied} of {last.statements_total} statements: "
                    f"{last.error or 'no error recorded'}. It blocks later migrations until fixed: "
                    "correct the SQL (a changed file is retried; statements that completed before the "
                    "failure stay applied, so make the script safe to re-run or undo them by hand), "
                    "or set retry_failed to run it again unchanged"
                )
        steps.append(
            PlanStep(
                action=action,
                version=version,
                description=migration.description,
                script=migration.script,
                checksum=migration.checksum,
                reason=reason,
                statements=tuple(_split(migration, backslash_escapes)),
            )
        )
    return steps


def _plan_baseline(history: History, current: int, target_version: int) -> list[PlanStep]:
    if target_version == current:
        return []
    if history.has_scripts:
        raise MigrationRefused(
            f"no migrations source is given, but schema version {current} was reached by running "
            f"migrations: give the source (migrations or migrations_dir) with V{current + 1}.."
            f"V{target_version} to reach {target_version}"
        )
    return [
        PlanStep(
            action="baseline",
            version=target_version,
            description="baseline",
            reason="no migrations source: the version is recorded, nothing runs",
        )
    ]


def _split(migration: Migration, backslash_escapes: bool) -> list[Statement]:
    try:
        return split_statements(migration.sql, backslash_escapes=backslash_escapes)
    except ScriptError as exc:
        raise MigrationRefused(f"{migration.script} (version {migration.version}): {exc}") from exc


# ---------------------------------------------------------------- the database side


def history_exists(conn: Any, database: str, table: str) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (database, table),
        )
        return cur.fetchone()[0] > 0


def read_history(conn: Any, database: str, table: str) -> History:
    """The history table's rows; an empty History when the table does not exist."""
    if not history_exists(conn, database, table):
        return History()
    with conn.cursor() as cur:
        cur.execute(f"SELECT {_HISTORY_COLUMNS} FROM {_qualified(database, table)} ORDER BY installed_rank")
        rows = tuple(
            HistoryRow(
                installed_rank=r[0],
                version=r[1],
                description=r[2],
                type=r[3],
                script=r[4],
                checksum=r[5],
                success=None if r[6] is None else bool(r[6]),
                statements_total=r[7],
                statements_applied=r[8],
                error=r[9],
                applied_at=r[10].isoformat(sep=" ", timespec="seconds"),
                connection_id=r[11],
            )
            for r in cur.fetchall()
        )
    return History(rows)


def read_schema_version(conn: Any, database: str, table: str = DEFAULT_HISTORY_TABLE) -> int | None:
    """The highest successfully applied version, or None when there is no history table."""
    if not history_exists(conn, database, table):
        return None
    with conn.cursor() as cur:
        cur.execute(f"SELECT MAX(version) FROM {_qualified(database, table)} WHERE success = 1")
        return cur.fetchone()[0]


def lock_name(database: str) -> str:
    """The GET_LOCK name that serialises runs against one database."""
    name = f"simpledb_migrations.{database}"
    if len(name) > _LOCK_NAME_MAX:
        name = "simpledb_migrations." + hashlib.sha256(database.encode("utf-8")).hexdigest()[:40]
    return name


def session_backslash_escapes(conn: Any) -> bool:
    """Whether strings use backslash escapes in this session (no NO_BACKSLASH_ESCAPES)."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@SESSION.sql_mode")
        return "NO_BACKSLASH_ESCAPES" not in (cur.fetchone()[0] or "").upper()


def _qualified(database: str, table: str) -> str:
    return f"{quote_identifier(database)}.{quote_identifier(table)}"


@dataclass
class MigrationRun:
    """What a run did (or, in check mode, would do)."""

    schema_version_before: int | None
    schema_version_after: int | None
    plan: list[PlanStep]
    applied: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.plan)


class Migrator:
    """Applies migrations to one database; ``connect`` opens a new session on it each call."""

    def __init__(
        self,
        connect: Callable[[], Any],
        database: str,
        history_table: str = DEFAULT_HISTORY_TABLE,
        lock_timeout: int = 60,
    ) -> None:
        self.connect = connect
        self.database = database
        self.history_table = history_table
        self.lock_timeout = lock_timeout
        self.table = _qualified(database, history_table)

    def run(
        self,
        migrations: list[Migration] | None,
        target_version: int,
        retry_failed: bool = False,
        check_mode: bool = False,
    ) -> MigrationRun:
        """Plan and (unless check_mode) apply. Raises MigrationRefused or MigrationFailed."""
        conn = self.connect()
        try:
            if not check_mode:
                self._lock(conn)
            history = read_history(conn, self.database, self.history_table)
            if not check_mode:
                self._refuse_if_still_running(conn, history)
            steps = plan(
                history,
                migrations,
                target_version,
                retry_failed,
                backslash_escapes=session_backslash_escapes(conn),
            )
            result = MigrationRun(history.schema_version, history.schema_version, steps)
            if check_mode or not steps:
                if check_mode and steps:
                    result.schema_version_after = steps[-1].version
                return result
            with conn.cursor() as cur:
                cur.execute(HISTORY_TABLE_DDL.format(table=self.table))
            for step in steps:
                if step.action == "baseline":
                    self._record_baseline(conn, step)
                else:
                    try:
                        result.applied.append(self._apply(conn, step))
                    except MigrationFailed as exc:
                        exc.run = result
                        raise
                result.schema_version_after = step.version
            return result
        finally:
            conn.close()  # also releases the lock

    def _lock(self, conn: Any) -> None:
        name = lock_name(self.database)
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, %s)", (name, self.lock_timeout))
            if cur.fetchone()[0] == 1:
                return
            cur.execute("SELECT IS_USED_LOCK(%s)", (name,))
            holder = cur.fetchone()[0]
        raise MigrationRefused(
            f"another run is applying migrations to database {self.database!r}: the lock {name!r} is held "
            f"by connection {holder} and was not released within lock_timeout={self.lock_timeout}s. "
            "Retry later, or raise lock_timeout for long migrations"
        )

    def _refuse_if_still_running(self, conn: Any, history: History) -> None:
        """An unfinished row whose session still exists is a statement still running on the server.

        Its run died (it no longer holds the lock), but the server finishes the statement anyway;
        starting the script again now would race it.
        """
        for row in history.unfinished():
            if row.connection_id is None:
                continue
            # Connection ids restart at 1 with the server: only a row written since the server
            # started can belong to a live session.
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s AND %s >= "
                    "UTC_TIMESTAMP() - INTERVAL (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
                    "WHERE VARIABLE_NAME = 'UPTIME') SECOND",
                    (row.connection_id, row.applied_at),
                )
                alive = cur.fetchone()[0] > 0
            if alive:
                raise MigrationRefused(
                    f"{row.script} (version {row.version}) is still running on connection "
                    f"{row.connection_id} although the run that started it has stopped: wait for it to "
                    f"finish (SHOW PROCESSLIST), or stop it with KILL {row.connection_id}, then run again"
                )

    def _record_baseline(self, conn: Any, step: PlanStep) -> None:
        with conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {self.table} (version, description, type, success, applied_by, "
                "applied_from, connection_id, engine_version, applied_at) "
                "VALUES (%s, %s, 'BASELINE', 1, CURRENT_USER(), %s, CONNECTION_ID(), VERSION(), "
                "UTC_TIMESTAMP(6))",
                (step.version, step.description, socket.gethostname()),
            )

    def _apply(self, conn: Any, step: PlanStep) -> dict[str, Any]:
        """Run one script on a session of its own and record the attempt."""
        # A fresh session per script: what a script sets (sql_mode, USE, variables) or leaves open
        # cannot leak into the next script or into the history writes.
        script_conn = self.connect()
        try:
            with script_conn.cursor() as cur:
                cur.execute("SELECT CONNECTION_ID()")
                script_connection_id = cur.fetchone()[0]
            with conn.cursor() as cur:
                cur.execute(
                    f"INSERT INTO {self.table} (version, description, type, script, checksum, success, "
                    "statements_total, applied_by, applied_from, connection_id, engine_version, applied_at) "
                    "VALUES (%s, %s, 'SQL', %s, %s, NULL, %s, CURRENT_USER(), %s, %s, VERSION(), "
                    "UTC_TIMESTAMP(6))",
                    (
                        step.version,
                        step.description,
                        step.script,
                        step.checksum,
                        len(step.statements),
                        socket.gethostname(),
                        script_connection_id,
                    ),
                )
                rank = cur.lastrowid
            started = time.monotonic()
            for number, statement in enumerate(step.statements, start=1):
                try:
                    _execute(script_conn, statement.text)
                except pymysql.MySQLError as exc:
                    failure = _statement_failure(step, number, exc)
                    self._record_end(conn, rank, False, number - 1, started, failure["error"])
                    raise MigrationFailed(_failure_message(step, failure, number - 1), failure) from exc
                self._record_progress(conn, rank, number)
            if script_conn.server_status & _SERVER_STATUS_IN_TRANS:
                script_conn.rollback()
                failure = {
                    "version": step.version,
                    "script": step.script,
                    "statement": None,
                    "line": None,
                    "error_code": None,
                    "error": "the script left a transaction open (START TRANSACTION or BEGIN without COMMIT) "
                    "and it was rolled back: end the transaction with COMMIT in the script",
                }
                self._record_end(conn, rank, False, len(step.statements), started, failure["error"])
                raise MigrationFailed(_failure_message(step, failure, len(step.statements)), failure)
            duration_ms = self._record_end(conn, rank, True, len(step.statements), started, None)
        finally:
            script_conn.close()
        return {**step.to_dict(), "duration_ms": duration_ms}

    def _record_progress(self, conn: Any, rank: int, statements_applied: int) -> None:
        with conn.cursor() as cur:
            cur.execute(
                f"UPDATE {self.table} SET statements_applied = %s WHERE installed_rank = %s",
                (statements_applied, rank),
            )

    def _record_end(
        self, conn: Any, rank: int, success: bool, statements_applied: int, started: float, error: str | None
    ) -> int:
        duration_ms = int((time.monotonic() - started) * 1000)
        with conn.cursor() as cur:
            cur.execute(
                f"UPDATE {self.table} SET success = %s, statements_applied = %s, duration_ms = %s, "
                "error = %s WHERE installed_rank = %s",
                (int(success), statements_applied, duration_ms, error, rank),
            )
        return duration_ms


def _execute(conn: Any, sql: str) -> None:
    """Run one statement and read all its result sets (CALL may return several)."""
    with conn.cursor() as cur:
        cur.execute(sql)
        while cur.nextset():
            pass


def _statement_failure(step: PlanStep, number: int, exc: Exception) -> dict[str, Any]:
    statement = step.statements[number - 1]
    code = exc.args[0] if exc.args else None
    excerpt, detail = redact_passwords(
        " ".join(statement.text.split()), str(exc.args[1] if len(exc.args) > 1 else exc)
    )
    if len(excerpt) > 200:
        excerpt = excerpt[:200] + "..."
    error = f"statement {number} at line {statement.line} failed with error {code}: {detail} [{excerpt}]"
    return {
        "version": step.version,
        "script": step.script,
        "statement": number,
        "line": statement.line,
        "error_code": code,
        "error": error[:_ERROR_TEXT_MAX],
    }


def redact_passwords(statement: str, error: str) -> tuple[str, str]:
    """The statement and the server's error about it, with no string literal of the statement
    when it may carry a password. Failure reports go to the history table, the task result and
    the SimpleDB's status; a syntax error quotes the statement ("near '...' at line 1")."""
    if not _MENTIONS_PASSWORD.search(statement):
        return statement, error
    error = _QUOTED_BY_SERVER.sub(r"near (hidden: the statement may hold a password) at line \1", error)
    for literal in {m.group(0) for m in _STRING_LITERAL.finditer(statement)}:
        error = error.replace(literal, "'***'")
    return _STRING_LITERAL.sub("'***'", statement), error


def _failure_message(step: PlanStep, failure: dict[str, Any], completed: int) -> str:
    message = (
        f"{step.script} (version {step.version}) failed: {failure['error']}. It is recorded as failed and "
        "blocks later migrations until the file is corrected (a changed file is retried on the next run)"
    )
    if completed:
        message += (
            f"; the {completed} statement(s) before the failure completed and stay applied "
            "(DDL is not transactional in MariaDB)"
        )
    return message
