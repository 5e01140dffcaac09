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
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY 1",
                (database,),
            )
            result = {}
            for table, kind in cur.fetchall():
                cur.execute(f"SHOW CREATE {'VIEW' if kind == 'VIEW' else 'TABLE'} `{database}`.`{table}`")
                result[table] = re.sub(r" AUTO_INCREMENT=\d+", "", cur.fetchone()[1])
            return result
    finally:
        conn.close()


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
    victims = [running.process.pid, *descendants(running.process.pid)]
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    running.process.wait(10)


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
