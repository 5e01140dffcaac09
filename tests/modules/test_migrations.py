"""simpledb_migrations against a real MariaDB: apply, refuse, fail, retry, baseline, lock.

Most tests call module_utils directly (Migrator, the same code the module runs); the tests at
the end run the module through Ansible.
"""

import hashlib
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal

import pytest
from ansible.module_utils.simpledb.connection import connect_from_params
from ansible.module_utils.simpledb.migrations import (
    MigrationFailed,
    MigrationRefused,
    Migrator,
    load_directory,
    load_mapping,
    lock_name,
    read_schema_version,
)

from tests.fixtures.ansible_module import ROOT, run_module

HISTORY = "simpledb_schema_history"
_database_names = itertools.count()


@pytest.fixture
def database(mariadb):
    """A fresh, empty application database, dropped afterwards."""
    name = f"migrations_test_{os.getpid()}_{next(_database_names)}"
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    yield name
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def migrator(mariadb, database, **kwargs):
    params = {**mariadb.login(), "login_unix_socket": None, "connect_timeout": 10}
    return Migrator(lambda: connect_from_params(params, database=database), database, **kwargs)


def migrate(mariadb, database, source, target, **kwargs):
    """Run with a mapping source (None: no source)."""
    run_kwargs = {k: kwargs.pop(k) for k in ("retry_failed", "check_mode") if k in kwargs}
    migrations = None if source is None else load_mapping(source)
    return migrator(mariadb, database, **kwargs).run(migrations, target, **run_kwargs)


def query(mariadb, database, sql, args=None):
    conn = mariadb.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


def snapshot(mariadb, database):
    """Everything a run could change: the tables, their definitions and rows, the history."""
    state = {}
    for (table,) in query(mariadb, database, "SHOW TABLES"):
        state[table] = (
            query(mariadb, database, f"SHOW CREATE TABLE `{table}`"),
            query(mariadb, database, f"SELECT * FROM `{table}`"),
        )
    state["routines"] = query(
        mariadb,
        database,
        "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s",
        (database,),
    )
    return state


def history(mariadb, database):
    return query(
        mariadb,
        database,
        f"SELECT version, type, script, checksum, success, statements_applied, error FROM {HISTORY} "
        "ORDER BY installed_rank",
    )


def tables(mariadb, database):
    return sorted(t for (t,) in query(mariadb, database, "SHOW TABLES"))


V1 = "CREATE TABLE orders (id INT PRIMARY KEY, total DECIMAL(10,2) NOT NULL);\n"
V2 = "ALTER TABLE orders ADD COLUMN placed_at DATETIME NULL;\nINSERT INTO orders VALUES (1, 9.99, NULL);\n"
V3 = "CREATE INDEX orders_placed_at ON orders (placed_at);\n"
SOURCE = {"V1__create_orders.sql": V1, "V2__add_placed_at.sql": V2, "V3__index_placed_at.sql": V3}


def test_applies_in_order_and_records_each_migration(mariadb, database):
    run = migrate(mariadb, database, SOURCE, 3)

    assert run.changed
    assert (run.schema_version_before, run.schema_version_after) == (None, 3)
    assert [(a["version"], a["script"], a["statements"]) for a in run.applied] == [
        (1, "V1__create_orders.sql", 1),
        (2, "V2__add_placed_at.sql", 2),
        (3, "V3__index_placed_at.sql", 1),
    ]
    assert query(mariadb, database, "SELECT id, total FROM orders") == ((1, Decimal("9.99")),)
    rows = query(
        mariadb,
        database,
        "SELECT version, description, type, script, checksum, success, statements_total, "
        "statements_applied, error, applied_by, engine_version, duration_ms >= 0, "
        f"applied_at <= UTC_TIMESTAMP(6) FROM {HISTORY} "
        "ORDER BY installed_rank",
    )
    version = query(mariadb, database, "SELECT VERSION()")[0][0]
    assert rows == tuple(
        (v, desc, "SQL", script, hashlib.sha256(SOURCE[script].encode()).hexdigest(), 1, n, n, None,
         "root@127.0.0.1", version, 1, 1)
        for v, desc, script, n in [
            (1, "create orders", "V1__create_orders.sql", 1),
            (2, "add placed at", "V2__add_placed_at.sql", 2),
            (3, "index placed at", "V3__index_placed_at.sql", 1),
        ]
    )  # fmt: skip
    conn = mariadb.connect()
    assert read_schema_version(conn, database) == 3
    conn.close()


