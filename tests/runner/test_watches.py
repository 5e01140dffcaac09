"""watches.yaml: fields, defaults, role resolution, environment expansion and errors, as
ansible-operator v1.42.3 reads them (internal/ansible/watches/watches.go)."""

import logging
import os

import pytest

from testbed.runner.watches import GVK, WatchesError, load

PROBE = GVK("conformance.example.com", "v1alpha1", "Probe")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project directory with roles/probe and a playbook, as the operator's working directory."""
    (tmp_path / "roles" / "probe" / "tasks").mkdir(parents=True)
    (tmp_path / "roles" / "probe" / "tasks" / "main.yml").write_text("[]\n")
    (tmp_path / "playbook.yml").write_text("- hosts: localhost\n  tasks: []\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANSIBLE_ROLES_PATH", raising=False)
    monkeypatch.delenv("ANSIBLE_COLLECTIONS_PATH", raising=False)
    return tmp_path


def write(project, text):
    path = project / "watches.yaml"
    path.write_text(text)
    return str(path)


def test_the_traces_watch_with_its_defaults(project):
    watches = load(
        write(
            project,
            """
- version: v1alpha1
  group: conformance.example.com
  kind: Probe
  role: probe
  reconcilePeriod: 0s
  vars:
    watch_var: from-watches
  finalizer:
    name: conformance.example.com/finalizer
    vars:
      finalizer_run: true
""",
        ),
        max_workers=3,
        verbosity=2,
    )
    assert len(watches) == 1
    w = watches[0]
    assert w.gvk == PROBE
    assert str(w.gvk) == "conformance.example.com/v1alpha1, Kind=Probe"
    assert w.role == str(project / "roles" / "probe")
    assert w.path == w.role
    assert w.vars == {"watch_var": "from-watches"}
    assert w.finalizer.name == "conformance.example.com/finalizer"
    assert w.finalizer.vars == {"finalizer_run": True}
    assert (w.finalizer.role, w.finalizer.playbook) == ("", "")
    assert w.reconcile_period_ns == 0
    assert w.max_runner_artifacts == 20
    assert w.manage_status is True
    assert w.watch_dependent_resources is True
    assert w.watch_cluster_scoped_resources is False
    assert w.snake_case_parameters is True
    assert w.watch_annotations_changes is False
    assert w.mark_unsafe is False
    assert w.selector == {}
    assert w.blacklist == []
    assert w.max_concurrent_reconciles == 3
    assert w.ansible_verbosity == 2


def test_every_field_and_case_insensitive_keys(project):
    (project / "playbooks").mkdir()
    (project / "playbooks" / "fin.yml").write_text("[]\n")
    w = load(
        write(
            project,
            """
- Version: v1
  Group: ""
  KIND: Secret
  playbook: playbook.yml
  role: probe
  maxRunnerArtifacts: 3
  ReconcilePeriod: 1m30s
  manageStatus: false
  watchDependentResources: false
  watchClusterScopedResources: true
  snakeCaseParameters: false
  watchAnnotationsChanges: true
  markUnsafe: true
  selector:
    matchLabels: {app: demo}
    matchExpressions: [{key: tier, operator: In, values: [db]}]
  blacklist: [{group: apps, version: v1, kind: StatefulSet}]
  finalizer: {name: x/finalizer, playbook: playbooks/fin.yml}
""",
        ),
        1,
        2,
    )[0]
    assert w.gvk == GVK("", "v1", "Secret")
    assert w.playbook == str(project / "playbook.yml")
    assert w.path == w.playbook  # the playbook wins over the role
    assert w.max_runner_artifacts == 3
    assert w.reconcile_period_ns == 90 * 10**9
    assert (w.manage_status, w.watch_dependent_resources, w.snake_case_parameters) == (False, False, False)
    assert (w.watch_cluster_scoped_resources, w.watch_annotations_changes, w.mark_unsafe) == (
        True,
        True,
        True,
    )
    assert w.selector == {
        "matchLabels": {"app": "demo"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}],
    }
    assert w.blacklist == [GVK("apps", "v1", "StatefulSet")]
    assert w.finalizer.playbook == str(project / "playbooks" / "fin.yml")


