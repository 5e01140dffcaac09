"""The simpledb role's status.yml and a SimpleDBRestore's mark on the SimpleDB (status.restore),
on the test bed's API server: Restoring while the restore runs (Ready False), Degraded while the
last restore failed, Ready again once a later one succeeded.

status.yml runs alone (include_role tasks_from) with the facts the rest of the role would have
set, against a SimpleDB that no operator watches.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.cluster

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Run the simpledb role's status step
      ansible.builtin.include_role:
        name: simpledb
        tasks_from: status.yml
"""


def run_status(tmp_path, kubeconfig, kubectl, namespace, restore):
    kubectl.run(
        "patch",
        "-n",
        namespace,
        "simpledb/shop",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"restore": restore}}),
    )
    cr = kubectl.get("-n", namespace, "simpledb/shop")
    facts = {
        "ansible_operator_meta": {"name": "shop", "namespace": namespace},
        "_simpledb_cr": cr,
        "_simpledb_spec": {"paused": False},
        "_simpledb_refusal": "",
        "_simpledb_replicated": False,
        "_simpledb_primary_name": "shop-0",
        "_simpledb_service_dns_name": f"shop.{namespace}.svc.cluster.local",
        "_simpledb_server": {"reachable": True, "version": "10.11.19-MariaDB"},
        "_simpledb_secret_name": "shop-credentials",
        "_simpledb_image": "docker.io/library/mariadb:10.11",
    }
    (tmp_path / "facts.json").write_text(json.dumps(facts))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    bindir = os.path.dirname(sys.executable)
    result = subprocess.run(
        [f"{bindir}/ansible-playbook", str(tmp_path / "play.yml"), "-e", f"@{tmp_path / 'facts.json'}"],
        cwd=ROOT,
        env={**os.environ, "K8S_AUTH_KUBECONFIG": kubeconfig, "ANSIBLE_PYTHON_INTERPRETER": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return kubectl.get("-n", namespace, "simpledb/shop")


def condition(obj, kind):
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


@pytest.fixture
def shop(kubectl, namespace, simpledb_crds):
    manifest = {
        "apiVersion": "example.com/v1alpha1",
        "kind": "SimpleDB",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {"version": 1},
    }
    kubectl.run("apply", "-f", "-", input=yaml.safe_dump(manifest))


def test_a_restore_keeps_the_simpledb_restoring_then_degraded_until_one_succeeds(
    shop, tmp_path, kubeconfig, kubectl, namespace
):
    obj = run_status(
        tmp_path, kubeconfig, kubectl, namespace, {"name": "r1", "phase": "Running", "message": "x"}
    )
    assert obj["status"]["phase"] == "Restoring"
    assert obj["status"]["message"] == "Restoring (SimpleDBRestore r1)"
    assert condition(obj, "Ready")["status"] == "False" and condition(obj, "Ready")["reason"] == "Restoring"
    assert condition(obj, "Progressing")["status"] == "True"

    failed = {"name": "r1", "phase": "Failed", "message": "the data file does not match its manifest"}
    obj = run_status(tmp_path, kubeconfig, kubectl, namespace, failed)
    assert obj["status"]["phase"] == "Degraded"
    assert obj["status"]["message"] == "SimpleDBRestore r1 failed: the data file does not match its manifest"
    assert condition(obj, "Degraded")["status"] == "True"
    assert condition(obj, "Degraded")["reason"] == "RestoreFailed"
    # The server serves its unchanged data: Ready, but the phase says Degraded.
    assert condition(obj, "Ready")["status"] == "True"

    obj = run_status(
        tmp_path, kubeconfig, kubectl, namespace, {"name": "r2", "phase": "Succeeded", "message": "ok"}
    )
    assert obj["status"]["phase"] == "Ready"
    assert condition(obj, "Degraded")["status"] == "False"
    assert condition(obj, "Progressing")["status"] == "False"
    reasons = [
        e["reason"]
        for e in kubectl.get("-n", namespace, "events", "--field-selector=involvedObject.name=shop")["items"]
    ]
    assert sorted(reasons) == ["Ready", "RestoreFailed", "Restoring"]
