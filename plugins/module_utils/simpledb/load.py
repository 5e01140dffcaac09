"""Restore of a SimpleDB logical backup: verify, load into a staging database, compare, swap.

What a restore does to the target database (docs/backup-format.md, "Restore"):

1. The data file's size and sha256 are checked against the manifest before anything on
   the server is touched. A missing, truncated or altered file stops here.
2. Optionally the server is made read-only (``SET GLOBAL read_only=1``); the restore's own
   connections keep writing because they need, and are checked for, READ_ONLY ADMIN.
3. Tables, sequences and rows are loaded into a staging database ``<db>__sdb_restore``:
   definitions in file order, then the INSERT statements spread over ``jobs`` connections.
   An InnoDB table's plain secondary indexes are created after its rows are in (``ALTER
   TABLE ... ADD KEY`` builds them by sorting, which costs the server less than updating
   them row by row); see deferrable_keys() for which tables qualify.
4. Every table's row count and ``CHECKSUM TABLE ... EXTENDED`` (and every sequence's next
   value) in the staging database is compared with the manifest. A mismatch stops here:
   the staging database is dropped and the target is exactly as it was.
5. Swap: the target's triggers are dropped (MariaDB cannot move a table with triggers to
   another database), then ONE ``RENAME TABLE`` moves the target's tables to
   ``<db>__sdb_previous`` and the restored ones in (atomic), then the target's views,
   routines and events are replaced by the backup's. The previous tables are dropped at
   the end. If a swap step fails, the error names the step and the previous tables stay in
   ``<db>__sdb_previous``; the server is left read-only so nothing writes into a
   half-restored database.
"""

from __future__ import annotations

import gzip
import hashlib
import queue
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

from ansible.module_utils.simpledb.connection import quote_identifier
from ansible.module_utils.simpledb.dump import SECTION_PREFIX
from ansible.module_utils.simpledb.manifest import load_manifest, manifest_name
from ansible.module_utils.simpledb.storage import Storage, StorageError

try:
    import pymysql
except ImportError:  # pragma: no cover - modules call require_pymysql() first
    pymysql = None

ProgressCallback = Callable[[dict[str, Any]], None]
_READ_BLOCK = 1024 * 1024
_COMPLETE_MARK = b"-- simpledb-backup-complete"
_DEADLOCK_RETRIES = 5
# A run is what a worker's queue holds (4 statements of at most 4 MB): the file is read in
# order, so with longer runs the reader waits on one worker's full queue while the others
# idle (measured with 64 MB runs: 1.6 workers busy on average, with 16 MB: 2.8 of 4).
_QUEUE_STATEMENTS = 4
_RUN_BYTES = 16 * 1024 * 1024
_DEFERRED_SECTIONS = ("view-placeholders", "routines", "views", "triggers", "events")


class RestoreError(Exception):
    """The restore failed; ``state`` says what the target database looks like now."""

    def __init__(self, message: str, state: str | None = None, mismatches: list[str] | None = None) -> None:
        super().__init__(message)
        self.state = state
        self.mismatches = mismatches or []


@dataclass
class RestoreOptions:
    jobs: int = 2
    read_only: bool = True


def verify_artifact(storage: Storage, manifest: dict[str, Any]) -> None:
    """Check the data file's size and sha256 against the manifest (reads it once)."""
    data = manifest["data"]
    digest = hashlib.sha256()
    size = 0
    try:
        with storage.open_read(data["name"]) as stream:
            while block := stream.read(_READ_BLOCK):
                digest.update(block)
                size += len(block)
    except StorageError as exc:
        raise RestoreError(f"The backup's data file is not readable: {exc}; nothing was changed") from exc
    if size != data["size"] or digest.hexdigest() != data["sha256"]:
        raise RestoreError(
            f"The data file {storage.location(data['name'])} does not match its manifest "
            f"(size {size}, manifest says {data['size']}; sha256 {digest.hexdigest()[:16]}..., manifest says "
            f"{data['sha256'][:16]}...): it is truncated, damaged or not from this backup. "
            "Nothing was changed"
        )


