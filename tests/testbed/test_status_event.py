"""simpledb_status and simpledb_event against the test bed's real API server.

The objects are of a test kind of our own (ModuleTarget, with a status subresource shaped like
SimpleDB's) so that no operator running on the shared cluster writes to them meanwhile.
"""

import base64
import json
import threading
import time

import pytest
import yaml
from ansible.module_utils.simpledb.conditions import InvalidCondition
from ansible.module_utils.simpledb.cr_status import update_status
from ansible.module_utils.simpledb.events import complete_involved_object, record_event
from ansible.module_utils.simpledb.k8s import KubeAPI, KubernetesError, api_transport_from_params

from tests.fixtures.ansible_module import run_module

pytestmark = pytest.mark.cluster

GROUP = "modules-test.simpledb.example.com"
API_VERSION = f"{GROUP}/v1"
KIND = "ModuleTarget"
TEST_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"moduletargets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "names": {
            "kind": KIND,
            "listKind": f"{KIND}List",
            "plural": "moduletargets",
            "singular": "moduletarget",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                                "properties": {
                                    "conditions": {
                                        "type": "array",
                                        "x-kubernetes-list-type": "map",
                                        "x-kubernetes-list-map-keys": ["type"],
                                        "items": {
                                            "type": "object",
                                            "required": ["type", "status"],
                                            "x-kubernetes-preserve-unknown-fields": True,
                                            "properties": {
                                                "type": {"type": "string"},
                                                "status": {
                                                    "type": "string",
                                                    "enum": ["True", "False", "Unknown"],
                                                },
                                            },
                                        },
                                    }
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}
# What ansible-operator writes after a successful run (docs: ansible-operator-traces.md).
OPERATOR_CONDITIONS = [
    {
        "ansibleResult": {
            "changed": 1,
            "completion": "2026-11-26T16:35:15.374915+00:00",
            "failures": 0,
            "ok": 1,
        },
        "lastTransitionTime": "2026-11-26T16:35:13Z",
        "message": "Awaiting next reconciliation",
        "reason": "Successful",
        "status": "True",
        "type": "Running",
    },
    {
        "lastTransitionTime": "2026-11-26T16:35:15Z",
        "message": "Last reconciliation succeeded",
        "reason": "Successful",
        "status": "True",
        "type": "Successful",
    },
]


@pytest.fixture(scope="session")
def test_crd(kubectl):
    """The ModuleTarget kind. Left installed: other test sessions on the cluster may use it."""
    kubectl.run("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(TEST_CRD))
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", f"crd/moduletargets.{GROUP}")


@pytest.fixture
def target(kubectl, namespace, test_crd):
    """A fresh ModuleTarget named 'db' in the test's namespace."""
    body = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "db", "namespace": namespace},
        "spec": {"version": 1},
    }
    kubectl.run("create", "-f", "-", input=json.dumps(body))
    return "db"


@pytest.fixture
def api(kubeconfig):
    return KubeAPI(api_transport_from_params({"kubeconfig": kubeconfig}))


def read(kubectl, namespace, name="db"):
    return kubectl.get("-n", namespace, f"moduletargets.{GROUP}", name)


