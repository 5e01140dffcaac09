"""The role's simpledb_quantity filter reads Kubernetes quantities as the API server does."""

import importlib.util

import pytest
from ansible.errors import AnsibleFilterError

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location(
    "kubernetes_quantity", ROOT / "roles/simpledb/filter_plugins/kubernetes_quantity.py"
)
kubernetes_quantity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kubernetes_quantity)
quantity = kubernetes_quantity.simpledb_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1Gi", 2**30),
        ("1.5Gi", 3 * 2**29),
        ("500M", 500 * 10**6),
        ("2048", 2048),
        (2048, 2048),
        ("1e3", 1000),
        ("100m", 1),  # a fraction of a byte rounds up
    ],
)
def test_reads_quantities(text, expected):
    assert quantity(text) == expected


def test_growth_compares_across_units():
    assert quantity("1Gi") < quantity("1100M") < quantity("2Gi")


@pytest.mark.parametrize("text", ["lots", "1GB", "", "1 Gi Gi"])
def test_rejects_what_is_not_a_quantity(text):
    with pytest.raises(AnsibleFilterError, match="not a Kubernetes quantity"):
        quantity(text)
