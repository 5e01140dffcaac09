"""What a kubelet resolves before starting a container: environment, files, data directory, args.

:func:`plan_container` reads a pod's MariaDB container and the objects it refers to (Secrets,
ConfigMaps, PersistentVolumeClaims and their volumes) and returns a :class:`ContainerPlan`.
Files of ConfigMap, Secret and projected volumes are written under the pod's work directory
(one per pod UID) at their mount paths (``<work dir>/fs/<mountPath>``), which is how the
server finds its mounted configuration and the ``*_FILE`` variables their files.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes
from kubernetes.client.exceptions import ApiException

from testbed.podruntime.images import is_mariadb_image

DATADIR_MOUNT = "/var/lib/mysql"
SERVER_COMMANDS = ("mariadbd", "mysqld")
ENTRYPOINT = "docker-entrypoint.sh"


class PodConfigError(Exception):
    """The container cannot be created yet (a kubelet's CreateContainerConfigError)."""


@dataclass
class ContainerPlan:
    container: str
    image: str
    env: dict[str, str]
    server_args: list[str]
    files_root: Path
    datadir: Path
    datadir_is_ephemeral: bool
    notes: list[str] = field(default_factory=list)

    def host_path(self, container_path: str) -> Path:
        """Where a file the container sees at `container_path` is on this machine."""
        return self.files_root / container_path.lstrip("/")


def mariadb_container(pod: kubernetes.client.V1Pod) -> kubernetes.client.V1Container | None:
    return next((c for c in pod.spec.containers if is_mariadb_image(c.image or "")), None)


def server_args(container: kubernetes.client.V1Container) -> list[str]:
    """mariadbd's arguments from the container's command and args, as the image's entrypoint
    reads them: options alone, or `mariadbd`/`mysqld` (optionally behind the entrypoint)."""
    words = list(container.command or []) + list(container.args or [])
    if words and os.path.basename(words[0]) == ENTRYPOINT:
        words = words[1:]
    if not words:
        return []
    if words[0].startswith("-"):
        return words
    if os.path.basename(words[0]) in SERVER_COMMANDS:
        return words[1:]
    raise PodConfigError(
        f"container {container.name}: command {words[0]!r} is not mariadbd; the test bed runs only "
        "mariadbd (with options) as a MariaDB container's command"
    )


def expand_references(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined variables are replaced, $$ escapes a $."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", replace, value)


class Resolver:
    """Reads the objects a pod refers to, through the API (as the kubelet does)."""

    def __init__(self, core: kubernetes.client.CoreV1Api, pod: kubernetes.client.V1Pod) -> None:
        self.core = core
        self.pod = pod
        self.namespace = pod.metadata.namespace

    def _get(
        self, kind: str, name: str, optional: bool
    ) -> kubernetes.client.V1Secret | kubernetes.client.V1ConfigMap | None:
        read = self.core.read_namespaced_secret if kind == "secret" else self.core.read_namespaced_config_map
        try:
            return read(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                if optional:
                    return None
                raise PodConfigError(f'{kind} "{name}" not found') from None
            raise

    def secret_data(self, name: str, optional: bool = False) -> dict[str, bytes] | None:
        secret = self._get("secret", name, optional)
        if secret is None:
            return None
        return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}

    def config_map_data(self, name: str, optional: bool = False) -> dict[str, bytes] | None:
        config_map = self._get("configmap", name, optional)
        if config_map is None:
            return None
        data = {k: v.encode() for k, v in (config_map.data or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (config_map.binary_data or {}).items()})
        return data

    def key(
        self,
        kind: str,
        ref: kubernetes.client.V1SecretKeySelector | kubernetes.client.V1ConfigMapKeySelector,
        what: str,
    ) -> str | None:
        data = (self.secret_data if kind == "secret" else self.config_map_data)(ref.name, bool(ref.optional))
        if data is None:
            return None
        if ref.key not in data:
            if ref.optional:
                return None
            raise PodConfigError(
                f"couldn't find key {ref.key} in {kind} {self.namespace}/{ref.name} ({what})"
            )
        return data[ref.key].decode()

    def field(self, path: str) -> str:
        pod = self.pod
        simple = {
            "metadata.name": pod.metadata.name,
            "metadata.namespace": pod.metadata.namespace,
            "metadata.uid": pod.metadata.uid,
            "spec.nodeName": pod.spec.node_name,
            "spec.serviceAccountName": pod.spec.service_account_name,
            "status.hostIP": pod.status.host_ip,
            "status.podIP": pod.status.pod_ip,
            "status.podIPs": ",".join(ip.ip for ip in pod.status.pod_i_ps or []),
        }
        if path in simple:
            return simple[path] or ""
        match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if match:
            mapping = (pod.metadata.labels if match.group(1) == "labels" else pod.metadata.annotations) or {}
            return mapping.get(match.group(2), "")
        raise PodConfigError(f"fieldRef {path!r} is not supported by the test bed")

    def env(self, container: kubernetes.client.V1Container) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.env_from or []:
            prefix = source.prefix or ""
            if source.secret_ref:
                data = self.secret_data(source.secret_ref.name, bool(source.secret_ref.optional)) or {}
            else:
                data = (
                    self.config_map_data(source.config_map_ref.name, bool(source.config_map_ref.optional))
                    or {}
                )
            env.update({prefix + k: v.decode() for k, v in data.items()})
        for var in container.env or []:
            if var.value_from is None:
                env[var.name] = expand_references(var.value or "", env)
                continue
            source = var.value_from
            if source.secret_key_ref:
                value = self.key("secret", source.secret_key_ref, f"env {var.name}")
            elif source.config_map_key_ref:
                value = self.key("configmap", source.config_map_key_ref, f"env {var.name}")
            elif source.field_ref:
                value = self.field(source.field_ref.field_path)
            else:
                raise PodConfigError(
                    f"env {var.name}: only value, secretKeyRef, configMapKeyRef and fieldRef work here"
                )
            if value is not None:
                env[var.name] = value
        return env

    def volume_files(self, volume: kubernetes.client.V1Volume) -> dict[str, bytes] | None:
        """Files (relative path -> content) of a ConfigMap, Secret or projected volume; None for
        other kinds of volume."""

        def pick(
            data: dict[str, bytes] | None, items: list[kubernetes.client.V1KeyToPath] | None
        ) -> dict[str, bytes]:
            if data is None:
                return {}
            if not items:
                return dict(data)
            return {item.path: data[item.key] for item in items if item.key in data}

        if volume.config_map:
            source = volume.config_map
            return pick(self.config_map_data(source.name, bool(source.optional)), source.items)
        if volume.secret:
            source = volume.secret
            return pick(self.secret_data(source.secret_name, bool(source.optional)), source.items)
        if volume.projected:
            files: dict[str, bytes] = {}
            for source in volume.projected.sources or []:
                if source.config_map:
                    data = self.config_map_data(source.config_map.name, bool(source.config_map.optional))
                    files.update(pick(data, source.config_map.items))
                elif source.secret:
                    data = self.secret_data(source.secret.name, bool(source.secret.optional))
                    files.update(pick(data, source.secret.items))
            return files
        return None

    def volume_directory(self, volume: kubernetes.client.V1Volume) -> Path | None:
        """The directory behind a PersistentVolumeClaim or hostPath volume; None for others."""
        if volume.host_path:
            return Path(volume.host_path.path)
        if not volume.persistent_volume_claim:
            return None
        name = volume.persistent_volume_claim.claim_name
        try:
            claim = self.core.read_namespaced_persistent_volume_claim(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                raise PodConfigError(f'persistentvolumeclaim "{name}" not found') from None
            raise
        if claim.status.phase != "Bound" or not claim.spec.volume_name:
            raise PodConfigError(f'persistentvolumeclaim "{name}" is not bound')
        pv = self.core.read_persistent_volume(claim.spec.volume_name)
        if not pv.spec.host_path:
            raise PodConfigError(f"volume {pv.metadata.name} of claim {name} is not a hostPath volume")
        return Path(pv.spec.host_path.path)


def materialise(files_root: Path, mount_path: str, files: dict[str, bytes], sub_path: str | None) -> None:
    target = files_root / mount_path.lstrip("/")
    if sub_path:
        if sub_path in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[sub_path])
            target.chmod(0o600)
        return
    for relative, content in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o600)


