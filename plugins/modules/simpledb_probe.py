#!/usr/bin/python
"""Ansible module simpledb_probe: DNS and version probe of a SimpleDB database."""

DOCUMENTATION = r"""
module: simpledb_probe
short_description: Probe a MariaDB database by DNS and by connecting to it
description:
  - Two independent probes; give the options of one or both (at least O(dns_name), O(login_host)
    or O(login_unix_socket)).
  - The B(DNS probe) (O(dns_name)) resolves a name to its addresses with dnspython and tells
    apart a name that resolves, one that does not exist (NXDOMAIN), one without address records,
    a timeout and the absence of a working nameserver.
  - The B(version probe) (O(login_host) or O(login_unix_socket)) logs in and reads the engine
    version, the application's schema version from the migrations history table, the read-only
    state and the replication role.
  - A server that cannot be reached is a result (RV(server.reachable=false)), not a failure,
    unless O(fail_on_unreachable) is set; the operator uses the probe to choose between install
    and upgrade. A server that answers but refuses the login always fails the task, since the
    credentials are wrong and neither installing nor upgrading would fix that.
  - The module never changes anything.
version_added: "0.1.0"
author: SimpleDB operator authors
extends_documentation_fragment:
  - simpledb_login
options:
  dns_name:
    description:
      - Name to resolve, for example C(simpledb.default.svc.cluster.local). A trailing dot makes it
        absolute; otherwise the search domains apply.
      - Without it, no DNS probe is made.
    type: str
  dns_nameservers:
    description:
      - IP addresses of the nameservers to ask, instead of those of C(/etc/resolv.conf).
      - Needed out of the cluster, where the cluster DNS is not the host's resolver.
      - An empty list means those of C(/etc/resolv.conf).
    type: list
    elements: str
    aliases: [nameservers]
  dns_port:
    description: UDP/TCP port of the nameservers.
    type: int
    default: 53
  dns_search:
    description:
      - Search domains for relative names, instead of those of C(/etc/resolv.conf).
    type: list
    elements: str
  dns_timeout:
    description: Seconds the whole resolution may take.
    type: float
    default: 5
  login_host:
    description:
      - Host name or IP address of the MariaDB server to probe, for example the DNS name of the
        pod through the headless Service (C(<name>-0.<name>-headless.<namespace>.svc.cluster.local)).
      - Unlike the other database modules this has no default; without it (and without
        O(login_unix_socket)) no version probe is made.
    type: str
    default: null
  database:
    description:
      - Application database whose schema version to read from the history table.
      - Without it, RV(server.schema_version) is null.
    type: str
  history_table:
    description: Name of the migrations history table in O(database) (see M(simpledb_migrations)).
    type: str
    default: simpledb_schema_history
  login_resolved:
    description:
      - Probe the server at the first address O(dns_name) resolves to, in the same run (one
        module run instead of a DNS probe and a version probe). No version probe is made when
        the name does not resolve.
      - Requires O(dns_name); excludes O(login_host) and O(login_unix_socket).
    type: bool
    default: false
  fail_on_unreachable:
    description:
      - Fail the task when the server cannot be reached. By default the result says so and the
        task succeeds.
    type: bool
    default: false
notes:
  - Supports check mode; the module reads only.
  - Replication role needs the C(REPLICA MONITOR) (or C(SUPER)) and C(PROCESS) privileges;
    without them RV(server.replication_role) is null and RV(server.replication.error) says why.
seealso:
  - module: simpledb_migrations
"""

EXAMPLES = r"""
- name: Probe the Service name and the database behind it
  simpledb_probe:
    dns_name: "{{ name }}.{{ namespace }}.svc.cluster.local"
    login_host: "{{ name }}-0.{{ name }}-headless.{{ namespace }}.svc.cluster.local"
    login_password: "{{ root_password }}"
    database: app
  register: probe
  no_log: true

- name: Install when nothing is there yet
  ansible.builtin.include_tasks: mariadb_install.yml
  when: not probe.dns.resolved or not probe.server.reachable

- name: DNS probe only, against the test bed's cluster DNS on loopback
  simpledb_probe:
    dns_name: simpledb.default.svc.cluster.local.
    dns_nameservers: [127.0.0.1]
    dns_port: 1053
    dns_timeout: 2

- name: Probe the server of a pod at the address its name resolves to
  simpledb_probe:
    dns_name: "{{ name }}-0.{{ name }}-headless.{{ namespace }}.svc.cluster.local"
    login_resolved: true
    login_password: "{{ root_password }}"
    database: app
  register: pod_probe
  no_log: true

- name: Version probe only; stop if the server is down
  simpledb_probe:
    login_host: 127.0.0.1
    login_password: "{{ root_password }}"
    fail_on_unreachable: true
  no_log: true
"""

