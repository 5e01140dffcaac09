"""Conformance of the operator process with ansible-operator v1.42.3, against the test bed's API
server and the real ansible-runner: the same tests run on the local runner and, with
ANSIBLE_OPERATOR=/path/to/ansible-operator, on the real binary. Expected values come from
docs/reference (ansible-operator-traces.md); the Probe kind stands in for the traces' SimpleDB,
and its variable names follow the same rule (`_<group>_<kind>` with `.` and `-` as `_`).
"""

from __future__ import annotations

import itertools
import json
import os
import pathlib
import signal
import socket
import sys
import time
import urllib.request

import pytest

from tests.runner.conftest import FINALIZER, ROLES_PATH, StatusHistory, conditions, probe_watch

pytestmark = [pytest.mark.cluster, pytest.mark.operator]

ENV = {"ANSIBLE_ROLES_PATH": ROLES_PATH}
OBJ_VAR = "_conformance_example_com_probe"
TRACE_SPEC = {
    "version": 2,
    "storageClassName": "fast",
    "egressIPs": ["1.2.3.4"],
    "ThisShouldHaveUnderscores": "x",
    "nested": {"innerKey": {"deepKey": 1}, "listOfDicts": [{"someKey": "a"}]},
}
DUMPED = [
    OBJ_VAR,
    f"{OBJ_VAR}_spec",
    "_this_should_have_underscores",
    "ansible_operator_meta",
    "egress_ips",
    "nested",
    "storage_class_name",
    "version",
    "watch_var",
    "finalizer_run",
]


def input_dir(namespace: str, name: str) -> pathlib.Path:
    return (
        pathlib.Path("/tmp/ansible-operator/runner/conformance.example.com/v1alpha1/Probe") / namespace / name
    )


def settle(journal, name: str, quiet: float = 4.0, timeout: float = 40) -> int:
    """Wait until no run of `name` started or ended for `quiet` seconds; the number of runs.

    `quiet` must exceed the time from a trigger to the role's first task (ansible-runner and
    ansible-playbook start-up: 1-3 s on a busy 2-core machine)."""
    deadline = time.monotonic() + timeout
    last = None
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        runs = journal.runs(name)
        state = (len(runs), sum(r.end is not None for r in runs))
        if state != last:
            last, stable_since = state, time.monotonic()
        elif time.monotonic() - stable_since >= quiet and state[0] == state[1]:
            return state[0]
        time.sleep(0.1)
    raise AssertionError(f"{name} kept running: {journal.runs(name)}")


def test_extra_vars_input_dir_and_what_the_role_sees(operator, probes, journal, namespace):
    watch = probe_watch(journal.path)
    watch["vars"]["dump_vars"] = [*DUMPED, "from_cmdline"]
    operator.start([watch], args=["--ansible-args=-e from_cmdline=yes"], env=ENV)
    probes.create("trace", TRACE_SPEC, labels={"app": "demo"})
    probes.wait_condition("trace", "Successful")

    base = input_dir(namespace, "trace")
    extravars = json.loads((base / "env" / "extravars").read_text())
    assert sorted(extravars) == sorted(
        [
            OBJ_VAR,
            f"{OBJ_VAR}_spec",
            "_this_should_have_underscores",
            "ansible_operator_meta",
            "egress_ips",
            "nested",
            "storage_class_name",
            "version",
            "watch_var",
            "journal",
            "dump_vars",
        ]
    )
    assert extravars["ansible_operator_meta"] == {"name": "trace", "namespace": namespace}
    assert extravars["_this_should_have_underscores"] == "x"
    assert extravars["egress_ips"] == ["1.2.3.4"]
    assert extravars["nested"] == {"inner_key": {"deep_key": 1}, "list_of_dicts": [{"some_key": "a"}]}
    assert extravars["storage_class_name"] == "fast"
    assert extravars["version"] == 2
    assert extravars["watch_var"] == "from-watches"
    assert extravars[f"{OBJ_VAR}_spec"] == TRACE_SPEC
    cr = extravars[OBJ_VAR]
    assert (cr["apiVersion"], cr["kind"], cr["spec"]) == (
        "conformance.example.com/v1alpha1",
        "Probe",
        TRACE_SPEC,
    )
    assert cr["metadata"]["labels"] == {"app": "demo"}
    # The CR as the start-of-run status write returned it: finalizer added, Running=True.
    assert cr["metadata"]["finalizers"] == [FINALIZER]
    assert conditions(cr)["Running"]["message"] == "Running reconciliation"

    envvars = json.loads((base / "env" / "envvars").read_text())
    assert sorted(envvars) == ["K8S_AUTH_KUBECONFIG", "KUBECONFIG"]
    assert envvars["KUBECONFIG"] == envvars["K8S_AUTH_KUBECONFIG"]
    assert os.path.basename(envvars["KUBECONFIG"]).startswith("kubeconfig")
    assert not os.path.exists(envvars["KUBECONFIG"])  # removed after the run
    assert isinstance(json.loads((base / "env" / "settings").read_text()), dict)
    venv = os.path.dirname(os.path.dirname(sys.executable))  # the fixture's VIRTUAL_ENV
    assert (base / "inventory" / "hosts").read_text() == (
        f"localhost ansible_connection=local ansible_python_interpreter={venv}/bin/python3"
    )
    latest = base / "artifacts" / "latest"
    assert latest.is_symlink()
    run_dir = latest.resolve()
    assert run_dir.parent == (base / "artifacts").resolve()
    assert (run_dir / "rc").read_text().strip() == "0"
    assert (run_dir / "status").read_text().strip() == "successful"
    assert any((run_dir / "job_events").iterdir())
    command = json.loads((run_dir / "command").read_text())
    assert command["command"][0] == "ansible-playbook"
    assert f"@{base}/env/extravars" in command["command"]
    assert "-vv" in command["command"]

    assert (base / "env" / "cmdline").read_text() == "-e from_cmdline=yes"

    seen = json.loads((journal.path.parent / f"{namespace}.trace.vars.json").read_text())
    for key in DUMPED[:-1]:
        assert seen[key] == extravars[key], key
    assert seen["finalizer_run"] == "<undefined>"
    assert seen["from_cmdline"] == "yes"


