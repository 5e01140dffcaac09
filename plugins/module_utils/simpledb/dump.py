"""Consistent, streamed, parallel logical backup of one database into plain SQL.

How one backup runs (docs/backup-format.md has the user's view):

1. Snapshot. Each worker connection opens ``START TRANSACTION WITH CONSISTENT SNAPSHOT``.
   With one worker and only InnoDB tables that is all (like ``mariadb-dump
   --single-transaction``). When several workers must see the same data, a control
   connection holds ``FLUSH TABLES WITH READ LOCK`` while they open their snapshots and
   releases it at once (the mydumper way). Tables of non-transactional engines (MyISAM,
   Aria, ...) have no snapshot: they are dumped while that lock is still held, before it is
   released, so their data is consistent with the rest. The definitions are read while the
   lock is held too.
2. Data. Tables with an integer first primary-key column are cut into key ranges whose
   size adapts to reach about ``chunk_bytes`` of SQL; the server formats each range into
   SQL text in one GROUP_CONCAT (see sqltext.py), so Python handles a few large byte
   strings, not millions of rows. Other tables are streamed row by row through an
   unbuffered cursor. Workers take ranges and whole tables from a shared scheduler.
   ``CHECKSUM TABLE ... EXTENDED`` runs inside the same snapshots.
3. Output. Blocks of statements go to a bounded queue; with gzip each block is compressed
   by a thread pool into a gzip member of its own (zlib releases the GIL, and concatenated
   members are one valid gzip stream); zlib-ng, where installed (the operator image has
   it), deflates about four times faster than zlib at the same level and to the same size.
   One writer thread appends them to the storage stream and another hashes them. Memory
   stays bounded by a budget of bytes in flight (``queue_bytes``), whatever the table and
   chunk sizes.
"""

from __future__ import annotations

import datetime
import hashlib
import queue
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.simpledb.connection import quote_identifier
from ansible.module_utils.simpledb.manifest import (
    FORMAT,
    FORMAT_VERSION,
    TOOL_VERSION,
    data_name,
    dump_manifest,
    manifest_name,
)
from ansible.module_utils.simpledb.migrations import read_schema_version
from ansible.module_utils.simpledb.sqltext import (
    Column,
    chunk_sql,
    escape_quoted_row,
    format_chunk,
    framing_for,
    insert_prefix,
    marked_values,
    rows_sql,
)
from ansible.module_utils.simpledb.storage import Storage

try:
    import pymysql
    import pymysql.cursors
    from pymysql.constants import CLIENT
except ImportError:  # pragma: no cover - modules call require_pymysql() first
    pymysql = None

try:
    from zlib_ng import zlib_ng as deflate
except ImportError:  # the same format, level and size, only slower
    deflate = zlib

ProgressCallback = Callable[[dict[str, Any]], None]

_INTEGER_TYPES = {"tinyint", "smallint", "mediumint", "int", "bigint"}
_TRANSACTIONAL_ENGINES = {"InnoDB"}
# The loader (and the mariadb client) split statements at these section markers' lines.
SECTION_PREFIX = "-- simpledb-section: "
SECTIONS = ("tables", "view-placeholders", "data", "routines", "views", "triggers", "events")


class BackupError(Exception):
    """The backup failed; the message says why and what to do."""


@dataclass
class TablePlan:
    """One table or sequence of the dump and what the workers learnt about it."""

    name: str
    kind: str  # "table" or "sequence"
    engine: str
    versioned: bool = False
    columns: list[Column] = field(default_factory=list)
    key: str | None = None  # integer first primary-key column: the table is dumped in ranges
    estimated_rows: int = 0
    estimated_row_bytes: int = 0
    create_sql: str = ""
    rows: int = 0
    checksum: int | None = None
    next_value: int | None = None

    @property
    def transactional(self) -> bool:
        return self.engine in _TRANSACTIONAL_ENGINES

    def from_clause(self) -> str:
        return quote_identifier(self.name) + (" FOR SYSTEM_TIME ALL" if self.versioned else "")


@dataclass
class DumpOptions:
    jobs: int = 2
    compression: str = "gzip"
    compression_level: int = 6
    compression_threads: int = 2
    chunk_bytes: int = 4 * 1024 * 1024
    max_statement_bytes: int = 4 * 1024 * 1024
    lock_wait_timeout: int = 60
    pipeline: int = 3
    # Bytes of blocks handed to the writer and not yet written (see _ArtifactWriter).
    queue_bytes: int = 32 * 1024 * 1024
    # Largest chunk one query may return (group_concat_max_len); larger ranges are split.
    max_chunk_bytes: int = 16 * 1024 * 1024


