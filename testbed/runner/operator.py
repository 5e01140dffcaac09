"""`python -m testbed.runner run`: the local stand-in for `ansible-operator run`.

It takes the same flags (the ones without meaning here are accepted and logged), loads
watches.yaml the same way, starts one controller per watch plus the dependent watches, serves
/healthz and /readyz, and shuts down gracefully on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import http.server
import importlib.metadata
import logging
import os
import platform
import signal
import sys
import threading
import time
from typing import Any

from testbed.runner import logs
from testbed.runner.ansiblerun import AnsibleRunner
from testbed.runner.controller import Controller, DependentWatches
from testbed.runner.events import LOG_EVERYTHING, LOG_NOTHING, LOG_TASKS, EventLogger
from testbed.runner.goformat import DurationError, parse_duration
from testbed.runner.kube import ApiError, Kube, minified_kubeconfig
from testbed.runner.logs import kv
from testbed.runner.watches import GVK, WatchesError, load

log = logging.getLogger("cmd")

# Kinds to watch as children from the start, besides those learnt from the role's k8s results:
# "<apiVersion>/<Kind>" separated by commas, e.g. "v1/ConfigMap,apps/v1/StatefulSet".
DEPENDENT_KINDS_ENV = "LOCAL_RUNNER_DEPENDENT_KINDS"


def _go_bool(text: str) -> bool:
    """Go's strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")


def _duration(text: str) -> float:
    try:
        return parse_duration(text) / 1e9
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m testbed.runner",
        description="Local runner with the contract of `ansible-operator run` (v1.42.3).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="Run the operator")

    def flag(*names: str, **kwargs: Any) -> None:
        run.add_argument(*names, **kwargs)

    def bool_flag(name: str, default: bool, help_text: str, dest: str | None = None) -> None:
        run.add_argument(
            name, type=_go_bool, nargs="?", const=True, default=default, help=help_text, dest=dest
        )

    flag("--watches-file", default="./watches.yaml", help="Path to the watches file to use")
    bool_flag("--inject-owner-ref", True, "Accepted; the local runner has no proxy and injects nothing")
    flag(
        "--ansible-verbosity",
        type=int,
        default=2,
        help="Ansible verbosity. Overridden by environment variable.",
    )
    flag("--ansible-roles-path", default="", help="Sets ANSIBLE_ROLES_PATH")
    flag("--ansible-collections-path", default="", help="Sets ANSIBLE_COLLECTIONS_PATH")
    flag("--ansible-args", default="", help="Arbitrary arguments for ansible-runner (env/cmdline)")
    flag("--reconcile-period", type=_duration, default=36000.0, help="Default reconcile period (10h)")
    flag("--max-concurrent-reconciles", type=int, default=os.cpu_count() or 1)
    flag(
        "--metrics-bind-address",
        "--metrics-addr",
        dest="metrics_bind_address",
        default=":8443",
        help="Accepted; the local runner serves no metrics",
    )
    flag(
        "--health-probe-bind-address",
        default=":6789",
        help="/healthz and /readyz; an empty host means 127.0.0.1 here; 0 disables",
    )
    bool_flag(
        "--leader-elect",
        False,
        "Accepted; the local runner always runs as the only instance",
        dest="leader_elect",
    )
    bool_flag("--enable-leader-election", False, "Deprecated form of --leader-elect", dest="leader_elect")
    flag("--leader-election-id", default="")
    flag("--leader-election-namespace", default="")
    flag("--leader-elect-resource-lock", default="leases")
    flag("--leader-elect-lease-duration", type=_duration, default=15.0)
    flag("--leader-elect-renew-deadline", type=_duration, default=10.0)
    flag(
        "--graceful-shutdown-timeout",
        type=_duration,
        default=30.0,
        help="How long running Ansible runs may take to finish at shutdown before they are stopped",
    )
    flag("--ansible-log-events", default="tasks", help="Tasks, Everything or Nothing")
    flag("--proxy-port", type=int, default=8888, help="Accepted; the local runner has no proxy")
    bool_flag("--enable-http2", False, "Accepted")
    bool_flag("--metrics-secure", False, "Accepted")
    bool_flag("--metrics-require-rbac", False, "Accepted (needs --metrics-secure)")
    flag("--kubeconfig", default="", help="Path to a kubeconfig (else KUBECONFIG, else ~/.kube/config)")
    flag("--zap-log-level", default="info", help="debug, info or error")
    bool_flag("--zap-devel", False, "Accepted")
    flag("--zap-encoder", default="", help="Accepted")
    flag("--zap-stacktrace-level", default="", help="Accepted")
    flag("--zap-time-encoding", default="", help="Accepted")
    return p


