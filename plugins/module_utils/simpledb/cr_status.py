"""Writing a custom resource's status subresource without losing anyone else's fields.

The new status is computed from the object as read, then sent as a JSON merge patch that
carries the object's resourceVersion: if anything (such as the operator writing its own
conditions) changed the object in between, the API server answers 409 Conflict and the update
is computed again from a fresh read. Reads through the operator's caching proxy may lag behind
writes; the same conflict check covers that, which is why the patch is sent even when the
status as read already looks right. ``changed`` compares the status the server returns with
the status read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ansible.module_utils.simpledb.conditions import merge_conditions, merge_patch, utc_now
from ansible.module_utils.simpledb.k8s import KubeAPI, KubernetesError

CONFLICT_ATTEMPTS = 6


@dataclass
class StatusUpdate:
    changed: bool
    before: dict[str, Any]
    after: dict[str, Any]


def update_status(
    api: KubeAPI,
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    fields: dict[str, Any] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    observed_generation: int | None = None,
    check_mode: bool = False,
    now: Callable[[], str] = utc_now,
    unreported: tuple[str, ...] = (),
) -> StatusUpdate:
    """Merge ``fields`` (merge-patch semantics: None removes a key), ``conditions`` (by type) and
    ``observedGeneration`` into the object's status. A change of only the ``unreported`` fields
    is not reported as a change. Raises KubernetesError or InvalidCondition."""

    def changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
        def reported(status: dict[str, Any]) -> dict[str, Any]:
            return {key: value for key, value in status.items() if key not in unreported}

        return reported(after) != reported(before)

    resource = api.resource(api_version, kind)
    if "status" not in resource.subresources:
        raise KubernetesError(
            f"{kind} ({api_version}) has no status subresource: add `subresources: {{status: {{}}}}` to its "
            "CustomResourceDefinition"
        )
    where = f"{namespace}/{name}" if resource.namespaced else name
    for attempt in range(CONFLICT_ATTEMPTS):
        obj = api.get(resource, name, namespace)
        if obj is None:
            raise KubernetesError(f"{kind} {where} does not exist", 404)
        before = obj.get("status") or {}
        patch: dict[str, Any] = dict(fields or {})
        if conditions:
            patch["conditions"] = merge_conditions(before.get("conditions") or [], conditions, now())
        if observed_generation is not None:
            patch["observedGeneration"] = observed_generation
        if check_mode:
            after = merge_patch(before, patch)
            return StatusUpdate(changed(before, after), before, after)
        # Sent even when it looks like a no-op: behind the operator's caching proxy the read may
        # be stale, and only the conditional write tells. A true no-op leaves the object as it is.
        body = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}, "status": patch}
        try:
            written = api.merge_patch(resource, name, body, namespace, subresource="status")
        except KubernetesError as exc:
            if exc.status != 409:
                raise
            time.sleep(0.1 * (attempt + 1))  # someone else wrote, or the read was stale; read again
            continue
        after = written.get("status") or {}
        return StatusUpdate(changed(before, after), before, after)
    raise KubernetesError(
        f"The status of {kind} {where} kept changing while it was being written "
        f"({CONFLICT_ATTEMPTS} conflicts)",
        409,
    )