RETURN = r"""
dns:
  description: Outcome of the DNS probe; null when O(dns_name) is not given.
  returned: always
  type: dict
  contains:
    name:
      description: The name asked for.
      type: str
      sample: simpledb.default.svc.cluster.local
    status:
      description:
        - C(resolved), C(nxdomain) (no such name), C(no_answer) (the name exists but has no
          address, such as a headless Service without ready endpoints), C(timeout) (no nameserver
          answered in time) or C(no_nameservers) (none configured, or all failed, for example with
          SERVFAIL or REFUSED).
      type: str
      sample: resolved
    resolved:
      description: Whether the name has at least one address.
      type: bool
      sample: true
    addresses:
      description: IPv4 and IPv6 addresses, sorted.
      type: list
      elements: str
      sample: [10.244.0.12]
    canonical_name:
      description: The name the addresses belong to, after search domains and CNAMEs.
      type: str
      sample: simpledb.default.svc.cluster.local.
    nameservers:
      description: The nameservers asked.
      type: list
      elements: str
      sample: [127.0.0.1]
    port:
      description: Their port.
      type: int
      sample: 53
    msg:
      description: The outcome in words.
      type: str
      sample: >-
        simpledb.default.svc.cluster.local does not exist
        (NXDOMAIN; tried simpledb.default.svc.cluster.local.)
server:
  description: Outcome of the version probe; null without O(login_host) and O(login_unix_socket).
  returned: always
  type: dict
  contains:
    address:
      description: C(host:port) or socket path probed.
      type: str
      sample: 127.0.0.1:3306
    reachable:
      description: Whether the login succeeded; the fields below are filled only then.
      type: bool
      sample: true
    error:
      description: C(unreachable) or C(access_denied) when RV(server.reachable) is false, else null.
      type: str
      sample: unreachable
    msg:
      description: The outcome in words, with the reason when not reachable.
      type: str
      sample: MariaDB 10.11.14-MariaDB-0+deb12u2 at 127.0.0.1:3306, standalone, schema version 3
    version:
      description: The version string the server reports (SELECT VERSION()), as is.
      type: str
      sample: 10.11.14-MariaDB-0+deb12u2
    version_number:
      description: The engine version as C(major.minor.patch).
      type: str
      sample: 10.11.14
    major_minor:
      description: The engine series, comparable with the SimpleDB's C(spec.engine.version).
      type: str
      sample: "10.11"
    database:
      description: O(database).
      type: str
      sample: app
    database_exists:
      description: Whether O(database) exists; null without O(database).
      type: bool
      sample: true
    history_table_exists:
      description: Whether the history table exists in O(database).
      type: bool
      sample: true
    schema_version:
      description:
        - Highest version applied successfully (or recorded as baseline) in the history table;
          null without O(database), without the database or without the table.
      type: int
      sample: 3
    read_only:
      description: Whether the server is read-only (C(@@GLOBAL.read_only)).
      type: bool
      sample: false
    replication_role:
      description:
        - C(replica) when a replication source is configured, C(primary) when replicas are
          connected, otherwise C(standalone). Null when the login user may not read it.
      type: str
      sample: standalone
    replication:
      description:
        - C(replicas_connected); for a replica, C(sources) with C(primary_host), C(primary_port),
          C(io_running), C(sql_running), C(seconds_behind_primary), C(gtid_io_pos), C(last_error);
          C(error) when the status could not be read.
      type: dict
      sample: {replicas_connected: 0}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.simpledb.connection import connection_argument_spec, require_pymysql
from ansible.module_utils.simpledb.dns import InvalidDnsRequest, probe_dns, require_dnspython
from ansible.module_utils.simpledb.migrations import DEFAULT_HISTORY_TABLE
from ansible.module_utils.simpledb.probe import ACCESS_DENIED, probe_server

try:
    import pymysql
except ImportError:  # reported by require_pymysql()
    pymysql = None


def argument_spec():
    spec = connection_argument_spec()
    # No default host: a task with only dns_name is a DNS probe.
    spec["login_host"] = {"type": "str"}
    spec.update(
        dns_name={"type": "str"},
        dns_nameservers={"type": "list", "elements": "str", "aliases": ["nameservers"]},
        dns_port={"type": "int", "default": 53},
        dns_search={"type": "list", "elements": "str"},
        dns_timeout={"type": "float", "default": 5},
        database={"type": "str"},
        history_table={"type": "str", "default": DEFAULT_HISTORY_TABLE},
        login_resolved={"type": "bool", "default": False},
        fail_on_unreachable={"type": "bool", "default": False},
    )
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_one_of=[("dns_name", "login_host", "login_unix_socket")],
        mutually_exclusive=[("login_resolved", "login_host"), ("login_resolved", "login_unix_socket")],
        supports_check_mode=True,
    )
    params = module.params
    result = {"changed": False, "dns": None, "server": None}

    if params["dns_name"]:
        require_dnspython(module)
        try:
            result["dns"] = probe_dns(
                params["dns_name"],
                nameservers=params["dns_nameservers"],
                port=params["dns_port"],
                search=params["dns_search"],
                timeout=params["dns_timeout"],
            )
        except InvalidDnsRequest as exc:
            module.fail_json(msg=str(exc), **result)
        if params["login_resolved"] and result["dns"]["addresses"]:
            params["login_host"] = result["dns"]["addresses"][0]

    if params["login_host"] or params["login_unix_socket"]:
        require_pymysql(module)
        try:
            server = probe_server(params, params["database"], params["history_table"])
        except pymysql.MySQLError as exc:
            module.fail_json(msg=f"Probing MariaDB failed after the login: {exc}", **result)
        result["server"] = server
        if server["error"] == ACCESS_DENIED:
            module.fail_json(msg=server["msg"], **result)
        if not server["reachable"] and params["fail_on_unreachable"]:
            module.fail_json(msg=server["msg"], **result)

    module.exit_json(**result)


if __name__ == "__main__":
    main()