def test_zero_max_runner_artifacts_means_the_default(project):
    w = load(write(project, "- {version: v1, kind: Probe, role: probe, maxRunnerArtifacts: 0}\n"), 1, 2)[0]
    assert w.max_runner_artifacts == 20


def test_role_resolution_order(project, tmp_path_factory, monkeypatch):
    first = tmp_path_factory.mktemp("first")
    second = tmp_path_factory.mktemp("second")
    (second / "roles" / "probe").mkdir(parents=True)
    monkeypatch.setenv("ANSIBLE_ROLES_PATH", f"{first}:{second}")
    text = "- {version: v1, kind: Probe, role: probe}\n"
    # <entry>/roles/<role> of the second entry beats CWD/roles/<role>.
    assert load(write(project, text), 1, 2)[0].role == str(second / "roles" / "probe")
    # <entry>/<role> of the first entry beats everything after it.
    (first / "probe").mkdir()
    assert load(write(project, text), 1, 2)[0].role == str(first / "probe")


def test_collection_role_by_fqcn(project, tmp_path_factory, monkeypatch):
    collections = tmp_path_factory.mktemp("collections")
    role = collections / "ansible_collections" / "acme" / "dbs" / "roles" / "probe"
    role.mkdir(parents=True)
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(collections))
    w = load(write(project, "- {version: v1, kind: Probe, role: acme.dbs.probe}\n"), 1, 2)[0]
    assert w.role == str(role)


def test_absolute_role_path(project):
    role = project / "roles" / "probe"
    assert load(write(project, f"- {{version: v1, kind: Probe, role: {role}}}\n"), 1, 2)[0].role == str(role)


def test_environment_expansion(project, monkeypatch):
    monkeypatch.setenv("WATCH_VERSION", "v123")
    monkeypatch.setenv("WATCH_ROLE", "probe")
    monkeypatch.delenv("WATCH_UNDEFINED", raising=False)
    w = load(
        write(
            project,
            "- version: ${WATCH_VERSION}\n  kind: Probe\n  role: $WATCH_ROLE\n"
            "  vars: {kept: '${WATCH_UNDEFINED}', jinja: '{{ ansible_operator_meta }}'}\n",
        ),
        1,
        2,
    )[0]
    assert w.gvk.version == "v123"
    assert w.role == str(project / "roles" / "probe")
    assert w.vars == {"kept": "${WATCH_UNDEFINED}", "jinja": "{{ ansible_operator_meta }}"}


def test_vars_become_what_go_would_marshal(project):
    w = load(
        write(project, "- {version: v1, kind: Probe, role: probe, vars: {n: 3.0, 1: one, no: n}}\n"), 1, 2
    )[0]
    # YAML -> JSON -> Go float64 -> JSON: 3.0 comes out as 3, keys are strings.
    assert w.vars == {"n": 3, "1": "one", "false": "n"}
    assert isinstance(w.vars["n"], int)


def test_concurrency_and_verbosity_from_environment(project, monkeypatch):
    text = "- {version: v1alpha1, group: conformance.example.com, kind: Probe, role: probe}\n"
    monkeypatch.setenv("MAX_CONCURRENT_RECONCILES_PROBE_CONFORMANCE_EXAMPLE_COM", "5")
    monkeypatch.setenv("ANSIBLE_VERBOSITY_PROBE_CONFORMANCE_EXAMPLE_COM", "4")
    w = load(write(project, text), 2, 1)[0]
    assert (w.max_concurrent_reconciles, w.ansible_verbosity) == (5, 4)

    monkeypatch.delenv("MAX_CONCURRENT_RECONCILES_PROBE_CONFORMANCE_EXAMPLE_COM")
    monkeypatch.setenv("WORKER_PROBE_CONFORMANCE_EXAMPLE_COM", "7")  # the deprecated name
    monkeypatch.setenv("ANSIBLE_VERBOSITY_PROBE_CONFORMANCE_EXAMPLE_COM", "8")  # out of 0..7
    w = load(write(project, text), 2, 1)[0]
    assert (w.max_concurrent_reconciles, w.ansible_verbosity) == (7, 1)

    monkeypatch.setenv("WORKER_PROBE_CONFORMANCE_EXAMPLE_COM", "0")  # not positive: the flag's value
    monkeypatch.setenv("ANSIBLE_VERBOSITY_PROBE_CONFORMANCE_EXAMPLE_COM", "many")
    w = load(write(project, text), 2, 1)[0]
    assert (w.max_concurrent_reconciles, w.ansible_verbosity) == (2, 1)


