"""The backup benchmark through the S3 backend: simpledb_backup streaming to MinIO and
simpledb_restore reading from it, against mariadb-dump writing a local file.

On one fresh server and the backup section's generated data set (``--s3-size-gb``) it times,
one after the other: ``mariadb-dump --single-transaction`` to a local file (uncompressed, and
piped to ``gzip -6``); simpledb_backup to S3 with one and with ``--jobs`` connections, and to a
local directory for the same settings (what S3 costs over a file); simpledb_restore from S3
against the ``mariadb`` client loading mariadb-dump's file. MinIO runs on loopback on the same
machine, so it competes for the same CPUs: a remote object store moves the network cost
elsewhere. Peak RSS of every process comes from wait4().
"""

from __future__ import annotations

import argparse
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.backup import DATABASE, _client_args, _generate, _module, _sql
from bench.common import Report, machine, measure, table

NAME = "s3"
ROOT = Path(__file__).resolve().parent.parent


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--s3-size-gb", type=float, default=1.0, help="SQL size of the generated data (default 1)"
    )
    group.add_argument("--s3-part-mib", type=int, default=8, help="multipart part size in MiB (default 8)")


def run(args: argparse.Namespace) -> Report:
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.mariadb import MariaDBServer, free_port
    from tests.fixtures.minio import MinioServer

    workdir = Path(tempfile.mkdtemp(prefix="simpledb-bench-s3-"))
    server = MariaDBServer(basedir=str(workdir / "server"), port=free_port())
    minio = MinioServer(
        endpoint="",
        access_key="bench" + secrets.token_hex(4),
        secret_key=secrets.token_urlsafe(24),
        datadir=workdir / "minio" / "data",
        log_path=workdir / "minio.log",
    )
    minio.datadir.mkdir(parents=True)
    load = machine()
    server.start(["--innodb-buffer-pool-size=1G", "--innodb-log-file-size=512M", "--max-connections=100"])
    minio.start()
    try:
        generated = _generate(server, args.s3_size_gb)
        bucket = minio.create_bucket("bench")
        s3 = {**minio.s3_option(bucket, "bench"), "part_size": args.s3_part_mib}
        rows = _measure(server, s3, workdir, getattr(args, "jobs", 4))
        version = _sql(server, "SELECT VERSION()", None)[0][0]
    finally:
        minio.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return _report(args, load, version, generated, rows)


def _measure(server, s3: dict, workdir: Path, jobs: int) -> list[list[str]]:
    dump = shlex.join(
        [
            "mariadb-dump",
            *_client_args(server)[1:],
            "--single-transaction",
            "--routines",
            "--events",
            DATABASE,
        ]
    )
    rows = []
    for compression in ("none", "gzip"):
        target = workdir / ("mariadb-dump.sql" if compression == "none" else "mariadb-dump.sql.gz")
        pipeline = (
            f"set -o pipefail; {dump}" + (" | gzip -6" if compression == "gzip" else "") + f" > {target}"
        )
        baseline = measure(["bash", "-c", pipeline], server_pid=server.process.pid)
        what = f"backup, {'uncompressed' if compression == 'none' else 'gzip -6'}"
        rows.append(_row(what, "mariadb-dump > local file", baseline, baseline, target.stat().st_size))
        for connections in (1, jobs):
            for destination in ("s3", "path"):
                name = f"ours-{compression}-{connections}-{destination}"
                arguments = {
                    **server.login(),
                    "database": DATABASE,
                    "name": name,
                    "compression": compression,
                    "jobs": connections,
                    **(
                        {"s3": {**s3, "prefix": f"bench/{name}"}}
                        if destination == "s3"
                        else {"path": str(workdir)}
                    ),
                }
                result, outcome = _module(server, "simpledb_backup", arguments, workdir)
                tool = f"simpledb_backup jobs={connections} > {'S3' if destination == 's3' else 'local file'}"
                rows.append(_row(what, tool, result, baseline, outcome["size"]))
                print(f"{what}: {tool}: {result.seconds:.1f}s", file=sys.stderr)
                if destination == "s3" and compression == "gzip" and connections == jobs:
                    restore_from = outcome["manifest"]
    _sql(server, "CREATE DATABASE restore_client", None)
    baseline = measure(
        [*_client_args(server), "restore_client"],
        stdin=str(workdir / "mariadb-dump.sql"),
        server_pid=server.process.pid,
    )
    rows.append(_row("restore", "mariadb < local mariadb-dump.sql", baseline, baseline))
    arguments = {**server.login(), "location": restore_from, "database": "restore_s3", "jobs": jobs, "s3": s3}
    result, outcome = _module(server, "simpledb_restore", arguments, workdir)
    verified = "" if outcome["verified"] else " (NOT VERIFIED)"
    rows.append(_row("restore", f"simpledb_restore jobs={jobs} < S3 (gzip){verified}", result, baseline))
    return rows


def _row(what: str, tool: str, result, baseline, size: int | None = None) -> list[str]:
    return [
        what,
        tool,
        f"{result.seconds:.1f}",
        f"{size / 1e6:.0f}" if size else "",
        f"{baseline.seconds / result.seconds:.2f}x",
        f"{result.max_rss_mb:.0f}",
    ]


def _report(args, load: str, version: str, generated: dict, rows: list[list[str]]) -> Report:
    headers = ["what", "tool", "seconds", "file MB", "speed vs mariadb-dump/mariadb", "peak RSS MB"]
    text_table, md_table = table(headers, rows)
    gen_rows = ", ".join(f"`{name}` {count:,} rows" for name, count in generated.items())
    summary = (
        f"Data: {args.s3_size_gb:g} GB of SQL target ({gen_rows}). Server: MariaDB {version}, InnoDB "
        f"buffer pool 1 GB, over TCP on loopback. S3: MinIO on loopback, same machine, parts of "
        f"{args.s3_part_mib} MiB. Machine: {load}."
    )
    markdown = f"""## Backup and restore through S3

`python -m bench s3 --s3-size-gb {args.s3_size_gb:g} --s3-part-mib {args.s3_part_mib} --jobs {args.jobs}`,
measured {time.strftime("%Y-%m-%d")}. "speed vs mariadb-dump/mariadb" is the stock tool's time (writing a
local file, or the `mariadb` client loading one) divided by this tool's, same data and compression,
same run; above 1 is faster. The S3 rows stream the artifact to MinIO as a multipart upload (no local
copy), and the restore reads it back from MinIO, checking its sha256 before loading and every table's
row count and checksum after. MinIO shares the CPUs with the server and the tools.

{md_table}

{summary}
"""
    return Report(text=f"{text_table}\n\n{summary}", markdown=markdown)
