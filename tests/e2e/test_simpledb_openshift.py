"""With OpenShift's security.openshift.io API group on the API server, the operand pods carry no
fixed UID/GID (the restricted-v2 SCC assigns them) and still pass the restricted Pod Security
Standard. Issue 8's acceptance; design section 2.

The group is registered as OpenShift serves it, through a SecurityContextConstraints CRD. A CRD is
cluster-wide state that every other test would see, so this module holds only this test, the CRD
exists only while it runs and is deleted even when it fails: do not run this module in parallel
with other end-to-end tests on the same test bed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import seed, start_simpledb_operator

pytestmark = [pytest.mark.cluster, pytest.mark.podruntime, pytest.mark.operator]

SCC_CRD_NAME = "securitycontextconstraints.security.openshift.io"
SCC_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": SCC_CRD_NAME},
    "spec": {
        "group": "security.openshift.io",
        "scope": "Cluster",
        "names": {
            "kind": "SecurityContextConstraints",
            "listKind": "SecurityContextConstraintsList",
            "plural": "securitycontextconstraints",
            "singular": "securitycontextconstraints",
            "shortNames": ["scc"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}
FIXED_IDS = ("runAsUser", "runAsGroup", "fsGroup")


@contextlib.contextmanager
def openshift_api_group(kubectl) -> Iterator[None]:
    """security.openshift.io/v1 served by the API server while the block runs."""
    try:
        kubectl.run("apply", "-f", "-", input=json.dumps(SCC_CRD))
        kubectl.run("wait", "--for=condition=Established", f"crd/{SCC_CRD_NAME}", "--timeout=60s")
        assert "security.openshift.io/v1" in kubectl.run("api-versions").stdout.split()
        yield
    finally:
        kubectl.run("delete", f"crd/{SCC_CRD_NAME}", "--ignore-not-found", "--wait=true", "--timeout=120s")


def test_openshift_operand_pods_carry_no_fixed_ids(operator, simpledb_crds, cluster, sdb, kubectl):
    assert "security.openshift.io/v1" not in kubectl.run("api-versions").stdout.split(), (
        f"crd/{SCC_CRD_NAME} is on the test bed already (left by an interrupted run?): delete it"
    )
    sdb.kubectl.run(
        "label", "namespace", sdb.namespace, "pod-security.kubernetes.io/enforce=restricted", "--overwrite"
    )
    # The operator starts before the group exists: the role detects it on each reconcile.
    start_simpledb_operator(operator, cluster)
    with openshift_api_group(kubectl):
        sdb.apply(seed())
        obj = sdb.wait_ready("simpledb")
        sts = sdb.kubectl.get("-n", sdb.namespace, "statefulset/simpledb")
        pod = sdb.kubectl.get("-n", sdb.namespace, "pod/simpledb-0")
    assert obj["status"]["schemaVersion"] == 1
    for spec in (sts["spec"]["template"]["spec"], pod["spec"]):
        security = spec.get("securityContext", {})
        assert not set(FIXED_IDS) & set(security), security
        assert security["runAsNonRoot"] is True
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"] + spec.get("initContainers", []):
            assert not set(FIXED_IDS) & set(container.get("securityContext", {})), container["name"]
    # Admitted under the restricted standard: the StatefulSet controller created the pod at once.
    failed = sdb.kubectl.get("-n", sdb.namespace, "events", "--field-selector=reason=FailedCreate")
    assert failed["items"] == []
    assert "security.openshift.io/v1" not in kubectl.run("api-versions").stdout.split()