def test_status_after_success(operator, probes, journal):
    operator.start([probe_watch(journal.path)], env=ENV)
    with StatusHistory(probes.custom.api_client, probes.namespace, "ok") as history:
        probes.create("ok", {})
        obj = probes.wait_condition("ok", "Successful")
    assert [c["type"] for c in obj["status"]["conditions"]] == ["Running", "Successful", "Failure"]
    c = conditions(obj)
    result = c["Running"].pop("ansibleResult")
    # The role with an empty spec: the two journal tasks run, everything else is skipped.
    assert {k: result[k] for k in ("ok", "changed", "skipped", "failures")} == {
        "ok": 2,
        "changed": 0,
        "skipped": 9,
        "failures": 0,
    }
    assert result["completion"].endswith("+00:00")
    assert {k: v for k, v in c["Running"].items() if k != "lastTransitionTime"} == {
        "type": "Running",
        "status": "True",
        "reason": "Successful",
        "message": "Awaiting next reconciliation",
    }
    assert {k: v for k, v in c["Successful"].items() if k != "lastTransitionTime"} == {
        "type": "Successful",
        "status": "True",
        "reason": "Successful",
        "message": "Last reconciliation succeeded",
    }
    assert {k: v for k, v in c["Failure"].items() if k != "lastTransitionTime"} == {
        "type": "Failure",
        "status": "False",
        "reason": "",
        "message": "",
    }
    # Before: Running alone, written at the start of the run.
    first = history.condition_lists()[0]
    assert [(x["type"], x["status"], x["reason"], x["message"]) for x in first] == [
        ("Running", "True", "Running", "Running reconciliation")
    ]


def test_status_after_failure_retries_and_recovery(operator, probes, journal):
    operator.start([probe_watch(journal.path)], env=ENV)
    with StatusHistory(probes.custom.api_client, probes.namespace, "bad") as history:
        probes.create("bad", {"fail": "boom"})
        probes.wait_condition("bad", "Failure")
        runs = journal.wait_runs("bad", 3, timeout=20, finished=False)  # retried with back-off
        assert runs[2].start - runs[0].start < 10
    states = [
        [(x["type"], x["status"], x["reason"], x["message"]) for x in cl] for cl in history.condition_lists()
    ]
    failed = [
        ("Running", "False", "Running", "Running reconciliation"),
        ("Failure", "True", "Failed", "requested failure: boom"),
        ("Successful", "False", "", ""),
    ]
    retrying = [
        ("Failure", "True", "Failed", "requested failure: boom"),
        ("Successful", "False", "", ""),
        ("Running", "True", "Running", "Running reconciliation"),
    ]
    assert failed in states
    assert retrying in states  # the trace's state
    failure = next(c for cl in history.condition_lists() for c in cl if c["type"] == "Failure")
    assert failure["ansibleResult"]["failures"] == 1

    probes.patch("bad", {"spec": {"fail": None}})
    obj = probes.wait_condition("bad", "Successful", timeout=60)
    assert conditions(obj)["Failure"]["status"] == "False"


