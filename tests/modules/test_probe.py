"""simpledb_probe against real servers: MariaDB (version probe) and CoreDNS on loopback (DNS probe)."""

import os
import pathlib
import re
import socket
import subprocess
import time

import dns.message
import dns.query
import pytest
from ansible.module_utils.simpledb.connection import connect_from_params
from ansible.module_utils.simpledb.dns import (
    NO_ANSWER,
    NO_NAMESERVERS,
    NXDOMAIN,
    RESOLVED,
    TIMEOUT,
    probe_dns,
)
from ansible.module_utils.simpledb.migrations import MigrationFailed, Migrator, load_mapping
from ansible.module_utils.simpledb.probe import ACCESS_DENIED, UNREACHABLE, probe_server

from tests.fixtures.ansible_module import ROOT, run_module
from tests.fixtures.mariadb import free_port

ZONE = """$ORIGIN example.test.
@        3600 IN SOA ns.example.test. admin.example.test. 1 7200 3600 1209600 3600
@        3600 IN NS  ns.example.test.
ns       IN A     127.0.0.1
db       IN A     10.1.2.3
db       IN AAAA  fd00::5
multi    IN A     10.1.2.10
multi    IN A     10.1.2.9
alias    IN CNAME db.example.test.
txtonly  IN TXT   "a name without addresses"
"""


def coredns_binary() -> pathlib.Path:
    versions = dict(
        line.split("=", 1)
        for line in (ROOT / "testbed" / "versions.env").read_text().splitlines()
        if "=" in line
    )
    cache = pathlib.Path(os.environ.get("SIMPLEDB_CACHE", pathlib.Path.home() / ".cache" / "simpledb"))
    binary = cache / "testbed" / "bin" / f"coredns-{versions['COREDNS_VERSION']}" / "coredns"
    assert binary.is_file(), f"{binary} is missing: build the test bed with `make testbed`"
    return binary


def free_udp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (CoreDNS listens on both)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


