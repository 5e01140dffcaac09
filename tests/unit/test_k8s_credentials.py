"""Which credentials the module client reads itself, and what it makes of them."""

from __future__ import annotations

import base64

import pytest
import yaml
from ansible.module_utils.simpledb import k8s


def kubeconfig(cluster: dict, user: dict | None = None, context: str = "ctx") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user or {}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
    }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_the_operator_proxy_kubeconfig_needs_no_package():
    # ansible-operator's proxy: plain HTTP on loopback, a user name that carries the owner.
    endpoint = k8s._endpoint(
        {"kubeconfig": kubeconfig({"server": "http://localhost:8888"}, {"username": "x"})}
    )

    assert (endpoint.host, endpoint.authorization) == ("http://localhost:8888", None)
    assert k8s.HttpTransport(endpoint).host == "http://localhost:8888"


def test_tokens_certificates_and_basic_auth_are_read(tmp_path):
    (tmp_path / "token").write_text("from-file\n")
    (tmp_path / "ca.crt").write_text("CA")
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            kubeconfig(
                {"server": "https://10.0.0.1:6443/", "certificate-authority": "ca.crt"},
                {"tokenFile": "token", "client-certificate-data": b64(b"CERT")},
            )
        )
    )
    from_file = k8s._endpoint({"kubeconfig": str(path)})
    inline = k8s._endpoint(
        {
            "kubeconfig": kubeconfig(
                {
                    "server": "https://h",
                    "certificate-authority-data": b64(b"PEM"),
                    "insecure-skip-tls-verify": True,
                },
                {"token": "inline", "client-key": "/k.key"},
            )
        }
    )
    # The token wins over the token file, as in the kubernetes package.
    both = k8s._endpoint(
        {"kubeconfig": kubeconfig({"server": "https://h"}, {"token": "inline", "tokenFile": "/nonexistent"})}
    )
    basic = k8s._endpoint(
        {"kubeconfig": kubeconfig({"server": "https://h"}, {"username": "a", "password": "b"})}
    )

    # Paths are relative to the kubeconfig's directory.
    assert (from_file.host, from_file.authorization) == ("https://10.0.0.1:6443", "Bearer from-file")
    assert (from_file.ca_file, from_file.cert_data) == (str(tmp_path / "ca.crt"), b"CERT")
    assert (inline.authorization, inline.ca_data, inline.verify, inline.key_file) == (
        "Bearer inline",
        "PEM",
        False,
        "/k.key",
    )
    assert both.authorization == "Bearer inline"
    assert basic.authorization == "Basic " + b64(b"a:b")


def test_module_options_override_the_kubeconfig():
    endpoint = k8s._endpoint(
        {
            "kubeconfig": kubeconfig({"server": "https://h"}, {"token": "t"}),
            "host": "https://other:6443",
            "api_key": "key",
            "validate_certs": False,
            "ca_cert": "/ca",
        }
    )
    alone = k8s._endpoint({"host": "https://h2", "api_key": "key2"})

    assert (endpoint.host, endpoint.authorization, endpoint.verify, endpoint.ca_file) == (
        "https://other:6443",
        "Bearer key",
        False,
        "/ca",
    )
    assert (alone.host, alone.authorization) == ("https://h2", "Bearer key2")


@pytest.mark.parametrize(
    "cluster, user",
    [
        ({"server": "https://h"}, {"exec": {"command": "get-token"}}),
        ({"server": "https://h"}, {"auth-provider": {"name": "oidc"}}),
        ({"server": "https://h", "proxy-url": "http://proxy:3128"}, {}),
        ({"server": "https://h", "tls-server-name": "api"}, {}),
    ],
)
def test_plugins_and_proxies_are_left_to_the_kubernetes_package(cluster, user):
    with pytest.raises(k8s._NeedsKubernetesPackage):
        k8s._endpoint({"kubeconfig": kubeconfig(cluster, user)})


def test_several_kubeconfig_files_are_left_to_the_kubernetes_package(monkeypatch):
    monkeypatch.setenv("KUBECONFIG", "/a/config:/b/config")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(k8s._NeedsKubernetesPackage):
        k8s._endpoint({})


def test_a_kubeconfig_without_the_context_says_which():
    with pytest.raises(k8s.KubernetesError, match="no context named 'missing'"):
        k8s.api_transport_from_params(
            {"kubeconfig": kubeconfig({"server": "https://h"}), "context": "missing"}
        )
    with pytest.raises(k8s.KubernetesError, match=r"Cannot load Kubernetes credentials: .*No such file"):
        k8s.api_transport_from_params({"kubeconfig": "/nonexistent/kubeconfig"})
