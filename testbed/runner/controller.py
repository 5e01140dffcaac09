"""One controller per watch: the primary watch with its predicates, the work queue, the workers,
and the reconcile function ported from ansible-operator's `controller/reconcile.go`.
Dependent watches (children of the CRs) live in `DependentWatches`.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from testbed.runner import status as st
from testbed.runner.ansiblerun import AnsibleRunner, Run
from testbed.runner.events import EventLogger, RunEvents, print_block, requeue_period
from testbed.runner.goformat import DurationError, format_duration, parse_duration
from testbed.runner.informer import Informer, Key, key_of
from testbed.runner.kube import ApiError, Kube, write_run_kubeconfig
from testbed.runner.logs import kv
from testbed.runner.watches import GVK, Watch
from testbed.runner.workqueue import WorkQueue

RECONCILE_PERIOD_ANNOTATION = "ansible.sdk.operatorframework.io/reconcile-period"
PRIMARY_RESOURCE_ANNOTATION = "operator-sdk/primary-resource"
PRIMARY_RESOURCE_TYPE_ANNOTATION = "operator-sdk/primary-resource-type"
DELETED_MID_RUN_REQUEUE = 5.0

log = logging.getLogger("reconciler")
controller_log = logging.getLogger("controller")


class ReconcileError(Exception):
    """The reconcile failed; the controller re-queues the CR with back-off."""


class ShutdownInterrupted(Exception):
    """The run was stopped because the operator is shutting down; nothing is written."""


@dataclass
class Result:
    requeue_after: float = 0.0


# ---- predicates -------------------------------------------------------------------------------


def _meta(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("metadata") or {}


def _labels_match(selector: dict[str, Any], obj: dict[str, Any]) -> bool:
    """metav1.LabelSelector semantics (an empty selector matches everything)."""
    labels = _meta(obj).get("labels") or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, operator, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def primary_update_passes(watch: Watch, old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Or(GenerationChanged, NoGeneration[, AnnotationChanged]) and the label selector."""
    if old is None:
        return _labels_match(watch.selector, new)
    old_gen, new_gen = _meta(old).get("generation", 0), _meta(new).get("generation", 0)
    changed = old_gen != new_gen or (old_gen == 0 and new_gen == 0)
    if watch.watch_annotations_changes:
        changed = changed or (_meta(old).get("annotations") or {}) != (_meta(new).get("annotations") or {})
    return changed and _labels_match(watch.selector, new)


def _without_noise(obj: dict[str, Any]) -> dict[str, Any]:
    stripped = {k: v for k, v in obj.items() if k != "status"}
    meta = dict(stripped.get("metadata") or {})
    meta.pop("resourceVersion", None)
    if "managedFields" in meta:
        meta["managedFields"] = [
            {k: v for k, v in f.items() if k != "time"} for f in meta["managedFields"] or []
        ]
    stripped["metadata"] = meta
    return stripped


