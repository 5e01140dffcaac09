"""What simpledb_observe folds into its digest, against a real server: the application user's
login and grants, the role's files. The module as a whole runs in tests/e2e/test_simpledb_noop.py
(it needs the API server and the cluster DNS)."""

import pytest
from ansible.module_utils.simpledb.observe import content_digest, digest_of, login_outcome, user_grants


@pytest.fixture
def app_user(mariadb):
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS observed")
        cur.execute("CREATE OR REPLACE USER 'watcher'@'%' IDENTIFIED BY 'right'")
        cur.execute("GRANT ALL PRIVILEGES ON observed.* TO 'watcher'@'%'")
    yield conn
    with conn.cursor() as cur:
        cur.execute("DROP USER IF EXISTS 'watcher'@'%'")
        cur.execute("DROP DATABASE IF EXISTS observed")
    conn.close()


def test_login_outcome_tells_a_working_login_from_a_refused_one(mariadb, app_user):
    assert login_outcome(mariadb.host, mariadb.port, "watcher", "right", "observed") == "ok"
    assert login_outcome(mariadb.host, mariadb.port, "watcher", "wrong", "observed") == "error 1045"
    assert login_outcome(mariadb.host, mariadb.port, "watcher", None, "observed") == "no password"


def test_grants_change_the_digest_and_a_dropped_user_has_none(mariadb, app_user):
    before = user_grants(mariadb.host, mariadb.port, mariadb.password, "watcher")
    assert any("ALL PRIVILEGES ON `observed`.*" in grant for grant in before)
    with app_user.cursor() as cur:
        cur.execute("REVOKE ALL PRIVILEGES ON observed.* FROM 'watcher'@'%'")
    revoked = user_grants(mariadb.host, mariadb.port, mariadb.password, "watcher")
    assert digest_of(revoked) != digest_of(before)
    with app_user.cursor() as cur:
        cur.execute("DROP USER 'watcher'@'%'")
    assert user_grants(mariadb.host, mariadb.port, mariadb.password, "watcher") == []


def test_content_digest_follows_every_file(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "main.yml").write_text("- name: A\n")
    (tmp_path / "defaults.yml").write_text("x: 1\n")
    first = content_digest([str(tmp_path)])
    assert content_digest([str(tmp_path)]) == first
    (tmp_path / "tasks" / "main.yml").write_text("- name: B\n")
    edited = content_digest([str(tmp_path)])
    assert edited != first
    (tmp_path / "tasks" / "main.yml").rename(tmp_path / "tasks" / "other.yml")
    assert content_digest([str(tmp_path)]) != edited
