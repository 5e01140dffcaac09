"""Talking to the Kubernetes API: the authentication options of kubernetes.core, and a thin client.

Authentication follows kubernetes.core: module options, then the ``K8S_AUTH_*`` environment
(the operator sets ``K8S_AUTH_KUBECONFIG`` to the kubeconfig of its proxy), then the in-cluster
service account, then ``KUBECONFIG`` or ``~/.kube/config``.

The client finds a kind's resource with one discovery request and sends JSON, so it works the
same for built-in kinds and custom resources. It speaks HTTP itself (http.client and ssl) for
the credentials an operator has: the in-cluster service account, or a kubeconfig whose user
holds a token, a client certificate, a user name and password, or nothing (the proxy of
ansible-operator). Importing the Python ``kubernetes`` package costs a module run about
0.35 s of CPU and 50 MB, more than the rest of the run, so it is imported only for what the
kubeconfig loader of that package alone understands (exec and auth-provider plugins, several
kubeconfig files, proxies, tls-server-name).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import yaml  # ansible-core requires PyYAML

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


INCLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
INCLUSTER_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
# kubeconfig fields only the kubernetes package's loader handles.
_CLUSTER_FIELDS_FOR_THE_PACKAGE = ("proxy-url", "tls-server-name")
_USER_FIELDS_FOR_THE_PACKAGE = ("exec", "auth-provider", "as", "as-groups", "as-user-extra")


class _NeedsKubernetesPackage(Exception):
    """The credentials need the kubernetes package's loader."""


@dataclass
class Endpoint:
    """Where the API server is and how to authenticate to it."""

    host: str
    authorization: str | None = None
    ca_file: str | None = None
    ca_data: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    verify: bool = True


def api_transport_from_params(params: dict[str, Any]) -> HttpTransport | ClientTransport:
    """A transport configured as kubernetes.core would configure it for these params: HTTP
    of its own when it can read the credentials, else the kubernetes package's ApiClient."""
    auth = resolve_auth(params)
    try:
        try:
            return HttpTransport(_endpoint(auth))
        except _NeedsKubernetesPackage:
            return ClientTransport(_package_api_client(auth))
    except (OSError, ValueError, TypeError, KeyError, ssl.SSLError) as exc:
        raise KubernetesError(
            f"Cannot load Kubernetes credentials: {exc}. Set kubeconfig (or K8S_AUTH_KUBECONFIG / "
            "KUBECONFIG), or host with api_key, or run in a pod with a service account"
        ) from exc


def _endpoint(auth: dict[str, Any]) -> Endpoint:
    if auth.get("host") and (auth.get("api_key") or (auth.get("client_cert") and auth.get("client_key"))):
        endpoint = Endpoint(host=auth["host"])  # enough to authenticate: nothing else is read
    elif auth.get("kubeconfig") or auth.get("context"):
        endpoint = _kubeconfig_endpoint(auth.get("kubeconfig"), auth.get("context"))
    elif os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.isfile(INCLUSTER_TOKEN):
        endpoint = _incluster_endpoint()
    else:
        endpoint = _kubeconfig_endpoint(None, None)
    if auth.get("host"):
        endpoint.host = auth["host"]
    if auth.get("api_key"):
        endpoint.authorization = "Bearer " + auth["api_key"]
    if "validate_certs" in auth:
        endpoint.verify = bool(auth["validate_certs"])
    if auth.get("ca_cert"):
        endpoint.ca_file, endpoint.ca_data = auth["ca_cert"], None
    if auth.get("client_cert"):
        endpoint.cert_file, endpoint.cert_data = auth["client_cert"], None
    if auth.get("client_key"):
        endpoint.key_file, endpoint.key_data = auth["client_key"], None
    endpoint.host = endpoint.host.rstrip("/")
    return endpoint


def _incluster_endpoint() -> Endpoint:
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host or "%" in host:
        host = f"[{host}]"
    with open(INCLUSTER_TOKEN, encoding="utf-8") as token:
        authorization = "Bearer " + token.read().strip()
    return Endpoint(host=f"https://{host}:{port}", authorization=authorization, ca_file=INCLUSTER_CA)


