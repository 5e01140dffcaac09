#!/usr/bin/python
"""Ansible module simpledb_replication: one primary and asynchronous GTID replicas."""

DOCUMENTATION = r"""
module: simpledb_replication
short_description: Converge a group of MariaDB servers to one primary and GTID replicas
description:
  - Takes the servers of one database (the pods of a SimpleDB's StatefulSet, in ordinal order)
    and the name of the current primary, and makes it so - the primary accepts writes and owns
    the replication user, every other server is C(read_only) and replicates from the primary with
    C(CHANGE MASTER ... MASTER_USE_GTID=slave_pos).
  - Only what differs is changed, so a second run with nothing changed reports C(changed=false).
  - B(Switchover) (O(switchover_to)) - the planned move of the primary - makes the primary
    read-only, waits until the new primary has applied everything, promotes it and points the
    others at it. Nothing acknowledged is lost. If the new primary does not catch up within
    O(wait_timeout), the old primary accepts writes again and the task fails.
  - B(Failover) (O(failover)) - the caller decided that the primary is lost - makes every
    reachable replica apply what it has received, then promotes the most advanced one (highest
    GTID sequence number; the lowest ordinal on a tie). A former primary that is reachable is
    promoted again only if it is strictly ahead of every replica, so nothing it acknowledged is
    thrown away needlessly.
  - A server that returns after losing the primary role (it starts read-only) rejoins as a
    replica from its own GTID position. If it holds transactions the primary lacks (it
    I(diverged)), it is not connected and its state and message name the GTIDs it has of its own;
    with O(rebuild_diverged) it is rebuilt as a clone of the primary (see below), which discards
    them.
  - An empty server is seeded by replaying the primary's binary log from its beginning. When the
    primary's binary log no longer starts at its first transaction, it is seeded by I(cloning) the
    primary if O(database) is given - its own databases and binary log are dropped, the primary's
    accounts (except root, mariadb.sys and healthcheck) are copied, the database O(database) is
    copied from one consistent snapshot (through a temporary directory of the host that runs the
    module) and the server replicates from the GTID position of that snapshot. Without O(database)
    its state is C(NotSeedable).
  - Servers the module cannot log in to are reported C(Unreachable) and left alone.
version_added: "0.2.0"
author: SimpleDB operator authors
options:
  servers:
    description:
      - Every server of the group, in ordinal order.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the server (the pod's name).
        type: str
        required: true
      host:
        description:
          - DNS name the other servers use to reach it, for example
            C(<name>-1.<name>-headless.<namespace>.svc.cluster.local). It is the C(MASTER_HOST)
            of the replicas when this server is the primary.
        type: str
        required: true
      address:
        description:
          - Where the module connects to it. Default - O(servers[].host), resolved through
            O(dns_nameservers) when they are given.
        type: str
      port:
        description: Its TCP port; default O(login_port).
        type: int
      ready:
        description:
          - Whether the server may be contacted (its pod is Ready). False means C(Unreachable).
        type: bool
        default: true
  primary:
    description:
      - Name of the current primary. Default - the first server.
    type: str
  switchover_to:
    description:
      - Name of the server that should become the primary by a planned switchover. Nothing is done
        when it already is the primary.
    type: str
  failover:
    description:
      - The primary is lost (the caller judged its pod gone or not Ready for too long). Promote the
        most advanced server.
    type: bool
    default: false
  replication_user:
    description: User the replicas log in to the primary as; created on the primary.
    type: str
    default: simpledb_replication
  replication_password:
    description: Its password. Never logged or returned.
    type: str
    required: true
  dns_nameservers:
    description:
      - IP addresses of the nameservers that resolve the servers' host names for the module's own
        connections (out of the cluster, the cluster's DNS). Empty - the system resolver.
    type: list
    elements: str
    default: []
  dns_port:
    description: Port of O(dns_nameservers).
    type: int
    default: 53
  login_user:
    description: User the module logs in to every server as; it needs all privileges (root).
    type: str
    default: root
  login_password:
    description: Password of O(login_user). Never logged or returned.
    type: str
  login_port:
    description: TCP port of the servers without O(servers[].port).
    type: int
    default: 3306
  connect_timeout:
    description: Seconds to wait for each connection and login.
    type: int
    default: 5
  connect_retry:
    description: Seconds a replica waits before reconnecting to its primary (C(MASTER_CONNECT_RETRY)).
    type: int
    default: 2
  caught_up_seconds:
    description: A replica at most this many seconds behind is C(Streaming); more is C(CatchingUp).
    type: int
    default: 5
  database:
    description:
      - The application database, copied when a server is seeded or rebuilt by cloning the primary.
        The primary must hold no other non-system database. Not given - no cloning.
    type: str
  rebuild_diverged:
    description:
      - Rebuild a C(Diverged) server as a clone of the primary (needs O(database)), discarding the
        transactions of its own that the primary lacks; RV(actions) names their GTIDs.
    type: bool
    default: false
  known_states:
    description:
      - Each server's state as last recorded (the SimpleDB's C(status.replicas)), by name. A server
        whose state becomes C(Diverged) or C(NotSeedable) is listed in RV(transitions) only when its
        recorded state was another one, so that the caller warns once per transition.
    type: dict
    default: {}
  wait_timeout:
    description:
      - Seconds a switchover waits for the new primary to apply everything, a failover for each
        replica to apply what it received, and a (re)connected replica to catch up.
    type: int
    default: 60
notes:
  - Does not support check mode.
  - The servers need C(log_bin), C(log_slave_updates), distinct C(server_id)s and GTIDs (MariaDB 10.0
    or later); the SimpleDB role's configuration sets them.
requirements:
  - PyMySQL
seealso:
  - module: simpledb_probe
"""

