"""What the reconciler takes from ansible-runner's job events (eventapi and reconcile.go)."""

from testbed.runner.events import RunEvents, failed_message, requeue_period


def event(kind, action="debug", res=None, **data):
    event_data = {"task_action": action, **data}
    if res is not None:
        event_data["res"] = res
    return {"event": kind, "event_data": event_data}


def test_requeue_after_short_and_fqcn_actions():
    assert requeue_period(event("runner_on_ok", "requeue_after", {"period": "5s"})) == "5s"
    assert requeue_period(event("runner_on_ok", "operator_sdk.util.requeue_after", {"period": "1m"})) == "1m"
    # Go: `a == fqcn || a == short && event != runner_on_failed`: a failed short-named task is not
    # a requeue, a failed FQCN one still is (and without a period it is an error).
    assert requeue_period(event("runner_on_failed", "requeue_after", {"msg": "bad"})) is None
    assert requeue_period(event("runner_on_failed", "operator_sdk.util.requeue_after", {"msg": "bad"})) == ""
    # Events without a result mapping (the task start) do not count.
    assert requeue_period(event("playbook_on_task_start", "requeue_after")) is None
    assert requeue_period(event("runner_on_ok", "debug", {"period": "5s"})) is None


def test_failures_skip_ignored_errors_but_not_rescued_tasks():
    run = RunEvents()
    run.add(event("runner_on_failed", "fail", {"msg": "counted"}))
    run.add(event("runner_on_failed", "fail", {"msg": "ignored"}, ignore_errors=True))
    # ansible-runner never marks a rescued task in its runner_on_failed event, so the operator
    # counts it (ansible-operator-plugins#88); the runner does the same.
    run.add(event("runner_on_failed", "fail", {"msg": "rescued later"}, ignore_errors=None))
    run.add(event("runner_on_failed", "fail", {"msg": "marked rescued"}, rescued={"localhost": 1}))
    run.add(event("runner_on_failed", "command", {"stderr": "no msg"}))
    run.add(event("runner_on_failed", "command", {"msg": ["not", "a", "string"]}))
    assert run.failures == [
        "counted",
        "rescued later",
        "unknown playbook failure",
        "unknown playbook failure",
    ]


def test_the_stats_event_is_kept():
    run = RunEvents()
    stats = {"event": "playbook_on_stats", "event_data": {"ok": {"localhost": 1}}}
    run.add(event("runner_on_ok", "debug", {}))
    run.add(stats)
    assert run.stats is stats


def test_failed_message():
    assert failed_message(event("runner_on_failed", "fail", {"msg": "boom"})) == "boom"
    assert failed_message({"event": "runner_on_failed"}) == "unknown playbook failure"
