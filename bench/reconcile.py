"""Reconcile speed and operator memory on the test bed (design section 9).

The operator runs as `make run` and the end-to-end tests run it (the local runner, or the real
ansible-operator when ANSIBLE_OPERATOR names it) on the project's watches.yaml and roles, in a
namespace of its own on the local test bed, with ``--max-concurrent-reconciles`` as the
Deployment in deploy/manager sets it. Every SimpleDB is a real mariadbd behind a simulated pod.
It measures:

- the seed CR, from its creation to Ready (Ready=True, Successful=True at its generation);
- no-op reconciles of that Ready SimpleDB: each triggered by an annotation change, one after
  the other; a run's duration is from the operator marking it Running (Successful=False) to it
  marking it done (Successful=True), as a watch on the SimpleDBs sees them. The bench's copy of
  watches.yaml adds ``watchAnnotationsChanges: true`` for this, nothing else;
- a burst of SimpleDBs created at once, to all Ready, with the peak of the summed resident
  memory of the operator's process tree (the operator, ansible-runner, ansible-playbook and
  the modules it starts; not the database servers, which are the pod runtime's);
- where a no-op run's time goes, from its ansible-runner job events: the time before the first
  task (ansible-runner and ansible-playbook starting) and the time of the tasks, by module.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bench.common import Report, machine, table

NAME = "reconcile"
ROOT = Path(__file__).resolve().parent.parent
GROUP, VERSION, PLURAL = "example.com", "v1alpha1", "simpledbs"
POKE_ANNOTATION = "bench.simpledb.example.com/poke"
RUNNER_DIR = "/tmp/ansible-operator/runner"
REFERENCE = "the operator-sdk's sample Ansible operator: 15 CRs in 114 s at 1 CPU (about 7.6 s each)"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--burst", type=int, default=15, help="SimpleDBs created at once (default 15)")
    group.add_argument("--noops", type=int, default=10, help="no-op reconciles to time (default 10)")
    group.add_argument(
        "--reconcile-timeout", type=float, default=900, help="seconds to wait for the burst (default 900)"
    )
    group.add_argument(
        "--workers",
        type=int,
        help="--max-concurrent-reconciles of the operator (default: what deploy/manager sets)",
    )


def deployment_workers() -> int:
    """--max-concurrent-reconciles of the operator's Deployment (deploy/manager)."""
    documents = yaml.safe_load_all((ROOT / "deploy" / "manager" / "manager.yaml").read_text())
    deployment = next(d for d in documents if d and d.get("kind") == "Deployment")
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for arg in container.get("args", []):
            if arg.startswith("--max-concurrent-reconciles="):
                return int(arg.split("=", 1)[1])
    raise RuntimeError("deploy/manager/manager.yaml sets no --max-concurrent-reconciles")


class SimpleDBWatch:
    """Every version of every SimpleDB in a namespace, with the local time it was seen."""

    def __init__(self, api, namespace: str) -> None:
        import kubernetes

        self.kubernetes = kubernetes
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.namespace = namespace
        self.seen: dict[str, list[tuple[float, dict]]] = defaultdict(list)
        self.lock = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="simpledb-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def _loop(self) -> None:
        resource_version = None
        while not self._stop.is_set():
            watch = self.kubernetes.watch.Watch()
            try:
                for event in watch.stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    resource_version=resource_version,
                    timeout_seconds=5,
                ):
                    now = time.monotonic()
                    obj = event["object"]
                    resource_version = obj["metadata"]["resourceVersion"]
                    with self.lock:
                        self.seen[obj["metadata"]["name"]].append((now, obj))
                        self.lock.notify_all()
                    if self._stop.is_set():
                        break
            except self.kubernetes.client.exceptions.ApiException as exc:
                if exc.status == 410:  # the version expired: list again
                    resource_version = None
                else:
                    raise
            finally:
                watch.stop()

    def wait(self, name: str, predicate, after: float, timeout: float) -> tuple[float, dict]:
        """The first version seen at or after `after` for which predicate(obj) holds."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for seen_at, obj in self.seen[name]:
                    if seen_at >= after and predicate(obj):
                        return seen_at, obj
                if time.monotonic() > deadline:
                    last = self.seen[name][-1][1].get("status") if self.seen[name] else None
                    raise TimeoutError(f"simpledb/{name}: not in the expected state after {timeout}s: {last}")
                self.lock.wait(1)

    def quiet(self, seconds: float, timeout: float) -> None:
        """Wait until no SimpleDB changed for `seconds` (the operator has nothing left to do)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                last = max((s[-1][0] for s in self.seen.values() if s), default=0.0)
            if time.monotonic() - last >= seconds:
                return
            time.sleep(0.5)
        raise TimeoutError(f"the SimpleDBs kept changing for {timeout}s")


