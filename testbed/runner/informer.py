"""List+watch one kind into a local store and report adds, updates and deletes (client-go's
reflector and informer, reduced to what the runner needs).

The watch resumes from the last resourceVersion seen (bookmarks included); when the server
answers 410 Gone the informer lists again and reports the difference, so no change is lost.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from testbed.runner.kube import ApiError, Kube, Resource
from testbed.runner.logs import kv

log = logging.getLogger("informer")

Key = tuple[str, str]
# on_event(kind, old, new): kind is "add", "update" or "delete"; old/new are None where absent.
Handler = Callable[[str, dict[str, Any] | None, dict[str, Any] | None], None]


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


class Informer:
    def __init__(
        self, kube: Kube, resource: Resource, namespaces: list[str] | None, handler: Handler
    ) -> None:
        self.kube = kube
        self.resource = resource
        # None: every namespace. A cluster-scoped kind is always listed once.
        self.namespaces: list[str | None] = list(namespaces) if namespaces and resource.namespaced else [None]
        self.handler = handler
        self.store: dict[Key, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._synced = [threading.Event() for _ in self.namespaces]
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for index, namespace in enumerate(self.namespaces):
            thread = threading.Thread(
                target=self._run,
                args=(index, namespace),
                name=f"informer-{self.resource.plural}-{namespace or 'all'}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()

    def wait_synced(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for event in self._synced:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not event.wait(remaining):
                return False
        return True

    def get(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            return self.store.get(key)

    def _emit(self, kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        try:
            self.handler(kind, old, new)
        except Exception:
            log.exception("event handler failed", extra=kv(kind=self.resource.gvk.kind))

    def _relist(self, namespace: str | None) -> str:
        listing = self.kube.list(self.resource, namespace)
        items = listing.get("items") or []
        api_version = self.resource.gvk.api_version
        fresh: dict[Key, dict[str, Any]] = {}
        for item in items:
            # List items carry no apiVersion/kind; events and roles expect them.
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", self.resource.gvk.kind)
            fresh[key_of(item)] = item
        with self._lock:
            previous = {k: v for k, v in self.store.items() if namespace is None or k[0] == namespace}
            for k in previous:
                del self.store[k]
            self.store.update(fresh)
        for k, obj in fresh.items():
            old = previous.get(k)
            if old is None:
                self._emit("add", None, obj)
            elif old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._emit("update", old, obj)
        for k, old in previous.items():
            if k not in fresh:
                self._emit("delete", old, None)
        return (listing.get("metadata") or {}).get("resourceVersion", "")

    def _apply(self, event_type: str, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        with self._lock:
            old = self.store.get(key)
            if event_type == "DELETED":
                self.store.pop(key, None)
            else:
                self.store[key] = obj
        if event_type == "ADDED" and old is None:
            self._emit("add", None, obj)
        elif event_type in ("ADDED", "MODIFIED"):
            self._emit("update", old, obj)
        elif event_type == "DELETED":
            self._emit("delete", old or obj, None)

    def _run(self, index: int, namespace: str | None) -> None:
        resource_version = ""
        failures = 0
        while not self._stop.is_set():
            try:
                if not resource_version:
                    resource_version = self._relist(namespace)
                    self._synced[index].set()
                # client-go picks a random watch timeout between 5 and 10 minutes.
                timeout = random.randint(300, 600)
                for event in self.kube.watch(self.resource, namespace, resource_version, timeout):
                    if self._stop.is_set():
                        return
                    event_type, obj = event.get("type"), event.get("object") or {}
                    if event_type == "ERROR":
                        raise ApiError(
                            int(obj.get("code") or 0), obj.get("reason", ""), obj.get("message", "")
                        )
                    resource_version = (obj.get("metadata") or {}).get("resourceVersion", resource_version)
                    if event_type != "BOOKMARK":
                        self._apply(event_type, obj)
                failures = 0
            except ApiError as exc:
                if exc.gone:
                    log.info("watch expired, listing again", extra=kv(kind=self.resource.gvk.kind))
                    resource_version = ""
                    continue
                failures += 1
                log.warning(
                    "watch failed, retrying",
                    extra=kv(kind=self.resource.gvk.kind, namespace=namespace or "", error=str(exc)),
                )
                self._stop.wait(min(30.0, 0.5 * 2 ** min(failures, 6)))
            except Exception as exc:  # a broken stream (connection reset, bad chunk): resume
                failures += 1
                log.warning(
                    "watch stream broke, retrying",
                    extra=kv(kind=self.resource.gvk.kind, namespace=namespace or "", error=str(exc)),
                )
                self._stop.wait(min(30.0, 0.5 * 2 ** min(failures, 6)))