def test_a_second_run_changes_nothing(mariadb, database):
    migrate(mariadb, database, SOURCE, 3)
    before = snapshot(mariadb, database)

    run = migrate(mariadb, database, SOURCE, 3)

    assert not run.changed
    assert (run.plan, run.applied) == ([], [])
    assert (run.schema_version_before, run.schema_version_after) == (3, 3)
    assert snapshot(mariadb, database) == before


def test_raising_the_target_applies_only_the_new_versions(mariadb, database):
    migrate(mariadb, database, SOURCE, 1)
    assert tables(mariadb, database) == ["orders", HISTORY]

    run = migrate(mariadb, database, SOURCE, 3)

    assert [a["version"] for a in run.applied] == [2, 3]
    assert (run.schema_version_before, run.schema_version_after) == (1, 3)


def test_target_zero_without_history_does_nothing(mariadb, database):
    run = migrate(mariadb, database, SOURCE, 0)
    assert not run.changed
    assert tables(mariadb, database) == []


# ------------------------------------------------------------------ refusals change nothing


@pytest.mark.parametrize(
    ("applied_first", "source", "target", "message"),
    [
        pytest.param(
            None,
            {"V1__a.sql": V1, "V3__c.sql": V3},
            3,
            r"gap in the migrations: 'V1__a.sql' is followed by 'V3__c.sql'; V2 is missing",
            id="gap",
        ),
        pytest.param(
            None,
            {"V1__a.sql": V1, "V2__b.sql": V2, "V5__e.sql": V3},
            2,
            r"'V2__b.sql' is followed by 'V5__e.sql'; V3..V4 are missing",
            id="gap-above-target",
        ),
        pytest.param(
            None,
            {"V1__a.sql": V1, "V2__b.sql": V2},
            3,
            r"target_version 3 needs V1..V3 \(schema version is 0\) but the source has V1..V2: V3 is missing",
            id="target-above-source",
        ),
        pytest.param(
            None,
            {"V1__a.sql": V1, "V01__again.sql": V2},
            1,
            r"'V01__again.sql' and 'V1__a.sql' both have version 1",
            id="duplicate-version",
        ),
        pytest.param(
            None, {"V1_init.sql": V1}, 1, r"'V1_init.sql' is not a migration name", id="one-underscore"
        ),
        pytest.param(
            None, {"v1__init.sql": V1}, 1, r"'v1__init.sql' is not a migration name", id="lowercase-v"
        ),
        pytest.param(None, {"V1__init.txt": V1}, 1, r"'V1__init.txt' is not a migration name", id="not-sql"),
        pytest.param(
            None,
            {"V1__a.sql": V1, "README.md": "docs"},
            1,
            r"'README.md' is not a migration name",
            id="stray-key",
        ),
        pytest.param(
            None, {"V0__zero.sql": V1}, 0, r"'V0__zero.sql': versions start at 1", id="version-zero"
        ),
        pytest.param(
            None,
            {"V1__a.sql": V1, "V2__b.sql": "SELECT 'unterminated;\n"},
            2,
            r"V2__b.sql \(version 2\): line 1: string opened with ' is not closed",
            id="unparseable-script-runs-nothing",
        ),
        pytest.param(
            (SOURCE, 2),
            {**SOURCE, "V1__create_orders.sql": V1 + "-- edited\n"},
            3,
            r"V1__create_orders.sql \(version 1\) was changed after it was applied on .* UTC: "
            r"its checksum is [0-9a-f]{64}, the recorded one is [0-9a-f]{64}",
            id="changed-checksum",
        ),
        pytest.param(
            (SOURCE, 3),
            SOURCE,
            1,
            r"target_version 1 is lower than the applied schema version 3: migrations only go forward",
            id="downgrade",
        ),
        pytest.param(
            (SOURCE, 1),
            None,
            2,
            r"no migrations source is given, but schema version 1 was reached by running migrations",
            id="baseline-over-scripts",
        ),
    ],
)
def test_refusals_change_nothing(mariadb, database, applied_first, source, target, message):
    if applied_first:
        migrate(mariadb, database, *applied_first)
    before = snapshot(mariadb, database)

    with pytest.raises(MigrationRefused, match=message):
        migrate(mariadb, database, source, target)

    assert snapshot(mariadb, database) == before