def iter_statements(stream: IO[bytes]) -> Iterator[tuple[str, bytes]]:
    """(section, statement) pairs of a backup file, in order.

    Statements end with the current delimiter at the end of a line (``DELIMITER`` lines
    change it, as in the mariadb client). Data rows never contain a raw newline, so every
    INSERT is one line. Raises RestoreError if the file does not end with the backup's
    completion mark.
    """
    section = "header"
    delimiter = b";"
    ending = delimiter + b"\n"
    lines: list[bytes] = []
    complete = False
    for line in stream:
        if not lines:
            if line.startswith(b"--"):
                if line.startswith(SECTION_PREFIX.encode()):
                    section = line[len(SECTION_PREFIX) :].strip().decode()
                elif line.startswith(_COMPLETE_MARK):
                    complete = True
                continue
            if line.startswith(b"DELIMITER "):
                delimiter = line.split()[1]
                ending = delimiter + b"\n"
                continue
            if not line.strip():
                continue
        if line.endswith(ending):
            if lines:
                lines.append(line)
                yield section, b"".join(lines)[: -len(ending)]
                lines = []
            else:
                yield section, line[: -len(ending)]
        else:
            lines.append(line)
    if lines or not complete:
        raise RestoreError("The backup file ends in the middle: it is incomplete. Nothing was changed")


_IDENTIFIER = rb"`(?:[^`]|``)+`"
_CREATE_TABLE = re.compile(rb"CREATE TABLE (" + _IDENTIFIER + rb") \(")
_PLAIN_KEY = re.compile(rb"  KEY " + _IDENTIFIER + rb" \((" + _IDENTIFIER + rb")")
_AUTO_INCREMENT_COLUMN = re.compile(rb"  (" + _IDENTIFIER + rb") .* AUTO_INCREMENT(?: .*)?")
_REFERENCES = re.compile(rb" REFERENCES (" + _IDENTIFIER + rb") \(")


def deferrable_keys(create: bytes, referenced: set[bytes]) -> tuple[bytes, bytes, bytes] | None:
    """Split a table's ``SHOW CREATE TABLE`` text into its quoted name, the CREATE without its
    plain secondary keys and the ALTER TABLE that adds them, or None when it keeps them all.

    Only a plain InnoDB table qualifies: no foreign key from or to it (a foreign key needs
    its index), no FULLTEXT or SPATIAL key, not partitioned nor system-versioned, and no
    deferred key on the AUTO_INCREMENT column (that column must be indexed). Plain keys
    are all deferred or none, and added back in their order, so SHOW CREATE TABLE lists
    them as before. The text is SHOW CREATE's: one definition a line, two spaces in.
    """
    lines = create.split(b"\n")
    head = _CREATE_TABLE.fullmatch(lines[0])
    if head is None or head.group(1) in referenced or not lines[-1].startswith(b") "):
        return None
    options = lines[-1]
    if b"ENGINE=InnoDB" not in options or b"PARTITION BY" in create or b"WITH SYSTEM VERSIONING" in create:
        return None
    definitions = [line.removesuffix(b",") for line in lines[1:-1]]
    if not all(line.startswith(b"  ") for line in definitions):
        return None
    kept, keys = [], []
    auto_increment = set()  # a comment may mention AUTO_INCREMENT too: keep those columns' keys
    for line in definitions:
        if line.startswith((b"  FULLTEXT ", b"  SPATIAL ")) or b" FOREIGN KEY " in line:
            return None
        if column := _AUTO_INCREMENT_COLUMN.fullmatch(line):
            auto_increment.add(column.group(1))
        key = _PLAIN_KEY.match(line)
        if key is None:
            kept.append(line)
        elif key.group(1) in auto_increment:
            return None
        else:
            keys.append(line[2:])
    if not keys:
        return None
    name = head.group(1)
    add_keys = b"ALTER TABLE " + name + b" " + b", ".join(b"ADD " + key for key in keys)
    return name, b"\n".join([lines[0], b",\n".join(kept), options]), add_keys


def referenced_tables(definitions: list[bytes]) -> set[bytes]:
    """Quoted names of the tables that foreign keys in these CREATE statements point to."""
    return {name for create in definitions for name in _REFERENCES.findall(create)}


