"""End-to-end helpers: the project's operator on the test bed, SimpleDBs, and their databases.

The operator runs the project's own watches.yaml and roles (the local runner, or the real binary
when ANSIBLE_OPERATOR is set), limited to the test's namespace. The databases are real
mariadbd processes behind the simulated pods (the pod runtime).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from dataclasses import dataclass

import pymysql
import pytest
import yaml

from tests.conftest import ROOT
from tests.fixtures.crds import Kubectl

LOCAL_SERIES = subprocess.run(["mariadbd", "--version"], capture_output=True, text=True).stdout.split()[2]
LOCAL_VERSION = LOCAL_SERIES.split("-")[0]  # e.g. 10.11.19
LOCAL_MAJOR_MINOR = ".".join(LOCAL_VERSION.split(".")[:2])
LOCAL_IMAGE = f"docker.io/library/mariadb:{LOCAL_MAJOR_MINOR}"


@dataclass
class SimpleDBHarness:
    kubectl: Kubectl
    namespace: str
    resolver: object

    def apply(self, manifest: dict | str) -> None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        self.kubectl.run("apply", "-n", self.namespace, "-f", "-", input=text)

    def patch(self, name: str, spec: dict, kind: str = "simpledb") -> None:
        self.kubectl.run(
            "patch", "-n", self.namespace, f"{kind}/{name}", "--type=merge", "-p", json.dumps({"spec": spec})
        )

    def get(self, name: str, kind: str = "simpledb") -> dict:
        return self.kubectl.get("-n", self.namespace, f"{kind}/{name}")

    def exists(self, kind: str, name: str) -> bool:
        result = self.kubectl.run("get", "-n", self.namespace, f"{kind}/{name}", check=False)
        return result.returncode == 0

    @staticmethod
    def condition(obj: dict, kind: str) -> dict:
        for condition in obj.get("status", {}).get("conditions", []):
            if condition["type"] == kind:
                return condition
        return {}

    def wait_for(self, name: str, predicate, timeout: float = 240, kind: str = "simpledb") -> dict:
        """Wait until predicate(obj) holds for an object whose latest run finished."""
        deadline = time.monotonic() + timeout
        obj: dict = {}
        while time.monotonic() < deadline:
            obj = self.get(name, kind)
            done = (
                self.condition(obj, "Successful").get("status") == "True"
                or self.condition(obj, "Failure").get("status") == "True"
            )
            if done and predicate(obj):
                return obj
            time.sleep(1)
        raise AssertionError(
            f"{kind}/{name} did not reach the expected state in {timeout}s: "
            + json.dumps(obj.get("status", {}), indent=1)
        )

    def wait_ready(self, name: str, timeout: float = 240) -> dict:
        def ready(obj: dict) -> bool:
            status = obj.get("status", {})
            return (
                self.condition(obj, "Ready").get("status") == "True"
                and status.get("phase") == "Ready"
                and status.get("observedGeneration") == obj["metadata"]["generation"]
                and self.condition(obj, "Successful").get("status") == "True"
            )

        return self.wait_for(name, ready, timeout)

    def secret(self, name: str) -> dict[str, str]:
        data = self.kubectl.get("-n", self.namespace, f"secret/{name}")["data"]
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    def resolve(self, hostname: str) -> str:
        return self.resolver.resolve(hostname, "A")[0].to_text()

    def service_endpoint_ip(self, service: str) -> str:
        """What kube-proxy would route the Service to: a ready address of its EndpointSlices.
        (The test bed has no kube-proxy; ClusterIPs are unreachable by design.)"""
        slices = self.kubectl.get(
            "-n", self.namespace, "endpointslices", f"-l=kubernetes.io/service-name={service}"
        )["items"]
        for endpoint_slice in slices:
            for endpoint in endpoint_slice.get("endpoints") or []:
                if endpoint.get("conditions", {}).get("ready"):
                    return endpoint["addresses"][0]
        raise AssertionError(f"Service {service} has no ready endpoint")

    def connect(
        self, name: str, user: str = "root", password: str | None = None, database: str | None = None
    ) -> pymysql.connections.Connection:
        """Connect to pod 0 at its DNS name, as a client in the cluster would."""
        host = self.resolve(f"{name}-0.{name}-headless.{self.namespace}.svc.cluster.local")
        if password is None:
            secret_name = self.get(name)["status"]["secretName"]
            password = self.secret(secret_name)["root-password" if user == "root" else "password"]
        return pymysql.connect(
            host=host,
            port=3306,
            user=user,
            password=password,
            database=database,
            autocommit=True,
            connect_timeout=10,
        )

    def query(self, name: str, sql: str, database: str | None = None) -> list[tuple]:
        return fetch_all(self.connect(name, database=database), sql)


def last_result(obj: dict) -> dict:
    """The ansibleResult of the object's latest run, from the operator's Running condition."""
    running = next(c for c in obj["status"]["conditions"] if c["type"] == "Running")
    return running.get("ansibleResult", {})


def fetch_all(conn, sql: str) -> list[tuple]:
    """The rows of one statement on conn, which is closed afterwards."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def seed(name: str = "simpledb", **spec) -> dict:
    body = yaml.safe_load((ROOT / "deploy/samples/example.com_v1alpha1_simpledb.yaml").read_text())
    body["metadata"]["name"] = name
    body["spec"].update(spec)
    return body


def start_simpledb_operator(operator, cluster, watches: list[dict] | None = None):
    """The project's operator on watches.yaml (or ``watches``), as `make run` starts it on the
    local cluster."""
    env = {
        "RELATED_IMAGE_MARIADB": LOCAL_IMAGE,
        "SIMPLEDB_DNS_SERVER": "127.0.0.1",
        "SIMPLEDB_DNS_PORT": str(cluster.dns_port),
    }
    if watches is None:
        watches = yaml.safe_load((ROOT / "watches.yaml").read_text())
    return operator.start(watches, args=["--reconcile-period=0s"], env=env)


@pytest.fixture
def simpledb_operator(operator, simpledb_crds, cluster):
    return start_simpledb_operator(operator, cluster)


@pytest.fixture
def sdb(kubectl, namespace, dns_resolver) -> SimpleDBHarness:
    return SimpleDBHarness(kubectl=kubectl, namespace=namespace, resolver=dns_resolver)