def test_refusals_are_checked_in_check_mode_too(mariadb, database):
    with pytest.raises(MigrationRefused, match="gap in the migrations"):
        migrate(mariadb, database, {"V1__a.sql": V1, "V3__c.sql": V3}, 3, check_mode=True)


def test_a_changed_checksum_is_refused_even_with_nothing_to_run(mariadb, database):
    migrate(mariadb, database, SOURCE, 3)
    with pytest.raises(MigrationRefused, match=r"V2__add_placed_at.sql \(version 2\) was changed"):
        migrate(mariadb, database, {**SOURCE, "V2__add_placed_at.sql": V2.replace("NULL", "NOT NULL", 1)}, 3)


# ------------------------------------------------------------------ failures


FAILING_V2 = (
    "CREATE TABLE order_lines (id INT);\n"
    "INSERT INTO no_such_table VALUES (1);\n"
    "CREATE TABLE never (id INT);\n"
)


def test_a_failed_migration_is_recorded_and_blocks(mariadb, database):
    source = {**SOURCE, "V2__add_lines.sql": FAILING_V2}
    del source["V2__add_placed_at.sql"]

    with pytest.raises(MigrationFailed) as failed:
        migrate(mariadb, database, source, 3)

    message = str(failed.value)
    assert "V2__add_lines.sql (version 2) failed: statement 2 at line 2 failed with error 1146" in message
    assert "no_such_table" in message and "the 1 statement(s) before the failure completed" in message
    assert failed.value.failure == {
        "version": 2,
        "script": "V2__add_lines.sql",
        "statement": 2,
        "line": 2,
        "error_code": 1146,
        "error": failed.value.failure["error"],
    }
    assert failed.value.run.schema_version_after == 1
    assert [a["version"] for a in failed.value.run.applied] == [1]
    # DDL is not transactional: the statement before the failure stays applied, V3 never ran.
    assert tables(mariadb, database) == ["order_lines", "orders", HISTORY]
    assert [(v, s, ok, n) for v, _, s, _, ok, n, _ in history(mariadb, database)] == [
        (1, "V1__create_orders.sql", 1, 1),
        (2, "V2__add_lines.sql", 0, 1),
    ]
    assert history(mariadb, database)[1][6].startswith("statement 2 at line 2 failed with error 1146")

    # Unchanged, it blocks: the next run refuses and changes nothing.
    before = snapshot(mariadb, database)
    with pytest.raises(
        MigrationRefused, match=r"V2__add_lines.sql \(version 2\) failed on .* after 1 of 3 statements"
    ):
        migrate(mariadb, database, source, 3)
    assert snapshot(mariadb, database) == before
    conn = mariadb.connect()
    assert read_schema_version(conn, database) == 1
    conn.close()


def test_a_corrected_migration_is_retried(mariadb, database):
    source = {"V1__create_orders.sql": V1, "V2__add_lines.sql": FAILING_V2, "V3__index_placed_at.sql": V3}
    with pytest.raises(MigrationFailed):
        migrate(mariadb, database, source, 2)

    # The fix: safe to re-run (IF NOT EXISTS) and without the bad statement.
    fixed = "CREATE TABLE IF NOT EXISTS order_lines (id INT);\nCREATE TABLE never (id INT);\n"
    run = migrate(mariadb, database, {**source, "V2__add_lines.sql": fixed}, 2)

    assert [(s.action, s.version) for s in run.plan] == [("retry", 2)]
    assert "failed on" in run.plan[0].reason and "was changed since" in run.plan[0].reason
    assert (run.schema_version_before, run.schema_version_after) == (1, 2)
    assert [(v, ok, c) for v, _, _, c, ok, _, _ in history(mariadb, database)] == [
        (1, 1, hashlib.sha256(V1.encode()).hexdigest()),
        (2, 0, hashlib.sha256(FAILING_V2.encode()).hexdigest()),
        (2, 1, hashlib.sha256(fixed.encode()).hexdigest()),
    ]
    assert tables(mariadb, database) == ["never", "order_lines", "orders", HISTORY]


