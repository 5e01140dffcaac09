"""Which watch events reach the queue: the primary predicates and DependentPredicate."""

from testbed.runner.controller import (
    dependent_update_passes,
    objects_in_result,
    owner_keys,
    primary_update_passes,
)
from testbed.runner.watches import GVK, Watch

PROBE = GVK("conformance.example.com", "v1alpha1", "Probe")


def cr(generation=1, labels=None, annotations=None, status=None, rv="1"):
    return {
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "generation": generation,
            "labels": labels or {},
            "annotations": annotations or {},
            "resourceVersion": rv,
        },
        "spec": {},
        "status": status or {},
    }


def test_primary_runs_on_generation_changes_only():
    watch = Watch(gvk=PROBE)
    assert primary_update_passes(watch, None, cr())  # creation
    assert primary_update_passes(watch, cr(1), cr(2))  # spec change or deletion started
    assert not primary_update_passes(watch, cr(1), cr(1, status={"x": 1}, rv="2"))
    assert not primary_update_passes(watch, cr(1), cr(1, labels={"a": "b"}, rv="2"))
    assert not primary_update_passes(watch, cr(1), cr(1, annotations={"a": "b"}, rv="2"))
    # Kinds without generations pass every update (NoGenerationPredicate).
    assert primary_update_passes(watch, cr(0), cr(0, labels={"a": "b"}, rv="2"))


def test_primary_with_annotation_changes_and_a_selector():
    watch = Watch(
        gvk=PROBE,
        watch_annotations_changes=True,
        selector={
            "matchLabels": {"app": "db"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["test"]}],
        },
    )
    db = {"app": "db"}
    assert primary_update_passes(watch, cr(1, labels=db), cr(1, labels=db, annotations={"a": "b"}, rv="2"))
    assert not primary_update_passes(watch, cr(1), cr(2))  # label selector does not match
    assert not primary_update_passes(watch, cr(1, labels=db), cr(2, labels={**db, "tier": "test"}))


def child(**changes):
    obj = {
        "apiVersion": "conformance.example.com/v1alpha1",
        "kind": "ProbeChild",
        "metadata": {
            "name": "c",
            "namespace": "ns",
            "resourceVersion": "1",
            "labels": {},
            "managedFields": [{"manager": "m", "time": "2026-01-01T00:00:00Z"}],
            "ownerReferences": [
                {"apiVersion": "conformance.example.com/v1alpha1", "kind": "Probe", "name": "p", "uid": "u"}
            ],
        },
        "spec": {"a": 1},
        "status": {"ready": False},
    }
    for key, value in changes.items():
        if key in ("labels", "resourceVersion", "managedFields"):
            obj["metadata"][key] = value
        else:
            obj[key] = value
    return obj


def test_dependent_updates_pass_unless_only_status_changed():
    assert not dependent_update_passes(child(), child(status={"ready": True}, resourceVersion="2"))
    assert not dependent_update_passes(
        child(), child(resourceVersion="2", managedFields=[{"manager": "m", "time": "2026-02-02T00:00:00Z"}])
    )
    assert dependent_update_passes(child(), child(labels={"x": "y"}, resourceVersion="2"))
    assert dependent_update_passes(child(), child(spec={"a": 2}, resourceVersion="2"))


def test_owner_keys_by_reference_and_annotation():
    assert owner_keys(child(), PROBE) == [("ns", "p")]
    assert owner_keys(child(), GVK("other.example.com", "v1alpha1", "Probe")) == []
    annotated = {
        "metadata": {
            "namespace": "elsewhere",
            "annotations": {
                "operator-sdk/primary-resource": "ns/p",
                "operator-sdk/primary-resource-type": "Probe.conformance.example.com",
            },
        }
    }
    assert owner_keys(annotated, PROBE) == [("ns", "p")]


def test_children_are_learned_from_every_kind_of_k8s_result():
    """The real operator learns children from the creates passing its proxy, whatever the task
    looked like; the runner reads them from k8s, k8s_info and several-definition k8s results."""
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "ns"}}
    assert objects_in_result({"changed": True, "result": config}) == [config]
    assert objects_in_result({"resources": [config, service]}) == [config, service]
    several = {
        "changed": True,
        "result": {"results": [{"changed": True, "result": config}, {"result": service}]},
    }
    assert objects_in_result(several) == [config, service]
    assert objects_in_result({"changed": False, "result": {}}) == []
    assert objects_in_result("not a result") == []
