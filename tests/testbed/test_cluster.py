"""The local control plane (design section 8, issue 4): kwok cluster, pod network, DNS, volumes."""

import ipaddress
import json
import os
import subprocess

import kubernetes
import pytest

from tests.fixtures.cluster import TestBed, cluster_sh, parse_env, wait_for

pytestmark = pytest.mark.cluster

WEB_MANIFEST = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80, name: http}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "registry.example/web:1.0"}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""


def process_alive(pid: int) -> bool:
    """True for a running process (a zombie waiting for its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def bound_volume(core, namespace: str, claim: str = "data"):
    def find():
        claims = core.list_namespaced_persistent_volume_claim(namespace).items
        return next((c for c in claims if c.metadata.name == claim and c.status.phase == "Bound"), None)

    return wait_for(find, what=f"PVC {claim} Bound")


def test_server_version(cluster: TestBed):
    out = cluster.kubectl_run("version", "-o", "json").stdout
    assert json.loads(out)["serverVersion"]["gitVersion"] == "v1.36.3"


def test_node_ip_is_inside_the_pod_network(cluster: TestBed, k8s_client):
    nodes = kubernetes.client.CoreV1Api(k8s_client).list_node().items
    assert len(nodes) == 1
    addresses = {a.type: a.address for a in nodes[0].status.addresses}
    assert addresses["InternalIP"] == cluster.settings()["link_prefix"] + ".2"


def test_service_and_pod_ranges_are_distinct(cluster: TestBed, k8s_client, namespace):
    core = kubernetes.client.CoreV1Api(k8s_client)
    service = core.create_namespaced_service(
        namespace, {"metadata": {"name": "plain"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}
    )
    settings = cluster.settings()
    assert ipaddress.ip_address(service.spec.cluster_ip) in ipaddress.ip_network(settings["service_cidr"])
    assert not ipaddress.ip_network(settings["service_cidr"]).overlaps(
        ipaddress.ip_network(settings["pod_cidr"])
    )


def test_statefulset_gets_volume_pod_and_dns(cluster: TestBed, k8s_client, namespace, dns_resolver):
    cluster.kubectl_run("-n", namespace, "apply", "-f", "-", input=WEB_MANIFEST)
    core = kubernetes.client.CoreV1Api(k8s_client)

    pvc = bound_volume(core, namespace, "data-web-0")
    assert pvc.status.capacity["storage"] == "1Gi"
    volume = core.read_persistent_volume(pvc.spec.volume_name)
    assert volume.spec.host_path.path.startswith(str(cluster.state_dir / "volumes"))

    def ready_pod():
        for pod in core.list_namespaced_pod(namespace).items:
            conditions = {c.type: c.status for c in pod.status.conditions or []}
            if (
                pod.metadata.name == "web-0"
                and pod.status.phase == "Running"
                and conditions.get("Ready") == "True"
            ):
                return pod
        return None

    pod = wait_for(ready_pod, what="pod web-0 Running and Ready")
    assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(cluster.settings()["pod_cidr"])

    def resolves(name: str) -> list[str]:
        try:
            return [r.to_text() for r in dns_resolver.resolve(name, "A")]
        except Exception:
            return []

    service_name = f"web.{namespace}.svc.cluster.local"
    assert wait_for(lambda: resolves(service_name), what=service_name) == [pod.status.pod_ip]
    assert resolves(f"web-0.web.{namespace}.svc.cluster.local") == [pod.status.pod_ip]


def test_dns_answers_only_the_cluster_domain(dns_resolver):
    import dns.resolver

    with pytest.raises((dns.resolver.NoNameservers, dns.resolver.NoAnswer, dns.resolver.NXDOMAIN)):
        dns_resolver.resolve("example.com", "A")


def test_cluster_ip_route_is_unreachable(cluster: TestBed):
    kubernetes_service = str(ipaddress.ip_network(cluster.settings()["service_cidr"])[1])
    result = subprocess.run(["ip", "route", "get", kubernetes_service], capture_output=True, text=True)
    assert result.returncode != 0
    assert "no route to host" in result.stderr.lower()


def test_up_twice_is_a_no_op(cluster: TestBed):
    result = cluster_sh("up")
    assert "already up" in result.stderr
    assert cluster_sh("status").returncode == 0


def test_env_prints_exports(cluster: TestBed):
    values = parse_env(cluster_sh("env").stdout)
    assert values["KUBECONFIG"] == cluster.kubeconfig
    assert os.access(os.path.join(values["PATH"].split(":")[0], "kubectl"), os.X_OK)
    assert int(values["SIMPLEDB_DNS_PORT"]) == cluster.dns_port


def test_down_with_nothing_up(tmp_path):
    env = {"SIMPLEDB_TESTBED_STATE": str(tmp_path / "state"), "SIMPLEDB_TESTBED_NAME": "sdbnothing"}
    result = cluster_sh("down", env=env)
    assert "nothing to stop" in result.stderr
    assert cluster_sh("status", env=env, check=False).returncode == 1


def test_separate_instance_up_and_down(tmp_path, cluster: TestBed):
    """A second, isolated instance (own state, netns, ranges, ports) comes up and goes away cleanly."""
    env = {
        "SIMPLEDB_TESTBED_STATE": str(tmp_path / "state"),
        "SIMPLEDB_TESTBED_NAME": "sdbiso",
        "SIMPLEDB_TESTBED_POD_CIDR": "10.245.0.0/16",
        "SIMPLEDB_TESTBED_SERVICE_CIDR": "10.97.0.0/16",
        "SIMPLEDB_TESTBED_LINK_PREFIX": "10.243.254",
        "SIMPLEDB_TESTBED_PV_POOL": "1Gi=2",
    }
    try:
        cluster_sh("up", env=env)
        assert cluster_sh("status", env=env).returncode == 0
        pid_files = list((tmp_path / "state").glob("kwok/clusters/sdbiso/pids/*.pid"))
        pid_files.append(tmp_path / "state" / "coredns.pid")
        pids = [int(p.read_text()) for p in pid_files]
        assert len(pids) == 6
    finally:
        cluster_sh("down", env=env)
    assert "sdbiso-pods" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    survivors = [pid for pid in pids if process_alive(pid)]
    assert survivors == []
    assert not (tmp_path / "state").exists()
    # The shared test bed is untouched.
    assert cluster_sh("status").returncode == 0


CLAIM_AND_POD = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: user}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{name: app, image: "registry.example/app:1.0"}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
"""