def test_retry_failed_reruns_an_unchanged_migration(mariadb, database):
    source = {"V1__needs_a_table.sql": "INSERT INTO made_by_hand VALUES (1);\n"}
    with pytest.raises(MigrationFailed):
        migrate(mariadb, database, source, 1)
    query(mariadb, database, "CREATE TABLE made_by_hand (id INT)")

    with pytest.raises(MigrationRefused, match="or set retry_failed to run it again unchanged"):
        migrate(mariadb, database, source, 1)
    run = migrate(mariadb, database, source, 1, retry_failed=True)

    assert [s.action for s in run.plan] == ["retry"]
    assert "retry_failed is set" in run.plan[0].reason
    assert query(mariadb, database, "SELECT id FROM made_by_hand") == ((1,),)


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE USER 'app_reader'@'%' IDENTIFIED BY BY 'hunter2-secret'",  # a syntax error quoting it
        "SET PASSWORD FOR 'no_such_user'@'%' = PASSWORD('hunter2-secret')",  # an error about the user
    ],
)
def test_failure_reports_do_not_repeat_passwords(mariadb, database, statement):
    with pytest.raises(MigrationFailed) as failed:
        migrate(mariadb, database, {"V1__account.sql": statement + ";\n"}, 1)

    recorded = history(mariadb, database)[0][6]
    for report in (str(failed.value), failed.value.failure["error"], recorded):
        assert "hunter2-secret" not in report
        assert "V1__account.sql" in report or report.startswith("statement 1 at line 1 failed")
    assert "'***'" in recorded


def test_a_script_that_leaves_a_transaction_open_fails_and_is_rolled_back(mariadb, database):
    source = {"V1__t.sql": V1, "V2__open.sql": "START TRANSACTION;\nINSERT INTO orders VALUES (7, 1.00);\n"}
    with pytest.raises(MigrationFailed, match="left a transaction open"):
        migrate(mariadb, database, source, 2)
    assert query(mariadb, database, "SELECT COUNT(*) FROM orders") == ((0,),)
    assert history(mariadb, database)[-1][4] == 0


def test_transactions_committed_by_the_script_are_fine(mariadb, database):
    dml = (
        "START TRANSACTION;\nINSERT INTO orders VALUES (1, 1.00);\n"
        "INSERT INTO orders VALUES (2, 2.00);\nCOMMIT;\n"
    )
    migrate(mariadb, database, {"V1__t.sql": V1, "V2__rows.sql": dml}, 2)
    assert query(mariadb, database, "SELECT COUNT(*) FROM orders") == ((2,),)


def test_session_settings_of_a_script_do_not_leak_into_the_next(mariadb, database):
    source = {
        "V1__t.sql": V1,
        "V2__relaxed.sql": "SET SESSION sql_mode = '';\nSET @marker = 'from V2';\n",
        "V3__check.sql": "INSERT INTO orders SELECT 1, 1.00 FROM DUAL WHERE @marker IS NULL "
        "AND @@SESSION.sql_mode LIKE '%STRICT_TRANS_TABLES%';\n",
    }
    migrate(mariadb, database, source, 3)
    assert query(mariadb, database, "SELECT COUNT(*) FROM orders") == ((1,),)


# ------------------------------------------------------------------ scripts


ROUTINES = r"""-- Routines and triggers need the client's DELIMITER command.
CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL, body_len INT NULL);

DELIMITER //
CREATE PROCEDURE add_note(IN text_in TEXT)
BEGIN
  -- a ; inside the body does not end the statement
  INSERT INTO notes (body) VALUES (text_in);
  INSERT INTO notes (body) VALUES (CONCAT(text_in, ';again'));
END//

CREATE TRIGGER notes_bi BEFORE INSERT ON notes FOR EACH ROW
BEGIN
  SET NEW.body_len = CHAR_LENGTH(NEW.body);
END//
DELIMITER ;

INSERT INTO notes (body) VALUES ('semi;colon'), ("double \" quote;"), ('it''s; -- not a comment'),
  ('back\\slash; /* not a comment */');
/*!40101 SET @executable_comment = 'ran' */;
CREATE TABLE `odd;name` (`col;umn` INT); # trailing ; comment
INSERT INTO `odd;name` SELECT 1 FROM DUAL WHERE @executable_comment = 'ran';
CALL add_note('from;procedure');
"""


