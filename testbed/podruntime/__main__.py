"""Entry point: ``python -m testbed.podruntime --state-dir DIR --kubeconfig FILE ...``.

Started and stopped by testbed/cluster.sh. SIGTERM stops every server, then the runtime.
``<state>/podruntime.ready`` exists once the volume pool and the pods have been synced.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import kubernetes

from testbed.podruntime.runtime import PodRuntime
from testbed.podruntime.server import server_version
from testbed.podruntime.volumes import VolumeController, parse_pool

log = logging.getLogger("podruntime")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m testbed.podruntime", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True, help="the test bed's state directory")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--context", required=True)
    parser.add_argument("--node-name", required=True, help="the kwok node whose pods this runtime runs")
    parser.add_argument("--netns", required=True, help="network namespace holding the pod IPs")
    parser.add_argument("--pv-pool", default="1Gi=10", help="size=count,... Available PVs to keep")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    api = kubernetes.config.new_client_from_config(config_file=args.kubeconfig, context=args.context)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    pid_file = args.state_dir / "podruntime.pid"
    ready_file = args.state_dir / "podruntime.ready"
    pid_file.write_text(str(os.getpid()))
    version = server_version()
    volumes = VolumeController(api, args.state_dir / "volumes", parse_pool(args.pv_pool))
    pods = PodRuntime(api, args.state_dir, args.node_name, args.netns, version)
    pods_synced = threading.Event()
    watcher = threading.Thread(target=pods.run, args=(stop, pods_synced.set), name="pod-watch", daemon=True)
    watcher.start()
    log.info(
        "started (pid %d, node %s, netns %s, MariaDB %s)", os.getpid(), args.node_name, args.netns, version
    )
    try:
        while not stop.is_set():
            try:
                volumes.sync()
                if pods_synced.is_set():
                    ready_file.touch()
            except Exception:
                log.exception("volume sync failed; retrying")
            stop.wait(1)
    finally:
        ready_file.unlink(missing_ok=True)
        log.info("stopping every server")
        pods.shutdown()
        watcher.join(10)
        pid_file.unlink(missing_ok=True)
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
