"""Backup and restore throughput against mariadb-dump and the mariadb client (design section 9).

On one fresh server and one generated data set (a sysbench-style table, a wide text table
and a binary table, about ``--size-gb`` of SQL in all) it times, one after the other:

- backup: ``mariadb-dump --single-transaction`` against simpledb_backup with one connection
  and with ``--jobs`` connections, uncompressed and gzip (``| gzip -6`` for mariadb-dump,
  gzip level 6 for ours);
- restore: ``mariadb DB < dump.sql`` (mariadb-dump's file) against simpledb_restore (which also
  checks the sha256 first and the row counts and checksums after), plus the client loading
  our file;
- peak RSS of every process (wait4), the backup's with tables larger than the 256 MB budget.

The modules run as Ansible runs them: a separate Python process given a JSON argument file.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Report, bar_chart_svg, machine, measure, table

NAME = "backup"
ROOT = Path(__file__).resolve().parent.parent
RSS_BUDGET_MB = 256
DATABASE = "bench"
RUNNER = (
    "import runpy, sys, ansible.module_utils as m; "
    f"m.__path__.append({str(ROOT / 'plugins' / 'module_utils')!r}); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)
# Share of the generated SQL per table, and the approximate SQL bytes of one row.
TABLES = {
    "sbtest1": (0.45, 190),
    "wide_text": (0.40, 1900),
    "wide_blob": (0.15, 8300),
}
SCHEMA = {
    "sbtest1": """CREATE TABLE sbtest1 (
  id INT NOT NULL AUTO_INCREMENT, k INT NOT NULL DEFAULT 0,
  c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '',
  PRIMARY KEY (id), KEY k_1 (k)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "wide_text": """CREATE TABLE wide_text (
  id BIGINT NOT NULL PRIMARY KEY, title VARCHAR(200) NOT NULL, body TEXT NOT NULL,
  attrs JSON NULL, created DATETIME(6) NOT NULL, score DOUBLE NOT NULL, qty INT NULL,
  price DECIMAL(12,2) NOT NULL, status ENUM('new','paid','shipped','returned') NOT NULL,
  note VARCHAR(255) NULL, KEY created (created)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "wide_blob": """CREATE TABLE wide_blob (
  id INT NOT NULL PRIMARY KEY, name VARCHAR(64) NOT NULL, payload BLOB NOT NULL,
  thumb VARBINARY(255) NULL, crc INT UNSIGNED NOT NULL) ENGINE=InnoDB""",
}
_DIGITS11 = "LPAD(FLOOR(RAND()*99999999999),11,'0')"
FILL = {
    "sbtest1": "INSERT INTO sbtest1 (k, c, pad) SELECT FLOOR(RAND()*{rows}), CONCAT_WS('-', "
    + ", ".join([_DIGITS11] * 10)
    + "), CONCAT_WS('-', "
    + ", ".join([_DIGITS11] * 5)
    + ") FROM seq_{lo}_to_{hi}",
    "wide_text": "INSERT INTO wide_text SELECT seq, CONCAT('Order ', seq, ' for customer ', MD5(seq)), "
    "CONCAT(REPEAT('The quick brown fox jumps over the lazy dog; ', 8 + seq % 17), "
    "MD5(RAND()), ' ', SHA2(RAND(), 256), ' ', SHA2(RAND(), 512), '\\n', "
    "REPEAT(CONCAT(CHAR(65 + FLOOR(RAND()*26)), 'üñí ', MD5(RAND())), 6)), "
    "JSON_OBJECT('tags', JSON_ARRAY('a', seq % 7, 'x\"y'), 'n', RAND()), "
    "TIMESTAMP('2020-01-01') + INTERVAL seq SECOND + INTERVAL FLOOR(RAND()*1e6) MICROSECOND, "
    "RAND() * 1e6, IF(seq % 10 = 0, NULL, seq % 1000), ROUND(RAND() * 10000, 2), 1 + seq % 4, "
    "IF(seq % 3 = 0, NULL, CONCAT('it''s note ', seq)) FROM seq_{lo}_to_{hi}",
    "wide_blob": "INSERT INTO wide_blob SELECT seq, CONCAT('file-', seq, '.bin'), "
    "CONCAT(RANDOM_BYTES(1024), RANDOM_BYTES(1024), RANDOM_BYTES(1024), RANDOM_BYTES(1024)), "
    "IF(seq % 5 = 0, NULL, RANDOM_BYTES(200)), CRC32(seq) FROM seq_{lo}_to_{hi}",
}


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--size-gb", type=float, default=1.0, help="SQL size of the generated data (default 1)"
    )
    group.add_argument("--jobs", type=int, default=4, help="connections of the parallel runs (default 4)")
    group.add_argument(
        "--repeat", type=int, default=2, help="runs of each measurement; the fastest counts (default 2)"
    )
    group.add_argument("--workdir", help="where the server and the dumps go (default a temporary directory)")


def run(args: argparse.Namespace) -> Report:
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.mariadb import MariaDBServer, free_port

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="simpledb-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    server = MariaDBServer(basedir=str(workdir / "server"), port=free_port())
    start_load = machine()
    (workdir / "tmp").mkdir(exist_ok=True)
    server.start(
        [
            "--innodb-buffer-pool-size=1G",
            "--innodb-log-file-size=512M",
            "--max-connections=100",
            f"--tmpdir={workdir / 'tmp'}",
        ]
    )
    try:
        generated = _generate(server, args.size_gb)
        _quiesce(server)
        backups = _backups(server, workdir, args.jobs, args.repeat)
        restores = _restores(server, workdir, args.jobs, args.repeat)
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            version = cur.fetchone()[0]
    finally:
        server.stop()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return _report(
        args, f"{start_load}, {os.getloadavg()[0]:.1f} at the end", version, generated, backups, restores
    )


def _sql(server, statement: str, database: str | None = DATABASE) -> list[tuple]:
    with server.connect(database) as conn, conn.cursor() as cur:
        cur.execute(statement)
        return list(cur.fetchall())


def _generate(server, size_gb: float) -> dict:
    started = time.monotonic()
    _sql(server, f"CREATE DATABASE {DATABASE}", None)
    rows = {}
    for name, (share, row_bytes) in TABLES.items():
        _sql(server, SCHEMA[name])
        count = max(1000, int(size_gb * 1e9 * share / row_bytes))
        for lo in range(1, count + 1, 100_000):
            _sql(server, FILL[name].format(lo=lo, hi=min(lo + 99_999, count), rows=count))
        rows[name] = count
    _sql(server, "ANALYZE TABLE " + ", ".join(TABLES))
    print(
        f"generated {sum(rows.values())} rows in {time.monotonic() - started:.0f}s: {rows}", file=sys.stderr
    )
    return rows


def _client_args(server) -> list[str]:
    return [*server.client_args(), "--default-character-set=utf8mb4"]


def _module(server, name: str, arguments: dict, workdir: Path):
    args_file = workdir / f"{name}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": arguments}))
    result = measure(
        [sys.executable, "-c", RUNNER, str(ROOT / "plugins" / "modules" / f"{name}.py"), str(args_file)],
        server_pid=server.process.pid,
    )
    outcome = json.loads(result.output)
    if outcome.get("failed"):
        raise RuntimeError(f"{name} failed: {outcome.get('msg')}")
    return result, outcome


def _backups(server, workdir: Path, jobs: int, repeat: int) -> dict:
    """Every backup ``repeat`` times, the tools interleaved; the fastest run of each counts."""
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
    results: dict = {}
    for compression in ("none", "gzip"):
        suffix = ".sql" if compression == "none" else ".sql.gz"
        for attempt in range(repeat):
            target = workdir / f"mariadb-dump{suffix}"
            command = (
                f"set -o pipefail; {dump}" + (" | gzip -6" if compression == "gzip" else "") + f" > {target}"
            )
            _keep_fastest(
                results,
                ("mariadb-dump", compression),
                measure(["bash", "-c", command], server_pid=server.process.pid),
                target,
            )
            for connections in (1, jobs):
                arguments = {
                    **server.login(),
                    "database": DATABASE,
                    "path": str(workdir),
                    "name": f"ours-{compression}-{connections}",
                    "compression": compression,
                    "jobs": connections,
                    "overwrite": True,
                }
                result, outcome = _module(server, "simpledb_backup", arguments, workdir)
                key = (f"simpledb_backup jobs={connections}", compression)
                _keep_fastest(results, key, result, Path(outcome["location"]))
            print(
                f"backup {compression} round {attempt + 1}: "
                + ", ".join(
                    f"{tool} {r.seconds:.1f}s" for (tool, c), (r, _) in results.items() if c == compression
                ),
                file=sys.stderr,
            )
    return results


def _keep_fastest(results: dict, key: tuple, result, path: Path) -> None:
    if key not in results or result.seconds < results[key][0].seconds:
        results[key] = (result, path.stat().st_size)


def _quiesce(server) -> None:
    """Let InnoDB write out the dirty pages of the previous run, so it does not slow the next."""
    _sql(server, "SET GLOBAL innodb_max_dirty_pages_pct = 0", None)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        dirty = _sql(server, "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'", None)[0][1]
        if int(dirty) < 100:
            break
        time.sleep(0.5)
    _sql(server, "SET GLOBAL innodb_max_dirty_pages_pct = 90", None)
    os.sync()


def _restores(server, workdir: Path, jobs: int, repeat: int) -> dict:
    """Every restore ``repeat`` times, interleaved, into an empty database each time; the
    fastest run counts. Each restored database is then compared with the source."""
    expected = _checksums(server, DATABASE)
    ours_sql = workdir / f"ours-none-{jobs}.sql"
    ours = f"simpledb_restore jobs={jobs}"
    runs: dict = {}
    verified: dict = {}
    module_verified = True
    for attempt in range(repeat):
        for label, database in (
            ("mariadb < mariadb-dump.sql", "restore_client"),
            ("mariadb < simpledb file", "restore_client_ours"),
            (ours, "restore_ours"),
        ):
            _sql(server, f"DROP DATABASE IF EXISTS {database}", None)
            _quiesce(server)
            if label == ours:
                arguments = {**server.login(), "location": str(ours_sql), "database": database, "jobs": jobs}
                result, outcome = _module(server, "simpledb_restore", arguments, workdir)
                module_verified = module_verified and outcome["verified"]
            else:
                source = workdir / "mariadb-dump.sql" if database == "restore_client" else ours_sql
                _sql(server, f"CREATE DATABASE {database}", None)
                result = measure(
                    [*_client_args(server), database], stdin=str(source), server_pid=server.process.pid
                )
            if label not in runs or result.seconds < runs[label].seconds:
                runs[label] = result
            verified[label] = verified.get(label, True) and _checksums(server, database) == expected
        print(
            f"restore round {attempt + 1}: " + ", ".join(f"{k} {r.seconds:.1f}s" for k, r in runs.items()),
            file=sys.stderr,
        )
    return {"runs": runs, "verified": verified, "module_verified": module_verified}


def _checksums(server, database: str) -> dict:
    rows = _sql(server, "CHECKSUM TABLE " + ", ".join(f"{database}.{t}" for t in TABLES) + " EXTENDED", None)
    return {name.split(".", 1)[1]: checksum for name, checksum in rows}


def _cpu_columns(baseline, result) -> list[str]:
    """CPU seconds of the tool and of mariadbd during its run, and the stock tool's total
    divided by this one's (above 1: less CPU for the same work)."""
    total = result.cpu_seconds + result.server_cpu_seconds
    stock = baseline.cpu_seconds + baseline.server_cpu_seconds
    return [f"{result.cpu_seconds:.1f}+{result.server_cpu_seconds:.1f}", f"{stock / total:.2f}x"]


def _report(args, load: str, version: str, generated: dict, backups: dict, restores: dict) -> Report:
    jobs = args.jobs
    rows = []
    chart = []
    for compression in ("none", "gzip"):
        baseline, _ = backups[("mariadb-dump", compression)]
        bars = []
        for tool in ("mariadb-dump", "simpledb_backup jobs=1", f"simpledb_backup jobs={jobs}"):
            result, size = backups[(tool, compression)]
            rows.append(
                [
                    f"backup, {'uncompressed' if compression == 'none' else 'gzip -6'}",
                    tool,
                    f"{result.seconds:.1f}",
                    f"{size / 1e6:.0f}",
                    f"{size / 1e6 / result.seconds:.0f}" if compression == "none" else "",
                    f"{baseline.seconds / result.seconds:.2f}x",
                    *_cpu_columns(baseline, result),
                    f"{result.max_rss_mb:.0f}",
                ]
            )
            bars.append((tool, result.seconds))
        chart.append((f"backup, {compression}", bars))
    runs = restores["runs"]
    baseline = runs["mariadb < mariadb-dump.sql"]
    bars = []
    for label, result in runs.items():
        rows.append(
            [
                "restore, uncompressed",
                label + ("" if restores["verified"][label] else " (CHECKSUMS DIFFER)"),
                f"{result.seconds:.1f}",
                "",
                "",
                f"{baseline.seconds / result.seconds:.2f}x",
                *_cpu_columns(baseline, result),
                f"{result.max_rss_mb:.0f}",
            ]
        )
        bars.append((label, result.seconds))
    chart.append(("restore", bars))
    headers = [
        "what",
        "tool",
        "seconds",
        "file MB",
        "MB/s",
        "speed vs stock",
        "CPU s client+server",
        "CPU vs stock",
        "peak RSS MB",
    ]
    text_table, md_table = table(headers, rows)
    backup_rss = max(r.max_rss_mb for (tool, _), (r, _) in backups.items() if tool.startswith("simpledb"))
    restore_rss = runs[f"simpledb_restore jobs={jobs}"].max_rss_mb
    gen_rows = ", ".join(f"`{name}` {count:,} rows" for name, count in generated.items())
    largest = max(generated, key=lambda name: generated[name] * TABLES[name][1])
    largest_mb = generated[largest] * TABLES[largest][1] / 1e6
    summary = (
        f"Data: {args.size_gb:g} GB of SQL target ({gen_rows}); the largest table, `{largest}`, is about "
        f"{largest_mb:.0f} MB of SQL (memory budget {RSS_BUDGET_MB} MB). Server: MariaDB {version}, "
        "InnoDB buffer pool 1 GB, "
        f"over TCP on loopback. Machine: {load}. Peak RSS of simpledb_backup: {backup_rss:.0f} MB, "
        f"of simpledb_restore: {restore_rss:.0f} MB (budget {RSS_BUDGET_MB} MB). The module restore "
        f"verified row counts and checksums itself: {restores['module_verified']}; every restored "
        "database's CHECKSUM TABLE equals the source's: "
        f"{all(restores['verified'].values())}."
    )
    svg_path = "docs/benchmarks-backup.svg"
    markdown = f"""## Backup and restore throughput

`python -m bench backup --size-gb {args.size_gb:g} --jobs {jobs} --repeat {args.repeat}`, measured
{time.strftime("%Y-%m-%d")}: each measurement ran {args.repeat} times, interleaved with the others, and
the fastest run counts; InnoDB's dirty pages were flushed before each restore, which went
into an empty database.
"speed vs stock" is the stock tool's time divided by this tool's (above 1 is faster), for
the same data and compression in the same run: mariadb-dump `--single-transaction` (piped to
`gzip -6` for gzip; simpledb_backup deflates at level 6 too, with zlib-ng) for backups, the
`mariadb` client loading mariadb-dump's file for restores. simpledb_restore's time includes
checking the file's sha256 first, loading into a staging database, comparing every table's
row count and `CHECKSUM TABLE ... EXTENDED` with the manifest and swapping the tables in.
Peak RSS is the process's maximum resident size (wait4); for the shell pipeline, its largest
process.

{md_table}

{summary}

![backup and restore times]({Path(svg_path).name})
"""
    svg = bar_chart_svg("Backup and restore, seconds (shorter is faster)", chart, "s")
    return Report(text=f"{text_table}\n\n{summary}", markdown=markdown, files={svg_path: svg})