def _log_events_level(value: str) -> str:
    lowered = value.lower()
    if lowered in (LOG_EVERYTHING, LOG_NOTHING):
        return lowered
    if lowered not in (LOG_TASKS, ""):
        log.error(
            f"--ansible-log-events flag value '{value}' not recognized. "
            "Must be one of: Tasks, Everything, Nothing"
        )
    return LOG_TASKS


def _debug_logs() -> bool:
    value = os.environ.get("ANSIBLE_DEBUG_LOGS")
    if value is None:
        return False
    try:
        return _go_bool(value)
    except argparse.ArgumentTypeError:
        log.info("Could not parse ANSIBLE_DEBUG_LOGS as a boolean; using false")
        return False


def _watch_namespaces() -> list[str] | None:
    names = [n.strip() for n in os.environ.get("WATCH_NAMESPACE", "").split(",") if n.strip()]
    if names:
        log.info("Watching namespaces", extra=kv(namespaces=names))
        return names
    log.info("Watching all namespaces")
    return None


def _dependent_kinds() -> list[GVK]:
    kinds = []
    for item in os.environ.get(DEPENDENT_KINDS_ENV, "").split(","):
        item = item.strip()
        if not item:
            continue
        api_version, _, kind = item.rpartition("/")
        group, _, version = api_version.rpartition("/")
        if not version or not kind:
            raise ValueError(
                f"{DEPENDENT_KINDS_ENV}: {item!r} is not <apiVersion>/<Kind> (e.g. apps/v1/StatefulSet)"
            )
        kinds.append(GVK(group, version, kind))
    return kinds


class _Health(http.server.BaseHTTPRequestHandler):
    ready = threading.Event()

    def do_GET(self) -> None:
        ok = self.path == "/healthz" or (self.path == "/readyz" and self.ready.is_set())
        known = self.path in ("/healthz", "/readyz")
        self.send_response(200 if ok else (503 if known else 404))
        self.end_headers()
        self.wfile.write(b"ok" if ok else b"not ready" if known else b"not found")

    def log_message(self, format: str, *args: Any) -> None:
        return


def _serve_health(address: str) -> http.server.ThreadingHTTPServer | None:
    if address in ("0", ""):
        return None
    host, _, port = address.rpartition(":")
    server = http.server.ThreadingHTTPServer((host or "127.0.0.1", int(port)), _Health)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    log.info(
        "Serving health probes", extra=kv(address=f"{server.server_address[0]}:{server.server_address[1]}")
    )
    return server