def test_unknown_and_flag_only_fields_are_ignored_with_a_warning(project, caplog):
    caplog.set_level(logging.WARNING, logger="watches")
    text = "- {version: v1, kind: Probe, role: probe, maxConcurrentReconciles: 9, rolle: other}\n"
    w = load(write(project, text), 2, 2)[0]
    assert w.max_concurrent_reconciles == 2
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "'maxConcurrentReconciles' cannot be set in watches.yaml" in messages
    assert "unknown field 'rolle' is ignored" in messages


ERRORS = [
    (
        "- {version: v1alpha1, group: conformance.example.com, kind: Probe, role: probe}\n" * 2,
        "duplicate GVK: conformance.example.com/v1alpha1, Kind=Probe",
    ),
    ("- {group: g, kind: Probe, role: probe}\n", "invalid GVK: g/, Kind=Probe: version must not be empty"),
    ("- {group: g, version: v1, role: probe}\n", "invalid GVK: g/v1, Kind=: kind must not be empty"),
    ("- {version: v1, kind: Probe}\n", "must specify Role or Playbook"),
    ("- {version: v1, kind: Probe, role: nosuchrole}\n", "role: nosuchrole was not found"),
    ("- {version: v1, kind: Probe, playbook: nosuch.yml}\n", "nosuch.yml was not found"),
    ("- {version: v1, kind: Probe, role: probe, finalizer: {vars: {a: 1}}}\n", "finalizer must have name"),
    (
        "- {version: v1, kind: Probe, role: probe, finalizer: {name: f}}\n",
        "Invalid ansible path on Finalizer",
    ),
    (
        "- {version: v1, kind: Probe, role: probe, finalizer: {name: f, role: nosuch}}\n",
        "role: nosuch was not found",
    ),
    ("- {version: 1, kind: Probe, role: probe}\n", "'version' must be a string"),
    (
        "- {version: v1, kind: Probe, role: probe, manageStatus: 'false'}\n",
        "'manageStatus' must be true or false",
    ),
    (
        "- {version: v1, kind: Probe, role: probe, maxRunnerArtifacts: two}\n",
        "'maxRunnerArtifacts' must be an integer",
    ),
    (
        "- {version: v1, kind: Probe, role: probe, reconcilePeriod: 5}\n",
        "'reconcilePeriod' must be a duration",
    ),
    (
        "- {version: v1, kind: Probe, role: probe, reconcilePeriod: 1d}\n",
        'time: unknown unit "d" in duration "1d"',
    ),
    ("- {version: v1, kind: Probe, role: probe, vars: [a]}\n", "'vars' must be a mapping"),
    (
        "- {version: v1, kind: Probe, role: probe, selector: {matchExpressions: [{key: a, operator: In}]}}\n",
        "operator In needs values",
    ),
    (
        "- {version: v1, kind: Probe, role: probe, selector: {matchExpressions: [{key: a, operator: Is}]}}\n",
        "operator 'Is' is not one of",
    ),
    ("version: v1\nkind: Probe\n", "must be a list of watches"),
    ("- version: v1\n  kind: [unclosed\n", "Failed to unmarshal config"),
    ("- just-a-string\n", "each watch must be a mapping"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors_name_the_problem(project, text, message):
    with pytest.raises(WatchesError) as excinfo:
        load(write(project, text), 1, 2)
    assert message in str(excinfo.value)


def test_finalizer_with_vars_only_reruns_the_main_role(project):
    w = load(
        write(project, "- {version: v1, kind: Probe, role: probe, finalizer: {name: f, vars: {x: 1}}}\n"),
        1,
        2,
    )
    assert w[0].finalizer.vars == {"x": 1}


def test_missing_file(project):
    with pytest.raises(WatchesError, match="Failed to get config file"):
        load(os.path.join(project, "nope.yaml"), 1, 2)


def test_empty_file_has_no_watches(project):
    assert load(write(project, ""), 1, 2) == []
