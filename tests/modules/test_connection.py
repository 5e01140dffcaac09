"""The shared connection helper against a real server: success, and errors that say what to do."""

import pytest
from ansible.module_utils.simpledb.connection import ConnectionFailed, connect

from tests.fixtures.mariadb import free_port


def test_connect_reports_version(mariadb):
    conn = connect(host=mariadb.host, port=mariadb.port, password=mariadb.password)
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        assert "MariaDB" in cur.fetchone()[0]
    conn.close()


def test_wrong_password_names_the_login(mariadb):
    with pytest.raises(ConnectionFailed, match=r"refused the login of user 'root'.*password"):
        connect(host=mariadb.host, port=mariadb.port, password="wrong")


def test_unreachable_port_names_the_address():
    port = free_port()
    with pytest.raises(ConnectionFailed, match=f"127.0.0.1:{port}"):
        connect(host="127.0.0.1", port=port, password="x", connect_timeout=2)


def test_missing_database_says_so(mariadb):
    with pytest.raises(ConnectionFailed, match="no database 'does_not_exist'"):
        connect(host=mariadb.host, port=mariadb.port, password=mariadb.password, database="does_not_exist")
