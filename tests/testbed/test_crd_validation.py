"""The CRDs on the real API server: every invalid spec in tests/data/invalid_specs.yaml is rejected
with an error naming its field; the seed CR and every sample are accepted."""

import copy
import json

import pytest
import yaml

from tests.conftest import ROOT

CASES = yaml.safe_load((ROOT / "tests/data/invalid_specs.yaml").read_text())
pytestmark = pytest.mark.cluster


def merge(base: dict, change: dict) -> dict:
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def test_the_list_is_long_enough():
    assert len(CASES) >= 20
    kinds = {case["object"]["kind"] for case in CASES}
    assert kinds == {"SimpleDB", "SimpleDBBackup", "SimpleDBRestore"}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_invalid_spec_is_rejected_naming_the_field(case, kubectl, simpledb_crds, namespace):
    obj = copy.deepcopy(case["object"])
    obj["apiVersion"] = "example.com/v1alpha1"
    obj["metadata"] = {"name": case["name"], "namespace": namespace}
    if "update" in case:
        kubectl.run("create", "-f", "-", input=json.dumps(obj))
        result = kubectl.run(
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
            input=json.dumps(merge(obj, case["update"])),
            check=False,
        )
    else:
        result = kubectl.run("create", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)
    assert result.returncode != 0, f"{case['name']} was accepted"
    assert f"{case['field']}:" in result.stderr or f"{case['field']} " in result.stderr, result.stderr


def test_seed_and_samples_are_accepted(kubectl, simpledb_crds, namespace):
    result = kubectl.run("apply", "--dry-run=server", "-n", namespace, "-k", str(ROOT / "deploy/samples"))
    assert result.stdout.count("(server dry run)") == 8


def test_seed_cr_gets_the_defaults(kubectl, simpledb_crds, namespace):
    seed = (ROOT / "deploy/samples/example.com_v1alpha1_simpledb.yaml").read_text()
    kubectl.run("create", "-n", namespace, "-f", "-", input=seed)
    spec = kubectl.get("-n", namespace, "simpledb/simpledb")["spec"]
    assert spec == {
        "version": 1,
        "replicas": 1,
        "storage": {"size": "1Gi"},
        "user": "app",
        "paused": False,
        "deletionPolicy": "Retain",
        "backupBeforeDelete": False,
        "replication": {
            "autoFailover": True,
            "failoverGracePeriodSeconds": 10,
            "rebuildDiverged": False,
            "switchoverTimeoutSeconds": 60,
        },
    }


def test_printer_columns_and_short_names(kubectl, simpledb_crds, namespace):
    seed = (ROOT / "deploy/samples/example.com_v1alpha1_simpledb.yaml").read_text()
    kubectl.run("create", "-n", namespace, "-f", "-", input=seed)
    header = kubectl.run("get", "sdb", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "READY", "PHASE", "ENGINE", "SCHEMA", "AGE"]
    assert kubectl.run("get", "sdbb,sdbr", "-n", namespace).returncode == 0


def test_explain_shows_field_descriptions(kubectl, simpledb_crds):
    text = kubectl.run("explain", "simpledb.spec.storage.size").stdout
    assert "never shrink" in text