def test_ignored_errors_pass_and_rescued_tasks_fail_as_in_the_real_operator(operator, probes, journal):
    operator.start([probe_watch(journal.path)], env=ENV)
    probes.create("ignored", {"ignoredFailure": True})
    probes.create("rescued", {"rescuedFailure": True})
    assert conditions(probes.wait_condition("ignored", "Successful"))["Failure"]["status"] == "False"
    # ansible-runner does not mark a rescued failure, so the operator counts it
    # (ansible-operator-plugins#88): a role must not rely on rescue to keep a run successful.
    obj = probes.wait_condition("rescued", "Failure")
    assert conditions(obj)["Failure"]["message"] == "rescued failure"


def test_finalizer_is_added_before_the_first_run_and_removed_after_its_run(
    operator, probes, journal, namespace
):
    watch = probe_watch(journal.path)
    watch["vars"]["dump_vars"] = [OBJ_VAR, "finalizer_run", "watch_var"]
    operator.start([watch], env=ENV)
    probes.create("fin", {})
    probes.wait_condition("fin", "Successful")
    seen = json.loads((journal.path.parent / f"{namespace}.fin.vars.json").read_text())
    assert seen[OBJ_VAR]["metadata"]["finalizers"] == [FINALIZER]
    assert seen["finalizer_run"] == "<undefined>"

    probes.delete("fin")
    probes.wait("fin", lambda o: o is None, "deleted")
    runs = journal.runs("fin")
    assert [r.kind for r in runs] == ["reconcile", "finalizer"]
    seen = json.loads((journal.path.parent / f"{namespace}.fin.vars.json").read_text())
    assert seen["finalizer_run"] is True
    assert seen["watch_var"] == "from-watches"
    assert seen[OBJ_VAR]["metadata"]["deletionTimestamp"]


def test_a_failing_finalizer_keeps_the_finalizer(operator, probes, journal):
    operator.start([probe_watch(journal.path)], env=ENV)
    probes.create("stuck", {"failFinalizer": True})
    probes.wait_condition("stuck", "Successful")
    probes.delete("stuck")
    journal.wait_runs("stuck", 3, timeout=20, finished=False)  # the first run, then finalizer retries
    obj = probes.wait_condition("stuck", "Failure")
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["finalizers"] == [FINALIZER]
    assert conditions(obj)["Failure"]["message"] == "requested finalizer failure"

    probes.patch("stuck", {"spec": {"failFinalizer": False}})
    probes.wait("stuck", lambda o: o is None, "deleted", timeout=60)


def test_child_changes_that_trigger_a_run(operator, probes, journal):
    operator.start([probe_watch(journal.path)], env=ENV)
    probes.create("parent", {"child": True})
    probes.wait_condition("parent", "Successful")
    assert probes.child("parent")["metadata"]["ownerReferences"][0]["name"] == "parent"
    # A field manager's first write of a status field changes its managedFields entry: a metadata
    # change to DependentPredicate (the operator's cache keeps managedFields), which may run the
    # role. Later writes of the same fields change only status and the entry's time.
    probes.apply_child_status("parent", {"ready": False})
    runs = settle(journal, "parent")
    probes.apply_child_status("parent", {"ready": True})
    assert settle(journal, "parent") == runs, "a status-only change of a child ran the role"
    probes.apply_child_status("parent", {"ready": False})
    assert settle(journal, "parent") == runs, "a status-only change of a child ran the role"

    probes.patch_child("parent", {"metadata": {"labels": {"changed": "yes"}}})
    journal.wait_runs("parent", runs + 1, timeout=20)
    runs = settle(journal, "parent")

    probes.delete_child("parent")
    journal.wait_runs("parent", runs + 1, timeout=20)
    settle(journal, "parent")
    assert probes.child("parent") is not None  # the run recreated it


def test_cr_metadata_and_status_changes_do_not_trigger_a_run(operator, probes, journal):
    operator.start([probe_watch(journal.path)], env=ENV)
    probes.create("quiet", {})
    probes.wait_condition("quiet", "Successful")
    runs = settle(journal, "quiet")
    probes.patch("quiet", {"metadata": {"annotations": {"note": "x"}, "labels": {"l": "y"}}})
    assert settle(journal, "quiet") == runs
    probes.patch("quiet", {"spec": {"changed": True}})
    journal.wait_runs("quiet", runs + 1)


