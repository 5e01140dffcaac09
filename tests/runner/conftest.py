"""Helpers for the operator conformance tests: the test kinds (Probe, ProbeChild), a client for
them, the journal the test role writes, and a recorder of every version of a CR's status."""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes
import pytest
import yaml

HERE = pathlib.Path(__file__).resolve().parent
GROUP = "conformance.example.com"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
FINALIZER = f"{GROUP}/finalizer"
ROLES_PATH = str(HERE / "roles")


def probe_watch(journal: pathlib.Path, **fields: Any) -> dict[str, Any]:
    """The watch of the traces, for Probe, with the journal as a watch var."""
    watch: dict[str, Any] = {
        "version": VERSION,
        "group": GROUP,
        "kind": "Probe",
        "role": "probe",
        "reconcilePeriod": "0s",
        "vars": {"watch_var": "from-watches", "journal": str(journal)},
        "finalizer": {"name": FINALIZER, "vars": {"finalizer_run": True}},
    }
    watch.update(fields)
    return watch


@pytest.fixture(scope="session")
def probe_kinds(kubeconfig) -> None:
    """The Probe and ProbeChild CRDs, installed once (cluster-scoped, left in place)."""
    api = kubernetes.config.new_client_from_config(config_file=kubeconfig)
    try:
        crds = kubernetes.client.ApiextensionsV1Api(api)
        for doc in yaml.safe_load_all((HERE / "data" / "crds.yaml").read_text()):
            try:
                crds.create_custom_resource_definition(doc)
            except kubernetes.client.exceptions.ApiException as exc:
                if exc.status != 409:
                    raise
        for doc in yaml.safe_load_all((HERE / "data" / "crds.yaml").read_text()):
            deadline = time.monotonic() + 30
            while True:
                crd = crds.read_custom_resource_definition(doc["metadata"]["name"])
                conditions = {c.type: c.status for c in (crd.status.conditions or [])}
                if conditions.get("Established") == "True":
                    break
                assert time.monotonic() < deadline, f"CRD {doc['metadata']['name']} not Established"
                time.sleep(0.2)
    finally:
        api.close()


@dataclass
class Run:
    name: str
    kind: str  # "reconcile" or "finalizer"
    start: float
    end: float | None


class Journal:
    """The role appends `start|end <ns>/<name> <reconcile|finalizer> <epoch>` per run."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def runs(self, name: str | None = None) -> list[Run]:
        if not self.path.exists():
            return []
        runs: list[Run] = []
        open_runs: dict[str, Run] = {}
        for line in self.path.read_text().splitlines():
            what, ref, kind, when = line.split()
            cr = ref.split("/", 1)[1]
            if name is not None and cr != name:
                continue
            if what == "start":
                run = Run(cr, kind, float(when), None)
                runs.append(run)
                open_runs[cr] = run
            elif cr in open_runs:
                open_runs.pop(cr).end = float(when)
        return runs

    def wait_runs(self, name: str, count: int, timeout: float = 30, finished: bool = True) -> list[Run]:
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs(name)
            done = [r for r in runs if r.end is not None] if finished else runs
            if len(done) >= count:
                return runs
            assert time.monotonic() < deadline, (
                f"{name}: {len(done)} of {count} runs after {timeout}s: {runs}"
            )
            time.sleep(0.1)


class Probes:
    """Probe and ProbeChild objects in one namespace."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.namespace = namespace

    def _args(self, plural: str) -> tuple[str, str, str, str]:
        return GROUP, VERSION, self.namespace, plural

    def create(self, name: str, spec: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
        body = {"apiVersion": API_VERSION, "kind": "Probe", "metadata": {"name": name, **metadata}}
        if spec is not None:
            body["spec"] = spec
        return self.custom.create_namespaced_custom_object(*self._args("probes"), body)

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(*self._args("probes"), name)
        except kubernetes.client.exceptions.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(*self._args("probes"), name, body)

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(*self._args("probes"), name)

    def child(self, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(*self._args("probechildren"), f"{name}-child")
        except kubernetes.client.exceptions.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_child(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(*self._args("probechildren"), f"{name}-child", body)

    def apply_child_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of the child's status by the field manager `conformance-test`, as a
        controller of that kind would write it. Apply entries sort before Update entries in
        managedFields, so repeating it changes only status and a time there."""
        body = {
            "apiVersion": API_VERSION,
            "kind": "ProbeChild",
            "metadata": {"name": f"{name}-child"},
            "status": status,
        }
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/probechildren/{name}-child/status"
        return self.custom.api_client.call_api(
            path,
            "PATCH",
            query_params=[("fieldManager", "conformance-test"), ("force", "true")],
            header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
            response_type="object",
            _return_http_data_only=True,
        )

    def delete_child(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(*self._args("probechildren"), f"{name}-child")

    def wait(
        self, name: str, check: Callable[[dict[str, Any] | None], bool], what: str, timeout: float = 30
    ) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while True:
            obj = self.get(name)
            if check(obj):
                return obj
            assert time.monotonic() < deadline, f"{name}: not {what} after {timeout}s; last seen: {obj}"
            time.sleep(0.1)

    def wait_condition(
        self, name: str, kind: str, status: str = "True", timeout: float = 30
    ) -> dict[str, Any]:
        return self.wait(
            name, lambda o: conditions(o).get(kind, {}).get("status") == status, f"{kind}={status}", timeout
        )


def conditions(obj: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions") or []}


class StatusHistory:
    """Every version of one Probe that the API server reports, from a watch started before the
    Probe is created, so states that last a moment (between two status writes) are seen too."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str, name: str) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.namespace = namespace
        self.name = name
        self.versions: list[dict[str, Any]] = []
        self._watch = kubernetes.watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = threading.Event()

    def _run(self) -> None:
        stream = self._watch.stream(
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            "probes",
            field_selector=f"metadata.name={self.name}",
            timeout_seconds=300,
        )
        self._started.set()
        for event in stream:
            self.versions.append(event["object"])

    def __enter__(self) -> StatusHistory:
        self._thread.start()
        self._started.wait(10)
        time.sleep(0.3)  # the watch request reaches the server
        return self

    def __exit__(self, *exc: object) -> None:
        self._watch.stop()

    def condition_lists(self) -> list[list[dict[str, Any]]]:
        """The distinct condition lists, in order."""
        seen: list[list[dict[str, Any]]] = []
        for obj in self.versions:
            current = (obj.get("status") or {}).get("conditions") or []
            if current and (not seen or seen[-1] != current):
                seen.append(current)
        return seen


@pytest.fixture
def api(kubeconfig) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
    yield client
    client.close()


@pytest.fixture
def probes(api, namespace, probe_kinds) -> Probes:
    return Probes(api, namespace)


@pytest.fixture
def journal(tmp_path) -> Journal:
    return Journal(tmp_path / "journal.log")
