"""The kubelet part of the pod runtime: a supervisor thread per MariaDB pod on the kwok node.

kwok's Stages (testbed/kwok/stages.yaml) give a MariaDB pod its IP and phase Running but
leave it not Ready, and never delete it. A :class:`PodSupervisor` then does what a kubelet
would do for its MariaDB container:

- refuses an image whose major.minor is not the local server's (Warning Event, never Ready);
- resolves the container (env, mounted files, data volume); a missing Secret or unbound claim
  is a CreateContainerConfigError, retried;
- initialises or upgrades the data directory like the image's entrypoint, starts mariadbd on
  the pod IP inside the pod network namespace, reports the container Ready once the server
  sends its handshake;
- a server that exits is reported (not Ready, lastState terminated, restartCount + 1) and
  restarted after a back-off (2 s doubling to 60 s; a kubelet starts at 10 s);
- on deletion: not Ready, SIGTERM, SIGKILL after the grace period, then the pod object is
  deleted (grace 0), as a kubelet confirms a stopped pod.

Other containers of a MariaDB pod (sidecars) are reported running and ready at once.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import kubernetes
from kubernetes.client.exceptions import ApiException

from testbed.podruntime.images import unpinned, version_mismatch
from testbed.podruntime.podspec import PodConfigError, mariadb_container, plan_container
from testbed.podruntime.server import EntrypointError, MariaDBServer, kill_leftover_servers

ANNOTATION = "testbed.simpledb.example.com/"
COMPONENT = "testbed-podruntime"
BACKOFF_START = 2.0
BACKOFF_MAX = 60.0
# A server that ran this long before it exited starts again without the accumulated back-off.
BACKOFF_RESET_AFTER = 120.0
DEFAULT_GRACE = 30
SHUTDOWN_GRACE_MAX = 30

log = logging.getLogger("pods")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PodSupervisor(threading.Thread):
    """Runs one MariaDB pod's server for as long as the pod exists."""

    def __init__(self, runtime: PodRuntime, pod: kubernetes.client.V1Pod) -> None:
        super().__init__(name=f"pod-{pod.metadata.namespace}/{pod.metadata.name}", daemon=True)
        self.runtime = runtime
        self.core = runtime.core
        self.uid = pod.metadata.uid
        self.namespace = pod.metadata.namespace
        self.pod_name = pod.metadata.name
        self.pod = pod
        self.changed = threading.Condition()
        self.gone = False
        self.shutting_down = False
        self.server: MariaDBServer | None = None
        container = mariadb_container(pod)
        self.container = container.name
        self.image = container.image
        previous = self._container_status(pod)
        self.restart_count = previous.restart_count if previous else 0
        self.last_state: dict = {}
        self.last_event: tuple[str, str] | None = None
        # Logs and my.cnf by pod name (a StatefulSet's next pod appends to them); everything
        # else by pod UID, so an old pod's clean-up never touches its successor's files.
        self.pod_dir = runtime.state_dir / "pods" / self.namespace / self.pod_name
        self.run_dir = runtime.state_dir / "run" / self.uid[:13]
        self.started_at = now()

    # -- events from the watch ---------------------------------------------------------------

    def update(self, pod: kubernetes.client.V1Pod) -> None:
        with self.changed:
            self.pod = pod
            self.changed.notify_all()

    def mark_gone(self) -> None:
        with self.changed:
            self.gone = True
            self.changed.notify_all()

    def shutdown(self) -> None:
        with self.changed:
            self.shutting_down = True
            self.changed.notify_all()

    @property
    def stopping(self) -> bool:
        return self.gone or self.shutting_down or self.pod.metadata.deletion_timestamp is not None

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking early when the pod changes."""
        with self.changed:
            if not self.stopping:
                self.changed.wait(seconds)

    # -- reporting ---------------------------------------------------------------------------

    def _container_status(self, pod: kubernetes.client.V1Pod) -> kubernetes.client.V1ContainerStatus | None:
        return next((s for s in pod.status.container_statuses or [] if s.name == self.container), None)

    def event(self, kind: str, reason: str, message: str) -> None:
        if self.last_event == (reason, message):
            return
        self.last_event = (reason, message)
        stamp = now()
        body = {
            "metadata": {"name": f"{self.pod_name}.{secrets.token_hex(8)}", "namespace": self.namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": self.pod_name,
                "namespace": self.namespace,
                "uid": self.uid,
                "fieldPath": f"spec.containers{{{self.container}}}",
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": COMPONENT, "host": self.runtime.node_name},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.runtime.node_name,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        log.info("%s/%s: %s %s: %s", self.namespace, self.pod_name, kind, reason, message)
        try:
            self.core.create_namespaced_event(self.namespace, body)
        except ApiException as error:
            log.warning(
                "%s/%s: cannot record event %s: %s", self.namespace, self.pod_name, reason, error.reason
            )

    def report(self, ready: bool, state: dict, started: bool = False) -> None:
        """Write the pod's container statuses and Ready conditions (a kubelet's status update)."""
        pod = self.pod
        stamp = now()
        statuses = []
        for container in pod.spec.containers:
            if container.name == self.container:
                status = {
                    "name": container.name,
                    "image": container.image,
                    "imageID": "",
                    "containerID": f"testbed://{self.uid}/{container.name}",
                    "ready": ready,
                    "started": started,
                    "restartCount": self.restart_count,
                    "state": state,
                    "lastState": self.last_state,
                }
            else:
                status = {
                    "name": container.name,
                    "image": container.image,
                    "imageID": "",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": pod.status.start_time or stamp}},
                }
            statuses.append(status)
        gates = [g.condition_type for g in pod.spec.readiness_gates or []]
        existing = {c.type: c for c in pod.status.conditions or []}
        pod_ready = ready and all(existing.get(g) is not None and existing[g].status == "True" for g in gates)
        wanted = {"ContainersReady": ready, "Ready": pod_ready}
        conditions = []
        for condition_type, condition in existing.items():
            if condition_type in wanted:
                continue
            conditions.append(
                {
                    "type": condition_type,
                    "status": condition.status,
                    "lastTransitionTime": condition.last_transition_time,
                }
            )
        for condition_type, value in wanted.items():
            status = "True" if value else "False"
            old = existing.get(condition_type)
            changed = old is None or old.status != status
            condition = {
                "type": condition_type,
                "status": status,
                "lastTransitionTime": stamp if changed else old.last_transition_time,
            }
            if not value:
                condition["reason"] = "ContainersNotReady"
                condition["message"] = f"containers with unready status: [{self.container}]"
            conditions.append(condition)
        try:
            self.pod = self.core.patch_namespaced_pod_status(
                self.pod_name,
                self.namespace,
                {"status": {"conditions": conditions, "containerStatuses": statuses}},
            )
        except ApiException as error:
            if error.status != 404:
                raise

    def waiting(self, reason: str, message: str = "") -> None:
        self.report(False, {"waiting": {"reason": reason, "message": message}})

    # -- the lifecycle -----------------------------------------------------------------------

    def run(self) -> None:
        try:
            self.lifecycle()
        except Exception:
            log.exception("%s/%s: supervisor failed", self.namespace, self.pod_name)
        finally:
            try:
                self.terminate()
            except Exception:
                log.exception("%s/%s: termination failed", self.namespace, self.pod_name)
            self.runtime.finished(self)

    def lifecycle(self) -> None:
        while not self.stopping and not self.pod.status.pod_ip:
            self.wait(1)
        if self.stopping:
            return
        refusal = version_mismatch(self.image, self.runtime.version)
        if refusal:
            self.event("Warning", "ImageVersionMismatch", refusal)
            self.waiting("ImageVersionMismatch", refusal)
            while not self.stopping:
                self.wait(60)
            return
        if unpinned(self.image):
            self.event(
                "Normal",
                "UnpinnedImage",
                f"image {self.image} names no version; running the local MariaDB {self.runtime.version}",
            )
        backoff = BACKOFF_START
        while not self.stopping:
            started = time.monotonic()
            outcome = self.run_container()
            if self.stopping:
                return
            if outcome == "crashed":
                self.restart_count += 1
                if time.monotonic() - started > BACKOFF_RESET_AFTER:
                    backoff = BACKOFF_START
                message = f"back-off {backoff:.0f}s restarting failed container={self.container}"
                self.event("Warning", "BackOff", message)
                self.waiting("CrashLoopBackOff", message)
            self.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def run_container(self) -> str:
        """Runs the container once; returns "crashed", "config-error" or "stopped"."""
        pod = self.pod
        self.pod_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            plan = plan_container(self.core, pod, self.run_dir)
        except PodConfigError as error:
            self.event("Warning", "Failed", f"Error: {error}")
            self.waiting("CreateContainerConfigError", str(error))
            return "config-error"
        started_at = self.started_at = now()
        try:
            server = MariaDBServer(
                plan,
                f"{self.namespace}/{self.pod_name}",
                pod.spec.hostname or self.pod_name,
                pod.status.pod_ip,
                self.pod_dir,
                self.run_dir,
                self.runtime.netns,
                self.runtime.version,
            )
            self.server = server
            server.write_config()
            for note in plan.notes:
                server.note(note)
            self.report(False, {"running": {"startedAt": started_at}}, started=True)
            if not server.initialised():
                server.initialise()
            else:
                upgrade = server.upgrade()
                if upgrade is not None:
                    self.record_upgrade(upgrade.ran, upgrade.previous_version, upgrade.message)
            server.start()
        except (EntrypointError, OSError) as error:
            return self.crashed(started_at, 1, f"{error}")
        except Exception as error:
            log.exception("%s/%s: container start failed", self.namespace, self.pod_name)
            return self.crashed(started_at, 1, f"{type(error).__name__}: {error}")

        t0 = time.monotonic()
        while server.running() and not self.stopping:
            if server.ready():
                self.report(True, {"running": {"startedAt": started_at}}, started=True)
                log.info(
                    "%s/%s: Ready (%s:3306), server up in %.1fs",
                    self.namespace,
                    self.pod_name,
                    pod.status.pod_ip,
                    time.monotonic() - t0,
                )
                break
            time.sleep(0.2)
        while server.running() and not self.stopping:
            self.wait(0.5)
        if self.stopping:
            return "stopped"
        code = server.process.returncode
        return self.crashed(started_at, code, f"mariadbd exited with code {code}; see {server.error_log}")

    def crashed(self, started_at: str, exit_code: int, message: str) -> str:
        log.warning(
            "%s/%s: container %s terminated: %s", self.namespace, self.pod_name, self.container, message
        )
        self.last_state = {
            "terminated": {
                "exitCode": exit_code,
                "reason": "Error",
                "message": message,
                "startedAt": started_at,
                "finishedAt": now(),
            }
        }
        return "crashed"

    def record_upgrade(self, ran: bool, previous: str | None, message: str) -> None:
        if ran:
            self.event("Normal", "MariaDBUpgraded", message)
            annotations = {
                ANNOTATION + "upgraded-from": previous or "unknown",
                ANNOTATION + "upgraded-at": now(),
            }
            self.core.patch_namespaced_pod(
                self.pod_name, self.namespace, {"metadata": {"annotations": annotations}}
            )
        else:
            self.event("Warning", "MariaDBUpgradeSkipped", message)

    def terminate(self) -> None:
        pod = self.pod
        grace = pod.metadata.deletion_grace_period_seconds
        if grace is None:
            grace = pod.spec.termination_grace_period_seconds
        if grace is None:
            grace = DEFAULT_GRACE
        if self.shutting_down:
            grace = min(grace, SHUTDOWN_GRACE_MAX)
        server = self.server
        if server is not None and server.running():
            if not self.gone:
                self.report(False, {"running": {"startedAt": self.started_at}}, started=True)
            t0 = time.monotonic()
            code = server.stop(grace)
            log.info(
                "%s/%s: server stopped (exit %s) in %.1fs (grace %ss)",
                self.namespace,
                self.pod_name,
                code,
                time.monotonic() - t0,
                grace,
            )
        if self.shutting_down:
            return
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if not self.gone:
            try:
                self.core.delete_namespaced_pod(
                    self.pod_name,
                    self.namespace,
                    grace_period_seconds=0,
                    body=kubernetes.client.V1DeleteOptions(
                        grace_period_seconds=0, preconditions={"uid": self.uid}
                    ),
                )
            except ApiException as error:
                if error.status not in (404, 409):
                    raise
        log.info("%s/%s: pod deleted", self.namespace, self.pod_name)


class PodRuntime:
    """Watches the pods of the kwok node and keeps a supervisor per MariaDB pod."""

    def __init__(
        self, api: kubernetes.client.ApiClient, state_dir: Path, node_name: str, netns: str, version: str
    ) -> None:
        self.core = kubernetes.client.CoreV1Api(api)
        self.state_dir = state_dir
        self.node_name = node_name
        self.netns = netns
        self.version = version
        self.supervisors: dict[str, PodSupervisor] = {}
        self.done: set[str] = set()
        self.lock = threading.Lock()

    def dispatch(self, event_type: str, pod: kubernetes.client.V1Pod) -> None:
        if mariadb_container(pod) is None:
            return
        uid = pod.metadata.uid
        with self.lock:
            supervisor = self.supervisors.get(uid)
            if supervisor is None:
                if uid in self.done or event_type == "DELETED":
                    return
                supervisor = PodSupervisor(self, pod)
                self.supervisors[uid] = supervisor
                supervisor.start()
                return
        if event_type == "DELETED":
            supervisor.mark_gone()
        else:
            supervisor.update(pod)

    def finished(self, supervisor: PodSupervisor) -> None:
        with self.lock:
            self.supervisors.pop(supervisor.uid, None)
            if not supervisor.shutting_down:
                self.done.add(supervisor.uid)

    def run(self, stop: threading.Event, on_synced: Callable[[], None]) -> None:
        killed = kill_leftover_servers(self.state_dir / "run")
        if killed:
            log.warning("killed mariadbd processes left by a previous runtime: %s", killed)
        selector = f"spec.nodeName={self.node_name}"
        resource_version = None
        while not stop.is_set():
            try:
                if resource_version is None:
                    pods = self.core.list_pod_for_all_namespaces(field_selector=selector)
                    listed = {p.metadata.uid for p in pods.items}
                    for pod in pods.items:
                        self.dispatch("SYNC", pod)
                    with self.lock:
                        vanished = [s for uid, s in self.supervisors.items() if uid not in listed]
                    for supervisor in vanished:
                        supervisor.mark_gone()
                    resource_version = pods.metadata.resource_version
                    on_synced()
                watch = kubernetes.watch.Watch()
                for event in watch.stream(
                    self.core.list_pod_for_all_namespaces,
                    field_selector=selector,
                    resource_version=resource_version,
                    timeout_seconds=5,
                ):
                    if event["type"] == "ERROR":
                        resource_version = None
                        break
                    pod = event["object"]
                    resource_version = pod.metadata.resource_version
                    self.dispatch(event["type"], pod)
                    if stop.is_set():
                        watch.stop()
                on_synced()
            except ApiException as error:
                if error.status == 410:
                    resource_version = None
                    continue
                log.warning("pod watch failed (%s); listing again", error.reason)
                resource_version = None
                stop.wait(1)
            except Exception:
                log.exception("pod watch failed; listing again")
                resource_version = None
                stop.wait(1)

    def shutdown(self) -> None:
        """Stop every server (each within its grace period, at most SHUTDOWN_GRACE_MAX s)."""
        with self.lock:
            supervisors = list(self.supervisors.values())
        for supervisor in supervisors:
            supervisor.shutdown()
        for supervisor in supervisors:
            supervisor.join(SHUTDOWN_GRACE_MAX + 30)
