"""Kubernetes Events (core/v1), aggregated like client-go's event recorder does.

An Event's name is derived from what makes two Events "the same" (involved object, type,
reason, message, reporting component), so a repeat finds the Event of the first occurrence by
name: within the aggregation window its ``count`` goes up and ``lastTimestamp`` moves, which
``kubectl describe`` shows as "(x3 over 5m)"; after the window a new series starts in the same
object (``count`` 1, new ``firstTimestamp``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ansible.module_utils.simpledb.conditions import utc_now
from ansible.module_utils.simpledb.k8s import KubeAPI, KubernetesError

EVENT_TYPES = ("Normal", "Warning")
# The API server refuses longer Event messages (NoteLengthLimit) and reasons.
MESSAGE_MAX = 1024
REASON_MAX = 128
REPORTING_INSTANCE_MAX = 128
DEFAULT_WINDOW = 600  # seconds; client-go's aggregation interval
CONFLICT_ATTEMPTS = 6
_NAME_PREFIX_MAX = 200  # leaves room for the hash in a 253-character name


@dataclass
class EventRecord:
    outcome: str  # "created", "aggregated" (count + 1) or "restarted" (a new series after the window)
    event: dict[str, Any]


def event_name(involved: dict[str, Any], event_type: str, reason: str, message: str, component: str) -> str:
    """``<involved name>.<16 hex digits>``: the same inputs always give the same name."""
    key = json.dumps(
        [
            involved.get("apiVersion"),
            involved.get("kind"),
            involved.get("namespace"),
            involved.get("name"),
            involved.get("uid"),
            event_type,
            reason,
            message,
            component,
        ]
    )
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return f"{involved['name'][:_NAME_PREFIX_MAX].lower().rstrip('.-')}.{digest}"


def complete_involved_object(api: KubeAPI, involved: dict[str, Any]) -> dict[str, Any]:
    """The involved object reference with its ``uid`` (looked up when missing) and without a
    namespace for cluster-scoped kinds."""
    resource = api.resource(involved["apiVersion"], involved["kind"])
    reference = {k: v for k, v in involved.items() if v}
    if not resource.namespaced:
        reference.pop("namespace", None)
    elif not reference.get("namespace"):
        raise KubernetesError(f"{involved['kind']} is namespaced: give the involved object's namespace")
    if not reference.get("uid"):
        obj = api.get(resource, involved["name"], reference.get("namespace"))
        if obj is None:
            where = (
                f"{reference['namespace']}/{involved['name']}" if resource.namespaced else involved["name"]
            )
            raise KubernetesError(
                f"{involved['kind']} {where} does not exist, so an Event cannot refer to it "
                "(give involved_object.uid to record one anyway)",
                404,
            )
        reference["uid"] = obj["metadata"]["uid"]
    return reference


def record_event(
    api: KubeAPI,
    involved: dict[str, Any],
    reason: str,
    message: str,
    event_type: str = "Normal",
    component: str = "simpledb-operator",
    instance: str | None = None,
    source_host: str | None = None,
    namespace: str | None = None,
    window: int = DEFAULT_WINDOW,
    check_mode: bool = False,
    now: Callable[[], str] = utc_now,
) -> EventRecord:
    """Create the Event, or count a repeat into the existing one. ``involved`` is a complete
    object reference (see complete_involved_object). Raises KubernetesError."""
    if event_type not in EVENT_TYPES:
        raise KubernetesError(f"Event type must be Normal or Warning, got {event_type!r}")
    if not reason or len(reason) > REASON_MAX:
        raise KubernetesError(f"Event reason must be 1 to {REASON_MAX} characters, got {len(reason)}")
    # Events of cluster-scoped objects go to "default", as kubectl and client-go put them.
    namespace = namespace or involved.get("namespace") or "default"
    name = event_name(involved, event_type, reason, message, component)
    if len(message) > MESSAGE_MAX:
        message = message[: MESSAGE_MAX - 3] + "..."
    events = api.resource("v1", "Event")

    for attempt in range(CONFLICT_ATTEMPTS):
        timestamp = now()
        existing = api.get(events, name, namespace)
        if existing is None:
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": involved,
                "type": event_type,
                "reason": reason,
                "message": message,
                "source": {k: v for k, v in (("component", component), ("host", source_host)) if v},
                "reportingComponent": component,
                "reportingInstance": (instance or "")[:REPORTING_INSTANCE_MAX],
                "firstTimestamp": timestamp,
                "lastTimestamp": timestamp,
                "count": 1,
            }
            if check_mode:
                return EventRecord("created", event)
            try:
                return EventRecord("created", api.create(events, event, namespace))
            except KubernetesError as exc:
                if exc.status != 409:  # 409: it exists (created meanwhile, or the read was stale)
                    raise
                time.sleep(0.05 * (attempt + 1))
                continue
        if (
            _seconds_between(existing.get("lastTimestamp") or existing.get("firstTimestamp"), timestamp)
            <= window
        ):
            outcome = "aggregated"
            patch = {"count": (existing.get("count") or 1) + 1, "lastTimestamp": timestamp}
        else:
            outcome = "restarted"
            patch = {"count": 1, "firstTimestamp": timestamp, "lastTimestamp": timestamp}
        if check_mode:
            return EventRecord(outcome, {**existing, **patch})
        patch["metadata"] = {"resourceVersion": existing["metadata"]["resourceVersion"]}
        try:
            return EventRecord(outcome, api.merge_patch(events, name, patch, namespace))
        except KubernetesError as exc:
            if exc.status not in (404, 409):  # it expired or changed meanwhile: start over
                raise
            time.sleep(0.05 * (attempt + 1))
    raise KubernetesError(f"Event {namespace}/{name} kept changing while it was being written")


def _seconds_between(earlier: str | None, later: str) -> float:
    if not earlier:
        return float("inf")
    return (_parse_time(later) - _parse_time(earlier)).total_seconds()


def _parse_time(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