def test_requeue_after_and_reconcile_period_annotation(operator, probes, journal):
    operator.start([probe_watch(journal.path)], env=ENV)
    probes.create("again", {"requeueAfter": "1s"})
    probes.create("periodic", {}, annotations={"ansible.sdk.operatorframework.io/reconcile-period": "1s"})
    runs = journal.wait_runs("again", 2, timeout=30)
    starts = [r.start for r in runs]
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(starts)), starts
    # A run that ends with requeue_after does not mark the status done.
    assert "Successful" not in conditions(probes.get("again"))
    journal.wait_runs("periodic", 2, timeout=30)
    assert conditions(probes.get("periodic"))["Successful"]["status"] in ("True", "False")

    probes.patch("again", {"spec": {"requeueAfter": None}})
    probes.wait_condition("again", "Successful")


def overlaps(runs) -> bool:
    spans = sorted((r.start, r.end) for r in runs)
    return any(b[0] < a[1] for a, b in itertools.pairwise(spans))


@pytest.mark.parametrize("limit_by", ["flag", "environment"])
def test_one_worker_runs_crs_one_after_the_other(operator, probes, journal, limit_by):
    if limit_by == "flag":
        operator.start([probe_watch(journal.path)], args=["--max-concurrent-reconciles=1"], env=ENV)
    else:
        env = {**ENV, "MAX_CONCURRENT_RECONCILES_PROBE_CONFORMANCE_EXAMPLE_COM": "1"}
        operator.start([probe_watch(journal.path)], args=["--max-concurrent-reconciles=4"], env=env)
    probes.create("one", {"sleep": 2})
    probes.create("two", {"sleep": 2})
    journal.wait_runs("one", 1)
    journal.wait_runs("two", 1)
    assert not overlaps(journal.runs()), journal.runs()


def test_two_workers_run_crs_in_parallel(operator, probes, journal):
    operator.start([probe_watch(journal.path)], args=["--max-concurrent-reconciles=2"], env=ENV)
    probes.create("one", {"sleep": 3})
    probes.create("two", {"sleep": 3})
    journal.wait_runs("one", 1)
    journal.wait_runs("two", 1)
    assert overlaps(journal.runs()), journal.runs()


def test_the_same_cr_never_runs_twice_at_once(operator, probes, journal):
    operator.start([probe_watch(journal.path)], args=["--max-concurrent-reconciles=4"], env=ENV)
    probes.create("busy", {"sleep": 3})
    journal.wait_runs("busy", 1, finished=False)
    probes.patch("busy", {"spec": {"sleep": 2}})
    probes.patch("busy", {"spec": {"sleep": 1}})
    runs = journal.wait_runs("busy", 2)
    settle(journal, "busy")
    runs = journal.runs("busy")
    assert len(runs) == 2, runs  # both changes are handled by one more run, after the first
    assert not overlaps(runs), runs


def test_a_cr_deleted_mid_run_gets_its_finalizer_run(operator, probes, journal):
    operator.start([probe_watch(journal.path)], env=ENV)
    probes.create("gone", {"sleep": 3})
    journal.wait_runs("gone", 1, finished=False)
    probes.delete("gone")
    probes.wait("gone", lambda o: o is None, "deleted", timeout=40)
    runs = journal.runs("gone")
    assert [r.kind for r in runs] == ["reconcile", "finalizer"], runs
    assert not overlaps(runs), runs


def test_manage_status_false_never_writes_status(operator, probes, journal):
    operator.start([probe_watch(journal.path, manageStatus=False)], env=ENV)
    probes.create("silent", {})
    journal.wait_runs("silent", 1)
    settle(journal, "silent")
    assert "status" not in probes.get("silent")


def test_shutdown_lets_the_running_run_finish(operator, probes, journal):
    running = operator.start([probe_watch(journal.path)], args=["--graceful-shutdown-timeout=20s"], env=ENV)
    probes.create("slow", {"sleep": 3})
    journal.wait_runs("slow", 1, finished=False)
    running.process.send_signal(signal.SIGTERM)
    assert running.wait_exit(40) == 0
    assert journal.runs("slow")[0].end is not None, "the run was cut short"