def test_expansion_raises_pv_and_pvc_capacity(cluster: TestBed, k8s_client, namespace):
    cluster.kubectl_run("-n", namespace, "apply", "-f", "-", input=CLAIM_AND_POD)
    core = kubernetes.client.CoreV1Api(k8s_client)
    claim = bound_volume(core, namespace)
    cluster.kubectl_run(
        "-n", namespace, "patch", "pvc", "data", "-p", '{"spec":{"resources":{"requests":{"storage":"3Gi"}}}}'
    )
    wait_for(
        lambda: (
            core.read_namespaced_persistent_volume_claim("data", namespace).status.capacity["storage"]
            == "3Gi"
        ),
        what="PVC capacity 3Gi",
    )
    assert core.read_persistent_volume(claim.spec.volume_name).spec.capacity["storage"] == "3Gi"


def test_deleted_claim_takes_its_data_away(cluster: TestBed, k8s_client, namespace):
    cluster.kubectl_run("-n", namespace, "apply", "-f", "-", input=CLAIM_AND_POD)
    core = kubernetes.client.CoreV1Api(k8s_client)
    volume = core.read_persistent_volume(bound_volume(core, namespace).spec.volume_name)
    data_dir = volume.spec.host_path.path
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "table.ibd"), "w") as f:
        f.write("rows")

    cluster.kubectl_run("-n", namespace, "delete", "pod", "user", "--wait=true")
    cluster.kubectl_run("-n", namespace, "delete", "pvc", "data", "--wait=true")

    def volume_gone():
        names = {v.metadata.name for v in core.list_persistent_volume().items}
        return volume.metadata.name not in names

    wait_for(volume_gone, what=f"released volume {volume.metadata.name} deleted")
    assert not os.path.exists(data_dir)
    # The pool is topped up again: a new 1Gi claim still gets a 1Gi volume.
    cluster.kubectl_run("-n", namespace, "apply", "-f", "-", input=CLAIM_AND_POD)
    assert bound_volume(core, namespace).status.capacity["storage"] == "1Gi"