@pytest.fixture(scope="module")
def nameserver(tmp_path_factory):
    """CoreDNS serving the zone example.test. on 127.0.0.1; its port."""
    workdir = tmp_path_factory.mktemp("coredns")
    (workdir / "example.test.zone").write_text(ZONE)
    port = free_udp_port()
    (workdir / "Corefile").write_text(
        f"example.test.:{port} {{\n  bind 127.0.0.1\n  file {workdir / 'example.test.zone'}\n}}\n"
    )
    log = open(workdir / "coredns.log", "w")
    process = subprocess.Popen(
        [str(coredns_binary()), "-conf", str(workdir / "Corefile")], cwd=workdir, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        query = dns.message.make_query("db.example.test.", "A")
        while True:
            assert process.poll() is None, (workdir / "coredns.log").read_text()
            try:
                dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
                break
            except dns.exception.Timeout:
                assert time.monotonic() < deadline, "CoreDNS did not answer within 30s"
        yield port
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.fixture
def silent_port():
    """A loopback UDP port that receives queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        yield sink.getsockname()[1]


# ------------------------------------------------------------------ DNS


def test_a_name_resolves_to_its_addresses(nameserver):
    result = probe_dns("db.example.test", nameservers=["127.0.0.1"], port=nameserver, timeout=3)

    assert result["status"] == RESOLVED
    assert result["resolved"] is True
    assert result["addresses"] == ["10.1.2.3", "fd00::5"]
    assert result["canonical_name"] == "db.example.test."
    assert result["nameservers"] == ["127.0.0.1"]
    assert result["msg"] == "db.example.test resolves to 10.1.2.3, fd00::5"


def test_addresses_are_sorted_and_cnames_followed(nameserver):
    multi = probe_dns("multi.example.test.", nameservers=["127.0.0.1"], port=nameserver)
    alias = probe_dns("alias.example.test.", nameservers=["127.0.0.1"], port=nameserver)

    assert multi["addresses"] == ["10.1.2.9", "10.1.2.10"]
    assert (alias["status"], alias["addresses"], alias["canonical_name"]) == (
        RESOLVED,
        ["10.1.2.3", "fd00::5"],
        "db.example.test.",
    )


def test_search_domains_complete_a_relative_name(nameserver):
    result = probe_dns(
        "db", nameservers=["127.0.0.1"], port=nameserver, search=["nothere.example.test", "example.test"]
    )

    assert (result["status"], result["canonical_name"]) == (RESOLVED, "db.example.test.")


def test_a_missing_name_is_nxdomain(nameserver):
    result = probe_dns("missing.example.test", nameservers=["127.0.0.1"], port=nameserver)

    assert (result["status"], result["resolved"], result["addresses"]) == (NXDOMAIN, False, [])
    assert result["msg"] == "missing.example.test does not exist (NXDOMAIN; tried missing.example.test.)"


def test_a_name_without_addresses_is_no_answer(nameserver):
    result = probe_dns("txtonly.example.test", nameservers=["127.0.0.1"], port=nameserver)

    assert (result["status"], result["resolved"]) == (NO_ANSWER, False)
    assert "exists but has no A or AAAA record" in result["msg"]


def test_a_refusing_nameserver_means_no_nameservers(nameserver):
    # CoreDNS serves only example.test. and answers REFUSED for any other zone.
    result = probe_dns("db.other.test", nameservers=["127.0.0.1"], port=nameserver)

    assert result["status"] == NO_NAMESERVERS
    assert f"127.0.0.1:{nameserver}" in result["msg"] and "REFUSED" in result["msg"]


def test_a_silent_nameserver_times_out(silent_port):
    started = time.monotonic()
    result = probe_dns("db.example.test", nameservers=["127.0.0.1"], port=silent_port, timeout=1)

    assert result["status"] == TIMEOUT
    assert 1 <= time.monotonic() - started < 5
    assert result["msg"].startswith(f"no answer for db.example.test within 1s from 127.0.0.1:{silent_port}")


def test_no_configured_nameserver(tmp_path):
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text("# no nameserver lines\nsearch example.test\n")

    result = probe_dns("db.example.test", resolv_conf=str(resolv_conf))

    assert result["status"] == NO_NAMESERVERS
    assert result["msg"] == f"no nameservers are configured ({resolv_conf} lists none): set the nameservers"


def test_the_nameservers_of_resolv_conf_are_used(nameserver, tmp_path):
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text("nameserver 127.0.0.1\n")

    result = probe_dns("db.example.test", port=nameserver, resolv_conf=str(resolv_conf))

    assert (result["status"], result["nameservers"]) == (RESOLVED, ["127.0.0.1"])


def test_dns_probe_through_ansible(nameserver, silent_port):
    found = run_module(
        "simpledb_probe",
        {"dns_name": "db.example.test", "nameservers": ["127.0.0.1"], "dns_port": nameserver},
    )
    missing = run_module(
        "simpledb_probe",
        {"dns_name": "missing.example.test", "dns_nameservers": ["127.0.0.1"], "dns_port": nameserver},
    )
    silent = run_module(
        "simpledb_probe",
        {
            "dns_name": "db.example.test",
            "dns_nameservers": ["127.0.0.1"],
            "dns_port": silent_port,
            "dns_timeout": 1,
        },
    )

    assert (found["changed"], found["dns"]["resolved"], found["dns"]["addresses"]) == (
        False,
        True,
        ["10.1.2.3", "fd00::5"],
    )
    assert found["server"] is None  # only dns_name: no version probe
    assert (missing.get("failed", False), missing["dns"]["status"]) == (False, NXDOMAIN)
    assert (silent.get("failed", False), silent["dns"]["status"]) == (False, TIMEOUT)


def test_invalid_dns_requests_fail_the_module():
    bad_server = run_module(
        "simpledb_probe", {"dns_name": "db.example.test", "dns_nameservers": ["ns.example.test"]}
    )
    bad_name = run_module(
        "simpledb_probe", {"dns_name": "a" * 64 + ".example.test", "dns_nameservers": ["127.0.0.1"]}
    )
    nothing = run_module("simpledb_probe", {})

    assert bad_server["failed"] and bad_server["msg"] == "nameserver 'ns.example.test' must be an IP address"
    assert bad_name["failed"] and "is not a valid DNS name" in bad_name["msg"]
    assert (
        nothing["failed"]
        and "one of the following is required: dns_name, login_host, login_unix_socket" in (nothing["msg"])
    )


# ------------------------------------------------------------------ the server


def login(server, **overrides):
    return {**server.login(), "login_unix_socket": None, "connect_timeout": 5, **overrides}


@pytest.fixture
def app_database(mariadb):
    name = f"probe_test_{os.getpid()}"
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    yield name
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE `{name}`")
    conn.close()


def server_version(server):
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()[0]
    conn.close()
    return version


def test_version_probe_reports_the_engine(mariadb):
    result = probe_server(login(mariadb), None, "simpledb_schema_history")
    version = server_version(mariadb)
    number = re.match(r"(\d+)\.(\d+)\.(\d+)", version)

    assert result["reachable"] is True
    assert result["error"] is None
    assert result["version"] == version
    assert result["version_number"] == number.group(0)
    assert result["major_minor"] == f"{number.group(1)}.{number.group(2)}"
    assert (result["read_only"], result["replication_role"]) == (False, "standalone")
    assert result["replication"] == {"replicas_connected": 0}
    assert (result["database_exists"], result["schema_version"]) == (None, None)
    assert result["msg"] == f"MariaDB {version} at 127.0.0.1:{mariadb.port}, standalone"


def test_schema_version_follows_the_history_table(mariadb, app_database):
    params = login(mariadb)

    def migrate(source, target):
        migrator = Migrator(lambda: connect_from_params(params, database=app_database), app_database)
        return migrator.run(None if source is None else load_mapping(source), target)

    missing = probe_server(params, "no_such_database", "simpledb_schema_history")
    empty = probe_server(params, app_database, "simpledb_schema_history")
    migrate(None, 1)
    baseline = probe_server(params, app_database, "simpledb_schema_history")
    migrate({"V2__t.sql": "CREATE TABLE t (id INT);"}, 2)
    migrated = probe_server(params, app_database, "simpledb_schema_history")
    with pytest.raises(MigrationFailed, match=r"V3__bad\.sql"):
        migrate({"V2__t.sql": "CREATE TABLE t (id INT);", "V3__bad.sql": "SELECT * FROM nowhere;"}, 3)
    after_failure = probe_server(params, app_database, "simpledb_schema_history")
    other_table = probe_server(params, app_database, "other_history")

    assert (missing["database_exists"], missing["schema_version"]) == (False, None)
    assert missing["msg"].endswith("no database 'no_such_database'")
    assert (empty["database_exists"], empty["history_table_exists"], empty["schema_version"]) == (
        True,
        False,
        None,
    )
    assert empty["msg"].endswith(f"no schema history in '{app_database}'")
    assert (baseline["history_table_exists"], baseline["schema_version"]) == (True, 1)
    assert migrated["schema_version"] == 2
    assert migrated["msg"].endswith("schema version 2")
    assert after_failure["schema_version"] == 2  # a failed migration does not count
    assert (other_table["history_table_exists"], other_table["schema_version"]) == (False, None)


def test_read_only_is_reported(mariadb):
    conn = mariadb.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL read_only = 1")
        result = probe_server(login(mariadb), None, "simpledb_schema_history")
    finally:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL read_only = 0")
        conn.close()

    assert result["read_only"] is True
    assert "read-only" in result["msg"]
    assert probe_server(login(mariadb), None, "simpledb_schema_history")["read_only"] is False


def test_replication_roles(mariadb_factory):
    primary = mariadb_factory(["--server-id=1", "--log-bin=mysql-bin", "--binlog-format=ROW"])
    replica = mariadb_factory(["--server-id=2", "--log-bin=mysql-bin", "--read-only=1"])
    # The replica starts from the primary's current position, as a replica seeded from a backup does.
    conn = primary.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.gtid_binlog_pos")
        position = cur.fetchone()[0]
    conn.close()
    conn = replica.connect()
    with conn.cursor() as cur:
        cur.execute("SET GLOBAL gtid_slave_pos = %s", (position,))
        cur.execute(
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %s, MASTER_USER = 'root', "
            "MASTER_PASSWORD = %s, MASTER_USE_GTID = slave_pos",
            (primary.port, primary.password),
        )
        cur.execute("START SLAVE")
    conn.close()
    deadline = time.monotonic() + 30
    while probe_server(login(primary), None, "simpledb_schema_history")["replication_role"] != "primary":
        assert time.monotonic() < deadline, "the replica did not connect within 30s"
        time.sleep(0.2)

    as_primary = probe_server(login(primary), None, "simpledb_schema_history")
    as_replica = probe_server(login(replica), None, "simpledb_schema_history")

    assert as_primary["replication"] == {"replicas_connected": 1}
    assert as_replica["replication_role"] == "replica"
    assert as_replica["read_only"] is True
    (source,) = as_replica["replication"]["sources"]
    assert (source["primary_host"], source["primary_port"], source["io_running"]) == (
        "127.0.0.1",
        primary.port,
        "Yes",
    )
    assert source["sql_running"] == "Yes"
    assert as_replica["replication"]["replicas_connected"] == 0


def test_a_user_without_monitor_privileges_still_gets_the_version(mariadb):
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE USER 'probe_plain'@'127.0.0.1' IDENTIFIED BY 'plain-pw'")
    try:
        result = probe_server(
            login(mariadb, login_user="probe_plain", login_password="plain-pw"),
            None,
            "simpledb_schema_history",
        )
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP USER 'probe_plain'@'127.0.0.1'")
        conn.close()

    assert result["reachable"] is True
    assert result["version"] == server_version(mariadb)
    assert result["replication_role"] is None
    assert "lacks the privilege to read replication status" in result["replication"]["error"]


def test_an_unreachable_port_is_a_result_not_an_error():
    port = free_port()
    result = probe_server(login_params_for_port(port), None, "simpledb_schema_history")

    assert (result["reachable"], result["error"]) == (False, UNREACHABLE)
    assert f"127.0.0.1:{port}" in result["msg"]
    assert result["version"] is None


def login_params_for_port(port):
    return {
        "login_host": "127.0.0.1",
        "login_port": port,
        "login_user": "root",
        "login_password": "x",
        "login_unix_socket": None,
        "connect_timeout": 2,
    }


def test_a_wrong_password_is_access_denied(mariadb):
    result = probe_server(login(mariadb, login_password="wrong"), None, "simpledb_schema_history")

    assert (result["reachable"], result["error"]) == (False, ACCESS_DENIED)
    assert "refused the login of user 'root'" in result["msg"]


def test_version_probe_through_ansible(mariadb, app_database):
    ok = run_module("simpledb_probe", {**mariadb.login(), "database": app_database})
    port = free_port()
    down = run_module("simpledb_probe", {**login_params_for_port(port), "connect_timeout": 2})
    down_strict = run_module(
        "simpledb_probe", {**login_params_for_port(port), "connect_timeout": 2, "fail_on_unreachable": True}
    )
    denied = run_module("simpledb_probe", {**mariadb.login(), "login_password": "wrong"})

    assert (ok.get("failed", False), ok["changed"], ok["dns"]) == (False, False, None)
    assert ok["server"]["version"] == server_version(mariadb)
    assert (ok["server"]["database_exists"], ok["server"]["schema_version"]) == (True, None)
    assert (down.get("failed", False), down["server"]["reachable"], down["server"]["error"]) == (
        False,
        False,
        UNREACHABLE,
    )
    assert down_strict["failed"] is True
    assert f"127.0.0.1:{port}" in down_strict["msg"]
    assert denied["failed"] is True
    assert denied["server"]["error"] == ACCESS_DENIED
    assert "refused the login of user 'root': check the password" in denied["msg"]
    for result in (ok, denied):
        assert mariadb.password not in repr(result)
        assert "wrong" not in repr(result["server"])


def test_login_resolved_probes_the_server_at_the_resolved_address(nameserver, mariadb):
    dns = {"dns_nameservers": ["127.0.0.1"], "dns_port": nameserver, "login_resolved": True}
    server = {k: v for k, v in mariadb.login().items() if k != "login_host"}
    found = run_module("simpledb_probe", {**server, **dns, "dns_name": "ns.example.test"})
    missing = run_module("simpledb_probe", {**server, **dns, "dns_name": "missing.example.test"})
    both = run_module("simpledb_probe", {**mariadb.login(), **dns, "dns_name": "ns.example.test"})
    no_name = run_module("simpledb_probe", {**server, "login_resolved": True})

    assert (found.get("failed", False), found["dns"]["addresses"]) == (False, ["127.0.0.1"])
    assert (found["server"]["reachable"], found["server"]["version"]) == (True, server_version(mariadb))
    assert (missing.get("failed", False), missing["dns"]["status"]) == (False, NXDOMAIN)
    assert missing["server"] is None
    assert both["failed"] and "mutually exclusive: login_resolved|login_host" in both["msg"]
    assert no_name["failed"] and "one of the following is required: dns_name" in no_name["msg"]


def test_check_mode_probes_too(mariadb):
    result = run_module("simpledb_probe", mariadb.login(), check=True)
    assert (result["changed"], result["server"]["reachable"]) == (False, True)