def dependent_update_passes(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """operator-lib's DependentPredicate.Update: anything but status (and resourceVersion and
    managedFields times) changed."""
    if old is None:
        return True
    return _without_noise(old) != _without_noise(new)


def owner_keys(child: dict[str, Any], owner: GVK) -> list[Key]:
    """The CRs of kind `owner` that own `child`: by ownerReference (any, as EnqueueRequestForOwner
    without OnlyControllerOwner) or by the operator-sdk/primary-resource annotations."""
    meta = _meta(child)
    keys: list[Key] = []
    for ref in meta.get("ownerReferences") or []:
        group = ref.get("apiVersion", "").rpartition("/")[0]
        if group == owner.group and ref.get("kind") == owner.kind and ref.get("name"):
            keys.append((meta.get("namespace") or "", ref["name"]))
    annotations = meta.get("annotations") or {}
    owner_type = f"{owner.kind}.{owner.group}" if owner.group else owner.kind
    if annotations.get(PRIMARY_RESOURCE_TYPE_ANNOTATION) == owner_type and annotations.get(
        PRIMARY_RESOURCE_ANNOTATION
    ):
        namespace, _, name = annotations[PRIMARY_RESOURCE_ANNOTATION].rpartition("/")
        keys.append((namespace, name))
    return keys


def objects_in_result(res: Any) -> list[dict[str, Any]]:
    """Kubernetes objects in a kubernetes.core module result (`result`, `resources`, and
    `result.results[].result` of a k8s task given several definitions)."""
    if not isinstance(res, dict):
        return []
    found = []
    several = res.get("result").get("results") if isinstance(res.get("result"), dict) else None
    candidates = [
        res.get("result"),
        *list(res.get("resources") or []),
        *[r.get("result") for r in several or [] if isinstance(r, dict)],
    ]
    for obj in candidates:
        if (
            isinstance(obj, dict)
            and obj.get("apiVersion")
            and obj.get("kind")
            and isinstance(obj.get("metadata"), dict)
        ):
            found.append(obj)
    return found


def gvk_of(obj: dict[str, Any]) -> GVK:
    group, _, version = obj["apiVersion"].rpartition("/")
    return GVK(group, version, obj["kind"])


# ---- the reconciler --------------------------------------------------------------------------


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        watch: Watch,
        runner: AnsibleRunner,
        cache: Informer,
        reconcile_period: float,
        event_logger: EventLogger,
        debug_logs: bool,
        kubeconfig: dict[str, Any],
        on_child: Callable[[dict[str, Any]], None],
        stopping: threading.Event,
    ) -> None:
        self.kube = kube
        self.watch = watch
        self.gvk = watch.gvk
        self.runner = runner
        self.cache = cache
        self.reconcile_period = reconcile_period
        self.event_logger = event_logger
        self.debug_logs = debug_logs
        self.kubeconfig = kubeconfig
        self.on_child = on_child
        self.stopping = stopping
        self._runs: dict[str, Run] = {}
        self._runs_lock = threading.Lock()

    def running(self) -> list[Run]:
        with self._runs_lock:
            return list(self._runs.values())

    def reconcile(self, key: Key) -> Result:
        namespace, name = key
        cached = self.cache.get(key)
        if cached is None:
            return Result()
        obj = copy.deepcopy(cached)
        ident = str(random.getrandbits(63))
        fields = {"job": ident, "name": name, "namespace": namespace}
        result = Result(self.reconcile_period)
        meta = _meta(obj)
        period = (meta.get("annotations") or {}).get(RECONCILE_PERIOD_ANNOTATION)
        if period is not None:
            try:
                result.requeue_after = parse_duration(period) / 1e9
            except DurationError as exc:
                self._mark_error(key, f"Unable to parse reconcile period annotation: {exc}", fields)
                log.error("Unable to parse reconcile period annotation", extra=kv(**fields, error=str(exc)))
                raise ReconcileError(str(exc)) from exc

        deleted = meta.get("deletionTimestamp") is not None
        finalizer = self.runner.finalizer_name
        if finalizer not in (meta.get("finalizers") or []):
            if deleted:
                log.info("Resource is terminated, skipping reconciliation", extra=kv(**fields))
                return Result()
            if finalizer:
                log.info("Adding finalizer to resource", extra=kv(**fields, Finalizer=finalizer))
                meta.setdefault("finalizers", []).append(finalizer)
                try:
                    obj = self.kube.update(self.gvk, obj)
                except ApiError as exc:
                    log.error("Unable to update cr with finalizer", extra=kv(**fields, error=str(exc)))
                    raise ReconcileError(str(exc)) from exc

        if not isinstance(obj.get("spec"), dict):
            obj["spec"] = {}
        if self.watch.manage_status:
            try:
                obj = self._mark_running(key)
            except ApiError as exc:
                log.error(
                    "Unable to update the status to mark cr as running", extra=kv(**fields, error=str(exc))
                )
                raise ReconcileError(str(exc)) from exc

        kubeconfig = write_run_kubeconfig(self.kubeconfig)
        try:
            return self._run(key, obj, ident, fields, result, deleted, finalizer, kubeconfig)
        finally:
            os.remove(kubeconfig)

    def _run(
        self,
        key: Key,
        obj: dict[str, Any],
        ident: str,
        fields: dict[str, Any],
        result: Result,
        deleted: bool,
        finalizer: str,
        kubeconfig: str,
    ) -> Result:
        try:
            run = self.runner.start(ident, obj, kubeconfig)
        except Exception as exc:
            self._mark_error(key, "Unable to run reconciliation", fields)
            log.error("Unable to run ansible runner", extra=kv(**fields, error=str(exc)))
            raise ReconcileError(str(exc)) from exc
        with self._runs_lock:
            self._runs[ident] = run
        try:
            collected = RunEvents()
            requeue: str | None = None
            for event in run.events():
                self.event_logger.handle(ident, obj, str(self.gvk), event)
                self._learn_children(event)
                requeue = requeue_period(event)
                if requeue is not None:
                    # The operator stops reading events here: no status, no finalizer removal.
                    break
                collected.add(event)
            run.finish()
        finally:
            with self._runs_lock:
                self._runs.pop(ident, None)
        if run.terminated:
            raise ShutdownInterrupted(f"run {ident} was stopped by the shutdown")

        if requeue is not None:
            try:
                result.requeue_after = parse_duration(requeue) / 1e9
            except DurationError as exc:
                log.error("Unable to parse time input", extra=kv(**fields, error=str(exc)))
                raise ReconcileError(str(exc)) from exc
            log.info(
                f"Set the reconciliation to occur after {format_duration(parse_duration(requeue))}",
                extra=kv(**fields),
            )
            return result

        stats = collected.stats
        if stats and stats.get("stdout"):
            print_block(f"Ansible Task Status Event StdOut ({self.gvk}, {key[1]}/{key[0]})", stats["stdout"])
        if self.debug_logs:
            try:
                output = run.stdout()
            except OSError:
                output = ""
            if output:
                print_block(f"Ansible Debug Result ({self.gvk}, {key[1]}/{key[0]})", output)

        if stats is None:
            try:
                output = run.stdout()
            except OSError as exc:
                self._mark_error(key, "Failed to get ansible-runner stdout", fields)
                log.error("Failed to get ansible-runner stdout", extra=kv(**fields, error=str(exc)))
                raise ReconcileError(str(exc)) from exc
            log.error(output, extra=kv(**fields, error="did not receive playbook_on_stats event"))
            raise ReconcileError("did not receive playbook_on_stats event")

        try:
            fresh = self.kube.get(self.gvk, key[0], key[1])
        except ApiError as exc:
            raise ReconcileError(str(exc)) from exc
        if fresh is None:
            return Result()
        successful = not collected.failures
        recently_deleted = _meta(fresh).get("deletionTimestamp") is not None
        if deleted and finalizer and successful:
            meta = _meta(fresh)
            meta["finalizers"] = [f for f in meta.get("finalizers") or [] if f != finalizer]
            try:
                self.kube.update(self.gvk, fresh)
            except ApiError as exc:
                log.error("Failed to remove finalizer", extra=kv(**fields, error=str(exc)))
                raise ReconcileError(str(exc)) from exc
        elif recently_deleted and finalizer:
            # Deleted while the run went on: the finalizer run comes next.
            result.requeue_after = DELETED_MID_RUN_REQUEUE

        if self.watch.manage_status:
            mark_failed: ApiError | None = None
            try:
                self._mark_done(key, st.AnsibleResult.from_stats(stats), collected.failures)
            except ApiError as exc:
                log.error("Failed to mark status done", extra=kv(**fields, error=str(exc)))
                mark_failed = exc
            if not successful:
                raise ReconcileError("event runner on failed")
            if mark_failed is not None:
                raise ReconcileError(str(mark_failed))
            return result
        if not successful:
            raise ReconcileError("received failed task event")
        return result

    def _learn_children(self, event: dict[str, Any]) -> None:
        data = event.get("event_data") or {}
        for obj in objects_in_result(data.get("res")):
            if owner_keys(obj, self.gvk):
                self.on_child(obj)

    def _update_status(self, key: Key, change: Callable[[st.Status], None]) -> dict[str, Any] | None:
        """Read the CR from the API server (not the cache), change its conditions, write the status."""
        fresh = self.kube.get(self.gvk, key[0], key[1])
        if fresh is None:
            return None
        conditions = st.Status.from_object(fresh)
        change(conditions)
        fresh["status"] = conditions.to_map()
        return self.kube.update_status(self.gvk, fresh)

    def _mark_running(self, key: Key) -> dict[str, Any]:
        updated = self._update_status(key, st.mark_running)
        if updated is None:
            raise ApiError(404, "NotFound", f"{self.gvk.kind} {key[0]}/{key[1]} not found")
        return updated

    def _mark_done(self, key: Key, result: st.AnsibleResult, failures: list[str]) -> None:
        if self._update_status(key, lambda s: st.mark_done(s, result, failures)) is None:
            log.info("Resource not found, assuming it was deleted", extra=kv(name=key[1], namespace=key[0]))

    def _mark_error(self, key: Key, message: str, fields: dict[str, Any]) -> None:
        try:
            if self._update_status(key, lambda s: st.mark_error(s, message)) is None:
                log.info("Resource not found, assuming it was deleted", extra=kv(**fields))
        except ApiError as exc:
            log.error("Unable to mark error", extra=kv(**fields, error=str(exc)))


