"""The pod runtime (design section 8, issue 5): a real mariadbd behind every MariaDB pod."""

import os
import secrets
import subprocess
import time
from pathlib import Path

import dns.resolver
import kubernetes
import pymysql
import pytest
import yaml

from testbed.podruntime.images import is_mariadb_image, parse_image, unpinned, version_mismatch
from tests.fixtures.cluster import TestBed, cluster_sh, wait_for

ROOT_PASSWORD = "root-'pw\\1"
APP_PASSWORD = "app-pw-2"
READY_TIMEOUT = 120


# -- image rules (no cluster) -----------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    ["mariadb:10.11", "docker.io/library/mariadb:10.11.19", "mariadb:10.11-jammy", "mariadb:10.11.5-ubi9",
     "mariadb:10", "quay.io/x/mariadb:10.11@sha256:" + "a" * 64],
)  # fmt: skip
def test_image_matching_the_local_server(image):
    assert is_mariadb_image(image)
    assert version_mismatch(image, "10.11.19") is None


@pytest.mark.parametrize("image", ["mariadb:11.4", "mariadb:10.6", "mariadb:11", "mariadb:11.4.5-noble"])
def test_image_of_another_version_is_refused(image):
    message = version_mismatch(image, "10.11.19")
    assert message is not None
    assert "this test bed runs 10.11.19" in message


@pytest.mark.parametrize("image", ["mariadb", "mariadb:latest", "mariadb:lts", "mariadb@sha256:" + "b" * 64])
def test_unpinned_image_is_accepted(image):
    assert version_mismatch(image, "10.11.19") is None
    assert unpinned(image)


def test_image_parsing():
    ref = parse_image("registry.local:5000/library/mariadb:10.11@sha256:abc")
    assert (ref.repository, ref.tag, ref.digest) == (
        "registry.local:5000/library/mariadb",
        "10.11",
        "sha256:abc",
    )
    assert parse_image("registry.local:5000/mariadb").tag is None
    assert not is_mariadb_image("mysql:8.0")
    assert not is_mariadb_image("example/mariadb-operator:1.0")


# -- helpers ----------------------------------------------------------------------------------


def database_manifests(
    name: str = "db",
    image: str = "docker.io/library/mariadb:10.11",
    extra_env: list | None = None,
    config: str | None = None,
    args: list | None = None,
) -> str:
    """A Secret, a headless Service and a one-replica StatefulSet as an operator would render them."""
    env = [
        {
            "name": "MARIADB_ROOT_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": f"{name}-creds", "key": "root"}},
        },
        {"name": "MARIADB_DATABASE", "value": "app_db"},
        {"name": "MARIADB_USER", "value": "app"},
        {"name": "MARIADB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": f"{name}-creds", "key": "app"}}},
        *(extra_env or []),
    ]
    container = {
        "name": "mariadb",
        "image": image,
        "env": env,
        "ports": [{"containerPort": 3306, "name": "mysql"}],
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/mysql"}],
    }
    volumes = []
    docs = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-creds"},
         "stringData": {"root": ROOT_PASSWORD, "app": APP_PASSWORD}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{name}-headless"},
         "spec": {"clusterIP": "None", "selector": {"app": name},
                  "ports": [{"port": 3306, "name": "mysql"}]}},
    ]  # fmt: skip
    if config is not None:
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-config"},
                     "data": {"custom.cnf": config}})  # fmt: skip
        container["volumeMounts"].append({"name": "config", "mountPath": "/etc/mysql/conf.d"})
        volumes.append({"name": "config", "configMap": {"name": f"{name}-config"}})
    if args:
        container["args"] = args
    docs.append({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "serviceName": f"{name}-headless",
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 30, "containers": [container], "volumes": volumes},
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    })  # fmt: skip
    return yaml.safe_dump_all(docs)


def ready_pod(core, namespace: str, name: str, not_uid: str | None = None, timeout: float = READY_TIMEOUT):
    """Wait until pod `name` (another one than `not_uid`) is Running and Ready; return it."""

    def find():
        for pod in core.list_namespaced_pod(namespace).items:
            conditions = {c.type: c.status for c in pod.status.conditions or []}
            if (
                pod.metadata.name == name
                and pod.metadata.uid != not_uid
                and pod.metadata.deletion_timestamp is None
                and pod.status.phase == "Running"
                and conditions.get("Ready") == "True"
            ):
                return pod
        return None

    return wait_for(find, timeout=timeout, what=f"pod {namespace}/{name} Ready")


def events(core, namespace: str, pod: str) -> list:
    return [e for e in core.list_namespaced_event(namespace).items if e.involved_object.name == pod]