class _ArtifactWriter:
    """Appends blocks to the storage stream from one thread; a pool compresses them.

    Workers hand over a block's pieces; with gzip the pool compresses them as a member of
    its own, so that work overlaps the workers' next query.
    What bounds memory is a budget of bytes: ``put`` blocks while the blocks handed over
    and not yet written and hashed hold ``options.queue_bytes`` (a block larger than the
    budget goes alone), so memory does not grow with the chunk size or the number of
    blocks. A second thread hashes the blocks already written, in order, so writing and
    hashing (both release the GIL) overlap instead of taking turns in the one writer thread.
    """

    def __init__(self, stream: Any, options: DumpOptions) -> None:
        self._stream = stream
        self._level = options.compression_level if options.compression == "gzip" else None
        self._pool = ThreadPoolExecutor(options.compression_threads, thread_name_prefix="compress")
        self._budget = options.queue_bytes
        self._held = 0  # bytes of the blocks handed over and not yet hashed
        self._room = threading.Condition()
        self._queue: queue.Queue[tuple[int, Future] | None] = queue.Queue()
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.error: BaseException | None = None
        self._written: queue.Queue[tuple[int, list[Any]] | None] = queue.Queue()
        self._hasher = threading.Thread(target=self._hash, name="hasher", daemon=True)
        self._hasher.start()
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._thread.start()

    def put(self, size: int, pieces: list[Any]) -> None:
        """Queue a block of about ``size`` bytes as a list of pieces (bytes or memoryviews),
        written in order without joining them."""
        with self._room:
            while self._held and self._held + size > self._budget and self.error is None:
                self._room.wait()
            if self.error is not None:
                raise BackupError(f"Writing the backup failed: {self.error}")
            self._held += size
        self._queue.put((size, self._pool.submit(self._encode, pieces)))

    def put_bytes(self, block: bytes) -> None:
        self.put(len(block), [block])

    def _encode(self, pieces: list[Any]) -> list[Any]:
        if self._level is None:
            return pieces
        compressor = deflate.compressobj(self._level, deflate.DEFLATED, 31)
        return [compressor.compress(piece) for piece in pieces] + [compressor.flush()]

    def _release(self, size: int) -> None:
        with self._room:
            self._held -= size
            self._room.notify_all()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            size, future = item
            if self.error is not None:
                self._release(size)  # keep draining so producers never block on a dead writer
                continue
            try:
                pieces = future.result()
                for piece in pieces:
                    self._stream.write(piece)
                    self.size += len(piece)
                self._written.put((size, pieces))
            except Exception as exc:  # reported by put() and close()
                with self._room:
                    self.error = exc
                self._release(size)

    def _hash(self) -> None:
        while (item := self._written.get()) is not None:
            size, pieces = item
            for piece in pieces:
                self.sha256.update(piece)
            del pieces, item
            self._release(size)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._written.put(None)
        self._hasher.join()
        self._pool.shutdown()
        if self.error is not None:
            raise BackupError(f"Writing the backup failed: {self.error}")


