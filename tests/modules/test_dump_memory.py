"""Backup and restore stream: Python's memory stays bounded however large the tables are.

A 24 MB table dumped in key ranges and a 12 MB table without a key (streamed row by row)
go through the dump and back through the restore with 256 KB chunks and a 1 MB budget for
the blocks the writer holds; tracemalloc's peak must stay a small fraction of the data, so
nothing accumulates rows or the output.
"""

from __future__ import annotations

import gzip
import tracemalloc

import pytest
from ansible.module_utils.simpledb.connection import connect
from ansible.module_utils.simpledb.dump import Dumper, DumpOptions
from ansible.module_utils.simpledb.load import RestoreOptions, Restorer
from ansible.module_utils.simpledb.storage import PathStorage

CHUNK = 256 * 1024
PEAK_LIMIT = 6 * 1024 * 1024


@pytest.fixture(scope="module")
def big_database(mariadb):
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS bigmem")
        cur.execute("CREATE DATABASE bigmem")
        cur.execute("CREATE TABLE bigmem.keyed (id INT PRIMARY KEY, body TEXT NOT NULL, n DOUBLE)")
        cur.execute(
            "INSERT INTO bigmem.keyed SELECT seq, REPEAT(MD5(seq), 24), seq / 7 FROM bigmem.seq_1_to_32000"
        )
        cur.execute("CREATE TABLE bigmem.unkeyed (body TEXT, b BLOB)")
        cur.execute(
            "INSERT INTO bigmem.unkeyed SELECT REPEAT(SHA1(seq), 10), UNHEX(REPEAT(MD5(seq), 4)) "
            "FROM bigmem.seq_1_to_30000"
        )
    yield mariadb
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE bigmem")
        cur.execute("DROP DATABASE IF EXISTS bigmem_copy")
    conn.close()


def _connect(server):
    def opener(**kwargs):
        return connect(
            host=server.host, port=server.port, password=server.password, read_timeout=None, **kwargs
        )

    return opener


def test_dump_and_restore_memory_is_bounded(big_database, tmp_path):
    storage = PathStorage(str(tmp_path))
    options = DumpOptions(
        jobs=2, compression="gzip", chunk_bytes=CHUNK, max_statement_bytes=CHUNK, queue_bytes=4 * CHUNK
    )
    tracemalloc.start()
    try:
        result = Dumper(_connect(big_database), "bigmem", options).run(storage, "bigmem")
        _, dump_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        restored = Restorer(
            _connect(big_database), storage, "bigmem", "bigmem_copy", RestoreOptions(jobs=2, read_only=False)
        ).run()
        _, restore_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rows = {t["name"]: t["rows"] for t in result["manifest"]["tables"]}
    assert rows == {"keyed": 32000, "unkeyed": 30000}
    assert restored["verified"] is True and restored["rows"] == 62000
    with gzip.open(result["location"], "rb") as data:
        sql_bytes = sum(len(block) for block in iter(lambda: data.read(1 << 20), b""))
    assert sql_bytes > 30 * 1024 * 1024
    assert dump_peak < PEAK_LIMIT, f"dump peak {dump_peak} bytes for {sql_bytes} bytes of SQL"
    assert restore_peak < PEAK_LIMIT, f"restore peak {restore_peak} bytes for {sql_bytes} bytes of SQL"