def _kubeconfig_endpoint(kubeconfig: Any, context: str | None) -> Endpoint:
    """The endpoint of a kubeconfig (a dict, a path, or KUBECONFIG / ~/.kube/config)."""
    base = ""
    if isinstance(kubeconfig, dict):
        config = kubeconfig
    else:
        path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.join("~", ".kube", "config")
        if os.pathsep in path:
            raise _NeedsKubernetesPackage("several kubeconfig files are merged by the kubernetes package")
        path = os.path.expanduser(path)
        with open(path, encoding="utf-8") as fh:
            config = yaml.safe_load(fh) or {}
        base = os.path.dirname(os.path.abspath(path))
    context_name = context or config.get("current-context")
    if not context_name:
        raise ValueError("the kubeconfig names no current-context and no context was given")
    context_entry = _named(config, "contexts", context_name, "context")
    cluster = _named(config, "clusters", context_entry.get("cluster"), "cluster")
    user = _named(config, "users", context_entry["user"], "user") if context_entry.get("user") else {}
    if any(key in cluster for key in _CLUSTER_FIELDS_FOR_THE_PACKAGE) or any(
        key in user for key in _USER_FIELDS_FOR_THE_PACKAGE
    ):
        raise _NeedsKubernetesPackage("the kubeconfig needs the kubernetes package's loader")
    if "server" not in cluster:
        raise ValueError(f"cluster {context_entry.get('cluster')!r} of the kubeconfig has no server")
    endpoint = Endpoint(host=cluster["server"], verify=not cluster.get("insecure-skip-tls-verify", False))
    token = _token(user, base)
    if token:
        endpoint.authorization = "Bearer " + token
    elif "username" in user and "password" in user:
        credentials = f"{user['username']}:{user['password']}".encode()
        endpoint.authorization = "Basic " + base64.b64encode(credentials).decode()
    if endpoint.host.startswith("https"):
        if "certificate-authority-data" in cluster:
            endpoint.ca_data = base64.b64decode(cluster["certificate-authority-data"]).decode()
        elif cluster.get("certificate-authority"):
            endpoint.ca_file = os.path.join(base, cluster["certificate-authority"])
        endpoint.cert_file, endpoint.cert_data = _file_or_path(user, "client-certificate", base)
        endpoint.key_file, endpoint.key_data = _file_or_path(user, "client-key", base)
    return endpoint


def _named(config: dict[str, Any], section: str, name: Any, key: str) -> dict[str, Any]:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return entry.get(key) or {}
    raise ValueError(f"the kubeconfig has no {key} named {name!r}")


def _token(user: dict[str, Any], base: str) -> str | None:
    """The user's bearer token: ``token``, else the content of ``tokenFile`` (the kubernetes
    package's order)."""
    if user.get("token"):
        return str(user["token"]).strip()
    if user.get("tokenFile"):
        with open(os.path.join(base, user["tokenFile"]), encoding="utf-8") as fh:
            return fh.read().strip()
    return None


def _file_or_path(entry: dict[str, Any], key: str, base: str) -> tuple[str | None, bytes | None]:
    if entry.get(key + "-data"):
        return None, base64.b64decode(entry[key + "-data"])
    if entry.get(key):
        return os.path.join(base, entry[key]), None
    return None, None


