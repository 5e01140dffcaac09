"""The runner's command line: ansible-operator's flags and the runner's own settings."""

import pytest

from testbed.runner.operator import DEPENDENT_KINDS_ENV, _dependent_kinds, parser
from testbed.runner.watches import GVK


def test_flags_of_ansible_operator_run_are_accepted_go_style():
    args = parser().parse_args(
        [
            "run",
            "--watches-file=w.yaml",
            "--reconcile-period=1m30s",
            "--max-concurrent-reconciles",
            "3",
            "--ansible-verbosity=4",
            "--ansible-args='--tags x'",
            "--ansible-log-events=Everything",
            "--leader-elect",
            "--inject-owner-ref=false",
            "--metrics-addr=:9000",
            "--health-probe-bind-address=0",
            "--graceful-shutdown-timeout=5s",
            "--proxy-port=8889",
            "--zap-log-level=debug",
            "--enable-http2=true",
        ]
    )
    assert args.watches_file == "w.yaml"
    assert args.reconcile_period == 90.0
    assert args.max_concurrent_reconciles == 3
    assert args.ansible_verbosity == 4
    assert args.ansible_args == "'--tags x'"
    assert args.leader_elect is True
    assert args.inject_owner_ref is False
    assert args.metrics_bind_address == ":9000"
    assert args.graceful_shutdown_timeout == 5.0


def test_defaults_are_the_operators():
    args = parser().parse_args(["run"])
    assert args.watches_file == "./watches.yaml"
    assert args.reconcile_period == 36000.0  # 10h
    assert args.ansible_verbosity == 2
    assert args.inject_owner_ref is True
    assert args.leader_elect is False
    assert args.graceful_shutdown_timeout == 30.0
    assert args.ansible_log_events == "tasks"


@pytest.mark.parametrize("bad", [["run", "--reconcile-period=10"], ["run", "--leader-elect=maybe"]])
def test_bad_flag_values_are_rejected(bad):
    with pytest.raises(SystemExit):
        parser().parse_args(bad)


def test_dependent_kinds_setting(monkeypatch):
    monkeypatch.setenv(DEPENDENT_KINDS_ENV, "v1/Secret, apps/v1/StatefulSet,policy/v1/PodDisruptionBudget")
    assert _dependent_kinds() == [
        GVK("", "v1", "Secret"),
        GVK("apps", "v1", "StatefulSet"),
        GVK("policy", "v1", "PodDisruptionBudget"),
    ]
    monkeypatch.setenv(DEPENDENT_KINDS_ENV, "StatefulSet")
    with pytest.raises(ValueError, match="is not <apiVersion>/<Kind>"):
        _dependent_kinds()
    monkeypatch.delenv(DEPENDENT_KINDS_ENV)
    assert _dependent_kinds() == []
