#!/usr/bin/python
"""Ansible module simpledb_observe: one look at a SimpleDB, summed up in a digest."""

DOCUMENTATION = r"""
module: simpledb_observe
short_description: Observe a SimpleDB's inputs, children and server in one pass and digest them
description:
  - Reads, in one process, what decides whether a reconcile of a SimpleDB has work to do, and
    returns a sha256 digest of it. When the digest equals O(previous_digest), the digest of the
    last run that found everything converged, nothing that run looked at has changed.
  - The digest covers O(inputs) (the spec and the settings of the operator, as the role passes
    them); the files under O(content_paths) (the tasks, templates and defaults of the role); the
    C(resourceVersion) of each of O(objects) and of the PersistentVolumeClaims that
    O(claim_selector) matches (any change to an object, its status included, changes it); the
    addresses O(service_dns_name) and O(server_dns_name) resolve to; the version probe of the
    server as root (engine version, read-only state, whether the database and the migrations
    history exist, schema version, replication role); and whether the application user can log
    in to its database with the password in the Secret.
  - Passwords come from the Secret O(secret_name) (keys C(root-password) and C(password)) and
    are never returned.
  - The module never changes anything.
version_added: "0.1.0"
author: SimpleDB operator authors
extends_documentation_fragment:
  - simpledb_k8s_auth
options:
  namespace:
    description: Namespace of the SimpleDB and its children.
    type: str
    required: true
  objects:
    description: Children to read by name.
    type: list
    elements: dict
    default: []
    suboptions:
      api_version:
        description: API version, such as C(apps/v1).
        type: str
        required: true
      kind:
        description: Kind, such as C(StatefulSet).
        type: str
        required: true
      name:
        description: Name of the object.
        type: str
        required: true
  claim_selector:
    description: Label selector of the data volume claims. Without it, no claims are read.
    type: str
    default: ""
  secret_name:
    description: Secret with the keys C(root-password) and C(password).
    type: str
    required: true
  service_dns_name:
    description: DNS name of the client Service.
    type: str
    required: true
  server_dns_name:
    description:
      - DNS name of the server's pod. The server is probed at the address it resolves to.
      - Ignored when O(login_host) is set.
    type: str
  login_host:
    description: Address of the server, instead of resolving O(server_dns_name).
    type: str
  login_port:
    description: TCP port of the server.
    type: int
    default: 3306
  dns_nameservers:
    description: IP addresses of the nameservers; an empty list means those of C(/etc/resolv.conf).
    type: list
    elements: str
    default: []
  dns_port:
    description: Port of the nameservers.
    type: int
    default: 53
  database:
    description: The application database.
    type: str
    required: true
  user:
    description: The application user.
    type: str
    required: true
  schema_version:
    description: The schema version the spec asks for; RV(healthy) needs the server at it.
    type: int
    required: true
  history_table:
    description: Name of the migrations history table.
    type: str
    default: simpledb_schema_history
  inputs:
    description: Anything else the digest must cover, such as the spec and the role's settings.
    type: raw
    default: {}
  content_paths:
    description: Files or directories whose contents the digest covers.
    type: list
    elements: path
    default: []
  previous_digest:
    description: The digest to compare with; RV(unchanged) says whether it is the same.
    type: str
    default: ""
notes:
  - Supports check mode.
seealso:
  - module: simpledb_probe
"""

EXAMPLES = r"""
- name: Observe the SimpleDB
  simpledb_observe:
    namespace: shop
    objects:
      - {api_version: apps/v1, kind: StatefulSet, name: shop}
      - {api_version: v1, kind: Service, name: shop}
    claim_selector: app.kubernetes.io/instance=shop
    secret_name: shop-credentials
    service_dns_name: shop.shop.svc.cluster.local
    server_dns_name: shop-0.shop-headless.shop.svc.cluster.local
    database: shop
    user: app
    inputs: "{{ _example_com_simpledb.spec }}"
    content_paths: ["{{ role_path }}"]
    previous_digest: "{{ _example_com_simpledb.status.convergedDigest | default('') }}"
  register: observed
"""

