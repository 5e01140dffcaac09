"""The simpledb_rolled_out filter: whether a StatefulSet's rollout is complete.

A child's status change does not trigger a reconcile, so the role checks the rollout itself:
after a change it waits until this holds, and a run that changed nothing skips the wait when
the StatefulSet it read already satisfies it.
"""

from __future__ import annotations

from typing import Any


def simpledb_rolled_out(statefulset: dict[str, Any] | None, replicas: int) -> bool:
    """Every one of `replicas` servers runs the current revision and is Ready."""
    if not statefulset:
        return False
    status = statefulset.get("status") or {}
    replicas = int(replicas)
    return (
        status.get("observedGeneration", 0) == (statefulset.get("metadata") or {}).get("generation")
        and status.get("readyReplicas", 0) == replicas
        and status.get("updatedReplicas", 0) == replicas
        and status.get("currentRevision", "") == status.get("updateRevision", "-")
    )


class FilterModule:
    def filters(self) -> dict:
        return {"simpledb_rolled_out": simpledb_rolled_out}
