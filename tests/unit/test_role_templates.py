"""The simpledb role's templates, rendered by Ansible itself: well-formed objects, owner
references, the restricted Pod Security Standard, and OpenShift's variant without a fixed UID."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

CR = {
    "apiVersion": "example.com/v1alpha1",
    "kind": "SimpleDB",
    "metadata": {"name": "shop-db", "namespace": "apps", "uid": "0000-1111", "generation": 1},
    "spec": {
        "version": 1,
        "storage": {"size": "2Gi"},
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}},
        "config": "max_connections = 300",
        "deletionPolicy": "Delete",
    },
}


def render(tmp_path, cr, openshift):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), RELATED_IMAGE_MARIADB="mariadb:10.11")
    extra = {"cr": cr, "openshift": openshift, "out_dir": str(tmp_path)}
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            str(ROOT / "tests/data/render_simpledb.yml"),
            "-e",
            json.dumps(extra),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return {p.stem: yaml.safe_load(p.read_text()) for p in tmp_path.glob("*.yaml")}


@pytest.fixture(scope="module")
def kubernetes_objects(tmp_path_factory):
    return render(tmp_path_factory.mktemp("k8s"), CR, openshift=False)


@pytest.fixture(scope="module")
def openshift_objects(tmp_path_factory):
    return render(tmp_path_factory.mktemp("ocp"), CR, openshift=True)


def test_every_object_is_namespaced_and_named(kubernetes_objects):
    assert len(kubernetes_objects) == 8
    for obj in kubernetes_objects.values():
        assert obj["apiVersion"] and obj["kind"]
        assert obj["metadata"]["namespace"] == "apps"
        assert obj["metadata"]["name"].startswith("shop-db")


def test_children_are_owned_except_the_secret(kubernetes_objects):
    # Exactly the fields ansible-operator's proxy injects, so that it never adds a second one.
    for name, obj in kubernetes_objects.items():
        refs = obj["metadata"].get("ownerReferences", [])
        if obj["kind"] == "Secret":
            assert refs == [], "the credentials Secret must outlive the SimpleDB under Retain"
        else:
            assert refs == [
                {
                    "apiVersion": "example.com/v1alpha1",
                    "kind": "SimpleDB",
                    "name": "shop-db",
                    "uid": "0000-1111",
                }
            ], name


def test_statefulset_runs_the_configured_server(kubernetes_objects):
    sts = kubernetes_objects["statefulsets_mariadb"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "mariadb:10.11"
    env = {e["name"]: e for e in container["env"]}
    assert env["MARIADB_ROOT_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "shop-db-credentials",
        "key": "root-password",
    }
    # The operator creates the database and user on the primary (so that they replicate): the
    # image's init would write them to each server's own binary log.
    assert "MARIADB_DATABASE" not in env and "MARIADB_USER" not in env
    # A server_id per pod: 1000<ordinal>.
    assert container["args"] == ["--server-id=1000$(SIMPLEDB_POD_INDEX)"]
    assert env["SIMPLEDB_POD_INDEX"]["valueFrom"]["fieldRef"] == {
        "fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"
    }
    assert env["MARIADB_AUTO_UPGRADE"]["value"] == "1"
    assert container["resources"] == CR["spec"]["resources"]
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert sts["spec"]["serviceName"] == "shop-db-headless"


def test_config_reaches_the_server_and_rolls_pods(kubernetes_objects):
    cnf = kubernetes_objects["configmaps_config"]["data"]["simpledb.cnf"]
    assert "[mariadbd]" in cnf and "max_connections = 300" in cnf
    annotations = kubernetes_objects["statefulsets_mariadb"]["spec"]["template"]["metadata"]["annotations"]
    assert len(annotations["simpledb.example.com/config-sha256"]) == 64


def test_pod_meets_the_restricted_standard(kubernetes_objects):
    pod = kubernetes_objects["statefulsets_mariadb"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsUser"] == 999
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert "privileged" not in sc and "hostPort" not in json.dumps(container["ports"])
    assert not any(k in pod for k in ("hostNetwork", "hostPID", "hostIPC"))


def test_openshift_pods_carry_no_fixed_ids(openshift_objects):
    security = openshift_objects["statefulsets_mariadb"]["spec"]["template"]["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(security)


def test_secret_holds_generated_passwords(kubernetes_objects):
    secret = kubernetes_objects["secrets_credentials"]
    assert secret["stringData"] == {
        "root-password": "root-secret",
        "password": "app-secret",
        "replication-password": "replication-secret",
    }