EXAMPLES = r"""
- name: One primary (db-0) and two replicas
  simpledb_replication:
    servers:
      - {name: db-0, host: db-0.db-headless.shop.svc.cluster.local}
      - {name: db-1, host: db-1.db-headless.shop.svc.cluster.local}
      - {name: db-2, host: db-2.db-headless.shop.svc.cluster.local}
    primary: db-0
    login_password: "{{ root_password }}"
    replication_password: "{{ replication_password }}"
  no_log: true

- name: The primary's pod is gone - promote the most advanced replica
  simpledb_replication:
    servers: "{{ servers }}"
    primary: db-0
    failover: true
    login_password: "{{ root_password }}"
    replication_password: "{{ replication_password }}"
  register: topology
  no_log: true

- name: Planned switchover to db-2
  simpledb_replication:
    servers: "{{ servers }}"
    primary: db-0
    switchover_to: db-2
    login_password: "{{ root_password }}"
    replication_password: "{{ replication_password }}"
  no_log: true
"""

RETURN = r"""
primary:
  description: Name of the primary after the run.
  returned: always
  type: str
  sample: db-1
primary_reachable:
  description: Whether the primary could be logged in to (and so accepts writes).
  returned: always
  type: bool
  sample: true
failover:
  description: The failover done in this run (C(from), C(to), C(position), C(reason)), else null.
  returned: always
  type: dict
  sample: {from: db-0, to: db-1, position: "0-10001-57"}
switchover:
  description: The switchover done in this run (C(from), C(to), C(position)), else null.
  returned: always
  type: dict
  sample: null
actions:
  description: What was changed, in words, in order (for Events).
  returned: always
  type: list
  elements: str
  sample: ["db-2: replicates from db-1 from GTID position 0-10000-12"]
transitions:
  description:
    - Servers that became C(Diverged) or C(NotSeedable) in this run (their state in O(known_states)
      was another one), each with C(name), C(state) and C(message), for a Warning Event each.
  returned: always
  type: list
  elements: dict
  sample: [{name: db-0, state: Diverged, message: "it holds transactions the primary db-1 lacks ..."}]
servers:
  description: Every server in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The server's name.
      type: str
    role:
      description: C(primary) or C(replica).
      type: str
    state:
      description:
        - C(Primary) for the primary, C(Unreachable) for a server that could not be logged in to.
        - For a replica C(Streaming) (caught up), C(CatchingUp), C(Connecting), C(Error) (a
          replication thread stopped), C(Diverged) (it has transactions the primary lacks) or
          C(NotSeedable).
      type: str
    read_only:
      description: C(@@read_only); null when unreachable.
      type: bool
    lag_seconds:
      description: C(Seconds_Behind_Master) of a replica; null for the primary or when unknown.
      type: int
    gtid_position:
      description: C(@@gtid_current_pos).
      type: str
    message:
      description: The state in words.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.simpledb import replication as repl
from ansible.module_utils.simpledb.connection import ConnectionFailed, connect, require_pymysql
from ansible.module_utils.simpledb.dns import InvalidDnsRequest, probe_dns, require_dnspython
from ansible.module_utils.simpledb.seed import SeedError, clone, discarded_gtids

try:
    import pymysql
except ImportError:  # reported by require_pymysql()
    pymysql = None


def argument_spec():
    return {
        "servers": {
            "type": "list",
            "elements": "dict",
            "required": True,
            "options": {
                "name": {"type": "str", "required": True},
                "host": {"type": "str", "required": True},
                "address": {"type": "str"},
                "port": {"type": "int"},
                "ready": {"type": "bool", "default": True},
            },
        },
        "primary": {"type": "str"},
        "switchover_to": {"type": "str"},
        "failover": {"type": "bool", "default": False},
        "replication_user": {"type": "str", "default": "simpledb_replication"},
        "replication_password": {"type": "str", "required": True, "no_log": True},
        "dns_nameservers": {"type": "list", "elements": "str", "default": []},
        "dns_port": {"type": "int", "default": 53},
        "login_user": {"type": "str", "default": "root"},
        "login_password": {"type": "str", "no_log": True},
        "login_port": {"type": "int", "default": 3306},
        "connect_timeout": {"type": "int", "default": 5},
        "connect_retry": {"type": "int", "default": 2},
        "caught_up_seconds": {"type": "int", "default": 5},
        "database": {"type": "str"},
        "rebuild_diverged": {"type": "bool", "default": False},
        "known_states": {"type": "dict", "default": {}},
        "wait_timeout": {"type": "int", "default": 60},
    }


class Topology:
    """The run: connections to every server, the decisions, and what was done."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.servers: list[repl.Server] = []
        self.actions: list[str] = []
        self.changed = False
        self.failover: dict | None = None
        self.switchover: dict | None = None
        self.primary = ""
        self.states: dict[str, tuple[str, str]] = {}

    def connect_all(self) -> None:
        for spec in self.params["servers"]:
            server = repl.Server(
                name=spec["name"],
                host=spec["host"],
                address=spec["address"] or spec["host"],
                port=spec["port"] or self.params["login_port"],
            )
            self.servers.append(server)
            if not spec["ready"]:
                server.error = "its pod is not Ready"
                continue
            if not spec["address"] and self.params["dns_nameservers"]:
                try:
                    answer = probe_dns(
                        spec["host"], nameservers=self.params["dns_nameservers"], port=self.params["dns_port"]
                    )
                except InvalidDnsRequest as exc:
                    self.fail(str(exc))
                if not answer["resolved"]:
                    server.error = answer["msg"]
                    continue
                server.address = answer["addresses"][0]
            try:
                server.conn = self.connect(server)
                repl.inspect(server)
            except (ConnectionFailed, pymysql.err.OperationalError) as exc:
                server.error = str(exc)
                self.close(server)

    def connect(self, server: repl.Server, **kwargs) -> object:
        return connect(
            host=server.address,
            port=server.port,
            user=self.params["login_user"],
            password=self.params["login_password"],
            connect_timeout=self.params["connect_timeout"],
            **kwargs,
        )

    def clone_primary(self, server: repl.Server, primary: repl.Server, why: str) -> bool:
        """Seed or rebuild ``server`` as a copy of the primary (seed.py). False when it failed;
        its state then says why and the next run tries again."""
        try:
            copied = clone(
                primary.conn,
                server.conn,
                lambda **kwargs: self.connect(primary, **kwargs),
                lambda **kwargs: self.connect(server, **kwargs),
                self.params["database"],
                primary.binlog_state,
            )
        except (SeedError, ConnectionFailed, pymysql.MySQLError) as exc:
            self.changed = True
            self.states[server.name] = (repl.NOT_SEEDABLE, f"cloning {primary.name} failed: {exc}")
            return False
        repl.inspect(server)
        self.did(
            f"{server.name}: {why}: cloned {primary.name}'s database {self.params['database']} "
            f"({copied['tables']} tables, {copied['rows']} rows) and {len(copied['accounts'])} accounts "
            f"at GTID position {copied['position'] or 'empty'}"
        )
        return True

    def close(self, server: repl.Server) -> None:
        if server.conn is not None:
            server.conn.close()
            server.conn = None

    def by_name(self, name: str) -> repl.Server:
        for server in self.servers:
            if server.name == name:
                return server
        self.fail(f"{name!r} is not one of the servers ({', '.join(s.name for s in self.servers)})")

    def fail(self, msg: str) -> None:
        for server in self.servers:
            self.close(server)
        self.module.fail_json(msg=msg, changed=self.changed, actions=self.actions)

    def did(self, action: str) -> None:
        self.changed = True
        self.actions.append(action)

    def adopt_writable_primary(self) -> None:
        """Every server starts read-only and only the operator makes one writable, so a single
        writable server that replicates from nobody is the primary, even when the caller's record
        is older (a run that promoted it and failed before recording it)."""
        recorded = self.by_name(self.primary)
        writable = [s for s in self.servers if s.reachable and not s.read_only and not s.slave]
        if len(writable) == 1 and writable[0] is not recorded:
            self.primary = writable[0].name
            self.actions.append(
                f"{writable[0].name} is the writable primary, not {recorded.name} as recorded: "
                "it stays the primary"
            )

    def switch_over(self, target_name: str) -> None:
        old, target = self.by_name(self.primary), self.by_name(target_name)
        if not old.reachable or not target.reachable:
            down = old if not old.reachable else target
            self.fail(
                f"switchover from {old.name} to {target.name} needs both servers: {down.name} cannot be "
                f"reached ({down.error}); a lost primary is replaced by failover instead"
            )
        if not repl.replicates_from(target, old, self.params["replication_user"]):
            self.fail(
                f"switchover to {target.name} refused: it does not replicate from the primary {old.name} yet "
                f"(state {repl.replica_state(target, self.params['caught_up_seconds'])[0]}); "
                "retry once it is Streaming"
            )
        repl.set_read_only(old, True)
        repl.inspect(old)
        position = old.binlog_pos
        if not repl.wait_applied(target, position, self.params["wait_timeout"]):
            repl.set_read_only(old, False)
            self.fail(
                f"switchover to {target.name} cancelled: it did not apply the primary's position {position} "
                f"within {self.params['wait_timeout']} s; {old.name} stays the primary and accepts "
                "writes again"
            )
        repl.make_primary(target)
        repl.inspect(target)
        self.primary = target.name
        self.switchover = {"from": old.name, "to": target.name, "position": position}
        self.did(f"switched the primary over from {old.name} to {target.name} at GTID position {position}")

    def fail_over(self) -> None:
        lost = self.by_name(self.primary)
        candidates = [s for s in self.servers if s.reachable and s is not lost]
        if not candidates:
            self.actions.append(
                f"the primary {lost.name} is lost and no other server can be reached: nothing to promote"
            )
            return
        for server in candidates:
            repl.drain_relay_log(server, self.params["wait_timeout"])
        order = {s.name: i for i, s in enumerate(self.servers)}
        best = max(candidates, key=lambda s: (repl.position_key(s.position), -order[s.name]))
        if lost.reachable and repl.position_key(lost.position) > repl.position_key(best.position):
            self.actions.append(
                f"the primary {lost.name} is back and ahead of every replica ({lost.current_pos}): "
                "it stays the primary"
            )
            return
        repl.make_primary(best)
        repl.inspect(best)
        self.primary = best.name
        self.failover = {"from": lost.name, "to": best.name, "position": best.current_pos}
        self.did(
            f"failed over from {lost.name} to {best.name}, the most advanced replica (GTID position "
            f"{best.current_pos or 'empty'})"
        )

    def converge(self) -> None:
        primary = self.by_name(self.primary)
        user, password = self.params["replication_user"], self.params["replication_password"]
        for server in self.servers:
            if server.reachable and server is not primary and repl.set_read_only(server, True):
                self.did(f"{server.name}: read-only")
        if not primary.reachable:
            for server in self.servers:
                self.states[server.name] = self._state(server, primary)
            return
        if repl.make_primary(primary):
            self.did(f"{primary.name}: accepts writes as the primary")
        if repl.ensure_replication_user(primary, user, password):
            self.did(f"{primary.name}: replication user {user} ready")
        repl.inspect(primary)
        seedable: bool | None = None
        for server in self.servers:
            if server is primary or not server.reachable:
                continue
            diverged_while_replicating = (
                repl.replicates_from(server, primary, user)
                and repl.replica_state(server, self.params["caught_up_seconds"])[0] == repl.DIVERGED
            )
            if not repl.replicates_from(server, primary, user) or diverged_while_replicating:
                position = server.position
                if diverged_while_replicating or (
                    position and not repl.contains(primary.binlog_state, position)
                ):
                    discarded = (
                        ", ".join(discarded_gtids(position, primary.binlog_state, server.slave_pos)) or "none"
                    )
                    if not (self.params["rebuild_diverged"] and self.params["database"]):
                        self.states[server.name] = (
                            repl.DIVERGED,
                            f"it holds transactions the primary {primary.name} lacks (its position "
                            f"{repl.format_position(position)}, the primary's {primary.binlog_pos}; "
                            f"its own GTIDs: {discarded}): rebuild it (spec.replication.rebuildDiverged: "
                            "true clones the primary and discards them)",
                        )
                        continue
                    if not self.clone_primary(
                        server, primary, f"rebuilt from the primary, discarding its own GTIDs {discarded}"
                    ):
                        continue
                elif not position and primary.binlog_state:
                    seedable = repl.binlog_complete(primary) if seedable is None else seedable
                    if not seedable and not self.params["database"]:
                        self.states[server.name] = (
                            repl.NOT_SEEDABLE,
                            "it is empty and the primary's binary log no longer starts at its first "
                            "transaction, so it cannot be seeded by replication",
                        )
                        continue
                    if not seedable and not self.clone_primary(
                        server, primary, "seeded (the primary's binary log does not reach back to its start)"
                    ):
                        continue
                repl.point_to(server, primary, user, password, self.params["connect_retry"])
                self.did(
                    f"{server.name}: replicates from {primary.name} from GTID position "
                    f"{server.current_pos or 'empty (seeding from the beginning)'}"
                )
                repl.wait_caught_up(server, self.params["caught_up_seconds"], self.params["wait_timeout"])
            elif self._stopped_cleanly(server):
                repl.execute(server.conn, "START SLAVE")
                self.did(f"{server.name}: replication restarted")
                repl.wait_caught_up(server, self.params["caught_up_seconds"], self.params["wait_timeout"])
        for server in self.servers:
            if server.name not in self.states:
                self.states[server.name] = self._state(server, primary)

    @staticmethod
    def _stopped_cleanly(server: repl.Server) -> bool:
        """A replication thread is stopped without an error (STOP SLAVE, or a failover's drain of the
        relay log that kept the primary): starting it again is safe."""
        slave = server.slave
        return (
            "No" in (slave.get("Slave_IO_Running"), slave.get("Slave_SQL_Running"))
            and not int(slave.get("Last_IO_Errno") or 0)
            and not int(slave.get("Last_SQL_Errno") or 0)
        )

    def _state(self, server: repl.Server, primary: repl.Server) -> tuple[str, str]:
        if not server.reachable:
            return repl.UNREACHABLE, server.error
        if server is primary:
            return "Primary", "accepts writes"
        return repl.replica_state(server, self.params["caught_up_seconds"])

    def report(self) -> list[dict]:
        rows = []
        for server in self.servers:
            state, message = self.states.get(server.name) or self._state(server, self.by_name(self.primary))
            lag = server.slave.get("Seconds_Behind_Master") if server.slave else None
            rows.append(
                {
                    "name": server.name,
                    "role": "primary" if server.name == self.primary else "replica",
                    "state": state,
                    "read_only": server.read_only if server.reachable else None,
                    "lag_seconds": int(lag) if lag is not None and server.name != self.primary else None,
                    "gtid_position": server.current_pos,
                    "message": message,
                }
            )
        return rows

    def transitions(self, servers: list[dict]) -> list[dict]:
        known = self.params["known_states"]
        return [
            {"name": row["name"], "state": row["state"], "message": row["message"]}
            for row in servers
            if row["state"] in (repl.DIVERGED, repl.NOT_SEEDABLE) and known.get(row["name"]) != row["state"]
        ]

    def run(self) -> dict:
        self.connect_all()
        self.primary = self.params["primary"] or self.servers[0].name
        self.by_name(self.primary)
        self.adopt_writable_primary()
        try:
            switchover_to = self.params["switchover_to"]
            if switchover_to and switchover_to != self.primary:
                self.switch_over(switchover_to)
            elif self.params["failover"]:
                self.fail_over()
            self.converge()
            servers = self.report()
        except pymysql.MySQLError as exc:
            self.fail(f"replication change failed: {exc}; the next run resumes from the servers' state")
        primary_reachable = self.by_name(self.primary).reachable
        for server in self.servers:
            self.close(server)
        return {
            "changed": self.changed or self.primary != (self.params["primary"] or self.servers[0].name),
            "primary": self.primary,
            "primary_reachable": primary_reachable,
            "failover": self.failover,
            "switchover": self.switchover,
            "actions": self.actions,
            "transitions": self.transitions(servers),
            "servers": servers,
        }


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=False)
    require_pymysql(module)
    if module.params["dns_nameservers"]:
        require_dnspython(module)
    if not module.params["servers"]:
        module.fail_json(msg="servers is empty: give at least the primary")
    module.exit_json(**Topology(module).run())


if __name__ == "__main__":
    main()
