"""ansible-runner job events: what the reconciler takes from them, and how they are logged.

Ported from ansible-operator's `runner/eventapi` and `events/log_events.go`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

PLAYBOOK_ON_TASK_START = "playbook_on_task_start"
RUNNER_ON_OK = "runner_on_ok"
RUNNER_ON_FAILED = "runner_on_failed"
RUNNER_ITEM_ON_OK = "runner_item_on_ok"
PLAYBOOK_ON_STATS = "playbook_on_stats"

REQUEUE_AFTER_ACTIONS = ("operator_sdk.util.requeue_after", "requeue_after")
VERBOSITY_ANNOTATION = "ansible.sdk.operatorframework.io/verbosity"
DEFAULT_FAILED_MESSAGE = "unknown playbook failure"

LOG_TASKS = "tasks"
LOG_EVERYTHING = "everything"
LOG_NOTHING = "nothing"

log = logging.getLogger("logging_event_handler")


def event_data(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("event_data")
    return data if isinstance(data, dict) else {}


def failed_message(event: dict[str, Any]) -> str:
    """GetFailedPlaybookMessage: res.msg when it is a string."""
    res = event_data(event).get("res")
    if isinstance(res, dict) and isinstance(res.get("msg"), str):
        return res["msg"]
    return DEFAULT_FAILED_MESSAGE


def ignores_error(event: dict[str, Any]) -> bool:
    return event_data(event).get("ignore_errors") is True


def rescued(event: dict[str, Any]) -> bool:
    """The operator's Rescued(): event_data.rescued has a count of 1.

    ansible-runner never puts `rescued` into runner_on_failed events, so a failed task inside a
    block that rescues it still counts as a failure, in the real operator as here
    (operator-framework/ansible-operator-plugins#88).
    """
    counts = event_data(event).get("rescued")
    return isinstance(counts, dict) and any(v == 1 for v in counts.values())


def requeue_period(event: dict[str, Any]) -> str | None:
    """The `period` of a requeue_after task's result, or None when the event is not one.

    The operator's condition is `action == "operator_sdk.util.requeue_after" || action ==
    "requeue_after" && event != runner_on_failed` (Go's && binds first), on any event with a
    `res` mapping. A matching event without a string `period` is an error there (a panic); here
    it returns "" and the caller reports it.
    """
    data = event_data(event)
    action = data.get("task_action")
    fqcn, short = REQUEUE_AFTER_ACTIONS
    if not (action == fqcn or (action == short and event.get("event") != RUNNER_ON_FAILED)):
        return None
    res = data.get("res")
    if not isinstance(res, dict):
        return None
    period = res.get("period")
    return period if isinstance(period, str) else ""


@dataclass
class RunEvents:
    """What the reconciler collects while it reads a run's events."""

    stats: dict[str, Any] | None = None
    failures: list[str] = field(default_factory=list)

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == PLAYBOOK_ON_STATS:
            self.stats = event
        if kind == RUNNER_ON_FAILED and not ignores_error(event) and not rescued(event):
            self.failures.append(failed_message(event))


def verbosity(obj: dict[str, Any]) -> int:
    """GetVerbosity: the CR's verbosity annotation, else ANSIBLE_VERBOSITY, else 0."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for raw in (annotations.get(VERBOSITY_ANNOTATION), os.environ.get("ANSIBLE_VERBOSITY")):
        try:
            value = int(raw) if raw else 0
        except ValueError:
            log.error("Unable to parse verbosity value %r", raw)
            value = 0
        if value > 0:
            return value
    return 0


class EventLogger:
    """loggingEventHandler: task starts, debug output, item results and failures (Tasks), every
    event (Everything) or nothing (Nothing)."""

    _lock = threading.Lock()

    def __init__(self, level: str) -> None:
        self.level = level

    def handle(self, ident: str, obj: dict[str, Any], gvk: str, event: dict[str, Any]) -> None:
        if self.level == LOG_NOTHING:
            return
        meta = obj.get("metadata") or {}
        fields = {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "gvk": gvk,
            "event_type": event.get("event"),
            "job": ident,
        }
        data = event_data(event)
        kind = event.get("event")
        if self.level == LOG_TASKS and "task" in data:
            action = data.get("task_action")
            if verbosity(obj) > 0:
                with self._lock:
                    _print(event.get("stdout", ""))
                return
            if kind == PLAYBOOK_ON_TASK_START and action not in ("set_fact", "debug"):
                with self._lock:
                    log.info(
                        "[playbook task start]",
                        extra={"fields": {**fields, "EventData.Name": data.get("name")}},
                    )
                    self._stdout(event)
                return
            if kind == RUNNER_ON_OK and action == "debug":
                with self._lock:
                    log.info(
                        "[playbook debug]",
                        extra={"fields": {**fields, "EventData.TaskArgs": data.get("task_args")}},
                    )
                    self._stdout(event)
                return
            if kind == RUNNER_ITEM_ON_OK:
                with self._lock:
                    self._stdout(event)
                return
            if kind == RUNNER_ON_FAILED:
                details = {
                    **fields,
                    "EventData.Task": data.get("task"),
                    "EventData.TaskArgs": data.get("task_args"),
                }
                if "task_path" in data:
                    details["EventData.FailedTaskPath"] = data["task_path"]
                with self._lock:
                    log.error("[playbook task failed]", extra={"fields": details})
                    self._stdout(event)
                return
        if self.level == LOG_EVERYTHING:
            with self._lock:
                log.info("", extra={"fields": {**fields, "EventData": data}})
                self._stdout(event)

    @staticmethod
    def _stdout(event: dict[str, Any]) -> None:
        stdout = event.get("stdout") or ""
        if not stdout:
            return
        lines = ["", "--------------------------- Ansible Task StdOut -------------------------------"]
        if event.get("event") != PLAYBOOK_ON_TASK_START:
            lines += ["", f" TASK [{event_data(event).get('task')}] ******************************** "]
        lines += [
            stdout,
            "",
            "-------------------------------------------------------------------------------",
        ]
        _print("\n".join(lines))


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_block(title: str, body: str) -> None:
    """The operator's banner around a run's stats or stdout."""
    _print(f"\n----- {title:>70} -----\n\n{body}\n\n----------")