def condition(obj: dict, kind: str) -> dict:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def is_ready(obj: dict) -> bool:
    status = obj.get("status", {})
    return (
        condition(obj, "Ready").get("status") == "True"
        and condition(obj, "Successful").get("status") == "True"
        and status.get("observedGeneration") == obj["metadata"]["generation"]
    )


def ansible_result(obj: dict) -> dict:
    return condition(obj, "Running").get("ansibleResult", {})


class TreeMemory:
    """Samples the memory of a process and all its descendants; keeps the peaks. PSS (each
    shared page divided among the processes sharing it; ansible-playbook forks a worker per
    task) adds up to what the tree really uses; the RSS sum counts shared pages once per
    process, an upper bound."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_pss_mb = 0.0
        self.peak_rss_mb = 0.0
        self.peak_processes = 0
        self.peak_breakdown: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        from tests.e2e.backups import descendants

        while not self._stop.wait(self.interval):
            pids = [self.pid, *descendants(self.pid)]
            kib = {"Rss:": 0, "Pss:": 0}
            by_kind: dict[str, float] = defaultdict(float)
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/smaps_rollup") as rollup:
                        for line in rollup:
                            fields = line.split()
                            if fields and fields[0] in kib:
                                kib[fields[0]] += int(fields[1])
                                if fields[0] == "Pss:":
                                    by_kind[process_kind(pid)] += int(fields[1]) / 1024
                except (OSError, ValueError, IndexError):
                    continue
            if kib["Pss:"] / 1024 > self.peak_pss_mb:
                self.peak_pss_mb, self.peak_processes = kib["Pss:"] / 1024, len(pids)
                self.peak_breakdown = dict(by_kind)
            self.peak_rss_mb = max(self.peak_rss_mb, kib["Rss:"] / 1024)


def process_kind(pid: int) -> str:
    """What a process of the operator's tree is: a module by name, else its program."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = [arg.decode(errors="replace") for arg in cmdline.read().split(b"\0") if arg]
    except OSError:
        return "?"
    if argv and os.path.basename(argv[0]) in ("sh", "bash"):
        return "shell (starts a module)"
    for arg in argv:
        if "AnsiballZ_" in arg:
            return "module " + arg.rsplit("AnsiballZ_", 1)[1].removesuffix(".py")
    if "testbed.runner" in argv[:3]:
        return "local-runner"
    programs = [os.path.basename(arg) for arg in argv[:3] if not arg.startswith("-")]
    for name in ("ansible-playbook", "ansible-runner", "ansible-operator"):
        if name in programs or any(name in arg for arg in argv[:3]):
            return name
    return programs[0] if programs else "?"


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of the children it has waited for (ansible-runner and all
    below it, once a run ended), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU time the whole machine spent (every process, all CPUs), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait.
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def run_starts(versions: list[tuple[float, dict]]) -> int:
    """How many runs started: the operator marking the CR Running (reason Running); a run's end
    sets another reason."""
    starts, previous = 0, None
    for _, obj in versions:
        reason = condition(obj, "Running").get("reason")
        if reason == "Running" and previous != "Running":
            starts += 1
        previous = reason
    return starts


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def run_profile(namespace: str, name: str, ident: str) -> dict[str, Any]:
    """Where one run's time went, from its ansible-runner job events."""
    events = []
    for path in glob.glob(
        os.path.join(
            RUNNER_DIR, GROUP, VERSION, "SimpleDB", namespace, name, "artifacts", ident, "job_events", "*"
        )
    ):
        with open(path) as handle:
            events.append(json.load(handle))
    if not events:
        return {}
    events.sort(key=lambda e: e.get("counter", 0))
    created = [datetime.fromisoformat(e["created"]).timestamp() for e in events]
    first_task = next(
        (
            datetime.fromisoformat(e["created"]).timestamp()
            for e in events
            if e["event"] == "playbook_on_task_start"
        ),
        created[0],
    )
    # A looped task's runner_on_ok covers all its items; each item is one module call.
    items: dict[str, int] = defaultdict(int)
    for event in events:
        if event["event"] in ("runner_item_on_ok", "runner_item_on_failed"):
            items[event["event_data"].get("task_uuid", "")] += 1
    by_module: dict[str, list[float]] = defaultdict(list)
    calls: dict[str, int] = defaultdict(int)
    for event in events:
        data = event.get("event_data", {})
        if event["event"] in ("runner_on_ok", "runner_on_failed") and "duration" in data:
            module = data.get("task_action", "?")
            by_module[module].append(float(data["duration"]))
            calls[module] += items.get(data.get("task_uuid", ""), 0) or 1
    return {
        "events": created[-1] - created[0],
        "startup": first_task - created[0],
        "modules": by_module,
        "calls": calls,
    }