def _package_api_client(auth: dict[str, Any]) -> Any:
    """The kubernetes package's ApiClient, for credentials only its loader understands."""
    try:
        import kubernetes.client
        import kubernetes.config
    except ImportError as exc:
        raise KubernetesError(
            "These Kubernetes credentials (an exec or auth-provider plugin, several kubeconfig files, a "
            "proxy or tls-server-name) need the Python library kubernetes on the host that runs this "
            f"module (pip install kubernetes): {exc}"
        ) from exc
    configuration = kubernetes.client.Configuration()
    try:
        kubeconfig, context = auth.get("kubeconfig"), auth.get("context")
        if isinstance(kubeconfig, dict):
            kubernetes.config.load_kube_config_from_dict(
                config_dict=kubeconfig,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        else:
            # None reads KUBECONFIG (several files joined with ':') or ~/.kube/config.
            kubernetes.config.load_kube_config(
                config_file=kubeconfig,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
    except kubernetes.config.ConfigException as exc:
        raise ValueError(str(exc)) from exc
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


class HttpTransport:
    """Requests over one kept-alive HTTP(S) connection."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.host = endpoint.host
        url = urllib.parse.urlsplit(endpoint.host)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"the API server address {endpoint.host!r} is not an http(s) URL")
        self._prefix = url.path.rstrip("/")
        self._authorization = endpoint.authorization
        if url.scheme == "https":
            self._connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                url.hostname, url.port or 443, context=_ssl_context(endpoint), timeout=REQUEST_TIMEOUT
            )
        else:
            self._connection = http.client.HTTPConnection(
                url.hostname, url.port or 80, timeout=REQUEST_TIMEOUT
            )

    def send(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        if self._authorization:
            headers = {**headers, "Authorization": self._authorization}
        try:
            return self._send_once(method, path, body, headers)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # The server closed the kept-alive connection: a GET may go again on a new one.
            self._connection.close()
            if method != "GET":
                raise
            return self._send_once(method, path, body, headers)

    def _send_once(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        self._connection.request(method, self._prefix + path, body=body, headers=headers)
        response = self._connection.getresponse()
        return response.status, response.reason, response.read()


def _ssl_context(endpoint: Endpoint) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=endpoint.ca_file, cadata=endpoint.ca_data)
    if not endpoint.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if endpoint.cert_file or endpoint.cert_data:
        with tempfile.TemporaryDirectory(prefix="simpledb-k8s-") as private:
            # load_cert_chain reads files only: data from the kubeconfig goes through a
            # private directory that is gone once loaded.
            cert = endpoint.cert_file or _private_file(private, "cert", endpoint.cert_data)
            key = endpoint.key_file or (
                _private_file(private, "key", endpoint.key_data) if endpoint.key_data else None
            )
            context.load_cert_chain(cert, key)
    return context


def _private_file(directory: str, name: str, data: bytes | None) -> str:
    path = os.path.join(directory, name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
        fh.write(data or b"")
    return path


class ClientTransport:
    """Requests through the kubernetes package's ApiClient."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client
        self.host = api_client.configuration.host

    def send(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        import urllib3.exceptions
        from kubernetes.client.rest import ApiException

        try:
            response = self.api_client.call_api(
                path,
                method,
                header_params=headers,
                body=json.loads(body) if body else None,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as exc:
            payload = exc.body if isinstance(exc.body, bytes) else (exc.body or "").encode()
            return exc.status, exc.reason or "", payload
        except urllib3.exceptions.HTTPError as exc:
            raise ConnectionError(str(exc)) from exc  # as HttpTransport's errors are
        return 200, "OK", response.data or b""


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

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self._resources: dict[tuple[str, str], ApiResource] = {}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        if query:
            path += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json", "Content-Type": content_type}
        data = json.dumps(body).encode() if body is not None else None
        try:
            status, reason, payload = self.transport.send(method, path, data, headers)
        except (OSError, http.client.HTTPException) as exc:
            raise KubernetesError(
                f"Cannot reach the Kubernetes API server at {self.transport.host}: {exc}"
            ) from exc
        if status >= 400:
            raise KubernetesError(f"{method} {path}: {_api_message(status, reason, payload)}", status)
        return json.loads(payload or b"{}")

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


def _api_message(status: int, reason: str, payload: bytes) -> str:
    """The Status message of an API error, or the HTTP reason."""
    try:
        body = json.loads(payload)
        return f"{status} {body.get('reason') or reason}: {body.get('message', '')}".rstrip(": ")
    except (TypeError, ValueError, AttributeError):
        return f"{status} {reason}"