def connect(host: str, user: str = "root", password: str = ROOT_PASSWORD, **kwargs) -> pymysql.Connection:
    return pymysql.connect(host=host, port=3306, user=user, password=password, autocommit=True,
                           connect_timeout=5, **kwargs)  # fmt: skip


def query(conn: pymysql.Connection, sql: str, args: tuple = ()) -> tuple:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def server_processes(state_dir: Path, namespace: str | None = None) -> dict[int, str]:
    """pid -> command line of the mariadbd processes of the test bed at `state_dir`."""
    marker = str(state_dir / "pods" / (namespace or "")) + ("/" if namespace else "")
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode()
            with open(f"/proc/{entry}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if cmdline.startswith("mariadbd ") and marker in cmdline and not zombie:
            found[int(entry)] = cmdline
    return found


@pytest.fixture
def core(k8s_client):
    return kubernetes.client.CoreV1Api(k8s_client)


@pytest.fixture
def second_namespace(request, core):
    name = f"t2-{secrets.token_hex(4)}"
    core.create_namespace({"metadata": {"name": name}})
    wait_for(
        lambda: core.list_namespaced_service_account(name, field_selector="metadata.name=default").items,
        what=f"namespace {name} ServiceAccount",
    )
    yield name
    core.delete_namespace(name, propagation_policy="Background")


# -- against the test bed ---------------------------------------------------------------------


@pytest.mark.podruntime
def test_statefulset_serves_root_and_app_logins_by_dns_name(cluster: TestBed, core, namespace, dns_resolver):
    started = time.monotonic()
    cluster.kubectl_run("-n", namespace, "apply", "-f", "-", input=database_manifests())
    pod = ready_pod(core, namespace, "db-0")
    print(f"db-0 Ready {time.monotonic() - started:.1f} s after the StatefulSet was applied")

    name = f"db-0.db-headless.{namespace}.svc.cluster.local"

    def resolves() -> list[str]:
        # The pod's record appears once CoreDNS has seen its EndpointSlice, which can lag its readiness.
        try:
            return [r.to_text() for r in dns_resolver.resolve(name, "A")]
        except dns.resolver.NXDOMAIN:
            return []

    address = wait_for(resolves, what=name)
    assert address == [pod.status.pod_ip]
    with connect(address[0]) as root:
        version, hostname, bind = query(root, "SELECT VERSION(), @@hostname, @@bind_address")[0]
        assert version.startswith("10.11.")
        assert hostname == "db-0"
        assert bind == pod.status.pod_ip
        hosts = {row[0] for row in query(root, "SELECT host FROM mysql.user WHERE user = 'root'")}
        assert hosts == {"%", "localhost"}
    with connect(address[0], "app", APP_PASSWORD, database="app_db") as app:
        query(app, "CREATE TABLE t (id INT PRIMARY KEY)")
        with pytest.raises(pymysql.err.OperationalError, match="denied"):
            query(app, "CREATE DATABASE other")


@pytest.mark.podruntime
def test_data_survives_pod_deletion(cluster: TestBed, core, namespace):
    cluster.kubectl_run("-n", namespace, "apply", "-f", "-", input=database_manifests())
    first = ready_pod(core, namespace, "db-0")
    with connect(first.status.pod_ip, "app", APP_PASSWORD, database="app_db") as app:
        query(app, "CREATE TABLE t (v VARCHAR(20))")
        query(app, "INSERT INTO t VALUES ('kept')")
    servers_before = server_processes(cluster.state_dir, namespace)
    assert len(servers_before) == 1

    cluster.kubectl_run("-n", namespace, "delete", "pod", "db-0", "--wait=true", timeout=120)
    assert not set(server_processes(cluster.state_dir, namespace)) & set(servers_before), (
        "old server survived"
    )
    second = ready_pod(core, namespace, "db-0", not_uid=first.metadata.uid)
    with connect(second.status.pod_ip, "app", APP_PASSWORD, database="app_db") as app:
        assert query(app, "SELECT v FROM t") == (("kept",),)


@pytest.mark.podruntime
def test_two_namespaces_get_independent_servers(cluster: TestBed, core, namespace, second_namespace):
    for ns in (namespace, second_namespace):
        cluster.kubectl_run("-n", ns, "apply", "-f", "-", input=database_manifests())
    pods = {ns: ready_pod(core, ns, "db-0") for ns in (namespace, second_namespace)}
    assert pods[namespace].status.pod_ip != pods[second_namespace].status.pod_ip
    for ns, pod in pods.items():
        with connect(pod.status.pod_ip) as root:
            query(root, "CREATE TABLE app_db.owner (ns VARCHAR(63))")
            query(root, "INSERT INTO app_db.owner VALUES (%s)", (ns,))
    for ns, pod in pods.items():
        with connect(pod.status.pod_ip) as root:
            assert query(root, "SELECT ns FROM app_db.owner") == ((ns,),)
    assert len(server_processes(cluster.state_dir, namespace)) == 1
    assert len(server_processes(cluster.state_dir, second_namespace)) == 1


@pytest.mark.podruntime
def test_mounted_config_and_args_reach_the_server(cluster: TestBed, core, namespace):
    manifests = database_manifests(
        config="[mariadbd]\nmax_connections = 77\n", args=["--innodb-buffer-pool-size=48M"]
    )
    cluster.kubectl_run("-n", namespace, "apply", "-f", "-", input=manifests)
    pod = ready_pod(core, namespace, "db-0")
    with connect(pod.status.pod_ip) as root:
        assert query(root, "SELECT @@max_connections, @@innodb_buffer_pool_size") == ((77, 48 * 1024 * 1024),)


@pytest.mark.podruntime
def test_env_from_files_config_maps_and_fields(cluster: TestBed, core, namespace):
    pod_manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "single"},
        "spec": {
            "containers": [{
                "name": "db",
                "image": "mariadb:10.11.19",
                "env": [
                    {"name": "MARIADB_ROOT_PASSWORD_FILE", "value": "/run/secrets/db/root"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "MARIADB_DATABASE", "value": "db_$(POD_NAME)"},
                    {"name": "MARIADB_USER",
                     "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "user"}}},
                    {"name": "MARIADB_PASSWORD", "value": APP_PASSWORD},
                    {"name": "MARIADB_INITDB_SKIP_TZINFO", "value": "1"},
                ],
                "volumeMounts": [{"name": "secret", "mountPath": "/run/secrets/db", "readOnly": True}],
            }],
            "volumes": [{"name": "secret", "secret": {"secretName": "root-secret"}}],
        },
    }  # fmt: skip
    docs = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "root-secret"},
            "stringData": {"root": "from-file"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"user": "cm_user"},
        },
        pod_manifest,
    ]
    cluster.kubectl_run("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump_all(docs))
    pod = ready_pod(core, namespace, "single")
    with connect(pod.status.pod_ip, password="from-file") as root:
        assert ("db_single",) in query(root, "SHOW DATABASES")
        # No emptyDir/PVC for /var/lib/mysql: the data lives in a per-pod directory.
        datadir = query(root, "SELECT @@datadir")[0][0]
        assert datadir == str(cluster.state_dir / "run" / pod.metadata.uid[:13] / "emptydir-data") + "/"
    with connect(pod.status.pod_ip, "cm_user", APP_PASSWORD, database="db_single"):
        pass


@pytest.mark.podruntime
def test_crashing_config_leaves_the_pod_not_ready(cluster: TestBed, core, namespace):
    cluster.kubectl_run(
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=database_manifests(config="[mariadbd]\nno-such-option = 1\n"),
    )

    def restarted():
        pods = [p for p in core.list_namespaced_pod(namespace).items if p.metadata.name == "db-0"]
        statuses = pods[0].status.container_statuses if pods else None
        return pods[0] if statuses and statuses[0].restart_count >= 2 else None

    pod = wait_for(restarted, timeout=READY_TIMEOUT, what="db-0 restarted twice")
    status = pod.status.container_statuses[0]
    assert not status.ready
    assert status.last_state.terminated.exit_code != 0
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "False"
    assert any(e.reason == "BackOff" and e.type == "Warning" for e in events(core, namespace, "db-0"))
    error_log = cluster.state_dir / "pods" / namespace / "db-0" / "entrypoint.log"
    assert "no-such-option" in error_log.read_text()


@pytest.mark.podruntime
def test_image_of_another_version_gets_a_warning_event(cluster: TestBed, core, namespace):
    cluster.kubectl_run("-n", namespace, "apply", "-f", "-", input=database_manifests(image="mariadb:11.4"))

    def warning():
        return [e for e in events(core, namespace, "db-0") if e.reason == "ImageVersionMismatch"]

    event = wait_for(warning, timeout=READY_TIMEOUT, what="ImageVersionMismatch event")[0]
    assert event.type == "Warning"
    assert "image mariadb:11.4 needs MariaDB 11.4; this test bed runs 10.11." in event.message
    pod = core.read_namespaced_pod("db-0", namespace)
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "False"
    assert pod.status.container_statuses[0].state.waiting.reason == "ImageVersionMismatch"
    assert server_processes(cluster.state_dir, namespace) == {}


@pytest.mark.podruntime
def test_auto_upgrade_runs_mariadb_upgrade_on_older_data(cluster: TestBed, core, namespace):
    manifests = database_manifests(extra_env=[{"name": "MARIADB_AUTO_UPGRADE", "value": "1"}])
    cluster.kubectl_run("-n", namespace, "apply", "-f", "-", input=manifests)
    first = ready_pod(core, namespace, "db-0")
    claim = core.read_namespaced_persistent_volume_claim("data-db-0", namespace)
    datadir = Path(core.read_persistent_volume(claim.spec.volume_name).spec.host_path.path)
    # As if the volume had been written by MariaDB 10.6: the next start must upgrade it.
    (datadir / "mysql_upgrade_info").write_text("10.6.20-MariaDB")

    cluster.kubectl_run("-n", namespace, "delete", "pod", "db-0", "--wait=true", timeout=120)
    second = ready_pod(core, namespace, "db-0", not_uid=first.metadata.uid)
    assert second.metadata.annotations["testbed.simpledb.example.com/upgraded-from"] == "10.6.20-MariaDB"
    assert any(e.reason == "MariaDBUpgraded" for e in events(core, namespace, "db-0"))
    assert (datadir / "mysql_upgrade_info").read_text().startswith("10.11.")
    assert (datadir / "system_mysql_backup_10.6.20-MariaDB.sql.zst").exists()
    with connect(second.status.pod_ip, "app", APP_PASSWORD, database="app_db") as app:
        query(app, "SELECT 1")


@pytest.mark.podruntime
def test_down_leaves_no_server_behind(tmp_path, cluster: TestBed):
    """A separate test bed instance (own state, names, ranges): `down` stops its servers."""
    state = tmp_path / "state"
    env = {
        "SIMPLEDB_TESTBED_STATE": str(state),
        "SIMPLEDB_TESTBED_NAME": "sdbdown",
        "SIMPLEDB_TESTBED_POD_CIDR": "10.247.0.0/16",
        "SIMPLEDB_TESTBED_SERVICE_CIDR": "10.99.0.0/16",
        "SIMPLEDB_TESTBED_LINK_PREFIX": "10.243.252",
        "SIMPLEDB_TESTBED_PV_POOL": "1Gi=2",
    }
    try:
        cluster_sh("up", env=env)
        kubeconfig = str(state / "kubeconfig")
        kubectl = [cluster.kubectl, "--kubeconfig", kubeconfig, "-n", "default"]
        subprocess.run([*kubectl, "apply", "-f", "-"], input=database_manifests(), text=True, check=True,
                       capture_output=True)  # fmt: skip
        client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
        ready_pod(kubernetes.client.CoreV1Api(client), "default", "db-0")
        client.close()
        servers = server_processes(state)
        assert len(servers) == 1
    finally:
        cluster_sh("down", env=env)
    assert server_processes(state) == {}
    assert (
        "sdbdown-pods" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    )
    assert not os.path.exists("/etc/netns/sdbdown-pods")


def single_pod(name: str, env: list) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "mariadb", "image": "mariadb:10.11", "env": env}]},
    })  # fmt: skip


@pytest.mark.podruntime
def test_no_root_password_option_fails_like_the_image(cluster: TestBed, core, namespace):
    cluster.kubectl_run("-n", namespace, "apply", "-f", "-", input=single_pod("nopw", []))

    def failed():
        pod = core.read_namespaced_pod("nopw", namespace)
        statuses = pod.status.container_statuses or []
        return statuses[0] if statuses and statuses[0].last_state.terminated else None

    status = wait_for(failed, timeout=READY_TIMEOUT, what="nopw terminated")
    assert not status.ready
    assert "password option is not specified" in status.last_state.terminated.message


@pytest.mark.podruntime
def test_server_without_remote_users_is_ready(cluster: TestBed, core, namespace):
    """Readiness means the server answers clients, even when it refuses this host's login."""
    env = [
        {"name": "MARIADB_ROOT_PASSWORD", "value": "x"},
        {"name": "MARIADB_ROOT_HOST", "value": "localhost"},
    ]
    cluster.kubectl_run("-n", namespace, "apply", "-f", "-", input=single_pod("local", env))
    pod = ready_pod(core, namespace, "local")
    with pytest.raises(pymysql.err.OperationalError, match="not allowed to connect"):
        connect(pod.status.pod_ip, password="x")