def plan_container(
    core: kubernetes.client.CoreV1Api, pod: kubernetes.client.V1Pod, work_dir: Path
) -> ContainerPlan:
    container = mariadb_container(pod)
    if container is None:
        raise PodConfigError("the pod has no MariaDB container")
    resolver = Resolver(core, pod)
    env = resolver.env(container)
    # As the kubelet does, $(VAR) in command and args refers to the container's environment.
    args = [expand_references(arg, env) for arg in server_args(container)]

    files_root = work_dir / "fs"
    shutil.rmtree(files_root, ignore_errors=True)
    files_root.mkdir(parents=True)
    files_root.chmod(0o700)
    volumes = {v.name: v for v in pod.spec.volumes or []}
    datadir: Path | None = None
    notes = []
    for mount in container.volume_mounts or []:
        volume = volumes.get(mount.name)
        if volume is None:
            raise PodConfigError(f"volumeMount {mount.name}: no such volume in the pod")
        files = resolver.volume_files(volume)
        if files is not None:
            materialise(files_root, mount.mount_path, files, mount.sub_path)
        elif mount.mount_path.rstrip("/") == DATADIR_MOUNT:
            directory = resolver.volume_directory(volume)
            if directory is not None:
                datadir = directory / mount.sub_path if mount.sub_path else directory
                notes.append(f"data directory {datadir} (volume {mount.name})")

    ephemeral = datadir is None
    if datadir is None:
        datadir = work_dir / "emptydir-data"
        notes.append(f"data directory {datadir} (not on a PersistentVolume: deleted with the pod)")
    datadir.mkdir(parents=True, exist_ok=True)
    return ContainerPlan(
        container=container.name,
        image=container.image,
        env=env,
        server_args=args,
        files_root=files_root,
        datadir=datadir,
        datadir_is_ephemeral=ephemeral,
        notes=notes,
    )
