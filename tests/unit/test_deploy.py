"""The kustomize tree renders, every object is well formed, and the operator's Deployment is what
the design asks for (restricted pod security, no periodic resync, namespaced by default)."""

import subprocess

import pytest
import yaml

from tests.conftest import ROOT
from tests.fixtures.crds import built_testbed_bindir

OVERLAYS = [
    "deploy/default",
    "deploy/overlays/cluster-wide",
    "deploy/overlays/backup-volume",
    "deploy/samples",
]


def render(path: str) -> list[dict]:
    kubectl = f"{built_testbed_bindir()}/kubernetes-v1.36.3/kubectl"
    result = subprocess.run([kubectl, "kustomize", str(ROOT / path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.parametrize("path", OVERLAYS)
def test_renders_well_formed_objects(path):
    objects = render(path)
    assert objects
    for obj in objects:
        assert obj.get("apiVersion") and obj.get("kind"), obj
        assert obj["metadata"].get("name"), obj


def deployment(objects: list[dict]) -> dict:
    (found,) = [o for o in objects if o["kind"] == "Deployment"]
    return found


def test_operator_deployment_is_restricted_and_configured():
    objects = render("deploy/default")
    pod = deployment(objects)["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    (manager,) = pod["containers"]
    assert manager["securityContext"]["allowPrivilegeEscalation"] is False
    assert manager["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"requests", "limits"} <= set(manager["resources"])
    args = manager["args"]
    assert "--reconcile-period=0s" in args and "--leader-elect" in args
    assert any(a.startswith("--max-concurrent-reconciles=") for a in args)
    env = {e["name"]: e for e in manager["env"]}
    assert env["RELATED_IMAGE_MARIADB"]["value"].startswith("docker.io/library/mariadb:")
    assert env["WATCH_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    namespace = next(o for o in objects if o["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_rbac_is_namespaced_by_default_and_has_no_exec():
    objects = render("deploy/default")
    manager_roles = [o for o in objects if o["metadata"]["name"] == "simpledb-manager-role"]
    assert [o["kind"] for o in manager_roles] == ["Role"]
    for rule in manager_roles[0]["rules"]:
        assert "pods/exec" not in rule["resources"]
        assert "*" not in rule["verbs"]


def test_cluster_wide_overlay_binds_a_cluster_role():
    objects = render("deploy/overlays/cluster-wide")
    binding = next(o for o in objects if o["kind"] == "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "simpledb-manager-role",
    }
    env = deployment(objects)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "WATCH_NAMESPACE", "value": ""} in env


def test_seed_sample_is_verbatim():
    seed = yaml.safe_load((ROOT / "deploy/samples/example.com_v1alpha1_simpledb.yaml").read_text())
    assert seed == {
        "apiVersion": "example.com/v1alpha1",
        "kind": "SimpleDB",
        "metadata": {"name": "simpledb"},
        "spec": {"version": 1},
    }