# ---- the controller --------------------------------------------------------------------------


class Controller:
    def __init__(
        self,
        kube: Kube,
        watch: Watch,
        runner: AnsibleRunner,
        namespaces: list[str] | None,
        reconcile_period: float,
        event_logger: EventLogger,
        debug_logs: bool,
        kubeconfig: dict[str, Any],
        on_child: Callable[[dict[str, Any]], None],
    ) -> None:
        self.watch = watch
        self.gvk = watch.gvk
        self.name = f"{watch.gvk.kind.lower()}-{watch.gvk.version.lower()}-controller"
        self.queue = WorkQueue()
        self.stopping = threading.Event()
        self.informer = Informer(kube, kube.resource(watch.gvk), namespaces, self._on_primary_event)
        self.reconciler = Reconciler(
            kube,
            watch,
            runner,
            self.informer,
            reconcile_period,
            event_logger,
            debug_logs,
            kubeconfig,
            on_child,
            self.stopping,
        )
        self._workers: list[threading.Thread] = []

    def _on_primary_event(self, kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if kind == "add" and new is not None and _labels_match(self.watch.selector, new):
            self.queue.add(key_of(new))
        elif kind == "update" and new is not None and primary_update_passes(self.watch, old, new):
            self.queue.add(key_of(new))
        elif kind == "delete" and old is not None and _labels_match(self.watch.selector, old):
            self.queue.add(key_of(old))

    def enqueue_owners(self, child: dict[str, Any]) -> None:
        for key in owner_keys(child, self.gvk):
            self.queue.add(key)

    def start(self) -> None:
        controller_log.info(
            "Starting EventSource", extra=kv(controller=self.name, kind=self.gvk.kind, group=self.gvk.group)
        )
        self.informer.start()

    def start_workers(self) -> None:
        controller_log.info(
            "Starting workers",
            extra=kv(controller=self.name, **{"worker count": self.watch.max_concurrent_reconciles}),
        )
        for index in range(self.watch.max_concurrent_reconciles):
            thread = threading.Thread(target=self._work, name=f"{self.name}-{index}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def _work(self) -> None:
        while True:
            key = self.queue.get()
            if key is None:
                return
            try:
                self._process(key)
            finally:
                self.queue.done(key)

    def _process(self, key: Key) -> None:
        fields = {"controller": self.name, "namespace": key[0], "name": key[1]}
        try:
            result = self.reconciler.reconcile(key)
        except ShutdownInterrupted as exc:
            controller_log.info(
                "Run stopped by the shutdown; the CR is reconciled on the next start",
                extra=kv(**fields, reason=str(exc)),
            )
            return
        except Exception as exc:
            delay = self.queue.add_rate_limited(key)
            if not isinstance(exc, ReconcileError):
                controller_log.exception("Reconciler error", extra=kv(**fields))
            else:
                controller_log.error(
                    "Reconciler error", extra=kv(**fields, error=str(exc), retry_in=f"{delay:.3f}s")
                )
            return
        if result.requeue_after > 0:
            self.queue.forget(key)
            self.queue.add_after(key, result.requeue_after)
        else:
            self.queue.forget(key)

    def stop(self) -> None:
        self.stopping.set()
        self.informer.stop()
        self.queue.shutdown()

    def wait(self, deadline: float) -> bool:
        """Wait for the workers until `deadline` (time.monotonic()); True if all finished."""
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._workers)


class DependentWatches:
    """Watches of the kinds the CRs own, each re-queueing the owning CR on a change that is not
    status-only and on deletion, never on creation (the operator's proxy + DependentPredicate)."""

    def __init__(self, kube: Kube, namespaces: list[str] | None, controllers: list[Controller]) -> None:
        self.kube = kube
        self.namespaces = namespaces
        self.controllers = [c for c in controllers if c.watch.watch_dependent_resources]
        self.informers: dict[GVK, Informer] = {}
        self._lock = threading.Lock()

    def ensure(self, gvk: GVK) -> None:
        if not self.controllers:
            return
        with self._lock:
            if gvk in self.informers or any(gvk == c.gvk for c in self.controllers):
                return
            wanted = [c for c in self.controllers if gvk not in c.watch.blacklist]
            if not wanted:
                return
            try:
                resource = self.kube.resource(gvk)
            except ApiError as exc:
                controller_log.error("Cannot watch child resource", extra=kv(kind=str(gvk), error=str(exc)))
                return
            informer = Informer(
                self.kube, resource, self.namespaces, lambda k, o, n: self._on_event(gvk, k, o, n)
            )
            self.informers[gvk] = informer
        for controller in wanted:
            controller_log.info(
                "Watching child resource", extra=kv(kind=str(gvk), enqueue_kind=str(controller.gvk))
            )
        informer.start()

    def learn(self, child: dict[str, Any]) -> None:
        try:
            self.ensure(gvk_of(child))
        except (KeyError, AttributeError):
            return

    def _on_event(self, gvk: GVK, kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if kind == "add":
            return
        if kind == "update" and (new is None or not dependent_update_passes(old, new)):
            return
        child = new if new is not None else old
        if child is None:
            return
        for controller in self.controllers:
            if gvk not in controller.watch.blacklist:
                controller.enqueue_owners(child)

    def stop(self) -> None:
        with self._lock:
            for informer in self.informers.values():
                informer.stop()
