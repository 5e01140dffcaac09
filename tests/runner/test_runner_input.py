"""What a run gets: extra vars (exactly as in the traces), the input directory and the
ansible-runner command line (runner.go and inputdir.go)."""

import copy
import json
import os
import shutil
import uuid

import pytest

from testbed.runner.ansiblerun import AnsibleRunner, object_var_name
from testbed.runner.watches import GVK, Finalizer, Watch

TRACE_SPEC = {
    "version": 2,
    "storageClassName": "fast",
    "egressIPs": ["1.2.3.4"],
    "ThisShouldHaveUnderscores": "x",
    "nested": {"innerKey": {"deepKey": 1}, "listOfDicts": [{"someKey": "a"}]},
}
TRACE_CR = {
    "apiVersion": "example.com/v1alpha1",
    "kind": "SimpleDB",
    "metadata": {"name": "trace", "namespace": "default", "labels": {"app": "demo"}, "uid": "u-1"},
    "spec": TRACE_SPEC,
}


def trace_watch(**overrides):
    fields = {
        "gvk": GVK("example.com", "v1alpha1", "SimpleDB"),
        "role": "/opt/ansible/roles/demo",
        "vars": {"watch_var": "from-watches"},
        "finalizer": Finalizer(name="example.com/finalizer", vars={"finalizer_run": True}),
    }
    fields.update(overrides)
    return Watch(**fields)


def test_object_var_names():
    assert object_var_name("example.com", "SimpleDB") == "_example_com_simpledb"
    assert object_var_name("conformance.example.com", "Probe") == "_conformance_example_com_probe"
    assert object_var_name("cert-manager.k8s.io", "Certificate") == "_cert_manager_k8s_io_certificate"
    assert object_var_name("", "Secret") == "__secret"


def test_extra_vars_of_a_normal_run_are_the_traces():
    params = AnsibleRunner(trace_watch()).make_parameters(copy.deepcopy(TRACE_CR))
    assert sorted(params) == [
        "_example_com_simpledb",
        "_example_com_simpledb_spec",
        "_this_should_have_underscores",
        "ansible_operator_meta",
        "egress_ips",
        "nested",
        "storage_class_name",
        "version",
        "watch_var",
    ]
    assert params["ansible_operator_meta"] == {"name": "trace", "namespace": "default"}
    assert params["_this_should_have_underscores"] == "x"
    assert params["egress_ips"] == ["1.2.3.4"]
    assert params["nested"] == {"inner_key": {"deep_key": 1}, "list_of_dicts": [{"some_key": "a"}]}
    assert params["storage_class_name"] == "fast"
    assert params["version"] == 2
    assert params["watch_var"] == "from-watches"
    assert params["_example_com_simpledb"] == TRACE_CR  # the whole CR, unconverted
    assert params["_example_com_simpledb_spec"] == TRACE_SPEC  # the raw spec


def test_extra_vars_of_a_finalizer_run_add_the_finalizer_vars():
    cr = copy.deepcopy(TRACE_CR)
    cr["metadata"]["deletionTimestamp"] = "2026-11-26T16:35:32Z"
    cr["metadata"]["finalizers"] = ["example.com/finalizer"]
    params = AnsibleRunner(trace_watch()).make_parameters(cr)
    assert params["finalizer_run"] is True
    assert params["watch_var"] == "from-watches"
    # Being deleted without our finalizer is not a finalizer run.
    cr["metadata"]["finalizers"] = ["someone.else/finalizer"]
    assert "finalizer_run" not in AnsibleRunner(trace_watch()).make_parameters(cr)


def test_precedence_spec_then_meta_then_objects_then_watch_vars_then_finalizer_vars():
    watch = trace_watch(
        vars={"version": "from-watch", "shared": "watch"},
        finalizer=Finalizer(name="f", vars={"shared": "finalizer"}),
    )
    cr = {
        "metadata": {"name": "n", "namespace": "ns", "deletionTimestamp": "t", "finalizers": ["f"]},
        "spec": {"version": 1, "ansibleOperatorMeta": "spec", "_example_com_simpledb": "spec"},
    }
    params = AnsibleRunner(watch).make_parameters(cr)
    assert params["version"] == "from-watch"
    assert params["shared"] == "finalizer"
    assert params["ansible_operator_meta"] == {"name": "n", "namespace": "ns"}
    assert params["_example_com_simpledb"] is cr


def test_no_spec_and_no_snake_case():
    params = AnsibleRunner(trace_watch(snake_case_parameters=False)).make_parameters(
        {"metadata": {"name": "n", "namespace": "ns"}, "spec": {"storageClassName": "fast"}}
    )
    assert params["storageClassName"] == "fast"
    params = AnsibleRunner(trace_watch()).make_parameters({"metadata": {"name": "n", "namespace": "ns"}})
    assert params["_example_com_simpledb_spec"] == {}


