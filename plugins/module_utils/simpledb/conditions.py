"""Status conditions and status merging, as Kubernetes API conventions define them (pure logic).

A condition is ``{type, status: True|False|Unknown, reason, message, lastTransitionTime}``.
Setting conditions merges them by ``type`` into the existing list: other types are kept as they
are (the operator's own Running/Successful/Failure among them), and ``lastTransitionTime``
changes only when a condition's ``status`` changes.
"""

from __future__ import annotations

import copy
import datetime
import re
from typing import Any

STATUSES = ("True", "False", "Unknown")
# metav1.Condition's validation rules.
_TYPE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
TYPE_MAX = 316
REASON_MAX = 1024
MESSAGE_MAX = 32768


class InvalidCondition(ValueError):
    """A condition the API conventions do not allow; the message names it and the rule."""


def utc_now() -> str:
    """A timestamp as Kubernetes writes them (RFC 3339, UTC, whole seconds)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize_condition(condition: dict[str, Any]) -> dict[str, str]:
    """Check one requested condition; YAML booleans for ``status`` become "True"/"False"."""
    kind = condition.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > TYPE_MAX or not _TYPE.match(kind):
        raise InvalidCondition(
            f"condition type {kind!r} is not valid: use a CamelCase name such as Ready (optionally prefixed "
            "with a DNS subdomain and /)"
        )
    status = condition.get("status")
    if isinstance(status, bool):
        status = "True" if status else "False"
    if status not in STATUSES:
        raise InvalidCondition(f"condition {kind}: status must be True, False or Unknown, got {status!r}")
    reason = condition.get("reason")
    if not isinstance(reason, str) or len(reason) > REASON_MAX or not _REASON.match(reason):
        raise InvalidCondition(
            f"condition {kind}: reason {reason!r} is not valid: use a CamelCase word such as ServerReady "
            "(letters, digits, _ , and :; it starts with a letter)"
        )
    message = condition.get("message")
    message = "" if message is None else str(message)
    if len(message) > MESSAGE_MAX:
        message = message[: MESSAGE_MAX - 3] + "..."
    return {"type": kind, "status": status, "reason": reason, "message": message}


def merge_conditions(
    existing: list[dict[str, Any]], updates: list[dict[str, Any]], now: str
) -> list[dict[str, Any]]:
    """``existing`` with ``updates`` merged by type (a new list; the inputs are not changed).

    Existing conditions keep their position and any extra fields (such as the operator's
    ``ansibleResult``); new types are appended in the order given.
    """
    requested = [normalize_condition(c) for c in updates]
    types = [c["type"] for c in requested]
    duplicates = sorted({t for t in types if types.count(t) > 1})
    if duplicates:
        raise InvalidCondition(f"condition type {duplicates[0]} is given more than once")

    merged = [copy.deepcopy(c) for c in existing]
    position = {c.get("type"): i for i, c in enumerate(merged)}
    for condition in requested:
        index = position.get(condition["type"])
        if index is None:
            merged.append({**condition, "lastTransitionTime": now})
            continue
        current = merged[index]
        transition = current.get("status") != condition["status"] or not current.get("lastTransitionTime")
        current.update(condition)
        if transition:
            current["lastTransitionTime"] = now
    return merged


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: what the API server makes of ``patch`` applied to ``target``.

    Objects merge key by key, ``None`` removes a key, anything else (lists too) replaces.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