def run(args: argparse.Namespace) -> Report:
    sys.path.insert(0, str(ROOT))
    import kubernetes

    from tests.e2e.conftest import LOCAL_IMAGE
    from tests.fixtures.cluster import cluster_sh, start_test_bed
    from tests.fixtures.operator import IMPLEMENTATION, OperatorFactory

    workers = args.workers or deployment_workers()
    start_load = machine()
    testbed, started = start_test_bed()
    testbed.kubectl_run("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "deploy" / "crd"))
    testbed.kubectl_run("wait", "--for=condition=Established", "--timeout=60s", f"crd/{PLURAL}.{GROUP}")
    api = kubernetes.config.new_client_from_config(config_file=testbed.kubeconfig)
    core = kubernetes.client.CoreV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    namespace = f"bench-reconcile-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": namespace}})
    while not core.list_namespaced_service_account(namespace, field_selector="metadata.name=default").items:
        time.sleep(0.1)
    workdir = Path(tempfile.mkdtemp(prefix="simpledb-bench-reconcile-"))
    factory = OperatorFactory(testbed.kubeconfig, namespace, workdir, str(ROOT / "roles"))
    watcher = SimpleDBWatch(api, namespace)
    try:
        watches = yaml.safe_load((ROOT / "watches.yaml").read_text())
        for watch in watches:
            if watch["kind"] == "SimpleDB":
                watch["watchAnnotationsChanges"] = True
        operator = factory.start(
            watches,
            args=[f"--max-concurrent-reconciles={workers}"],
            env={
                "RELATED_IMAGE_MARIADB": LOCAL_IMAGE,
                "SIMPLEDB_DNS_SERVER": testbed.dns_server,
                "SIMPLEDB_DNS_PORT": str(testbed.dns_port),
            },
        )
        watcher.start()
        seed = yaml.safe_load(
            (ROOT / "deploy" / "samples" / "example.com_v1alpha1_simpledb.yaml").read_text()
        )

        created = time.monotonic()
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, seed)
        ready_at, _ = watcher.wait(seed["metadata"]["name"], is_ready, created, args.reconcile_timeout)
        seed_seconds = ready_at - created
        print(f"seed CR to Ready: {seed_seconds:.1f}s", file=sys.stderr)
        watcher.quiet(5, 300)

        noops = time_noops(
            custom, watcher, namespace, seed["metadata"]["name"], args.noops, operator.process.pid
        )
        watcher.quiet(3, 300)

        burst = time_burst(
            custom, watcher, namespace, seed, args.burst, operator.process.pid, args.reconcile_timeout
        )
        end_load = os.getloadavg()[0]
    finally:
        watcher.stop()
        factory.stop_all()
        factory.clean_up()
        core.delete_namespace(namespace, propagation_policy="Background")
        api.close()
        if started and os.environ.get("SIMPLEDB_TESTBED_KEEP") != "1":
            cluster_sh("down")
    return report(args, IMPLEMENTATION, workers, start_load, end_load, seed_seconds, noops, burst)


