"""The Running/Successful/Failure conditions, ported from ansible-operator's `controller/status`.

Quirks kept on purpose, because users and roles see them:
- setting a condition whose type (other than Failure), status and reason are unchanged is a
  no-op, so its message and ansibleResult stay as they were;
- lastTransitionTime is kept when the status does not change;
- a set condition moves to the end of the list;
- every condition is re-serialised with only type/status/lastTransitionTime/reason/message/
  ansibleResult (other fields of custom conditions are dropped, their types are kept), and
  every other key under .status is kept as it is.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass, field, replace
from typing import Any

RUNNING = "Running"
SUCCESSFUL = "Successful"
FAILURE = "Failure"

RUNNING_REASON = "Running"
SUCCESSFUL_REASON = "Successful"
FAILED_REASON = "Failed"

RUNNING_MESSAGE = "Running reconciliation"
AWAITING_MESSAGE = "Awaiting next reconciliation"
SUCCESSFUL_MESSAGE = "Last reconciliation succeeded"

# metav1.Time is parsed with layout "2006-01-02T15:04:05Z"; Go accepts a fraction there too.
_TRANSITION_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?Z$")
# eventapi.EventTime: parsed as "2006-01-02T15:04:05.999999999+00:00".
_EVENT_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?\+00:00$")
_ZERO_EVENT_TIME = "0001-01-01T00:00:00+00:00"


def now() -> str:
    """metav1.Now() as JSON: RFC 3339 in UTC, whole seconds."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_time(created: Any) -> str:
    """An ansible-runner `created` timestamp as the operator writes it into ansibleResult.completion.

    Go formats it with ".99999999": at most 8 fraction digits, trailing zeros dropped, "+00:00"
    appended; a timestamp it cannot parse becomes the zero time.
    """
    match = _EVENT_TIME.match(created) if isinstance(created, str) else None
    if not match:
        return _ZERO_EVENT_TIME
    fraction = (match.group(2) or "")[:8].rstrip("0")
    return match.group(1) + (f".{fraction}" if fraction else "") + "+00:00"


@dataclass
class AnsibleResult:
    ok: int = 0
    changed: int = 0
    skipped: int = 0
    failures: int = 0
    completion: str = _ZERO_EVENT_TIME

    @classmethod
    def from_stats(cls, stats_event: dict[str, Any] | None, host: str = "localhost") -> AnsibleResult:
        """From a playbook_on_stats event (NewAnsibleResultFromStatusJobEvent): counts for `host`."""
        if not stats_event:
            return cls()
        data = stats_event.get("event_data") or {}

        def count(key: str) -> int:
            return int((data.get(key) or {}).get(host, 0))

        return cls(
            ok=count("ok"),
            changed=count("changed"),
            skipped=count("skipped"),
            failures=count("failures"),
            completion=event_time(stats_event.get("created")),
        )

    @classmethod
    def from_map(cls, raw: dict[str, Any]) -> AnsibleResult:
        def count(key: str) -> int:
            value = raw.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"status condition ansibleResult.{key} must be an integer, got {value!r}")
            return value

        completion = raw.get("completion")
        return cls(
            ok=count("ok"),
            changed=count("changed"),
            skipped=count("skipped"),
            failures=count("failures"),
            completion=event_time(completion.strip('"\\'))
            if isinstance(completion, str)
            else _ZERO_EVENT_TIME,
        )

    def to_map(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "changed": self.changed,
            "skipped": self.skipped,
            "failures": self.failures,
            "completion": self.completion,
        }


@dataclass
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: str = field(default_factory=now)
    ansible_result: AnsibleResult | None = None

    @classmethod
    def from_map(cls, raw: dict[str, Any]) -> Condition:
        """createConditionFromMap: missing type means Running, missing status means True."""

        def text(key: str, default: str) -> str:
            value = raw.get(key)
            return value if isinstance(value, str) else default

        ltt = raw.get("lastTransitionTime")
        match = _TRANSITION_TIME.match(ltt) if isinstance(ltt, str) else None
        result = raw.get("ansibleResult")
        return cls(
            type=text("type", RUNNING),
            status=text("status", "True"),
            reason=text("reason", ""),
            message=text("message", ""),
            last_transition_time=match.group(1) + "Z" if match else now(),
            ansible_result=AnsibleResult.from_map(result) if isinstance(result, dict) else None,
        )

    def to_map(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "status": self.status,
            "lastTransitionTime": self.last_transition_time,
        }
        if self.ansible_result is not None:
            out["ansibleResult"] = self.ansible_result.to_map()
        out["reason"] = self.reason
        out["message"] = self.message
        return out


@dataclass
class Status:
    conditions: list[Condition]
    custom: dict[str, Any]

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> Status:
        raw = obj.get("status")
        if not isinstance(raw, dict):
            raw = {}
        custom = {k: copy.deepcopy(v) for k, v in raw.items() if k != "conditions"}
        items = raw.get("conditions")
        if not isinstance(items, list):
            return cls([], custom)
        return cls([Condition.from_map(c) for c in items if isinstance(c, dict)], custom)

    def get(self, condition_type: str) -> Condition | None:
        for condition in self.conditions:
            if condition.type == condition_type:
                return replace(condition)
        return None

    def set(self, condition: Condition) -> None:
        """SetCondition."""
        current = self.get(condition.type)
        if (
            current is not None
            and condition.type != FAILURE
            and current.status == condition.status
            and current.reason == condition.reason
        ):
            return
        if current is not None and current.status == condition.status:
            condition.last_transition_time = current.last_transition_time
        self.conditions = [c for c in self.conditions if c.type != condition.type] + [condition]

    def to_map(self) -> dict[str, Any]:
        out = dict(self.custom)
        out["conditions"] = [c.to_map() for c in self.conditions]
        return out


def mark_running(status: Status) -> None:
    """Start of a run: Successful -> False (reason and message kept), Running=True/Running."""
    successful = status.get(SUCCESSFUL)
    if successful is not None:
        successful.status = "False"
        status.set(successful)
    status.set(Condition(RUNNING, "True", RUNNING_REASON, RUNNING_MESSAGE))


def mark_done(status: Status, result: AnsibleResult, failure_messages: list[str]) -> None:
    """End of a run with a playbook_on_stats event."""
    if not failure_messages:
        status.set(Condition(RUNNING, "True", SUCCESSFUL_REASON, AWAITING_MESSAGE, ansible_result=result))
        status.set(Condition(SUCCESSFUL, "True", SUCCESSFUL_REASON, SUCCESSFUL_MESSAGE))
        status.set(Condition(FAILURE, "False", "", ""))
        return
    running = status.get(RUNNING)
    if running is not None:
        running.status = "False"
        status.set(running)
    status.set(Condition(FAILURE, "True", FAILED_REASON, "\n".join(failure_messages), ansible_result=result))
    status.set(Condition(SUCCESSFUL, "False", "", ""))


def mark_error(status: Status, message: str) -> None:
    """The run could not happen (runner missing, bad annotation ...): Failure=True with `message`."""
    for condition_type in (RUNNING, SUCCESSFUL):
        condition = status.get(condition_type)
        if condition is not None:
            condition.status = "False"
            status.set(condition)
    status.set(Condition(FAILURE, "True", FAILED_REASON, message))
