"""Helpers of the backup and restore end-to-end tests: SimpleDBBackup/SimpleDBRestore objects,
data fingerprints to compare, and killing the operator the way a deleted pod dies."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from typing import Any

Connect = Callable[[], Any]
MIB = 1024 * 1024


def backup_object(name: str, simpledb: str, destination: dict, **spec: Any) -> dict:
    return {
        "apiVersion": "example.com/v1alpha1",
        "kind": "SimpleDBBackup",
        "metadata": {"name": name},
        "spec": {"simpleDB": simpledb, "destination": destination, **spec},
    }


def restore_object(name: str, simpledb: str, **spec: Any) -> dict:
    return {
        "apiVersion": "example.com/v1alpha1",
        "kind": "SimpleDBRestore",
        "metadata": {"name": name},
        "spec": {"simpleDB": simpledb, **spec},
    }


def s3_destination(minio, bucket: str, secret: str, **extra: Any) -> dict:
    """The CRDs' s3 settings for the MinIO fixture, credentials from Secret `secret`."""
    return {
        "bucket": bucket,
        "endpoint": minio.endpoint,
        "forcePathStyle": True,
        "credentialsSecret": {"name": secret},
        **extra,
    }


def s3_secret(name: str, access_key: str, secret_key: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "stringData": {"access-key-id": access_key, "secret-access-key": secret_key},
    }


def fingerprint(connect: Connect, database: str) -> dict[str, tuple[int, int]]:
    """Row count and CHECKSUM TABLE ... EXTENDED of every base table."""
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                "AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
                (database,),
            )
            result = {}
            for (table,) in cur.fetchall():
                cur.execute(f"SELECT COUNT(*) FROM `{database}`.`{table}`")
                rows = cur.fetchone()[0]
                cur.execute(f"CHECKSUM TABLE `{database}`.`{table}` EXTENDED")
                result[table] = (rows, cur.fetchone()[1])
            return result
    finally:
        conn.close()


def definitions(connect: Connect, database: str) -> dict[str, str]:
    """SHOW CREATE of every table and view, AUTO_INCREMENT counters left out (normalised)."""
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                "ORDER BY 1",
                (database,),
            )
            result = {}
            for table, kind in cur.fetchall():
                cur.execute(f"SHOW CREATE {'VIEW' if kind == 'VIEW' else 'TABLE'} `{database}`.`{table}`")
                result[table] = re.sub(r" AUTO_INCREMENT=\d+", "", cur.fetchone()[1])
            return result
    finally:
        conn.close()


def make_database(connect: Callable[..., Any], database: str, blob_mib: int = 0, create: bool = True) -> None:
    """An application database: tables with a foreign key, a view, unicode, NULLs, DECIMALs; with
    blob_mib, that many MiB of random (incompressible) blobs too. connect(database) connects;
    create=False fills a database that exists (a SimpleDB's)."""
    if create:
        execute(
            lambda: connect(None),
            f"DROP DATABASE IF EXISTS `{database}`",
            f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        )
    execute(
        lambda: connect(database),
        "CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(200) NOT NULL, "
        "note TEXT NULL, balance DECIMAL(12,2))",
        "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, "
        "FOREIGN KEY (customer_id) REFERENCES customers (id))",
        "CREATE VIEW big_spenders AS SELECT id, email FROM customers WHERE balance > 100",
    )
    conn = connect(database)
    try:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO customers (email, note, balance) VALUES (%s, %s, %s)",
                [(f"c{i}@example.com", None if i % 3 else "ü 😀 'quoted'", i * 1.25) for i in range(1, 501)],
            )
            cur.executemany("INSERT INTO orders VALUES (%s, %s)", [(i, 1 + i % 500) for i in range(1, 1001)])
            if blob_mib:
                cur.execute("CREATE TABLE blobs (id INT PRIMARY KEY, payload LONGBLOB)")
                for i in range(blob_mib // 2):
                    cur.execute("INSERT INTO blobs VALUES (%s, %s)", (i, os.urandom(2 * MIB)))
    finally:
        conn.close()


def change_data(connect: Connect) -> None:
    """Changes after a backup: deleted, updated and inserted rows, a new table."""
    execute(
        connect,
        "DELETE FROM orders WHERE id > 900",
        "UPDATE customers SET balance = 0 WHERE id < 50",
        "INSERT INTO customers (email) VALUES ('after-the-backup@example.com')",
        "CREATE TABLE added_later (id INT PRIMARY KEY)",
    )


def assert_writable(connect: Callable[..., Any], database: str) -> None:
    """The server is not read-only and the application database takes writes."""
    assert scalar(lambda: connect(None), "SELECT @@GLOBAL.read_only") == 0
    execute(
        lambda: connect(database),
        "INSERT INTO customers (email) VALUES ('writable@example.com')",
        "DELETE FROM customers WHERE email = 'writable@example.com'",
    )


def scalar(connect: Connect, sql: str) -> Any:
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]
    finally:
        conn.close()


def execute(connect: Connect, *statements: str) -> None:
    conn = connect()
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def databases(connect: Connect) -> set[str]:
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES")
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def descendants(pid: int) -> list[int]:
    """Every process below pid (children, grandchildren ...), read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # The command name (field 2) is in parentheses and may hold spaces.
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in parents.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def kill_operator(running) -> None:
    """SIGKILL the operator and everything it started (ansible-runner, the modules), as when its
    pod is deleted: nothing gets to clean up."""
    # Freeze the tree first, until no new process appears (a run starting meanwhile would
    # otherwise escape as an orphan and carry on), then kill what was frozen.
    root = running.process.pid
    victims: list[int] = []
    while new := [pid for pid in [root, *descendants(root)] if pid not in victims]:
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        victims += new
    for pid in victims:
        _signal(pid, signal.SIGKILL)
    running.process.wait(10)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def events(kubectl, namespace: str, kind: str, name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events about one object, oldest first."""
    items = kubectl.get(
        "-n", namespace, "events", f"--field-selector=involvedObject.kind={kind},involvedObject.name={name}"
    )["items"]
    items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return [(e["type"], e["reason"], e["message"]) for e in items]