def write_status(kubectl, namespace, status, name="db"):
    """Another writer (the operator) patching the status."""
    kubectl.run(
        "patch", "-n", namespace, f"moduletargets.{GROUP}", name, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def status_args(kubeconfig, namespace, **kwargs):
    return {
        "kubeconfig": kubeconfig,
        "api_version": API_VERSION,
        "kind": KIND,
        "name": "db",
        "namespace": namespace,
        **kwargs,
    }


READY = {"type": "Ready", "status": "True", "reason": "ServerReady", "message": "MariaDB answers"}


# ------------------------------------------------------------------ status


def test_status_fields_conditions_and_generation_are_written_once(kubeconfig, kubectl, namespace, target):
    args = status_args(
        kubeconfig,
        namespace,
        status={"phase": "Ready", "schemaVersion": 1},
        conditions=[READY],
        observed_generation=1,
    )
    first = run_module("simpledb_status", args)
    written = read(kubectl, namespace)
    second = run_module("simpledb_status", args)

    assert first["changed"] is True, first
    assert written["status"]["phase"] == "Ready"
    assert written["status"]["schemaVersion"] == 1
    assert written["status"]["observedGeneration"] == 1
    (ready,) = written["status"]["conditions"]
    assert {k: ready[k] for k in READY} == READY
    assert ready["lastTransitionTime"].endswith("Z")
    assert first["status"] == written["status"]

    assert second["changed"] is False
    assert read(kubectl, namespace)["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]


def test_other_conditions_and_fields_are_preserved(kubeconfig, kubectl, namespace, target):
    write_status(
        kubectl,
        namespace,
        {"conditions": OPERATOR_CONDITIONS, "endpoint": "db.shop.svc:3306", "lastBackup": {"name": "b1"}},
    )

    result = run_module(
        "simpledb_status",
        status_args(
            kubeconfig,
            namespace,
            status={"phase": "Ready", "lastBackup": {"location": "s3://x"}},
            conditions=[READY],
        ),
    )

    status = read(kubectl, namespace)["status"]
    assert result["changed"] is True
    assert status["conditions"][:2] == OPERATOR_CONDITIONS
    assert status["conditions"][2]["type"] == "Ready"
    assert status["endpoint"] == "db.shop.svc:3306"
    assert status["lastBackup"] == {"name": "b1", "location": "s3://x"}
    assert status["phase"] == "Ready"


def test_transition_time_changes_only_with_the_condition_status(kubeconfig, kubectl, namespace, target, api):
    def ready_condition():
        return next(c for c in read(kubectl, namespace)["status"]["conditions"] if c["type"] == "Ready")

    times = iter(["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"])
    update_status(api, API_VERSION, KIND, "db", namespace, conditions=[READY], now=lambda: next(times))
    update_status(
        api,
        API_VERSION,
        KIND,
        "db",
        namespace,
        conditions=[{**READY, "message": "still up"}],
        now=lambda: next(times),
    )
    same_status = ready_condition()
    update_status(
        api, API_VERSION, KIND, "db", namespace,
        conditions=[{**READY, "status": False, "reason": "ServerDown", "message": "no answer"}],
        now=lambda: next(times),
    )  # fmt: skip
    flipped = ready_condition()

    assert (same_status["message"], same_status["lastTransitionTime"]) == ("still up", "2026-01-01T00:00:00Z")
    assert (flipped["status"], flipped["reason"], flipped["lastTransitionTime"]) == (
        "False",
        "ServerDown",
        "2026-01-01T00:02:00Z",
    )


def test_a_null_removes_a_field(kubeconfig, kubectl, namespace, target):
    write_status(kubectl, namespace, {"phase": "Ready", "message": "old"})
    result = run_module("simpledb_status", status_args(kubeconfig, namespace, status={"message": None}))
    assert result["changed"] is True
    assert read(kubectl, namespace)["status"] == {"phase": "Ready"}


def test_check_and_diff_mode(kubeconfig, kubectl, namespace, target):
    write_status(kubectl, namespace, {"phase": "Creating"})
    before = read(kubectl, namespace)

    result = run_module(
        "simpledb_status",
        status_args(kubeconfig, namespace, status={"phase": "Ready"}, conditions=[READY]),
        check=True,
        diff=True,
    )

    assert result["changed"] is True
    assert result["status"]["phase"] == "Ready"
    assert [c["type"] for c in result["status"]["conditions"]] == ["Ready"]
    assert result["diff"]["before"] == {"status": {"phase": "Creating"}}
    assert result["diff"]["after"]["status"]["phase"] == "Ready"
    assert read(kubectl, namespace)["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_a_concurrent_writer_is_not_overwritten(kubectl, namespace, target, api):
    """Between our read and our patch the operator writes its conditions: the conditional patch
    gets 409 Conflict, and the retry keeps the operator's write."""
    calls = []

    def now_and_write_once():
        if not calls:
            write_status(kubectl, namespace, {"conditions": OPERATOR_CONDITIONS})
        calls.append(1)
        return "2026-01-01T00:00:00Z"

    update = update_status(
        api, API_VERSION, KIND, "db", namespace, conditions=[READY], now=now_and_write_once
    )

    assert len(calls) == 2  # computed twice: once before the conflict, once after
    assert [c["type"] for c in update.after["conditions"]] == ["Running", "Successful", "Ready"]
    assert [c["type"] for c in read(kubectl, namespace)["status"]["conditions"]] == [
        "Running",
        "Successful",
        "Ready",
    ]


def test_a_read_that_is_out_of_date_is_caught_even_when_it_looks_done(kubectl, namespace, target, api):
    """The read says the status is already as wanted, but the object changed since (as a read
    through the operator's caching proxy may lag): the conditional write still corrects it."""
    write_status(
        kubectl,
        namespace,
        {"phase": "Ready", "conditions": [{**READY, "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
    )
    calls = []

    def now_and_write_once():
        if not calls:
            write_status(kubectl, namespace, {"phase": "Creating"})
        calls.append(1)
        return "2026-01-01T00:05:00Z"

    update = update_status(
        api,
        API_VERSION,
        KIND,
        "db",
        namespace,
        fields={"phase": "Ready"},
        conditions=[READY],
        now=now_and_write_once,
    )

    assert update.changed is True
    assert update.before["phase"] == "Creating"
    assert read(kubectl, namespace)["status"]["phase"] == "Ready"


def test_status_errors_say_what_to_fix(kubeconfig, namespace, target, test_crd, api):
    missing = run_module(
        "simpledb_status", status_args(kubeconfig, namespace, name="nope", status={"phase": "Ready"})
    )
    wrong_kind = run_module(
        "simpledb_status", status_args(kubeconfig, namespace, kind="Moduletarget", status={"phase": "x"})
    )
    no_group = run_module(
        "simpledb_status", status_args(kubeconfig, namespace, api_version="nothere.example.com/v1")
    )
    in_status = run_module("simpledb_status", status_args(kubeconfig, namespace, status={"conditions": []}))
    bad_reason = run_module(
        "simpledb_status", status_args(kubeconfig, namespace, conditions=[{**READY, "reason": "two words"}])
    )

    assert missing["failed"] and missing["msg"] == f"{KIND} {namespace}/nope does not exist"
    assert wrong_kind["failed"] and f"has no kind Moduletarget in {API_VERSION}" in wrong_kind["msg"]
    assert no_group["failed"] and "does not serve nothere.example.com/v1" in no_group["msg"]
    assert in_status["failed"] and "Set status.conditions with the conditions option" in in_status["msg"]
    assert bad_reason["failed"] and "reason 'two words' is not valid" in bad_reason["msg"]
    with pytest.raises(KubernetesError, match="has no status subresource"):
        update_status(api, "v1", "ConfigMap", "x", namespace, fields={"a": 1})
    with pytest.raises(InvalidCondition):
        update_status(api, API_VERSION, KIND, "db", namespace, conditions=[READY, READY])


# ------------------------------------------------------------------ authentication


def test_authentication_from_the_environment_and_explicit_options(
    kubeconfig, kubectl, namespace, target, tmp_path
):
    by_k8s_auth = run_module(
        "simpledb_status",
        status_args(None, namespace, status={"message": "a"}),
        env={"K8S_AUTH_KUBECONFIG": kubeconfig},
    )
    by_kubeconfig_env = run_module(
        "simpledb_status",
        status_args(None, namespace, status={"message": "b"}),
        env={"KUBECONFIG": kubeconfig},
    )
    config = yaml.safe_load(open(kubeconfig))
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]

    def file_of(entry, key):
        if entry.get(key):
            return entry[key]
        path = tmp_path / key
        path.write_bytes(base64.b64decode(entry[f"{key}-data"]))
        return str(path)

    explicit = run_module(
        "simpledb_status",
        {
            **status_args(None, namespace, status={"message": "c"}),
            "host": cluster["server"],
            "ca_cert": file_of(cluster, "certificate-authority"),
            "client_cert": file_of(user, "client-certificate"),
            "client_key": file_of(user, "client-key"),
        },
        env={"KUBECONFIG": str(tmp_path / "absent")},
    )
    unknown_context = run_module(
        "simpledb_status", status_args(kubeconfig, namespace, context="no-such-context")
    )

    assert [r.get("failed", False) for r in (by_k8s_auth, by_kubeconfig_env, explicit)] == [False] * 3, (
        explicit
    )
    assert read(kubectl, namespace)["status"]["message"] == "c"
    assert unknown_context["failed"] and "Cannot load Kubernetes credentials" in unknown_context["msg"]
    assert "no-such-context" in unknown_context["msg"]


def test_inline_credentials_and_the_kubernetes_package_path_reach_the_same_server(
    kubeconfig, namespace, target
):
    config = yaml.safe_load(open(kubeconfig))
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    for entry, key in (
        (cluster, "certificate-authority"),
        (user, "client-certificate"),
        (user, "client-key"),
    ):
        if entry.get(key):
            entry[f"{key}-data"] = base64.b64encode(open(entry.pop(key), "rb").read()).decode()
    inline = api_transport_from_params({"kubeconfig": config})
    # tls-server-name is for the kubernetes package's loader: the same server through its ApiClient.
    cluster["tls-server-name"] = "127.0.0.1"
    package = api_transport_from_params({"kubeconfig": config})

    assert (type(inline).__name__, type(package).__name__) == ("HttpTransport", "ClientTransport")
    for transport in (inline, package):
        api = KubeAPI(transport)
        target_resource = api.resource(API_VERSION, KIND)
        assert api.get(target_resource, "db", namespace)["metadata"]["name"] == "db"
        assert api.get(target_resource, "absent", namespace) is None
        with pytest.raises(KubernetesError, match="404"):
            api.merge_patch(target_resource, "absent", {"metadata": {"labels": {"a": "b"}}}, namespace)


# ------------------------------------------------------------------ events


def event_args(kubeconfig, namespace, **kwargs):
    return {
        "kubeconfig": kubeconfig,
        "involved_object": {"api_version": API_VERSION, "kind": KIND, "name": "db", "namespace": namespace},
        "reason": "MigrationFailed",
        "type": "Warning",
        "message": "V3__add_index.sql (version 3) failed",
        **kwargs,
    }


def events_of(kubectl, namespace, name="db"):
    return kubectl.get("-n", namespace, "events", f"--field-selector=involvedObject.name={name}")["items"]


def test_an_event_is_created_with_the_uid_looked_up(kubeconfig, kubectl, namespace, target):
    result = run_module(
        "simpledb_event", event_args(kubeconfig, namespace, reporting_instance="operator-pod-1")
    )

    (event,) = events_of(kubectl, namespace)
    uid = read(kubectl, namespace)["metadata"]["uid"]
    assert (result["changed"], result["outcome"]) == (True, "created")
    assert event["metadata"]["name"] == result["event"]["metadata"]["name"]
    assert event["involvedObject"] == {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": "db",
        "namespace": namespace,
        "uid": uid,
    }
    assert (event["type"], event["reason"], event["count"]) == ("Warning", "MigrationFailed", 1)
    assert event["message"] == "V3__add_index.sql (version 3) failed"
    assert (event["reportingComponent"], event["reportingInstance"]) == (
        "simpledb-operator",
        "operator-pod-1",
    )
    assert event["source"] == {"component": "simpledb-operator"}
    assert event["firstTimestamp"] == event["lastTimestamp"]


def test_repeats_are_counted_into_one_event_as_kubectl_shows(kubeconfig, kubectl, namespace, target):
    first = run_module("simpledb_event", event_args(kubeconfig, namespace))
    time.sleep(1.1)
    second = run_module("simpledb_event", event_args(kubeconfig, namespace))
    third = run_module("simpledb_event", event_args(kubeconfig, namespace))
    other = run_module(
        "simpledb_event", event_args(kubeconfig, namespace, message="V4__x.sql (version 4) failed")
    )

    events = {e["message"]: e for e in events_of(kubectl, namespace)}
    repeated = events["V3__add_index.sql (version 3) failed"]
    assert [r["outcome"] for r in (first, second, third, other)] == [
        "created",
        "aggregated",
        "aggregated",
        "created",
    ]
    assert len(events) == 2
    assert (
        repeated["metadata"]["name"]
        == first["event"]["metadata"]["name"]
        == third["event"]["metadata"]["name"]
    )
    assert repeated["count"] == 3
    assert repeated["lastTimestamp"] > repeated["firstTimestamp"]
    assert events["V4__x.sql (version 4) failed"]["count"] == 1
    described = kubectl.run("describe", "-n", namespace, f"moduletargets.{GROUP}", "db").stdout
    assert "(x3 over" in described and "MigrationFailed" in described


def test_after_the_window_a_new_series_starts(kubeconfig, kubectl, namespace, target):
    run_module("simpledb_event", event_args(kubeconfig, namespace, aggregate_window=0))
    time.sleep(1.1)
    again = run_module("simpledb_event", event_args(kubeconfig, namespace, aggregate_window=0))

    (event,) = events_of(kubectl, namespace)
    assert again["outcome"] == "restarted"
    assert event["count"] == 1
    assert event["firstTimestamp"] == event["lastTimestamp"] == again["event"]["lastTimestamp"]


def test_event_check_mode_writes_nothing(kubeconfig, kubectl, namespace, target):
    result = run_module("simpledb_event", event_args(kubeconfig, namespace), check=True)
    assert (result["changed"], result["outcome"], result["event"]["count"]) == (True, "created", 1)
    assert events_of(kubectl, namespace) == []


def test_concurrent_repeats_lose_no_count(kubeconfig, kubectl, namespace, target, api):
    involved = complete_involved_object(
        api, {"apiVersion": API_VERSION, "kind": KIND, "name": "db", "namespace": namespace}
    )
    errors = []

    def record():
        try:
            record_event(
                KubeAPI(api_transport_from_params({"kubeconfig": kubeconfig})), involved, "Flapping", "same"
            )
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=record) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    (event,) = events_of(kubectl, namespace)
    assert event["count"] == 5


def test_events_about_missing_and_cluster_scoped_objects(kubeconfig, kubectl, namespace, target):
    missing = run_module(
        "simpledb_event",
        event_args(
            kubeconfig,
            namespace,
            involved_object={
                "api_version": API_VERSION,
                "kind": KIND,
                "name": "gone",
                "namespace": namespace,
            },
        ),
    )
    with_uid = run_module(
        "simpledb_event",
        event_args(
            kubeconfig,
            namespace,
            involved_object={
                "api_version": API_VERSION,
                "kind": KIND,
                "name": "gone",
                "namespace": namespace,
                "uid": "u-1",
            },
        ),
    )
    about_namespace = run_module(
        "simpledb_event",
        event_args(
            kubeconfig,
            namespace,
            involved_object={"api_version": "v1", "kind": "Namespace", "name": namespace},
            type="Normal",
            reason="Tested",
            message=f"event about namespace {namespace}",
        ),
    )
    try:
        assert missing["failed"] and missing["msg"] == (
            f"{KIND} {namespace}/gone does not exist, so an Event cannot refer to it "
            "(give involved_object.uid to record one anyway)"
        )
        assert (
            with_uid["outcome"] == "created"
            and events_of(kubectl, namespace, "gone")[0]["involvedObject"]["uid"] == "u-1"
        )
        event = about_namespace["event"]
        assert event["metadata"]["namespace"] == "default"
        assert "namespace" not in event["involvedObject"]
        assert event["involvedObject"]["uid"] == kubectl.get("namespace", namespace)["metadata"]["uid"]
    finally:
        if "event" in about_namespace:
            kubectl.run(
                "delete", "-n", "default", "event", about_namespace["event"]["metadata"]["name"], check=False
            )


def test_long_messages_are_cut_to_the_api_limit(kubeconfig, kubectl, namespace, target):
    result = run_module("simpledb_event", event_args(kubeconfig, namespace, message="x" * 5000))
    assert len(result["event"]["message"]) == 1024
    assert events_of(kubectl, namespace)[0]["message"].endswith("...")
