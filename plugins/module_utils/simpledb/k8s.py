"""Talking to the Kubernetes API: the authentication options of kubernetes.core, and a thin client.

Authentication follows kubernetes.core: module options, then the ``K8S_AUTH_*`` environment
(the operator sets ``K8S_AUTH_KUBECONFIG`` to the kubeconfig of its proxy), then the in-cluster
service account, then ``KUBECONFIG`` or ``~/.kube/config``.

The client is a few lines over the Python ``kubernetes`` package's ApiClient: it finds a kind's
resource with one discovery request and sends JSON, so it works the same for built-in kinds and
custom resources and needs nothing beyond the ``kubernetes`` package.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

try:
    import kubernetes.client
    import kubernetes.config
    import urllib3.exceptions
    from kubernetes.client.rest import ApiException

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - reported by require_kubernetes()
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = str(exc)

# Option -> environment variables, as kubernetes.core reads them (K8S_AUTH_<option or client name>).
AUTH_ENVIRONMENT = {
    "kubeconfig": ("K8S_AUTH_KUBECONFIG",),
    "context": ("K8S_AUTH_CONTEXT",),
    "host": ("K8S_AUTH_HOST",),
    "api_key": ("K8S_AUTH_API_KEY",),
    "validate_certs": ("K8S_AUTH_VALIDATE_CERTS", "K8S_AUTH_VERIFY_SSL"),
    "ca_cert": ("K8S_AUTH_CA_CERT", "K8S_AUTH_SSL_CA_CERT"),
    "client_cert": ("K8S_AUTH_CLIENT_CERT", "K8S_AUTH_CERT_FILE"),
    "client_key": ("K8S_AUTH_CLIENT_KEY", "K8S_AUTH_KEY_FILE"),
}
REQUEST_TIMEOUT = 30


class KubernetesError(Exception):
    """A request failed or the client could not be configured; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def require_kubernetes(module: Any) -> None:
    """Fail the module with an install hint when the kubernetes client is missing."""
    if not HAS_KUBERNETES:
        module.fail_json(
            msg="The Python library kubernetes is required on the host that runs this module "
            "(pip install kubernetes): " + str(KUBERNETES_IMPORT_ERROR)
        )


def auth_argument_spec() -> dict[str, dict[str, Any]]:
    """The authentication options, named as in kubernetes.core."""
    return {
        # A dict may embed credentials, hence no_log (as kubernetes.core does).
        "kubeconfig": {"type": "raw", "no_log": True},
        "context": {"type": "str"},
        "host": {"type": "str"},
        "api_key": {"type": "str", "no_log": True},
        "validate_certs": {"type": "bool", "aliases": ["verify_ssl"]},
        "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"]},
        "client_cert": {"type": "path", "aliases": ["cert_file"]},
        "client_key": {"type": "path", "aliases": ["key_file"]},
    }


def resolve_auth(params: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Each option from the module's params, else from its environment variables."""
    environ = os.environ if environ is None else environ
    auth: dict[str, Any] = {}
    for option, variables in AUTH_ENVIRONMENT.items():
        value = params.get(option)
        if value is None:
            value = next((environ[v] for v in variables if environ.get(v)), None)
            if value is not None and option == "validate_certs":
                value = value.lower() not in ("0", "false", "no", "off")
        if value is not None:
            auth[option] = value
    return auth


def api_client_from_params(params: dict[str, Any]) -> kubernetes.client.ApiClient:
    """An ApiClient configured as kubernetes.core would configure it for these params."""
    auth = resolve_auth(params)
    configuration = kubernetes.client.Configuration()
    try:
        if auth.get("host") and (auth.get("api_key") or (auth.get("client_cert") and auth.get("client_key"))):
            pass  # enough to authenticate: no kubeconfig or in-cluster configuration needed
        elif auth.get("kubeconfig") or auth.get("context"):
            _load_kubeconfig(auth.get("kubeconfig"), auth.get("context"), configuration)
        else:
            try:
                kubernetes.config.load_incluster_config(client_configuration=configuration)
            except kubernetes.config.ConfigException:
                _load_kubeconfig(None, None, configuration)
    except (kubernetes.config.ConfigException, OSError, ValueError, TypeError) as exc:
        raise KubernetesError(
            f"Cannot load Kubernetes credentials: {exc}. Set kubeconfig (or K8S_AUTH_KUBECONFIG / "
            "KUBECONFIG), or host with api_key, or run in a pod with a service account"
        ) from exc

    if auth.get("host"):
        configuration.host = auth["host"].rstrip("/")
    if auth.get("api_key"):
        configuration.api_key = {"authorization": "Bearer " + auth["api_key"]}
    if "validate_certs" in auth:
        configuration.verify_ssl = bool(auth["validate_certs"])
    if auth.get("ca_cert"):
        configuration.ssl_ca_cert = auth["ca_cert"]
    if auth.get("client_cert"):
        configuration.cert_file = auth["client_cert"]
    if auth.get("client_key"):
        configuration.key_file = auth["client_key"]
    return kubernetes.client.ApiClient(configuration)


def _load_kubeconfig(kubeconfig: Any, context: str | None, configuration: Any) -> None:
    if isinstance(kubeconfig, dict):
        kubernetes.config.load_kube_config_from_dict(
            config_dict=kubeconfig, context=context, client_configuration=configuration, persist_config=False
        )
    else:
        # None reads KUBECONFIG (several files joined with ':') or ~/.kube/config.
        kubernetes.config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration, persist_config=False
        )


