"""The pure parts of the Kubernetes helpers: auth resolution, resource paths, Event names."""

import pytest
from ansible.module_utils.simpledb.events import event_name
from ansible.module_utils.simpledb.k8s import ApiResource, KubernetesError, resolve_auth

NO_PARAMS = dict.fromkeys(
    ("kubeconfig", "context", "host", "api_key", "validate_certs", "ca_cert", "client_cert", "client_key")
)


def test_options_win_over_the_environment_as_in_kubernetes_core():
    environ = {"K8S_AUTH_KUBECONFIG": "/env/kubeconfig", "K8S_AUTH_CONTEXT": "env-context"}
    params = {**NO_PARAMS, "kubeconfig": "/param/kubeconfig"}

    assert resolve_auth(params, environ) == {"kubeconfig": "/param/kubeconfig", "context": "env-context"}


def test_environment_names_of_kubernetes_core_and_of_the_client_are_read():
    environ = {
        "K8S_AUTH_HOST": "https://127.0.0.1:6443",
        "K8S_AUTH_API_KEY": "token",
        "K8S_AUTH_VERIFY_SSL": "no",
        "K8S_AUTH_SSL_CA_CERT": "/ca.crt",
        "K8S_AUTH_CERT_FILE": "/client.crt",
        "K8S_AUTH_CLIENT_KEY": "/client.key",
    }
    assert resolve_auth(NO_PARAMS, environ) == {
        "host": "https://127.0.0.1:6443",
        "api_key": "token",
        "validate_certs": False,
        "ca_cert": "/ca.crt",
        "client_cert": "/client.crt",
        "client_key": "/client.key",
    }
    assert resolve_auth(NO_PARAMS, {"K8S_AUTH_VALIDATE_CERTS": "true"}) == {"validate_certs": True}
    assert resolve_auth({**NO_PARAMS, "validate_certs": False}, {"K8S_AUTH_VERIFY_SSL": "yes"}) == {
        "validate_certs": False
    }


def test_resource_paths():
    simpledbs = ApiResource("example.com/v1alpha1", "SimpleDB", "simpledbs", True, frozenset({"status"}))
    namespaces = ApiResource("v1", "Namespace", "namespaces", False)

    assert (
        simpledbs.path("db", "ns", "status") == "/apis/example.com/v1alpha1/namespaces/ns/simpledbs/db/status"
    )
    assert simpledbs.path(None, "ns") == "/apis/example.com/v1alpha1/namespaces/ns/simpledbs"
    assert namespaces.path("kube-system") == "/api/v1/namespaces/kube-system"
    with pytest.raises(KubernetesError, match="SimpleDB is namespaced: a namespace is needed"):
        simpledbs.path("db")


INVOLVED = {
    "apiVersion": "example.com/v1alpha1",
    "kind": "SimpleDB",
    "name": "Shop-DB",
    "namespace": "ns",
    "uid": "u1",
}


def test_event_names_are_stable_and_tell_events_apart():
    name = event_name(INVOLVED, "Warning", "MigrationFailed", "V3 failed", "simpledb-operator")

    assert name == event_name(dict(INVOLVED), "Warning", "MigrationFailed", "V3 failed", "simpledb-operator")
    assert name.startswith("shop-db.") and len(name) == len("shop-db.") + 16
    others = {
        event_name({**INVOLVED, "uid": "u2"}, "Warning", "MigrationFailed", "V3 failed", "simpledb-operator"),
        event_name(INVOLVED, "Normal", "MigrationFailed", "V3 failed", "simpledb-operator"),
        event_name(INVOLVED, "Warning", "Ready", "V3 failed", "simpledb-operator"),
        event_name(INVOLVED, "Warning", "MigrationFailed", "V4 failed", "simpledb-operator"),
        event_name(INVOLVED, "Warning", "MigrationFailed", "V3 failed", "another-controller"),
    }
    assert name not in others and len(others) == 5


def test_event_names_fit_the_api_limit():
    name = event_name({**INVOLVED, "name": "a" * 253}, "Normal", "Ready", "m", "c")
    assert len(name) <= 253