class Restorer:
    """One restore run: ``Restorer(connect, storage, name, database, options).run()``."""

    def __init__(
        self,
        connect: Callable[..., Any],
        storage: Storage,
        backup_name: str,
        database: str | None,
        options: RestoreOptions,
        progress: ProgressCallback | None = None,
    ) -> None:
        self._connect = connect
        self.storage = storage
        self.backup_name = backup_name
        self.options = options
        self._progress = progress or (lambda event: None)
        self.manifest = self._read_manifest()
        self.database = database or self.manifest["database"]
        base = self.database[:48]
        self.staging = f"{base}__sdb_restore"
        self.previous = f"{base}__sdb_previous"
        self._session: list[bytes] = []
        self._deferred: list[tuple[str, bytes]] = []
        self._add_keys: dict[bytes, bytes] = {}  # quoted table name -> its ALTER TABLE ... ADD KEY

    def _read_manifest(self) -> dict[str, Any]:
        name = manifest_name(self.backup_name)
        try:
            with self.storage.open_read(name) as stream:
                return load_manifest(stream, self.storage.location(name))
        except StorageError as exc:
            raise RestoreError(f"The backup's manifest is not readable: {exc}; nothing was changed") from exc
        except Exception as exc:
            raise RestoreError(f"{exc}; nothing was changed") from exc

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        verify_artifact(self.storage, self.manifest)
        checked = time.monotonic()
        control = self._connect(max_allowed_packet=1 << 30)
        read_only_before = None
        state = "unchanged"
        try:
            self._refuse_leftovers(control)
            if self.options.read_only:
                read_only_before = self._scalar(control, "SELECT @@GLOBAL.read_only")
                self._execute(control, "SET GLOBAL read_only = 1")
            try:
                self._create_staging(control)
            except pymysql.err.MySQLError as exc:
                if exc.args and exc.args[0] == 1290:
                    raise RestoreError(
                        "The restore user cannot write while the server is read-only: "
                        "grant it READ_ONLY ADMIN "
                        "(MariaDB 10.11 no longer lets SUPER write under read_only), or set read_only: false"
                    ) from exc
                raise
            try:
                self._load(control)
                loaded = time.monotonic()
                tables, rows, mismatches = self._finish_staging()
                if mismatches:
                    raise RestoreError(
                        "The restored data does not match the backup's manifest: "
                        + "; ".join(mismatches[:10])
                        + ". The target database was not changed",
                        mismatches=mismatches,
                    )
            except BaseException:
                self._drop_database(control, self.staging)
                raise
            state = "swapping"
            self._swap(control)
            state = "restored"
            missing = self._verify_objects(control)
            if missing:
                raise RestoreError(
                    "The tables were restored but these objects are missing afterwards: "
                    + ", ".join(missing),
                    state="objects-missing",
                    mismatches=missing,
                )
            self._drop_database(control, self.previous)
            self._drop_database(control, self.staging)
            if read_only_before is not None:
                self._execute(control, f"SET GLOBAL read_only = {int(read_only_before)}")
                read_only_before = None
            return {
                "database": self.database,
                "tables": tables,
                "rows": rows,
                "verified": True,
                "mismatches": [],
                "engine_version": self._scalar(control, "SELECT VERSION()"),
                "backup_engine_version": self.manifest.get("engine_version"),
                "schema_version": self.manifest.get("schema_version"),
                "duration": round(time.monotonic() - started, 3),
                "timings": {
                    "verify_artifact_seconds": round(checked - started, 3),
                    "load_seconds": round(loaded - checked, 3),
                    "total_seconds": round(time.monotonic() - started, 3),
                },
            }
        except RestoreError as exc:
            exc.state = exc.state or state
            if exc.state == "unchanged":
                state = "unchanged"  # so the finally clause puts read_only back
            raise
        except pymysql.err.MySQLError as exc:
            raise RestoreError(self._describe(exc, state), state=state) from exc
        finally:
            # A half-swapped database stays read-only so nothing writes into it.
            if read_only_before is not None and state != "swapping":
                try:
                    self._execute(control, f"SET GLOBAL read_only = {int(read_only_before)}")
                except pymysql.err.MySQLError:
                    pass
            control.close()

    def _describe(self, exc: Exception, state: str) -> str:
        code = exc.args[0] if exc.args else None
        detail = exc.args[1] if len(exc.args) > 1 else str(exc)
        where = {
            "unchanged": "The target database was not changed",
            "swapping": (
                f"The swap into '{self.database}' failed part-way: its previous tables are in "
                f"'{self.previous}' and the restored ones in '{self.staging}' or '{self.database}'; "
                "the server "
                "stays read-only until you repair it"
            ),
            "restored": "The data was restored but the final clean-up failed",
        }[state]
        if code in (1044, 1142, 1227, 1370):
            return (
                f"The restore user lacks a privilege ({detail}): it needs ALL on '{self.database}' "
                f"and on the '{self.staging}' and '{self.previous}' databases, plus READ_ONLY ADMIN "
                f"for read_only. {where}"
            )
        if code in (1153, 2006, 2013):
            return (
                f"The server closed the connection or refused a statement ({detail}): a row of the backup "
                "may be larger than the server's max_allowed_packet; raise it (SET GLOBAL "
                f"max_allowed_packet, or the config) and retry. {where}"
            )
        return f"The restore failed: MariaDB error {code}: {detail}. {where}"

    # -- steps -------------------------------------------------------------------------------
    def _refuse_leftovers(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (self.previous,)
            )
            if cur.fetchone():
                raise RestoreError(
                    f"The database '{self.previous}' exists: an earlier restore of '{self.database}' stopped "
                    "during its swap and left the previous tables there. Check them, then drop that database"
                )

    def _create_staging(self, conn: Any) -> None:
        self._drop_database(conn, self.staging)
        self._execute(conn, f"CREATE DATABASE {quote_identifier(self.staging)}{self._charset_clause()}")

    def _charset_clause(self) -> str:
        collation = self.manifest.get("database_collation")
        charset = self.manifest.get("database_charset")
        clause = ""
        if charset:
            clause += f" CHARACTER SET {charset}"
        if collation:
            clause += f" COLLATE {collation}"
        return clause

    def _worker(self) -> Any:
        conn = self._connect(database=self.staging, max_allowed_packet=1 << 30)
        for statement in self._session:
            self._execute(conn, statement)
        return conn

    def _load(self, control: Any) -> None:
        """Definitions on the control connection, rows through ``jobs`` worker connections.

        A table's INSERTs go to one worker in runs of about _RUN_BYTES, each run to the
        worker with the least work so far: rows then arrive in key order within a run (no
        page splits between two connections appending next to each other) while several
        tables, or the runs of one large table, load in parallel.
        """
        self._execute(control, f"USE {quote_identifier(self.staging)}")
        queues: list[queue.Queue[bytes | None]] = [
            queue.Queue(maxsize=_QUEUE_STATEMENTS) for _ in range(self.options.jobs)
        ]
        assigned = [0] * self.options.jobs
        runs: dict[bytes, list[int]] = {}  # table -> [worker, bytes sent in this run]
        errors: list[BaseException] = []
        workers: list[threading.Thread] = []
        loaded = {"statements": 0, "bytes": 0}

        def work(conn: Any, statements: queue.Queue[bytes | None]) -> None:
            try:
                with conn.cursor() as cur:
                    while (statement := statements.get()) is not None:
                        if not errors:
                            self._insert(cur, statement)
            except BaseException as exc:
                errors.append(exc)
                while statements.get() is not None:
                    pass
            finally:
                conn.close()

        def route(statement: bytes) -> queue.Queue[bytes | None]:
            table = statement[: statement.find(b" (")]  # "INSERT INTO `t`" or a SETVAL
            run = runs.get(table)
            if run is None or run[1] >= _RUN_BYTES:
                run = runs[table] = [assigned.index(min(assigned)), 0]
            run[1] += len(statement)
            assigned[run[0]] += len(statement)
            return queues[run[0]]

        definitions: list[bytes] = []
        try:
            with self._open_data() as stream:
                for section, statement in iter_statements(stream):
                    if errors:
                        break
                    if section == "tables":
                        definitions.append(statement)
                        continue
                    if definitions:
                        self._create_tables(control, definitions)
                        definitions = []
                    if section == "header":
                        self._session.append(statement)
                        self._execute(control, statement)
                    elif section == "data":
                        if not workers:
                            self._progress({"event": "definitions_loaded"})
                            for index, statements in enumerate(queues):
                                thread = threading.Thread(
                                    target=work,
                                    args=(self._worker(), statements),
                                    name=f"load-{index}",
                                    daemon=True,
                                )
                                thread.start()
                                workers.append(thread)
                        route(statement).put(statement)
                        loaded["statements"] += 1
                        loaded["bytes"] += len(statement)
                    else:
                        self._deferred.append((section, statement))
                if definitions:
                    self._create_tables(control, definitions)
        except (OSError, EOFError, zlib.error) as exc:
            raise RestoreError(
                f"The backup's data file cannot be decompressed ({exc}): it is damaged. Nothing was changed"
            ) from exc
        finally:
            for statements in queues[: len(workers)]:
                statements.put(None)
            for thread in workers:
                thread.join()
        if errors:
            raise errors[0]
        self._progress({"event": "data_loaded", **loaded})

    def _create_tables(self, control: Any, statements: list[bytes]) -> None:
        """The tables section, in order; the plain keys of the tables that qualify are kept
        for _finish_staging to add once the rows are in."""
        referenced = referenced_tables(statements)
        for statement in statements:
            split = deferrable_keys(statement, referenced) if statement.startswith(b"CREATE TABLE ") else None
            if split is not None:
                name, statement, self._add_keys[name] = split
            self._execute(control, statement)

    @staticmethod
    def _insert(cur: Any, statement: bytes) -> None:
        """Run one INSERT; InnoDB may pick concurrent loaders as deadlock victims: retry those.

        The statement runs in autocommit, so a deadlock rolled all of it back.
        """
        for attempt in range(_DEADLOCK_RETRIES):
            try:
                cur.execute(statement)
                return
            except pymysql.err.OperationalError as exc:
                if exc.args[0] not in (1205, 1213) or attempt == _DEADLOCK_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _open_data(self) -> IO[bytes]:
        raw = self.storage.open_read(self.manifest["data"]["name"])
        if self.manifest["data"]["compression"] == "gzip":
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        return raw

    def _finish_staging(self) -> tuple[int, int, list[str]]:
        """Add the keys the load deferred, then compare row counts, checksums and sequence
        values in the staging database with the manifest."""
        expected = {t["name"]: t for t in self.manifest["tables"]}
        mismatches: list[str] = []
        control = self._connect(database=self.staging)
        try:
            with control.cursor() as cur:
                cur.execute(
                    "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                    (self.staging,),
                )
                present = {name: kind for name, kind in cur.fetchall()}
        finally:
            control.close()
        for name in sorted(set(expected) - set(present)):
            mismatches.append(f"table '{name}' is missing")
        for name in sorted(set(present) - set(expected)):
            mismatches.append(f"table '{name}' is not in the manifest")
        local = threading.local()
        connections: list[Any] = []

        def check(table: dict[str, Any]) -> list[str]:
            if not hasattr(local, "conn"):
                local.conn = self._worker()
                connections.append(local.conn)
            name = quote_identifier(table["name"])
            with local.conn.cursor() as cur:
                if add_keys := self._add_keys.get(name.encode()):
                    cur.execute(add_keys)
                if table["kind"] == "sequence":
                    cur.execute(f"SELECT next_not_cached_value FROM {name}")
                    value = cur.fetchone()[0]
                    if value != table.get("next_value"):
                        return [
                            f"sequence '{table['name']}' next value {value}, backup {table.get('next_value')}"
                        ]
                    return []
                versioned = " FOR SYSTEM_TIME ALL" if table.get("versioned") else ""
                cur.execute(f"SELECT COUNT(*) FROM {name}{versioned}")
                rows = cur.fetchone()[0]
                cur.execute(f"CHECKSUM TABLE {name} EXTENDED")
                checksum = cur.fetchone()[1]
            found = []
            if rows != table["rows"]:
                found.append(f"table '{table['name']}' has {rows} rows, backup {table['rows']}")
            if checksum != table.get("checksum"):
                found.append(f"table '{table['name']}' checksum {checksum}, backup {table.get('checksum')}")
            return found

        try:
            with ThreadPoolExecutor(self.options.jobs) as pool:
                # Index builds first, then the largest tables: the shortest tail.
                order = sorted(
                    (t for t in expected.values() if t["name"] in present),
                    key=lambda t: (quote_identifier(t["name"]).encode() in self._add_keys, t["rows"]),
                    reverse=True,
                )
                for found in pool.map(check, order):
                    mismatches.extend(found)
        finally:
            for conn in connections:
                conn.close()
        tables = sum(1 for t in expected.values() if t["kind"] == "table")
        rows = sum(t["rows"] for t in expected.values() if t["kind"] == "table")
        return tables, rows, mismatches

    def _swap(self, conn: Any) -> None:
        target = quote_identifier(self.database)
        self._execute(conn, "SET SESSION foreign_key_checks = 0")
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (self.database,))
            exists = cur.fetchone() is not None
        if not exists:
            self._execute(conn, f"CREATE DATABASE {target}{self._charset_clause()}")
        elif self._charset_clause():
            self._execute(conn, f"ALTER DATABASE {target}{self._charset_clause()}")
        current = self._objects(conn, self.database)
        self._execute(conn, f"USE {target}")
        saved_triggers = []
        for trigger in current["triggers"]:
            with conn.cursor() as cur:
                cur.execute(f"SHOW CREATE TRIGGER {quote_identifier(trigger)}")
                _, sql_mode, create, *_ = cur.fetchone()
            saved_triggers.append((sql_mode, create))
            self._execute(conn, f"DROP TRIGGER {quote_identifier(trigger)}")
        with conn.cursor() as cur:
            cur.execute(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (self.staging,)
            )
            restored = [r[0] for r in cur.fetchall()]
        moves = [
            f"{target}.{quote_identifier(t)} TO {quote_identifier(self.previous)}.{quote_identifier(t)}"
            for t in current["tables"]
        ]
        moves += [
            f"{quote_identifier(self.staging)}.{quote_identifier(t)} TO {target}.{quote_identifier(t)}"
            for t in restored
        ]
        self._execute(conn, f"CREATE DATABASE {quote_identifier(self.previous)}")
        try:
            if moves:
                self._execute(conn, "RENAME TABLE " + ", ".join(moves))
        except pymysql.err.MySQLError as exc:
            # Nothing moved (RENAME TABLE is atomic): put the dropped triggers back.
            for sql_mode, create in saved_triggers:
                self._execute(conn, f"SET SESSION sql_mode = '{sql_mode}'")
                self._execute(conn, create)
            self._drop_database(conn, self.previous)
            self._drop_database(conn, self.staging)
            raise RestoreError(
                f"Swapping the restored tables into '{self.database}' failed ({exc.args[-1]}): nothing was "
                "moved and its triggers were put back, so the target database was not changed",
                state="unchanged",
            ) from exc
        for kind, word in (
            ("views", "VIEW"),
            ("functions", "FUNCTION"),
            ("procedures", "PROCEDURE"),
            ("events", "EVENT"),
        ):
            for name in current[kind]:
                self._execute(conn, f"DROP {word} IF EXISTS {quote_identifier(name)}")
        for statement in self._session:
            self._execute(conn, statement)
        for section in _DEFERRED_SECTIONS:
            for statement_section, statement in self._deferred:
                if statement_section == section:
                    self._execute(conn, statement)
        self._progress({"event": "swapped"})

    def _objects(self, conn: Any, schema: str) -> dict[str, list[str]]:
        queries = {
            "tables": "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "AND TABLE_TYPE <> 'VIEW'",
            "views": "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s",
            "functions": "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s "
            "AND ROUTINE_TYPE = 'FUNCTION'",
            "procedures": "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s "
            "AND ROUTINE_TYPE = 'PROCEDURE'",
            "triggers": "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
            "events": "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
        }
        found = {}
        with conn.cursor() as cur:
            for kind, sql in queries.items():
                cur.execute(sql, (schema,))
                found[kind] = sorted(r[0] for r in cur.fetchall())
        return found

    def _verify_objects(self, conn: Any) -> list[str]:
        present = self._objects(conn, self.database)
        missing = []
        for kind in ("views", "functions", "procedures", "triggers", "events"):
            for name in self.manifest["objects"].get(kind, []):
                if name not in present[kind]:
                    missing.append(f"{kind[:-1]} '{name}'")
        return missing

    # -- small helpers -----------------------------------------------------------------------
    def _drop_database(self, conn: Any, name: str) -> None:
        self._execute(conn, f"DROP DATABASE IF EXISTS {quote_identifier(name)}")

    @staticmethod
    def _execute(conn: Any, sql: str | bytes) -> None:
        with conn.cursor() as cur:
            cur.execute(sql)

    @staticmethod
    def _scalar(conn: Any, sql: str) -> Any:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]