RETURN = r"""
digest:
  description: sha256 of everything observed.
  returned: always
  type: str
  sample: 9f2c…
unchanged:
  description: Whether RV(digest) equals O(previous_digest).
  returned: always
  type: bool
healthy:
  description:
    - Whether every object exists, claims were found, the Service resolves, the server answers
      writable at O(schema_version) and the application user logs in. Only such an observation
      should be recorded as converged, so that a later return to a broken state is not taken
      for one.
  returned: always
  type: bool
observed:
  description: What the digest covers, except O(inputs) and the contents, which appear as digests.
  returned: always
  type: dict
  sample:
    objects: {StatefulSet/shop: "4711", Service/shop: "4702"}
    claims: {data-shop-0: "4690"}
    service_addresses: [10.96.0.12]
    server_addresses: [10.244.0.7]
    server: {reachable: true, version: 10.11.14-MariaDB, schema_version: 3, read_only: false}
    user_login: ok
    grants_digest: 5e1a…
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.simpledb.connection import connection_argument_spec, require_pymysql
from ansible.module_utils.simpledb.dns import InvalidDnsRequest, probe_dns, require_dnspython
from ansible.module_utils.simpledb.k8s import (
    KubeAPI,
    KubernetesError,
    api_transport_from_params,
    auth_argument_spec,
)
from ansible.module_utils.simpledb.migrations import DEFAULT_HISTORY_TABLE
from ansible.module_utils.simpledb.observe import (
    SERVER_FACTS,
    claim_versions,
    content_digest,
    digest_of,
    is_healthy,
    login_outcome,
    object_versions,
    secret_values,
    user_grants,
)
from ansible.module_utils.simpledb.probe import probe_server

try:
    import pymysql
except ImportError:  # reported by require_pymysql()
    pymysql = None


def argument_spec():
    spec = auth_argument_spec()
    spec.update(
        namespace={"type": "str", "required": True},
        objects={
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {
                "api_version": {"type": "str", "required": True},
                "kind": {"type": "str", "required": True},
                "name": {"type": "str", "required": True},
            },
        },
        claim_selector={"type": "str", "default": ""},
        secret_name={"type": "str", "required": True, "no_log": False},
        service_dns_name={"type": "str", "required": True},
        server_dns_name={"type": "str"},
        login_host={"type": "str"},
        login_port={"type": "int", "default": 3306},
        dns_nameservers={"type": "list", "elements": "str", "default": []},
        dns_port={"type": "int", "default": 53},
        database={"type": "str", "required": True},
        user={"type": "str", "required": True},
        schema_version={"type": "int", "required": True},
        history_table={"type": "str", "default": DEFAULT_HISTORY_TABLE},
        inputs={"type": "raw", "default": {}},
        content_paths={"type": "list", "elements": "path", "default": []},
        previous_digest={"type": "str", "default": ""},
    )
    return spec


def resolve(module, name):
    try:
        dns = probe_dns(name, nameservers=module.params["dns_nameservers"], port=module.params["dns_port"])
    except InvalidDnsRequest as exc:
        module.fail_json(msg=str(exc))
    return dns["addresses"]


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_one_of=[("server_dns_name", "login_host")],
        supports_check_mode=True,
    )
    require_dnspython(module)
    require_pymysql(module)
    params = module.params
    namespace = params["namespace"]

    try:
        api = KubeAPI(api_transport_from_params(params))
        objects = object_versions(api, namespace, params["objects"])
        claims = claim_versions(api, namespace, params["claim_selector"]) if params["claim_selector"] else {}
        secret = api.get(api.resource("v1", "Secret"), params["secret_name"], namespace)
    except KubernetesError as exc:
        module.fail_json(msg=f"Reading the SimpleDB's objects failed: {exc}")
    passwords = secret_values(secret, ("root-password", "password"))
    objects[f"Secret/{params['secret_name']}"] = secret["metadata"]["resourceVersion"] if secret else None

    service_addresses = resolve(module, params["service_dns_name"])
    server_addresses = (
        [params["login_host"]] if params["login_host"] else resolve(module, params["server_dns_name"])
    )
    server = {"reachable": False}
    user_login = "not tried"
    grants: list[str] = []
    if server_addresses and "root-password" in passwords:
        login = {
            **{key: spec.get("default") for key, spec in connection_argument_spec().items()},
            "login_host": server_addresses[0],
            "login_port": params["login_port"],
            "login_password": passwords["root-password"],
            "connect_timeout": 5,
        }
        try:
            probe = probe_server(login, params["database"], params["history_table"])
        except pymysql.MySQLError as exc:
            # Whatever the server said, the full reconcile looks again and reports it.
            probe = {"reachable": False, "error": f"probe failed: {exc}"}
        server = {fact: probe.get(fact) for fact in SERVER_FACTS}
        if probe["reachable"]:
            user_login = login_outcome(
                server_addresses[0],
                params["login_port"],
                params["user"],
                passwords.get("password"),
                params["database"],
            )
            grants = user_grants(
                server_addresses[0], params["login_port"], passwords["root-password"], params["user"]
            )

    observed = {
        "objects": objects,
        "claims": claims,
        "service_addresses": service_addresses,
        "server_addresses": server_addresses,
        "server": server,
        "user_login": user_login,
        # The first grant holds the password hash: only its digest is returned.
        "grants_digest": digest_of(grants),
    }
    digest = digest_of(
        {**observed, "inputs": params["inputs"], "content": content_digest(params["content_paths"])}
    )
    module.exit_json(
        changed=False,
        digest=digest,
        unchanged=bool(params["previous_digest"]) and digest == params["previous_digest"],
        healthy=is_healthy(observed, params["schema_version"]),
        observed=observed,
    )


if __name__ == "__main__":
    main()
