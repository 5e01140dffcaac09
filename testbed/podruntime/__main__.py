"""Entry point: ``python -m testbed.podruntime --state-dir DIR --kubeconfig FILE ...``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import kubernetes

from testbed.podruntime.volumes import VolumeController, parse_pool

log = logging.getLogger("podruntime")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m testbed.podruntime", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True, help="the test bed's state directory")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--context", required=True)
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
    volumes = VolumeController(api, args.state_dir / "volumes", parse_pool(args.pv_pool))
    log.info("started (pid %d)", os.getpid())
    try:
        while not stop.is_set():
            try:
                volumes.sync()
                ready_file.touch()
            except Exception:
                log.exception("volume sync failed; retrying")
            stop.wait(1)
    finally:
        ready_file.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
