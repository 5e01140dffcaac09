"""Volumes of the test bed: a pool of hostPath PersistentVolumes that nothing provisions.

The default StorageClass `standard` has no provisioner, so PVCs bind to pre-created PVs of the
pool (label ``testbed.simpledb.example.com/pool-size``). This controller does what a storage
driver would do:

- keeps ``pool`` Available PVs of each size (a claim binds to the smallest PV that fits);
- deletes a Released PV (its claim was deleted) together with its directory, so a deleted
  volume takes its data away;
- expands: when a bound PVC asks for more than its capacity, the PV's capacity and the PVC's
  ``status.capacity`` are raised to the request (nothing is really resized on disk).
"""

from __future__ import annotations

import logging
import secrets
import shutil
from pathlib import Path

import kubernetes
from kubernetes.utils import parse_quantity

POOL_LABEL = "testbed.simpledb.example.com/pool-size"
STORAGE_CLASS = "standard"

log = logging.getLogger("volumes")


def parse_pool(spec: str) -> dict[str, int]:
    """``"1Gi=10,2Gi=4"`` -> ``{"1Gi": 10, "2Gi": 4}``."""
    pool = {}
    for entry in filter(None, spec.split(",")):
        size, _, count = entry.partition("=")
        pool[size.strip()] = int(count)
    return pool


def pv_manifest(name: str, size: str, path: Path) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {POOL_LABEL: size}},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": STORAGE_CLASS,
            "volumeMode": "Filesystem",
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
        },
    }


class VolumeController:
    """One reconcile pass over the pool per call of :meth:`sync`."""

    def __init__(self, api: kubernetes.client.ApiClient, volumes_dir: Path, pool: dict[str, int]) -> None:
        self.core = kubernetes.client.CoreV1Api(api)
        self.volumes_dir = volumes_dir
        self.pool = pool

    def sync(self) -> None:
        volumes = self.core.list_persistent_volume(label_selector=POOL_LABEL).items
        for volume in volumes:
            if volume.status.phase == "Released":
                self.reclaim(volume)
        self.top_up([v for v in volumes if v.status.phase == "Available"])
        claims = self.core.list_persistent_volume_claim_for_all_namespaces().items
        pool_names = {v.metadata.name: v for v in volumes}
        for claim in claims:
            if claim.status.phase == "Bound" and claim.spec.volume_name in pool_names:
                self.expand(claim, pool_names[claim.spec.volume_name])

    def reclaim(self, volume: kubernetes.client.V1PersistentVolume) -> None:
        path = Path(volume.spec.host_path.path)
        claim = volume.spec.claim_ref
        log.info(
            "deleting released volume %s (was %s/%s) and %s",
            volume.metadata.name,
            claim.namespace if claim else "?",
            claim.name if claim else "?",
            path,
        )
        self.core.delete_persistent_volume(volume.metadata.name)
        if path.parent == self.volumes_dir:
            shutil.rmtree(path, ignore_errors=True)

    def top_up(self, available: list[kubernetes.client.V1PersistentVolume]) -> None:
        for size, wanted in self.pool.items():
            have = sum(1 for v in available if v.metadata.labels.get(POOL_LABEL) == size)
            for _ in range(wanted - have):
                name = f"testbed-pv-{size.lower()}-{secrets.token_hex(3)}"
                path = self.volumes_dir / name
                path.mkdir(parents=True, exist_ok=True)
                self.core.create_persistent_volume(pv_manifest(name, size, path))
                log.info("created volume %s (%s)", name, size)

    def expand(
        self, claim: kubernetes.client.V1PersistentVolumeClaim, volume: kubernetes.client.V1PersistentVolume
    ) -> None:
        requested = claim.spec.resources.requests.get("storage")
        capacity = (claim.status.capacity or {}).get("storage")
        if not requested or not capacity or parse_quantity(requested) <= parse_quantity(capacity):
            return
        log.info(
            "expanding %s/%s from %s to %s (volume %s)",
            claim.metadata.namespace,
            claim.metadata.name,
            capacity,
            requested,
            volume.metadata.name,
        )
        if parse_quantity(volume.spec.capacity["storage"]) < parse_quantity(requested):
            self.core.patch_persistent_volume(
                volume.metadata.name, {"spec": {"capacity": {"storage": requested}}}
            )
        self.core.patch_namespaced_persistent_volume_claim_status(
            claim.metadata.name,
            claim.metadata.namespace,
            {
                "status": {
                    "capacity": {"storage": requested},
                    "allocatedResources": {"storage": requested},
                    "allocatedResourceStatuses": None,
                    "conditions": None,
                }
            },
        )