def test_delimiter_routines_triggers_and_quoted_semicolons(mariadb, database):
    run = migrate(mariadb, database, {"V1__routines.sql": ROUTINES}, 1)

    assert run.applied[0]["statements"] == 8
    assert query(mariadb, database, "SELECT body, body_len FROM notes ORDER BY id") == (
        ("semi;colon", 10),
        ('double " quote;', 15),
        ("it's; -- not a comment", 22),
        ("back\\slash; /* not a comment */", 31),
        ("from;procedure", 14),
        ("from;procedure;again", 20),
    )
    assert query(mariadb, database, "SELECT `col;umn` FROM `odd;name`") == ((1,),)


def test_scripts_follow_the_sessions_backslash_mode(mariadb, database):
    params = {**mariadb.login(), "login_unix_socket": None, "connect_timeout": 10}

    def connect():
        return connect_from_params(
            params, database=database, init_command="SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'"
        )

    script = (
        "CREATE TABLE paths (p TEXT);\nINSERT INTO paths VALUES ('C:\\');\n"
        "INSERT INTO paths VALUES ('D:\\');\n"
    )
    Migrator(connect, database).run(load_mapping({"V1__paths.sql": script}), 1)
    assert query(mariadb, database, "SELECT p FROM paths") == (("C:\\",), ("D:\\",))


# ------------------------------------------------------------------ baseline


def test_without_a_source_the_target_is_recorded_as_baseline(mariadb, database):
    run = migrate(mariadb, database, None, 1)

    assert [s.to_dict()["action"] for s in run.plan] == ["baseline"]
    assert (run.schema_version_before, run.schema_version_after) == (None, 1)
    assert history(mariadb, database) == ((1, "BASELINE", None, None, 1, 0, None),)
    conn = mariadb.connect()
    assert read_schema_version(conn, database) == 1
    conn.close()
    assert not migrate(mariadb, database, None, 1).changed

    # Raised without a source: a new baseline; then a source takes over above it.
    migrate(mariadb, database, None, 2)
    source = {
        "V1__before_baseline.sql": "this never runs",
        "V2__before_baseline.sql": "neither does this",
        "V3__after_baseline.sql": "CREATE TABLE after_baseline (id INT);",
    }
    run = migrate(mariadb, database, source, 3)
    assert [a["version"] for a in run.applied] == [3]
    assert run.schema_version_before == 2
    assert [(v, t) for v, t, *_ in history(mariadb, database)] == [
        (1, "BASELINE"),
        (2, "BASELINE"),
        (3, "SQL"),
    ]


# ------------------------------------------------------------------ check mode


def test_check_mode_reports_the_plan_and_changes_nothing(mariadb, database):
    migrate(mariadb, database, SOURCE, 1)
    before = snapshot(mariadb, database)

    run = migrate(mariadb, database, SOURCE, 3, check_mode=True)

    assert run.changed
    assert [s.to_dict() for s in run.plan] == [
        {
            "action": "apply",
            "version": 2,
            "description": "add placed at",
            "script": "V2__add_placed_at.sql",
            "checksum": hashlib.sha256(V2.encode()).hexdigest(),
            "statements": 2,
        },
        {
            "action": "apply",
            "version": 3,
            "description": "index placed at",
            "script": "V3__index_placed_at.sql",
            "checksum": hashlib.sha256(V3.encode()).hexdigest(),
            "statements": 1,
        },
    ]
    assert (run.schema_version_before, run.schema_version_after) == (1, 3)
    assert run.applied == []
    assert snapshot(mariadb, database) == before


def test_check_mode_on_an_empty_database_creates_no_table(mariadb, database):
    run = migrate(mariadb, database, None, 1, check_mode=True)
    assert [s.action for s in run.plan] == ["baseline"]
    assert tables(mariadb, database) == []


# ------------------------------------------------------------------ the directory source