def test_mark_unsafe_wraps_every_string_from_the_cr():
    params = AnsibleRunner(trace_watch(mark_unsafe=True)).make_parameters(copy.deepcopy(TRACE_CR))
    assert params["storage_class_name"] == {"__ansible_unsafe": "fast"}
    assert params["egress_ips"] == [{"__ansible_unsafe": "1.2.3.4"}]
    assert params["version"] == 2
    assert params["_example_com_simpledb_spec"]["nested"]["listOfDicts"] == [
        {"someKey": {"__ansible_unsafe": "a"}}
    ]
    assert params["_example_com_simpledb"]["metadata"]["name"] == {"__ansible_unsafe": "trace"}
    assert params["watch_var"] == "from-watches"  # watch vars are trusted
    assert params["ansible_operator_meta"] == {"name": "trace", "namespace": "default"}


def test_role_command_line(monkeypatch):
    monkeypatch.setenv("ANSIBLE_GATHERING", "explicit")
    runner = AnsibleRunner(trace_watch())
    assert runner.command("42", "/in", 20, 2, finalizer=False) == [
        "ansible-runner",
        "run",
        "/in",
        "--rotate-artifacts",
        "20",
        "--role",
        "demo",
        "--roles-path",
        "/opt/ansible/roles/",
        "--hosts",
        "localhost",
        "-i",
        "42",
        "-vv",
        "--role-skip-facts",
    ]
    monkeypatch.setenv("ANSIBLE_GATHERING", "smart")
    assert runner.command("42", "/in", 3, 0, finalizer=False)[-2:] == ["-i", "42"]


def test_playbook_and_finalizer_command_lines():
    watch = trace_watch(
        playbook="/opt/ansible/playbook.yml",
        finalizer=Finalizer(name="f", role="/opt/ansible/roles/cleanup"),
    )
    runner = AnsibleRunner(watch)
    assert runner.command("7", "/in", 20, 1, finalizer=False) == [
        "ansible-runner",
        "run",
        "/in",
        "--rotate-artifacts",
        "20",
        "-p",
        "/opt/ansible/playbook.yml",
        "-i",
        "7",
        "-v",
    ]
    assert runner.command("7", "/in", 20, 0, finalizer=True)[5:9] == [
        "--role",
        "cleanup",
        "--roles-path",
        "/opt/ansible/roles/",
    ]
    # A finalizer with vars only runs the main playbook.
    runner = AnsibleRunner(trace_watch(playbook="/p.yml", finalizer=Finalizer(name="f", vars={"x": 1})))
    assert runner.command("7", "/in", 20, 0, finalizer=True)[5:7] == ["-p", "/p.yml"]


@pytest.fixture
def input_namespace():
    namespace = f"unit-{uuid.uuid4().hex[:8]}"
    yield namespace
    shutil.rmtree(
        f"/tmp/ansible-operator/runner/conformance.example.com/v1alpha1/Probe/{namespace}", ignore_errors=True
    )


def test_input_directory_layout(tmp_path, input_namespace, monkeypatch):
    playbook = tmp_path / "playbook.yml"
    playbook.write_text("- hosts: localhost\n")
    monkeypatch.delenv("ANSIBLE_INVENTORY", raising=False)
    monkeypatch.setenv("VIRTUAL_ENV", "/venv")
    watch = Watch(gvk=GVK("conformance.example.com", "v1alpha1", "Probe"), playbook=str(playbook))
    cr = {"metadata": {"name": "p", "namespace": input_namespace}, "spec": {"someKey": 1}}
    path = AnsibleRunner(watch, ansible_args="'--tags x'").write_input_dir(cr, "/tmp/kubeconfig-test")
    assert path == f"/tmp/ansible-operator/runner/conformance.example.com/v1alpha1/Probe/{input_namespace}/p"
    with open(os.path.join(path, "env/envvars")) as fh:
        assert json.load(fh) == {
            "K8S_AUTH_KUBECONFIG": "/tmp/kubeconfig-test",
            "KUBECONFIG": "/tmp/kubeconfig-test",
        }
    with open(os.path.join(path, "env/extravars")) as fh:
        assert json.load(fh)["some_key"] == 1
    with open(os.path.join(path, "env/cmdline")) as fh:
        assert fh.read() == "--tags x"  # the surrounding single quotes are dropped
    with open(os.path.join(path, "inventory/hosts")) as fh:
        assert fh.read() == "localhost ansible_connection=local ansible_python_interpreter=/venv/bin/python3"
    with open(os.path.join(path, "project/playbook.yaml")) as fh:
        assert fh.read() == "- hosts: localhost\n"

    monkeypatch.delenv("VIRTUAL_ENV")
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("localhost ansible_connection=local\n")
    AnsibleRunner(watch).write_input_dir(cr, "/tmp/kubeconfig-test")
    with open(os.path.join(path, "inventory/hosts")) as fh:
        assert (
            fh.read()
            == "localhost ansible_connection=local ansible_python_interpreter={{ansible_playbook_python}}"
        )
    monkeypatch.setenv("ANSIBLE_INVENTORY", str(inventory))
    AnsibleRunner(watch).write_input_dir(cr, "/tmp/kubeconfig-test")
    with open(os.path.join(path, "inventory/hosts")) as fh:
        assert fh.read() == "localhost ansible_connection=local\n"
