"""The API server, through the Kubernetes Python client's ApiClient: REST calls, discovery, watch
streams, and the per-run kubeconfig handed to Ansible."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3
import yaml
from kubernetes.client.exceptions import ApiException

from testbed.runner.watches import GVK

REQUEST_TIMEOUT = 30


class ApiError(Exception):
    """An API call failed: `status` is the HTTP status (0 when the server was not reached)."""

    def __init__(self, status: int, reason: str, message: str = "") -> None:
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def gone(self) -> bool:
        return self.status == 410


@dataclass(frozen=True)
class Resource:
    gvk: GVK
    plural: str
    namespaced: bool

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        base = f"/apis/{self.gvk.group}/{self.gvk.version}" if self.gvk.group else f"/api/{self.gvk.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base


def kubeconfig_paths() -> list[str]:
    """The files client-go would read: $KUBECONFIG (a ':' list) or ~/.kube/config."""
    env = os.environ.get("KUBECONFIG", "")
    paths = [p for p in env.split(":") if p] if env else [os.path.expanduser("~/.kube/config")]
    return [p for p in paths if os.path.exists(p)]


def _absolute(path: str, base: str) -> str:
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


_PATH_KEYS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}


def minified_kubeconfig() -> dict[str, Any]:
    """The current context of the merged kubeconfig files, alone, with file paths made absolute.

    The first file that defines a name wins, as in client-go; the context's namespace is dropped
    because the real operator's per-run kubeconfig has none.
    """
    paths = kubeconfig_paths()
    if not paths:
        raise RuntimeError("no kubeconfig: set KUBECONFIG or create ~/.kube/config")
    current = ""
    found: dict[str, dict[str, dict[str, Any]]] = {"clusters": {}, "users": {}, "contexts": {}}
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
        base = os.path.dirname(os.path.abspath(path))
        current = current or doc.get("current-context", "")
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for item in doc.get(section) or []:
                name = item.get("name")
                if name in found[section]:
                    continue
                body = dict(item.get(inner) or {})
                for key in _PATH_KEYS.get(inner, ()):
                    if isinstance(body.get(key), str):
                        body[key] = _absolute(body[key], base)
                found[section][name] = body
    if current not in found["contexts"]:
        raise RuntimeError(f"kubeconfig {':'.join(paths)}: current context {current!r} is not defined")
    context = {k: v for k, v in found["contexts"][current].items() if k != "namespace"}
    cluster, user = context.get("cluster"), context.get("user")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": found["clusters"].get(cluster, {})}],
        "users": [{"name": user, "user": found["users"].get(user, {})}],
        "contexts": [{"name": current, "context": context}],
        "current-context": current,
        "preferences": {},
    }


def write_run_kubeconfig(config: dict[str, Any]) -> str:
    """A private copy for one run (the real operator writes /tmp/kubeconfig<random> too)."""
    fd, path = tempfile.mkstemp(prefix="kubeconfig")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh, default_flow_style=False)
    return path


class Kube:
    """Thread-safe JSON REST access to one cluster."""

    def __init__(self) -> None:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(client_configuration=configuration)
        if not configuration.verify_ssl:
            # The kubeconfig asks for insecure-skip-tls-verify; one warning per request adds nothing.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        # Watches hold a connection each; keep enough for them plus the workers.
        configuration.connection_pool_maxsize = 64
        self.api = kubernetes.client.ApiClient(configuration)
        self._resources: dict[GVK, Resource] = {}
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        stream: bool = False,
        timeout: float | tuple[float, float] = REQUEST_TIMEOUT,
    ) -> Any:
        try:
            response = self.api.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout,
            )[0]
        except ApiException as exc:
            message = ""
            try:
                message = json.loads(exc.body or "{}").get("message", "")
            except ValueError:
                message = (exc.body or "")[:200]
            raise ApiError(exc.status or 0, exc.reason or "", message) from exc
        except OSError as exc:
            raise ApiError(0, "connection failed", str(exc)) from exc
        if stream:
            return response
        data = response.data
        return json.loads(data) if data else None

    def resource(self, gvk: GVK) -> Resource:
        with self._lock:
            if gvk in self._resources:
                return self._resources[gvk]
        path = f"/apis/{gvk.group}/{gvk.version}" if gvk.group else f"/api/{gvk.version}"
        listing = self.request("GET", path)
        for item in listing.get("resources", []):
            if item.get("kind") == gvk.kind and "/" not in item.get("name", ""):
                resource = Resource(gvk, item["name"], bool(item.get("namespaced")))
                with self._lock:
                    self._resources[gvk] = resource
                return resource
        raise ApiError(404, "NotFound", f"the server has no resource for {gvk}")

    def get(self, gvk: GVK, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", self.resource(gvk).path(namespace, name))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def update(self, gvk: GVK, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return self.request("PUT", self.resource(gvk).path(meta.get("namespace"), meta["name"]), body=obj)

    def update_status(self, gvk: GVK, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        path = self.resource(gvk).path(meta.get("namespace"), meta["name"], "status")
        return self.request("PUT", path, body=obj)

    def list(self, resource: Resource, namespace: str | None) -> dict[str, Any]:
        return self.request("GET", resource.path(namespace))

    def watch(
        self, resource: Resource, namespace: str | None, resource_version: str, timeout_seconds: int
    ) -> Iterator[dict[str, Any]]:
        """The watch events (type, object) from resource_version until the server ends the stream."""
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_seconds,
        }
        response = self.request(
            "GET", resource.path(namespace), query=query, stream=True, timeout=(10, timeout_seconds + 30)
        )
        try:
            pending = b""
            for chunk in response.stream(amt=None, decode_content=False):
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            response.release_conn()