def run(args: argparse.Namespace) -> int:
    logs.setup(logging.DEBUG if args.zap_log_level == "debug" else logging.INFO)
    try:
        runner_version = importlib.metadata.version("ansible-runner")
    except importlib.metadata.PackageNotFoundError:
        runner_version = "not installed"
    log.info(
        "Version",
        extra=kv(
            **{
                "ansible-operator": "local runner (v1.42.3 contract)",
                "python": platform.python_version(),
                "ansible-runner": runner_version,
            }
        ),
    )
    if args.metrics_require_rbac and not args.metrics_secure:
        log.error("--metrics-secure flag is required when --metrics-require-rbac is present")
        return 1
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    if args.leader_elect:
        log.info("Leader election requested: the local runner does not elect; it runs as the only instance")
    if not args.inject_owner_ref:
        log.info("--inject-owner-ref=false: the local runner never injects owner references anyway")
    if args.metrics_bind_address not in ("0", ""):
        log.info("Metrics are not served by the local runner", extra=kv(address=args.metrics_bind_address))
    namespaces = _watch_namespaces()
    for flag_value, env in (
        (args.ansible_roles_path, "ANSIBLE_ROLES_PATH"),
        (args.ansible_collections_path, "ANSIBLE_COLLECTIONS_PATH"),
    ):
        if flag_value:
            os.environ[env] = flag_value
            log.info("Set the environment variable", extra=kv(envVar=env, value=flag_value))
    debug_logs = _debug_logs()
    event_logger = EventLogger(_log_events_level(args.ansible_log_events))

    try:
        watches = load(args.watches_file, args.max_concurrent_reconciles, args.ansible_verbosity)
        dependent_kinds = _dependent_kinds()
    except (WatchesError, ValueError) as exc:
        log.error("Failed to load watches.", extra=kv(error=str(exc)))
        return 1
    try:
        kube = Kube()
        kubeconfig = minified_kubeconfig()
    except Exception as exc:
        log.error("Failed to get config.", extra=kv(error=str(exc)))
        return 1

    controllers: list[Controller] = []
    dependents: DependentWatches | None = None

    def on_child(child: dict[str, Any]) -> None:
        if dependents is not None:
            dependents.learn(child)

    try:
        for watch in watches:
            period = (
                args.reconcile_period if watch.reconcile_period_ns == 0 else watch.reconcile_period_ns / 1e9
            )
            log.info(
                "Watching resource",
                extra=kv(
                    **{
                        "Options.Group": watch.gvk.group,
                        "Options.Version": watch.gvk.version,
                        "Options.Kind": watch.gvk.kind,
                    }
                ),
            )
            controllers.append(
                Controller(
                    kube,
                    watch,
                    AnsibleRunner(watch, args.ansible_args),
                    namespaces,
                    period,
                    event_logger,
                    debug_logs,
                    kubeconfig,
                    on_child,
                )
            )
    except ApiError as exc:
        log.error("Failed to watch resource", extra=kv(error=str(exc)))
        return 1
    dependents = DependentWatches(kube, namespaces, controllers)

    stop = threading.Event()
    signals_seen = []

    def on_signal(signum: int, _frame: Any) -> None:
        signals_seen.append(signum)
        if len(signals_seen) > 1:
            log.info("Second signal: exiting now")
            os._exit(1)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    health = _serve_health(args.health_probe_bind_address)
    for controller in controllers:
        controller.start()
    for gvk in dependent_kinds:
        dependents.ensure(gvk)
    while not all(c.informer.wait_synced(0.5) for c in controllers):
        if stop.is_set():
            break
    if not stop.is_set():
        _Health.ready.set()
        for controller in controllers:
            controller.start_workers()

    stop.wait()
    log.info(
        "Stopping and waiting for runs to finish", extra=kv(timeout=f"{args.graceful_shutdown_timeout:g}s")
    )
    dependents.stop()
    for controller in controllers:
        controller.stop()
    deadline = time.monotonic() + args.graceful_shutdown_timeout
    finished = all([c.wait(deadline) for c in controllers])
    if not finished:
        runs = [r for c in controllers for r in c.reconciler.running()]
        log.info("Graceful shutdown timed out: stopping the running Ansible runs", extra=kv(runs=len(runs)))
        for r in runs:
            r.terminate()
        for controller in controllers:
            controller.wait(time.monotonic() + 15)
    if health is not None:
        health.shutdown()
    log.info("Exiting.")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