def time_noops(
    custom, watcher: SimpleDBWatch, namespace: str, name: str, count: int, pid: int
) -> dict[str, Any]:
    durations, changed, latencies, profiles, cpu = [], [], [], [], []
    for index in range(count):
        poked = time.monotonic()
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"metadata": {"annotations": {POKE_ANNOTATION: str(index)}}},
        )
        started, _ = watcher.wait(
            name, lambda o: condition(o, "Successful").get("status") == "False", poked, 300
        )
        cpu_before = tree_cpu_seconds(pid)
        ended, obj = watcher.wait(
            name, lambda o: condition(o, "Successful").get("status") == "True", started, 300
        )
        cpu.append(tree_cpu_seconds(pid) - cpu_before)
        durations.append(ended - started)
        latencies.append(ended - poked)
        changed.append(ansible_result(obj).get("changed"))
        print(f"no-op reconcile {index + 1}/{count}: {ended - started:.2f}s", file=sys.stderr)
        latest = os.path.join(RUNNER_DIR, GROUP, VERSION, "SimpleDB", namespace, name, "artifacts", "latest")
        if os.path.islink(latest):
            profiles.append(run_profile(namespace, name, os.path.basename(os.readlink(latest))))
        watcher.quiet(1, 120)
    return {
        "durations": durations,
        "latencies": latencies,
        "cpu": cpu,
        "changed": changed,
        "profiles": [p for p in profiles if p],
    }


def time_burst(
    custom, watcher, namespace: str, seed: dict, count: int, pid: int, timeout: float
) -> dict[str, Any]:
    names = [f"burst-{index:02d}" for index in range(1, count + 1)]
    cpu_before = tree_cpu_seconds(pid)
    machine_before = machine_cpu_seconds()
    with TreeMemory(pid) as memory:
        created = time.monotonic()
        for name in names:
            body = {**seed, "metadata": {"name": name}}
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        ready = {name: watcher.wait(name, is_ready, created, timeout)[0] - created for name in names}
        all_ready = max(ready.values())
        machine_cpu = machine_cpu_seconds() - machine_before
        operator_cpu = tree_cpu_seconds(pid) - cpu_before
        # Until the operator is idle again: the runs that follow an install count for memory too.
        watcher.quiet(5, 300)
    cpu = tree_cpu_seconds(pid) - cpu_before
    runs = sum(run_starts(watcher.seen[name]) for name in names)
    print(
        f"burst of {count}: all Ready after {all_ready:.1f}s, peak PSS {memory.peak_pss_mb:.0f} MB",
        file=sys.stderr,
    )
    return {
        "count": count,
        "all_ready": all_ready,
        "per_cr": sorted(ready.values()),
        "peak_pss_mb": memory.peak_pss_mb,
        "peak_rss_mb": memory.peak_rss_mb,
        "peak_processes": memory.peak_processes,
        "peak_breakdown": memory.peak_breakdown,
        "cpu": cpu,
        "run_starts_seen": runs,
        "machine_cpu_to_ready": machine_cpu,
        "operator_cpu_to_ready": operator_cpu,
    }