class _Ranges:
    """Hands out key ranges of one table; their width adapts to the bytes they produced.

    The first range is small (statistics can be stale), later ones grow at most fourfold
    per range until a range yields about ``target_bytes``.
    """

    def __init__(self, low: int, high: int, target_bytes: int, keys_per_row: float, row_bytes: int) -> None:
        self.next_low = low
        self.high = high
        self.target = target_bytes
        first_rows = min(64, target_bytes // (2 * row_bytes)) if row_bytes else 16
        self.step = max(1, int(first_rows * keys_per_row))
        self.bytes_per_key = 0.0

    def take(self) -> tuple[int, int] | None:
        if self.next_low > self.high:
            return None
        low = self.next_low
        high = min(low + self.step - 1, self.high)
        self.next_low = high + 1
        return low, high

    def observe(self, low: int, high: int, produced_bytes: int) -> None:
        """Learn from a range's output. The width follows the densest keys seen so far, so a
        range that crossed a gap in the keys cannot make the next, dense one overshoot."""
        self.bytes_per_key = max(self.bytes_per_key, produced_bytes / (high - low + 1))
        wanted = max(1, int(self.target / self.bytes_per_key))
        self.step = min(wanted, self.step * 4)

    def skip_to(self, key: int) -> None:
        self.next_low = max(self.next_low, key)


class _Scheduler:
    """The shared to-do list of the workers: checksums, key ranges and whole-table streams."""

    def __init__(self, tables: list[TablePlan], progress: ProgressCallback) -> None:
        self.lock = threading.Lock()
        self.failed: BaseException | None = None
        self._progress = progress
        self._pending: list[list[Any]] = []  # [plan, checksum pending, ranges or "stream" or None, in flight]
        for plan in sorted(tables, key=lambda t: -(t.estimated_rows * max(t.estimated_row_bytes, 1))):
            self._pending.append([plan, plan.kind == "table", None, 0])
        self.tables_done = 0
        self.bytes_done = 0

    def set_source(self, plan: TablePlan, source: Any) -> None:
        with self.lock:
            for entry in self._pending:
                if entry[0] is plan:
                    entry[2] = source

    def next_tasks(self, limit: int) -> list[tuple[str, TablePlan, Any]]:
        """Up to ``limit`` checksum and range tasks, or one whole-table stream."""
        tasks: list[tuple[str, TablePlan, Any]] = []
        with self.lock:
            if self.failed is not None:
                return tasks
            for entry in self._pending:
                plan, checksum, source, _ = entry
                if checksum and len(tasks) < limit:
                    entry[1] = False
                    entry[3] += 1
                    tasks.append(("checksum", plan, None))
                if len(tasks) < limit and isinstance(source, _Ranges):
                    while len(tasks) < limit and (bounds := source.take()) is not None:
                        entry[3] += 1
                        tasks.append(("range", plan, (source, *bounds)))
                if source == "stream" and not tasks:
                    entry[2] = None
                    entry[3] += 1
                    return [("stream", plan, None)]
                if len(tasks) >= limit:
                    break
            return tasks

    def done(self, plan: TablePlan, produced_bytes: int) -> None:
        with self.lock:
            self.bytes_done += produced_bytes
            for entry in self._pending:
                if entry[0] is not plan:
                    continue
                entry[3] -= 1
                source = entry[2]
                finished = (
                    entry[3] == 0
                    and not entry[1]
                    and (source is None or (isinstance(source, _Ranges) and source.next_low > source.high))
                )
                if finished:
                    self._pending.remove(entry)
                    self.tables_done += 1
                    self._progress(
                        {
                            "event": "table_done",
                            "table": plan.name,
                            "rows": plan.rows,
                            "tables_done": self.tables_done,
                            "bytes": self.bytes_done,
                        }
                    )
                return


class Dumper:
    """One backup run: ``Dumper(connect, database, options).run(storage, name)``.

    ``connect`` opens a new connection to the server with the module's login (a callable
    so secrets stay where they are).
    """

    def __init__(
        self,
        connect: Callable[..., Any],
        database: str,
        options: DumpOptions,
        progress: ProgressCallback | None = None,
    ) -> None:
        self._connect = connect
        self.database = database
        self.options = options
        self._progress = progress or (lambda event: None)
        self._gc_max = options.max_chunk_bytes
        self.charset = self.collation = ""

    # -- the run ---------------------------------------------------------------------------
    def run(self, storage: Storage, name: str) -> dict[str, Any]:
        started = time.monotonic()
        started_at = datetime.datetime.now(datetime.UTC)
        control = self._connect()
        workers: list[Any] = []
        try:
            self._check_database(control)
            engine_version = self._scalar(control, "SELECT VERSION()")
            # A chunk is one result row, which the server sends only within max_allowed_packet.
            self._gc_max = min(
                self.options.max_chunk_bytes, int(self._scalar(control, "SELECT @@max_allowed_packet")) // 2
            )
            plans = self._table_plans(control)
            needs_lock = self.options.jobs > 1 or any(
                p.kind == "table" and not p.transactional for p in plans
            )
            if needs_lock:
                self._lock(control)
            lock_started = time.monotonic()
            workers = [self._open_worker() for _ in range(self.options.jobs)]
            for conn in workers:
                self._execute(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT")
            gtid_position = self._snapshot_gtid_position(workers[0])
            objects = self._definitions(control, plans)
            schema_version = read_schema_version(workers[0], self.database)
            data_file = data_name(name, self.options.compression)
            with storage.open_write(data_file) as stream:
                writer = _ArtifactWriter(stream, self.options)
                try:
                    writer.put_bytes(
                        self._header(engine_version, started_at, any(p.versioned for p in plans))
                    )
                    writer.put_bytes(self._schema_sections(plans, objects))
                    writer.put_bytes(f"{SECTION_PREFIX}data\n".encode())
                    for plan in plans:
                        if plan.kind == "sequence":
                            writer.put_bytes(self._sequence_data(control, plan))
                    self._dump_tables(
                        workers, [p for p in plans if p.kind == "table" and not p.transactional], writer
                    )
                    lock_seconds = time.monotonic() - lock_started
                    if needs_lock:
                        self._execute(control, "UNLOCK TABLES")
                    self._dump_tables(
                        workers, [p for p in plans if p.kind == "table" and p.transactional], writer
                    )
                    writer.put_bytes(self._object_sections(objects))
                    writer.put_bytes(_footer(any(p.versioned for p in plans)))
                finally:
                    writer.close()
            for conn in workers:
                self._execute(conn, "COMMIT")
            manifest = self._manifest(
                name, data_file, writer, plans, objects, engine_version, schema_version, started_at
            )
            # Where a replica cloned from this copy starts replicating (null without a binary log).
            manifest["gtid_position"] = gtid_position
            manifest["timings"] = {
                "total_seconds": round(time.monotonic() - started, 3),
                "lock_seconds": round(lock_seconds, 3) if needs_lock else 0.0,
            }
            manifest_file = manifest_name(name)
            with storage.open_write(manifest_file) as stream:
                stream.write(dump_manifest(manifest))
            return {
                "manifest": manifest,
                "location": storage.location(data_file),
                "manifest_location": storage.location(manifest_file),
            }
        except pymysql.err.MySQLError as exc:
            raise BackupError(_describe_server_error(exc, self.database)) from exc
        finally:
            for conn in [*workers, control]:
                try:
                    conn.close()
                except Exception:
                    pass

    # -- connections and snapshot ----------------------------------------------------------
    def _open_worker(self) -> Any:
        # Text comes back as bytes, never decoded; several chunk queries go in one round trip.
        conn = self._connect(
            database=self.database,
            max_allowed_packet=1 << 30,
            use_unicode=False,
            client_flag=CLIENT.MULTI_STATEMENTS,
        )
        for statement in (
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "SET SESSION time_zone = '+00:00'",
            f"SET SESSION group_concat_max_len = {self._gc_max}",
            "SET SESSION sql_mode = ''",
        ):
            self._execute(conn, statement)
        return conn

    @staticmethod
    def _snapshot_gtid_position(conn: Any) -> str | None:
        """The GTID position of the binary log that matches the connection's open consistent
        snapshot: MariaDB keeps binlog_snapshot_file/position consistent with it."""
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")
            status = {_text(name).lower(): _text(value) for name, value in cur.fetchall()}
            if not status.get("binlog_snapshot_file"):
                return None
            cur.execute(
                "SELECT BINLOG_GTID_POS(%s, %s)",
                (status["binlog_snapshot_file"], int(status["binlog_snapshot_position"])),
            )
            return _text(cur.fetchone()[0])

    def _lock(self, control: Any) -> None:
        self._execute(control, f"SET SESSION lock_wait_timeout = {int(self.options.lock_wait_timeout)}")
        try:
            self._execute(control, "FLUSH TABLES WITH READ LOCK")
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args else None
            if code in (1227, 1044, 1045):
                raise BackupError(
                    "A parallel backup (jobs > 1) or one of non-transactional tables needs a brief global "
                    "read lock, which needs the RELOAD privilege: grant it to the backup user, or use "
                    f"jobs: 1 when every table is InnoDB. Server said: {exc.args[-1]}"
                ) from exc
            if code == 1205:
                raise BackupError(
                    f"The global read lock was not granted within {self.options.lock_wait_timeout}s: "
                    "a long query or open LOCK TABLES blocks it; retry later or raise lock_wait_timeout"
                ) from exc
            raise

    def _check_database(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                "WHERE SCHEMA_NAME = %s",
                (self.database,),
            )
            row = cur.fetchone()
            if row is None:
                raise BackupError(
                    f"The database '{self.database}' does not exist on the server: check the database option"
                )
            self.charset, self.collation = row
        self._execute(conn, f"USE {quote_identifier(self.database)}")
        self._execute(conn, "SET SESSION time_zone = '+00:00'")

    # -- reading the definitions -----------------------------------------------------------
    def _table_plans(self, conn: Any) -> list[TablePlan]:
        plans = []
        with conn.cursor() as cur:
            cur.execute(
                "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_ROWS, AVG_ROW_LENGTH "
                "FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE <> 'VIEW' ORDER BY TABLE_NAME",
                (self.database,),
            )
            for table, table_type, engine, rows, row_bytes in cur.fetchall():
                plans.append(
                    TablePlan(
                        name=table,
                        kind="sequence" if table_type == "SEQUENCE" else "table",
                        engine=engine or "",
                        versioned=table_type == "SYSTEM VERSIONED",
                        estimated_rows=int(rows or 0),
                        estimated_row_bytes=int(row_bytes or 0),
                    )
                )
            columns: dict[str, list[Column]] = {}
            row_period: dict[str, set[str]] = {}
            cur.execute(
                "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, IS_GENERATED, "
                "GENERATION_EXPRESSION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                "ORDER BY TABLE_NAME, ORDINAL_POSITION",
                (self.database,),
            )
            for table, column, data_type, nullable, charset, generated, expression in cur.fetchall():
                if generated == "ALWAYS":
                    if expression in ("ROW START", "ROW END"):
                        if data_type != "timestamp":
                            raise BackupError(
                                f"Table '{table}' is versioned by transaction id ({column} is {data_type}); "
                                "its history cannot be restored by INSERT: only timestamp-based system "
                                "versioning is supported"
                            )
                        row_period.setdefault(table, set()).add(column)
                        columns.setdefault(table, []).append(Column(column, data_type, False))
                    continue  # values of generated columns are computed by the server again
                columns.setdefault(table, []).append(Column(column, data_type, nullable == "YES", charset))
            cur.execute(
                "SELECT s.TABLE_NAME, s.COLUMN_NAME, c.DATA_TYPE FROM information_schema.STATISTICS s "
                "JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = s.TABLE_SCHEMA "
                "AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME "
                "WHERE s.TABLE_SCHEMA = %s AND s.INDEX_NAME = 'PRIMARY' AND s.SEQ_IN_INDEX = 1",
                (self.database,),
            )
            keys = {
                table: column for table, column, data_type in cur.fetchall() if data_type in _INTEGER_TYPES
            }
        for plan in plans:
            plan.columns = columns.get(plan.name, [])
            if plan.versioned and plan.name not in row_period:
                # Implicit system-versioning columns are not in information_schema.
                plan.columns += [
                    Column("row_start", "timestamp", False),
                    Column("row_end", "timestamp", False),
                ]
            plan.key = keys.get(plan.name)
        return plans

    def _definitions(self, conn: Any, plans: list[TablePlan]) -> dict[str, list[dict[str, Any]]]:
        """SHOW CREATE of every object, read while the lock (if any) keeps DDL out."""
        objects: dict[str, list[dict[str, Any]]] = {
            "views": [],
            "functions": [],
            "procedures": [],
            "triggers": [],
            "events": [],
        }
        for plan in plans:
            what = "SEQUENCE" if plan.kind == "sequence" else "TABLE"
            row = self._show_create(conn, f"SHOW CREATE {what} {quote_identifier(plan.name)}")
            plan.create_sql = row["Create Table"]
        with conn.cursor() as cur:
            cur.execute(
                "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME",
                (self.database,),
            )
            views = [r[0] for r in cur.fetchall()]
            cur.execute(
                "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                "AND TABLE_NAME IN (SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s) "
                "ORDER BY TABLE_NAME, ORDINAL_POSITION",
                (self.database, self.database),
            )
            view_columns: dict[str, list[str]] = {}
            for view, column in cur.fetchall():
                view_columns.setdefault(view, []).append(column)
            cur.execute(
                "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES "
                "WHERE ROUTINE_SCHEMA = %s "
                "ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
                (self.database,),
            )
            routines = cur.fetchall()
            cur.execute(
                "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
                "ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER",
                (self.database,),
            )
            triggers = [r[0] for r in cur.fetchall()]
            cur.execute(
                "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s "
                "ORDER BY EVENT_NAME",
                (self.database,),
            )
            events = [r[0] for r in cur.fetchall()]
        for view in views:
            row = self._show_create(conn, f"SHOW CREATE VIEW {quote_identifier(view)}")
            objects["views"].append(
                {
                    "name": view,
                    "create": row["Create View"],
                    "columns": view_columns.get(view, []),
                    "collation_connection": row["collation_connection"],
                }
            )
        for routine_type, routine in routines:
            if routine_type not in ("FUNCTION", "PROCEDURE"):
                raise BackupError(
                    f"The database has a {routine_type} '{routine}' (Oracle-mode packages are not supported)"
                )
            row = self._show_create(conn, f"SHOW CREATE {routine_type} {quote_identifier(routine)}")
            kind = "functions" if routine_type == "FUNCTION" else "procedures"
            create = row["Create Function" if routine_type == "FUNCTION" else "Create Procedure"]
            if create is None:
                raise BackupError(
                    f"The backup user cannot read the body of {routine_type.lower()} '{routine}': grant it "
                    "SELECT on mysql.proc (or SHOW CREATE ROUTINE)"
                )
            objects[kind].append(
                {
                    "name": routine,
                    "create": create,
                    "sql_mode": row["sql_mode"],
                    "collation_connection": row["collation_connection"],
                }
            )
        for trigger in triggers:
            row = self._show_create(conn, f"SHOW CREATE TRIGGER {quote_identifier(trigger)}")
            objects["triggers"].append(
                {
                    "name": trigger,
                    "create": row["SQL Original Statement"],
                    "sql_mode": row["sql_mode"],
                    "collation_connection": row["collation_connection"],
                }
            )
        for event in events:
            row = self._show_create(conn, f"SHOW CREATE EVENT {quote_identifier(event)}")
            objects["events"].append(
                {
                    "name": event,
                    "create": row["Create Event"],
                    "sql_mode": row["sql_mode"],
                    "time_zone": row["time_zone"],
                    "collation_connection": row["collation_connection"],
                }
            )
        return objects

    @staticmethod
    def _show_create(conn: Any, sql: str) -> dict[str, Any]:
        with conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
            return {d[0]: v for d, v in zip(cur.description, row, strict=True)}

    # -- data --------------------------------------------------------------------------------
    def _dump_tables(self, workers: list[Any], plans: list[TablePlan], writer: _ArtifactWriter) -> None:
        if not plans:
            return
        scheduler = _Scheduler(plans, self._progress)
        for plan in plans:
            scheduler.set_source(plan, self._source(workers[0], plan))
        threads = [
            threading.Thread(target=self._work, args=(conn, scheduler, writer), name=f"dump-{i}", daemon=True)
            for i, conn in enumerate(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if scheduler.failed is not None:
            raise scheduler.failed

    def _source(self, conn: Any, plan: TablePlan) -> Any:
        """Key ranges for a table with an integer key, else a whole-table stream."""
        if plan.key is None:
            return "stream"
        key = quote_identifier(plan.key)
        with conn.cursor() as cur:
            cur.execute(f"SELECT MIN({key}), MAX({key}) FROM {plan.from_clause()}")
            low, high = cur.fetchone()
        if low is None:
            return None
        keys = int(high) - int(low) + 1
        keys_per_row = keys / max(1, min(plan.estimated_rows, keys)) if plan.estimated_rows else 1.0
        return _Ranges(int(low), int(high), self.options.chunk_bytes, keys_per_row, plan.estimated_row_bytes)

    def _work(self, conn: Any, scheduler: _Scheduler, writer: _ArtifactWriter) -> None:
        """Run tasks until none are left. Checksums and key ranges go several to a round trip
        (one multi-statement query), so the server computes the next chunk while this thread
        receives the last one."""
        try:
            while batch := scheduler.next_tasks(self.options.pipeline):
                if batch[0][0] == "stream":
                    plan = batch[0][1]
                    scheduler.done(plan, self._dump_rows(conn, plan, writer, scheduler, None))
                    continue
                follow_ups = []
                with conn.cursor() as cur:
                    cur.execute(";\n".join(self._task_sql(task) for task in batch))
                    for index, task in enumerate(batch):
                        if index:
                            cur.nextset()
                        row = cur.fetchone()
                        kind, plan, bounds = task
                        if kind == "checksum":
                            plan.checksum = row[1]
                            scheduler.done(plan, 0)
                            continue
                        produced = self._range_result(plan, writer, scheduler, *bounds, row)
                        if produced is None:
                            follow_ups.append((task, row))
                        else:
                            scheduler.done(plan, produced)
                for (_, plan, bounds), row in follow_ups:
                    scheduler.done(plan, self._follow_up(conn, plan, writer, scheduler, *bounds, row))
        except BaseException as exc:
            with scheduler.lock:
                if scheduler.failed is None:
                    scheduler.failed = exc

    @staticmethod
    def _task_sql(task: tuple[str, TablePlan, Any]) -> str:
        kind, plan, bounds = task
        if kind == "checksum":
            return f"CHECKSUM TABLE {quote_identifier(plan.name)} EXTENDED"
        _, low, high = bounds
        return chunk_sql(
            plan.columns, plan.from_clause(), f"{quote_identifier(plan.key)} BETWEEN {low} AND {high}"
        )

    def _range_result(
        self,
        plan: TablePlan,
        writer: _ArtifactWriter,
        scheduler: _Scheduler,
        ranges: _Ranges,
        low: int,
        high: int,
        row: tuple,
    ) -> int | None:
        """Hand a chunk to the writer; None when it needs another query (_follow_up)."""
        rows, nullable_values, raw = row
        if rows == 0 or len(raw) >= self._gc_max:
            return None
        pieces = format_chunk(
            insert_prefix(plan.name, plan.columns),
            raw,
            2 * marked_values(plan.columns, rows, int(nullable_values)),
            self.options.max_statement_bytes,
            framing_for(plan.columns),
        )
        if pieces is None:
            return None
        with scheduler.lock:
            ranges.observe(low, high, len(raw))
            plan.rows += rows
        writer.put(len(raw), pieces)
        return len(raw)

    def _follow_up(
        self,
        conn: Any,
        plan: TablePlan,
        writer: _ArtifactWriter,
        scheduler: _Scheduler,
        ranges: _Ranges,
        low: int,
        high: int,
        row: tuple,
    ) -> int:
        """An empty range (skip the key gap after it), a chunk cut at group_concat_max_len
        (halve the range, or stream a single key), or data holding the marker bytes (stream)."""
        rows, _, raw = row
        key = quote_identifier(plan.key)
        where = f"{key} BETWEEN {low} AND {high}"
        if rows == 0:
            with conn.cursor() as cur:
                cur.execute(f"SELECT MIN({key}) FROM {plan.from_clause()} WHERE {key} > {high}")
                following = cur.fetchone()[0]
            with scheduler.lock:
                ranges.skip_to(int(following) if following is not None else ranges.high + 1)
            return 0
        if len(raw) >= self._gc_max:
            with scheduler.lock:
                ranges.observe(low, high, len(raw))
            if low == high:
                return self._dump_rows(conn, plan, writer, scheduler, where)
            produced = 0
            for part_low, part_high in ((low, (low + high) // 2), ((low + high) // 2 + 1, high)):
                with conn.cursor() as cur:
                    cur.execute(self._task_sql(("range", plan, (ranges, part_low, part_high))))
                    part = cur.fetchone()
                result = self._range_result(plan, writer, scheduler, ranges, part_low, part_high, part)
                if result is None:
                    result = self._follow_up(conn, plan, writer, scheduler, ranges, part_low, part_high, part)
                produced += result
            return produced
        return self._dump_rows(conn, plan, writer, scheduler, where)

    def _dump_rows(
        self, conn: Any, plan: TablePlan, writer: _ArtifactWriter, scheduler: _Scheduler, where: str | None
    ) -> int:
        """Rows one at a time through an unbuffered cursor, escaped by the server, in blocks."""
        prefix = insert_prefix(plan.name, plan.columns)
        limit = self.options.max_statement_bytes
        produced = rows = 0
        block: list[bytes] = []
        block_bytes = 0
        statement: list[bytes] = []
        statement_bytes = 0

        def end_statement() -> None:
            nonlocal statement, statement_bytes, block_bytes
            block.extend((prefix, b",".join(statement), b";\n"))
            block_bytes += statement_bytes
            statement, statement_bytes = [], 0

        with conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(rows_sql(plan.columns, plan.from_clause(), where))
            for (row,) in cur:
                row = escape_quoted_row(row)
                if statement and statement_bytes + len(row) > limit:
                    end_statement()
                    if block_bytes >= self.options.chunk_bytes:
                        writer.put(block_bytes, block)
                        produced += block_bytes
                        block, block_bytes = [], 0
                statement.append(row)
                statement_bytes += len(row) + 1
                rows += 1
        if statement:
            end_statement()
        if block:
            writer.put(block_bytes, block)
            produced += block_bytes
        with scheduler.lock:
            plan.rows += rows
        return produced

    def _sequence_data(self, conn: Any, plan: TablePlan) -> bytes:
        with conn.cursor() as cur:
            cur.execute(f"SELECT next_not_cached_value FROM {quote_identifier(plan.name)}")
            plan.next_value = int(cur.fetchone()[0])
        return f"SELECT SETVAL({quote_identifier(plan.name)}, {plan.next_value}, 0);\n".encode()

    # -- text of the file --------------------------------------------------------------------
    def _header(self, engine_version: str, started_at: datetime.datetime, versioned: bool) -> bytes:
        lines = [
            f"-- SimpleDB logical backup of database {quote_identifier(self.database)}",
            f"-- Server {engine_version}, snapshot taken {started_at.strftime('%Y-%m-%dT%H:%M:%SZ')} "
            f"by simpledb_backup {TOOL_VERSION}",
            "-- Load it with: mariadb DATABASE < FILE.sql  (or: gunzip -c FILE.sql.gz | mariadb DATABASE)",
            "",
            "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;",
            "/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;",
            "/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;",
            "/*!40101 SET NAMES utf8mb4 */;",
            "/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;",
            "/*!40103 SET TIME_ZONE='+00:00' */;",
            "/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;",
            "/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;",
            "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;",
            "/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;",
        ]
        if versioned:
            # History rows keep their row_start/row_end (MariaDB 10.11.0 and later).
            lines.append(
                "/*M!101100 SET @OLD_INSERT_HISTORY=@@SYSTEM_VERSIONING_INSERT_HISTORY, "
                "SYSTEM_VERSIONING_INSERT_HISTORY=1 */;"
            )
        return ("\n".join(lines) + "\n\n").encode()

    def _schema_sections(self, plans: list[TablePlan], objects: dict[str, list[dict[str, Any]]]) -> bytes:
        out = [f"{SECTION_PREFIX}tables"]
        for plan in plans:
            name = quote_identifier(plan.name)
            if plan.kind == "sequence":
                out.append(f"DROP SEQUENCE IF EXISTS {name};")
            else:
                out.append(f"DROP TABLE IF EXISTS {name};")
            out.append(plan.create_sql + ";")
        out.append(f"{SECTION_PREFIX}view-placeholders")
        # Placeholders with the views' column names let views that use other views be
        # created in any order afterwards (the mariadb-dump way).
        for view in objects["views"]:
            name = quote_identifier(view["name"])
            columns = ",".join(f"1 AS {quote_identifier(c)}" for c in view["columns"]) or "1 AS `placeholder`"
            out.append(f"DROP VIEW IF EXISTS {name};")
            out.append(f"CREATE VIEW {name} AS SELECT {columns};")
        return ("\n".join(out) + "\n").encode()

    def _object_sections(self, objects: dict[str, list[dict[str, Any]]]) -> bytes:
        out = [f"{SECTION_PREFIX}routines"]
        for kind, word in (("functions", "FUNCTION"), ("procedures", "PROCEDURE")):
            for routine in objects[kind]:
                out.append(f"DROP {word} IF EXISTS {quote_identifier(routine['name'])};")
                out.extend(_with_session(routine, routine["create"]))
        out.append(f"{SECTION_PREFIX}views")
        for view in objects["views"]:
            out.append(f"DROP VIEW IF EXISTS {quote_identifier(view['name'])};")
            out.extend(_with_session(view, view["create"]))
        out.append(f"{SECTION_PREFIX}triggers")
        for trigger in objects["triggers"]:
            out.append(f"DROP TRIGGER IF EXISTS {quote_identifier(trigger['name'])};")
            out.extend(_with_session(trigger, trigger["create"]))
        out.append(f"{SECTION_PREFIX}events")
        for event in objects["events"]:
            out.append(f"DROP EVENT IF EXISTS {quote_identifier(event['name'])};")
            out.extend(_with_session(event, event["create"]))
        return ("\n".join(out) + "\n").encode()

    # -- manifest ----------------------------------------------------------------------------
    def _manifest(
        self,
        name: str,
        data_file: str,
        writer: _ArtifactWriter,
        plans: list[TablePlan],
        objects: dict[str, list[dict[str, Any]]],
        engine_version: str,
        schema_version: int | None,
        started_at: datetime.datetime,
    ) -> dict[str, Any]:
        tables = []
        for plan in plans:
            entry: dict[str, Any] = {
                "name": plan.name,
                "kind": plan.kind,
                "engine": plan.engine,
                "rows": plan.rows,
            }
            if plan.kind == "sequence":
                entry["next_value"] = plan.next_value
            else:
                entry["checksum"] = plan.checksum
                entry["versioned"] = plan.versioned
            tables.append(entry)
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tool": "simpledb_backup",
            "tool_version": TOOL_VERSION,
            "name": name,
            "database": self.database,
            "database_charset": self.charset,
            "database_collation": self.collation,
            "engine_version": engine_version,
            "schema_version": schema_version,
            "created_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": {
                "name": data_file,
                "compression": self.options.compression,
                "size": writer.size,
                "sha256": writer.sha256.hexdigest(),
            },
            "tables": tables,
            "objects": {
                "views": [v["name"] for v in objects["views"]],
                "functions": [r["name"] for r in objects["functions"]],
                "procedures": [r["name"] for r in objects["procedures"]],
                "triggers": [t["name"] for t in objects["triggers"]],
                "events": [e["name"] for e in objects["events"]],
                "sequences": [p.name for p in plans if p.kind == "sequence"],
            },
            "jobs": self.options.jobs,
        }

    # -- small helpers -----------------------------------------------------------------------
    @staticmethod
    def _execute(conn: Any, sql: str) -> None:
        with conn.cursor() as cur:
            cur.execute(sql)

    @staticmethod
    def _scalar(conn: Any, sql: str) -> Any:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]


def _text(value: Any) -> str:
    """A value from a worker connection, which returns text as bytes."""
    return value.decode() if isinstance(value, bytes) else str(value) if value is not None else ""


def _footer(versioned: bool) -> bytes:
    """The session settings the header changed, put back (as mariadb-dump does)."""
    history = (
        b"/*M!101100 SET SYSTEM_VERSIONING_INSERT_HISTORY=@OLD_INSERT_HISTORY */;\n" if versioned else b""
    )
    return b"\n" + history + _FOOTER


_FOOTER = b"""/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;
-- simpledb-backup-complete
"""


def _with_session(obj: dict[str, Any], create: str) -> list[str]:
    """A CREATE statement wrapped in the session settings it was defined under.

    The file is utf8mb4, so character_set_client stays utf8mb4; collation_connection (and
    with it the charset of string literals in the body), sql_mode and an event's time zone
    are the object's own. The body may contain ';', hence the DELIMITER lines.
    """
    out = [
        "SET @saved_col_connection = @@collation_connection, @saved_sql_mode = @@sql_mode, "
        "@saved_time_zone = @@time_zone;",
        f"SET collation_connection = '{obj['collation_connection']}';",
    ]
    if "sql_mode" in obj:
        out.append(f"SET sql_mode = '{obj['sql_mode']}';")
    if "time_zone" in obj:
        out.append(f"SET time_zone = '{obj['time_zone']}';")
    out += [
        "DELIMITER ;;",
        create + " ;;",
        "DELIMITER ;",
        "SET collation_connection = @saved_col_connection, sql_mode = @saved_sql_mode, "
        "time_zone = @saved_time_zone, character_set_client = utf8mb4;",
    ]
    return out


def _describe_server_error(exc: Exception, database: str) -> str:
    code = exc.args[0] if exc.args else None
    detail = exc.args[1] if len(exc.args) > 1 else str(exc)
    if code in (1142, 1143, 1044, 1227):
        return (
            f"The backup user lacks a privilege on '{database}' ({detail}): it needs SELECT, SHOW VIEW, "
            "TRIGGER, EVENT and LOCK TABLES on the database, and RELOAD for parallel backups"
        )
    if code in (2006, 2013):
        return (
            f"The connection to the server was lost during the backup ({detail}): check the server and retry"
        )
    return f"The backup of '{database}' failed: MariaDB error {code}: {detail}"
