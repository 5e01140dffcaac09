"""The role's simpledb_rolled_out filter: a StatefulSet's rollout is complete only when every
replica runs the current revision and is Ready, for the generation the controller has seen."""

import importlib.util

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location(
    "statefulset", ROOT / "roles/simpledb/filter_plugins/statefulset.py"
)
statefulset = importlib.util.module_from_spec(spec)
spec.loader.exec_module(statefulset)
rolled_out = statefulset.simpledb_rolled_out


def sts(generation=2, **status):
    done = {
        "observedGeneration": 2,
        "readyReplicas": 1,
        "updatedReplicas": 1,
        "currentRevision": "db-abc",
        "updateRevision": "db-abc",
    }
    return {"metadata": {"generation": generation}, "status": {**done, **status}}


def test_complete_rollout():
    assert rolled_out(sts(), 1)
    assert rolled_out(sts(readyReplicas=3, updatedReplicas=3), "3")


def test_incomplete_rollouts():
    assert not rolled_out(sts(generation=3), 1)  # the controller has not seen the change yet
    assert not rolled_out(sts(readyReplicas=0), 1)
    assert not rolled_out(sts(updatedReplicas=0), 1)
    assert not rolled_out(sts(updateRevision="db-def"), 1)
    assert not rolled_out(sts(), 3)
    assert not rolled_out({"metadata": {"generation": 1}}, 1)  # no status yet
    assert not rolled_out(None, 1)  # no StatefulSet