def test_a_directory_source_skips_hidden_entries_like_a_mounted_configmap(mariadb, database, tmp_path):
    # What the kubelet mounts: files are links into a hidden timestamped directory.
    data = tmp_path / "..2026_11_26_16_00_00.000000001"
    data.mkdir()
    for name, sql in SOURCE.items():
        (data / name).write_text(sql)
        (tmp_path / name).symlink_to(f"..data/{name}")
    (tmp_path / "..data").symlink_to(data.name)

    run = migrator(mariadb, database).run(load_directory(str(tmp_path)), 3)
    assert [a["script"] for a in run.applied] == list(SOURCE)

    (data / "notes.txt").write_text("x")
    (tmp_path / "notes.txt").symlink_to("..data/notes.txt")
    with pytest.raises(MigrationRefused, match=rf"{tmp_path}: 'notes.txt' is not a migration name"):
        load_directory(str(tmp_path))


def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(MigrationRefused, match="is not a directory"):
        load_directory(str(tmp_path / "nope"))


# ------------------------------------------------------------------ concurrency


def test_a_held_lock_makes_the_run_wait_then_give_up(mariadb, database):
    holder = mariadb.connect()
    with holder.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, 0), CONNECTION_ID()", (lock_name(database),))
        _, holder_id = cur.fetchone()
    try:
        started = time.monotonic()
        with pytest.raises(
            MigrationRefused, match=rf"lock '{lock_name(database)}' is held by connection {holder_id}"
        ):
            migrate(mariadb, database, SOURCE, 3, lock_timeout=1)
        assert time.monotonic() - started >= 1
        assert tables(mariadb, database) == []
    finally:
        holder.close()
    assert migrate(mariadb, database, SOURCE, 3).changed


def test_concurrent_runs_apply_each_migration_once(mariadb, database):
    slow = {"V1__slow.sql": "DO SLEEP(1);\n" + V1, "V2__add_placed_at.sql": V2}
    results, errors = [], []

    def run():
        try:
            results.append(migrate(mariadb, database, slow, 2))
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert sorted(len(r.applied) for r in results) == [0, 0, 2]
    assert [(v, ok) for v, _, _, _, ok, _, _ in history(mariadb, database)] == [(1, 1), (2, 1)]


SLOW_SOURCE = {"V1__orders.sql": V1, "V2__slow.sql": "DO SLEEP(4);\nCREATE TABLE after_sleep (id INT);\n"}


