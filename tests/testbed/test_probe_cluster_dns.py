"""simpledb_probe's DNS probe against the test bed's cluster DNS, as the role calls it."""

import json

import pytest

from tests.fixtures.ansible_module import run_module

pytestmark = pytest.mark.cluster


def test_service_names_resolve_and_missing_ones_are_nxdomain(cluster, kubectl, namespace):
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {"selector": {"app": "shop"}, "ports": [{"port": 3306}]},
    }
    kubectl.run("apply", "-f", "-", input=json.dumps(service))
    cluster_ip = kubectl.get("-n", namespace, "service", "shop")["spec"]["clusterIP"]

    def probe(name):
        args = {
            "dns_name": name,
            "nameservers": [cluster.dns_server],
            "dns_port": cluster.dns_port,
            "dns_timeout": 3,
        }
        return run_module("simpledb_probe", args)

    found = probe(f"shop.{namespace}.svc.cluster.local")
    missing = probe(f"nothing.{namespace}.svc.cluster.local")
    no_pod = probe(f"shop-0.shop-headless.{namespace}.svc.cluster.local")

    assert (found["changed"], found["dns"]["status"], found["dns"]["addresses"]) == (
        False,
        "resolved",
        [cluster_ip],
    )
    assert (missing.get("failed", False), missing["dns"]["status"], missing["dns"]["resolved"]) == (
        False,
        "nxdomain",
        False,
    )
    assert no_pod["dns"]["status"] == "nxdomain"