@pytest.mark.parametrize(
    ("watches", "message"),
    [
        (
            "- {version: v1alpha1, group: conformance.example.com, kind: Probe, role: probe}\n" * 2,
            "duplicate GVK: conformance.example.com/v1alpha1, Kind=Probe",
        ),
        (
            "- {version: v1alpha1, group: conformance.example.com, kind: Probe, role: nosuchrole}\n",
            "role: nosuchrole was not found",
        ),
        ("- {group: conformance.example.com, kind: Probe, role: probe}\n", "version must not be empty"),
        (
            "- {version: v1alpha1, group: conformance.example.com, kind: Probe, role: probe,"
            " finalizer: {vars: {a: 1}}}\n",
            "finalizer must have name",
        ),
    ],
    ids=["duplicate", "missing-role", "no-version", "finalizer-without-name"],
)
def test_watches_errors_stop_the_operator(operator, watches, message):
    running = operator.start(watches, env=ENV, wait_ready=False)
    assert running.wait_exit(30) != 0
    assert message in running.log()


def test_other_status_keys_survive_and_conditions_are_rewritten(operator, probes, journal):
    probes.create("custom", {})
    probes.custom.patch_namespaced_custom_object_status(
        "conformance.example.com",
        "v1alpha1",
        probes.namespace,
        "probes",
        "custom",
        {
            "status": {
                "phase": "Provisioning",
                "endpoints": {"primary": "db-0"},
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "Starting",
                        "message": "m",
                        "observedGeneration": 1,
                        "lastTransitionTime": "2021-05-05T10:00:00Z",
                    }
                ],
            }
        },
    )
    operator.start([probe_watch(journal.path)], env=ENV)
    obj = probes.wait_condition("custom", "Successful")
    assert obj["status"]["phase"] == "Provisioning"
    assert obj["status"]["endpoints"] == {"primary": "db-0"}
    assert [c["type"] for c in obj["status"]["conditions"]] == ["Ready", "Running", "Successful", "Failure"]
    # The operator keeps other condition types but writes back only the fields it knows.
    assert conditions(obj)["Ready"] == {
        "type": "Ready",
        "status": "False",
        "reason": "Starting",
        "message": "m",
        "lastTransitionTime": "2021-05-05T10:00:00Z",
    }


def test_playbook_watch(operator, probes, journal, namespace, tmp_path):
    playbook = tmp_path / "probe.yml"
    playbook.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - probe\n")
    watch = probe_watch(journal.path, playbook=str(playbook))
    del watch["role"]
    operator.start([watch], env=ENV)
    probes.create("pb", {})
    probes.wait_condition("pb", "Successful")
    base = input_dir(namespace, "pb")
    assert (base / "project" / "playbook.yaml").read_text() == playbook.read_text()
    command = json.loads((base / "artifacts" / "latest" / "command").read_text())["command"]
    assert command[-1] == str(playbook)
    assert [r.kind for r in journal.runs("pb")] == ["reconcile"]


def test_health_probes(operator, journal):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    operator.start(
        [probe_watch(journal.path)], args=[f"--health-probe-bind-address=127.0.0.1:{port}"], env=ENV
    )
    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            assert (response.status, response.read()) == (200, b"ok")


def test_a_childs_owner_reference_is_kept_once_and_a_second_run_changes_nothing(operator, probes, journal):
    # The role sets exactly the fields the real operator's proxy injects on create (apiVersion,
    # kind, name, uid): the API server drops the proxy's identical copy. With other fields
    # (controller: true ...) the child would keep two references, and the next run would
    # rewrite the list: changed > 0 and one more run.
    operator.start([probe_watch(journal.path)], env=ENV)
    probes.create("owner", {"child": True})
    obj = probes.wait_condition("owner", "Successful")
    assert conditions(obj)["Running"]["ansibleResult"]["changed"] == 1  # the child was created
    refs = probes.child("owner")["metadata"]["ownerReferences"]
    assert refs == [
        {
            "apiVersion": "conformance.example.com/v1alpha1",
            "kind": "Probe",
            "name": "owner",
            "uid": obj["metadata"]["uid"],
        }
    ]
    runs = settle(journal, "owner")
    probes.patch("owner", {"spec": {"again": True}})
    journal.wait_runs("owner", runs + 1)
    obj = probes.wait(
        "owner",
        lambda o: (
            conditions(o).get("Successful", {}).get("status") == "True" and o["metadata"]["generation"] == 2
        ),
        "reconciled at generation 2",
    )
    assert conditions(obj)["Running"]["ansibleResult"]["changed"] == 0
    assert settle(journal, "owner") == runs + 1