@dataclass(frozen=True)
class ApiResource:
    """Where a kind lives in the API."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool
    subresources: frozenset[str] = field(default_factory=frozenset)

    def path(
        self, name: str | None = None, namespace: str | None = None, subresource: str | None = None
    ) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced:
            if not namespace:
                raise KubernetesError(f"{self.kind} is namespaced: a namespace is needed")
            base += f"/namespaces/{namespace}"
        path = f"{base}/{self.plural}"
        if name:
            path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
        return path


class KubeAPI:
    """JSON requests against the API server; errors become KubernetesError."""

    def __init__(self, api_client: Any, timeout: float = REQUEST_TIMEOUT) -> None:
        self.api_client = api_client
        self.timeout = timeout
        self._resources: dict[tuple[str, str], ApiResource] = {}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        try:
            response = self.api_client.call_api(
                path,
                method,
                query_params=query,
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=self.timeout,
            )
        except ApiException as exc:
            raise KubernetesError(f"{method} {path}: {_api_message(exc)}", exc.status) from exc
        except urllib3.exceptions.HTTPError as exc:
            host = self.api_client.configuration.host
            raise KubernetesError(f"Cannot reach the Kubernetes API server at {host}: {exc}") from exc
        return json.loads(response.data or b"{}")

    def resource(self, api_version: str, kind: str) -> ApiResource:
        """The resource of ``kind`` in ``api_version`` (one discovery request, then cached)."""
        key = (api_version, kind)
        if key not in self._resources:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                listing = self.request("GET", path)
            except KubernetesError as exc:
                if exc.status == 404:
                    raise KubernetesError(
                        f"The API server does not serve {api_version}: "
                        "is its CustomResourceDefinition installed?",
                        404,
                    ) from exc
                raise
            resources = listing.get("resources", [])
            main = [r for r in resources if r.get("kind") == kind and "/" not in r["name"]]
            if not main:
                raise KubernetesError(
                    f"The API server has no kind {kind} in {api_version}: check api_version and kind "
                    "(kind is case-sensitive, for example SimpleDB)",
                    404,
                )
            plural = main[0]["name"]
            subresources = frozenset(
                r["name"].split("/", 1)[1] for r in resources if r["name"].startswith(plural + "/")
            )
            self._resources[key] = ApiResource(
                api_version, kind, plural, bool(main[0]["namespaced"]), subresources
            )
        return self._resources[key]

    def get(self, resource: ApiResource, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", resource.path(name, namespace))
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise

    def list_objects(
        self, resource: ApiResource, namespace: str | None = None, label_selector: str = ""
    ) -> list[Any]:
        """The objects of a kind (in ``namespace``) that match ``label_selector``."""
        query = [("labelSelector", label_selector)] if label_selector else None
        return self.request("GET", resource.path(None, namespace), query=query).get("items", [])

    def create(
        self, resource: ApiResource, body: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        return self.request("POST", resource.path(None, namespace), body)

    def merge_patch(
        self,
        resource: ApiResource,
        name: str,
        patch: dict[str, Any],
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """JSON merge patch (RFC 7386); put metadata.resourceVersion in it to make it conditional."""
        return self.request(
            "PATCH",
            resource.path(name, namespace, subresource),
            patch,
            content_type="application/merge-patch+json",
        )


def _api_message(exc: Any) -> str:
    """The Status message of an API error, or the HTTP reason."""
    try:
        status = json.loads(exc.body)
        return f"{exc.status} {status.get('reason') or exc.reason}: {status.get('message', '')}".rstrip(": ")
    except (TypeError, ValueError):
        return f"{exc.status} {exc.reason}"