def report(args, implementation, workers, start_load, end_load, seed_seconds, noops, burst) -> Report:
    durations = noops["durations"]
    p50, p90 = percentile(durations, 0.5), percentile(durations, 0.9)
    count = burst["count"]
    rows = [
        ["seed CR created to Ready", f"{seed_seconds:.1f} s", ""],
        [f"no-op reconcile, p50 / p90 of {len(durations)}", f"{p50:.2f} s / {p90:.2f} s", "p50 <= 2 s"],
        [
            "no-op reconcile, annotation change to done, p50",
            f"{percentile(noops['latencies'], 0.5):.2f} s",
            "",
        ],
        [
            "no-op reconcile, CPU of the operator's process tree, p50",
            f"{percentile(noops['cpu'], 0.5):.2f} s",
            "",
        ],
        [f"burst of {count} SimpleDBs to all Ready", f"{burst['all_ready']:.1f} s", "<= 45 s"],
        [
            f"burst: first / median Ready of {count}",
            f"{burst['per_cr'][0]:.1f} s / {statistics.median(burst['per_cr']):.1f} s",
            "",
        ],
        [
            "burst: peak memory of the operator's process tree (PSS)",
            f"{burst['peak_pss_mb']:.0f} MB ({burst['peak_processes']} processes)",
            "<= 300 MB",
        ],
        ["burst: peak RSS summed over that tree (upper bound)", f"{burst['peak_rss_mb']:.0f} MB", ""],
        [
            f"burst: CPU of the operator's process tree ({burst['run_starts_seen']} runs)",
            f"{burst['cpu']:.0f} s",
            "",
        ],
        [
            "burst, until all Ready: CPU of the whole machine / of the operator's tree",
            f"{burst['machine_cpu_to_ready']:.0f} s / {burst['operator_cpu_to_ready']:.0f} s",
            "",
        ],
    ]
    text_table, md_table = table(["measure", "measured", "target"], rows)

    profile_rows, profile_md = profile_table(noops["profiles"])
    peak = sorted(burst["peak_breakdown"].items(), key=lambda item: -item[1])
    peak_rows, peak_md = table(["process", "PSS at the peak"], [[kind, f"{mb:.0f} MB"] for kind, mb in peak])
    changed = sorted(set(noops["changed"]), key=str)
    summary = (
        f"Operator: {implementation}, `--max-concurrent-reconciles={workers}`"
        f"{' as deploy/manager sets it' if not args.workers else ''}, "
        f"`--reconcile-period=0s`. The timed no-op runs reported changed={', '.join(map(str, changed))}. "
        f"Reference: {REFERENCE}. Machine: {start_load}, {end_load:.1f} at the end (other work shares "
        "it; the CPU times depend little on that load, the wall times a lot)."
    )
    command = f"python -m bench reconcile --burst {args.burst} --noops {args.noops}"
    command += f" --workers {args.workers}" if args.workers else ""
    markdown = f"""## Reconcile speed and operator memory

`{command}`, measured {time.strftime("%Y-%m-%d")}
on the local test bed (real mariadbd servers behind simulated pods). A no-op reconcile's
duration is from the operator marking the run Running to marking it done, as a watch sees the
SimpleDB's conditions; "annotation change to done" adds the time until the operator picks up
the change. CPU is the user and system time of the operator and of every process it started
and waited for. Memory is sampled every 0.25 s over the operator's process tree (not the
database servers): PSS divides each shared page among the processes sharing it, so it adds
up to what the tree uses; the RSS sum counts shared pages once per process.

{md_table}

{summary}

The burst's peak memory by process (ansible-playbook includes the workers it forks per task):

{peak_md}

Where a no-op run's time goes (mean over the timed runs, from the runner's job events):

{profile_md}
"""
    text = f"{text_table}\n\n{summary}\n\n{peak_rows}\n\n{profile_rows}"
    return Report(text=text, markdown=markdown)


def profile_table(profiles: list[dict[str, Any]]) -> tuple[str, str]:
    if not profiles:
        return "(no job events found)", "(no job events found)"
    count = len(profiles)
    modules: dict[str, list[float]] = defaultdict(list)
    for profile in profiles:
        for module, durations in profile["modules"].items():
            modules[module].append(sum(durations))
    calls = {m: sum(p["calls"].get(m, 0) for p in profiles) / count for m in modules}
    rows = [
        [
            "ansible-runner and ansible-playbook start-up",
            "",
            f"{statistics.mean(p['startup'] for p in profiles):.2f}",
        ],
        ["whole playbook (first to last event)", "", f"{statistics.mean(p['events'] for p in profiles):.2f}"],
    ]
    for module in sorted(modules, key=lambda m: -sum(modules[m])):
        mean = sum(modules[module]) / count
        if mean >= 0.05:
            rows.append([module, f"{calls[module]:.0f}", f"{mean:.2f}"])
    return table(["part", "calls per run", "seconds per run"], rows)