def test_a_run_that_died_mid_script_is_reported_then_can_be_retried(mariadb, database):
    """Kill the process running a migration: the statement goes on on the server, then the
    attempt is 'interrupted' and blocks until retried."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import tests.conftest  # makes ansible.module_utils.simpledb importable
        from ansible.module_utils.simpledb.connection import connect
        from ansible.module_utils.simpledb.migrations import Migrator, load_mapping

        def session():
            return connect(host="127.0.0.1", port={mariadb.port}, password={mariadb.password!r},
                           database={database!r})

        Migrator(session, {database!r}).run(load_mapping({SLOW_SOURCE!r}), 2)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not query(
            mariadb, database, "SELECT 1 FROM information_schema.PROCESSLIST WHERE INFO LIKE 'DO SLEEP(4)%%'"
        ):
            assert time.monotonic() < deadline, "the migration never started"
            assert child.poll() is None, "the migration process ended early"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    source = SLOW_SOURCE
    with pytest.raises(
        MigrationRefused, match=r"V2__slow.sql \(version 2\) is still running on connection \d+"
    ):
        migrate(mariadb, database, source, 2)

    # The orphaned statement finishes on its own; the attempt stays unfinished.
    deadline = time.monotonic() + 30
    while query(
        mariadb, database, "SELECT 1 FROM information_schema.PROCESSLIST WHERE INFO LIKE 'DO SLEEP(4)%%'"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.2)  # the server closes the orphaned session once the statement is over
    with pytest.raises(
        MigrationRefused, match=r"V2__slow.sql \(version 2\) was interrupted .* after 0 of 2 statements"
    ):
        migrate(mariadb, database, source, 2)
    assert "after_sleep" not in tables(mariadb, database)

    run = migrate(mariadb, database, source, 2, retry_failed=True)
    assert [(s.action, s.version) for s in run.plan] == [("retry", 2)]
    assert "after_sleep" in tables(mariadb, database)
    assert [(v, ok) for v, _, _, _, ok, _, _ in history(mariadb, database)] == [(1, 1), (2, None), (2, 1)]


# ------------------------------------------------------------------ through Ansible


def module_args(mariadb, database, **kwargs):
    return {**mariadb.login(), "database": database, **kwargs}


def test_module_applies_then_reports_no_change(mariadb, database, tmp_path):
    for name, sql in SOURCE.items():
        (tmp_path / name).write_text(sql)

    first = run_module(
        "simpledb_migrations", module_args(mariadb, database, target_version=3, migrations_dir=str(tmp_path))
    )
    second = run_module(
        "simpledb_migrations", module_args(mariadb, database, target_version=3, migrations_dir=str(tmp_path))
    )

    assert not first.get("failed"), first["msg"] if "msg" in first else first
    assert first["changed"] is True
    assert [a["version"] for a in first["applied"]] == [1, 2, 3]
    assert (first["schema_version_before"], first["schema_version_after"]) == (None, 3)
    assert first["history_table"] == f"{database}.{HISTORY}"
    assert (second["changed"], second["plan"], second["schema_version_after"]) == (False, [], 3)
    assert mariadb.password not in repr(first)


def test_module_check_mode_and_refusal(mariadb, database):
    planned = run_module(
        "simpledb_migrations", module_args(mariadb, database, target_version=2, migrations=SOURCE), check=True
    )
    assert planned["changed"] is True
    assert [(p["action"], p["version"]) for p in planned["plan"]] == [("apply", 1), ("apply", 2)]
    assert tables(mariadb, database) == []

    refused = run_module(
        "simpledb_migrations",
        module_args(mariadb, database, target_version=3, migrations={"V1__a.sql": V1, "V3__c.sql": V3}),
    )
    assert refused["failed"] is True
    assert refused["changed"] is False
    assert "gap in the migrations: 'V1__a.sql' is followed by 'V3__c.sql'; V2 is missing" in refused["msg"]
    assert tables(mariadb, database) == []


def test_module_reports_a_failed_migration(mariadb, database):
    result = run_module(
        "simpledb_migrations",
        module_args(
            mariadb, database, target_version=2, migrations={"V1__a.sql": V1, "V2__b.sql": FAILING_V2}
        ),
    )
    assert result["failed"] is True
    assert result["changed"] is True
    assert result["schema_version_after"] == 1
    assert [a["version"] for a in result["applied"]] == [1]
    assert {k: result["failure"][k] for k in ("version", "script", "statement", "line", "error_code")} == {
        "version": 2,
        "script": "V2__b.sql",
        "statement": 2,
        "line": 2,
        "error_code": 1146,
    }
    assert "V2__b.sql (version 2) failed: statement 2 at line 2" in result["msg"]


def test_module_baseline_and_bad_login(mariadb, database):
    result = run_module("simpledb_migrations", module_args(mariadb, database, target_version=1))
    assert (result["changed"], result["schema_version_after"]) == (True, 1)

    denied = run_module(
        "simpledb_migrations", {**module_args(mariadb, database, target_version=1), "login_password": "wrong"}
    )
    assert denied["failed"] is True
    assert "refused the login of user 'root'" in denied["msg"]

    missing = run_module("simpledb_migrations", module_args(mariadb, "no_such_db", target_version=1))
    assert "has no database 'no_such_db'" in missing["msg"]


def test_module_rejects_two_sources(mariadb, database, tmp_path):
    result = run_module(
        "simpledb_migrations",
        module_args(mariadb, database, target_version=1, migrations=SOURCE, migrations_dir=str(tmp_path)),
    )
    assert result["failed"] is True
    assert "mutually exclusive: migrations|migrations_dir" in result["msg"]


def test_pymysql_errors_in_history_reads_are_reported(mariadb, database):
    # A history table that is not ours: the module says so instead of a traceback.
    query(mariadb, database, f"CREATE TABLE {HISTORY} (something_else INT)")
    result = run_module("simpledb_migrations", module_args(mariadb, database, target_version=1))
    assert result["failed"] is True
    assert "MariaDB error while reading or writing the history table" in result["msg"]
    assert "Unknown column" in result["msg"]
