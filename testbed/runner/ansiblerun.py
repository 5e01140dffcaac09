"""One Ansible run for one CR, as ansible-operator's `runner` package does it: the input directory
(env/extravars, env/envvars, env/settings, env/cmdline, inventory/hosts, project/), the
`ansible-runner run` command line, and the job events, read from artifacts/<ident>/job_events
while the run goes on (the real operator receives the same events over its HTTP event plugin).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

from testbed.runner.logs import kv
from testbed.runner.paramconv import map_to_snake
from testbed.runner.watches import Watch

log = logging.getLogger("runner")

INPUT_ROOT = "/tmp/ansible-operator/runner"
MAX_RUNNER_ARTIFACTS_ANNOTATION = "ansible.sdk.operatorframework.io/max-runner-artifacts"
VERBOSITY_ANNOTATION = "ansible.sdk.operatorframework.io/verbosity"
_EVENT_FILE = re.compile(r"^(\d+)-.+\.json$")
_POLL_SECONDS = 0.1


class RunnerNotFound(Exception):
    """ansible-runner is not on PATH (the operator checks this before every run)."""


def escape_ansible_key(key: str) -> str:
    return key.replace(".", "_").replace("-", "_")


def object_var_name(group: str, kind: str) -> str:
    """`_<group>_<kind>` with `.` and `-` as `_`: `_example_com_simpledb` for SimpleDB.example.com."""
    return escape_ansible_key(f"_{group}_{kind.lower()}")


def mark_unsafe(value: Any) -> Any:
    """Every string as {"__ansible_unsafe": s}, so Ansible does not template it."""
    if isinstance(value, list):
        return [mark_unsafe(v) for v in value]
    if isinstance(value, dict):
        return {k: mark_unsafe(v) for k, v in value.items()}
    if isinstance(value, str):
        return {"__ansible_unsafe": value}
    return value


def _join(*parts: str) -> str:
    return os.path.normpath(os.path.join(*[p for p in parts if p]))


def _verbosity_flag(verbosity: int) -> list[str]:
    return ["-" + "v" * verbosity] if verbosity > 0 else []


class AnsibleRunner:
    """The runner for one watch: which playbook or role runs, with which variables."""

    def __init__(self, watch: Watch, ansible_args: str = "") -> None:
        self.watch = watch
        self.gvk = watch.gvk
        self.path = watch.path
        self.finalizer = watch.finalizer
        self.ansible_args = ansible_args

    @property
    def finalizer_name(self) -> str:
        return self.finalizer.name if self.finalizer else ""

    def is_finalizer_run(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        return (
            self.finalizer is not None
            and meta.get("deletionTimestamp") is not None
            and self.finalizer.name in (meta.get("finalizers") or [])
        )

    def make_parameters(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The extra vars: snake_cased spec, ansible_operator_meta, the CR, the raw spec, watch vars,
        finalizer vars (finalizer runs only), in that order of precedence."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = {}
        parameters = map_to_snake(spec) if self.watch.snake_case_parameters else dict(spec)
        if self.watch.mark_unsafe:
            parameters = {k: mark_unsafe(v) for k, v in parameters.items()}
        meta = obj.get("metadata") or {}
        parameters["ansible_operator_meta"] = {
            "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""),
        }
        obj_key = object_var_name(self.gvk.group, self.gvk.kind)
        parameters[obj_key] = mark_unsafe(obj) if self.watch.mark_unsafe else obj
        parameters[f"{obj_key}_spec"] = mark_unsafe(spec) if self.watch.mark_unsafe else spec
        parameters.update(self.watch.vars)
        if self.is_finalizer_run(obj):
            parameters.update(self.finalizer.vars)
        return parameters

    def input_dir(self, obj: dict[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        return _join(
            INPUT_ROOT,
            self.gvk.group,
            self.gvk.version,
            self.gvk.kind,
            meta.get("namespace", ""),
            meta["name"],
        )

    def _target(self, finalizer: bool) -> tuple[str, bool]:
        """(path, is_role) of what runs: a finalizer's own playbook or role, else the watch's."""
        if finalizer and self.finalizer is not None:
            if self.finalizer.playbook:
                return self.finalizer.playbook, False
            if self.finalizer.role:
                return self.finalizer.role, True
        if self.watch.playbook:
            return self.watch.playbook, False
        return self.watch.role, True

    def command(
        self, ident: str, input_dir: str, max_artifacts: int, verbosity: int, finalizer: bool
    ) -> list[str]:
        """The `ansible-runner run` command line of the operator's playbookCmdFunc/roleCmdFunc."""
        path, is_role = self._target(finalizer)
        argv = ["ansible-runner", "run", input_dir, "--rotate-artifacts", str(max_artifacts)]
        if not is_role:
            return [*argv, "-p", path, "-i", ident, *_verbosity_flag(verbosity)]
        # Go's filepath.Split keeps the trailing separator on the directory.
        roles_path, role_name = os.path.split(path)
        argv += [
            "--role",
            role_name,
            "--roles-path",
            roles_path + os.sep if roles_path else "",
            "--hosts",
            "localhost",
        ]
        argv += ["-i", ident, *_verbosity_flag(verbosity)]
        if os.environ.get("ANSIBLE_GATHERING") == "explicit":
            # ansible-runner ignores ANSIBLE_GATHERING for a role run; the operator skips facts itself.
            argv.append("--role-skip-facts")
        return argv

    def annotation_int(self, obj: dict[str, Any], annotation: str, default: int) -> int:
        value = ((obj.get("metadata") or {}).get("annotations") or {}).get(annotation)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            log.info("Invalid annotation", extra=kv(annotation=annotation, value=value))
            return default

    def write_input_dir(self, obj: dict[str, Any], kubeconfig: str) -> str:
        """inputdir.Write(): the files ansible-runner reads."""
        path = self.input_dir(obj)
        for sub in ("env", "project", "inventory"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        envvars = {"K8S_AUTH_KUBECONFIG": kubeconfig, "KUBECONFIG": kubeconfig}
        _write(path, "env/envvars", json.dumps(envvars, sort_keys=True, separators=(",", ":")))
        _write(
            path,
            "env/extravars",
            json.dumps(self.make_parameters(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        )
        # The real operator puts its HTTP event receiver here (runner_http_url/runner_http_path). The
        # runner reads job_events instead, and must not name a receiver: the ansible-runner-http
        # plugin, when installed, would fail every event posting to a socket nobody listens on.
        _write(path, "env/settings", "{}")
        cmdline = self.ansible_args
        if cmdline.startswith("'") and cmdline[0] == cmdline[-1] and len(cmdline) > 1:
            cmdline = cmdline[1:-1]
        if cmdline:
            _write(path, "env/cmdline", cmdline)
        inventory = os.environ.get("ANSIBLE_INVENTORY", "")
        if not inventory:
            venv = os.environ.get("VIRTUAL_ENV", "")
            python = os.path.join(venv, "bin", "python3") if venv else "{{ansible_playbook_python}}"
            _write(
                path,
                "inventory/hosts",
                f"localhost ansible_connection=local ansible_python_interpreter={python}",
            )
        elif os.path.isdir(inventory):
            shutil.copytree(inventory, os.path.join(path, "inventory"), dirs_exist_ok=True)
        else:
            shutil.copy2(inventory, os.path.join(path, "inventory", "hosts"))
        if not os.path.isdir(self.path):
            shutil.copyfile(self.path, os.path.join(path, "project", "playbook.yaml"))
        return path

    def start(self, ident: str, obj: dict[str, Any], kubeconfig: str) -> Run:
        if shutil.which("ansible-runner") is None:
            raise RunnerNotFound('exec: "ansible-runner": executable file not found in $PATH')
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp") is not None and not self.is_finalizer_run(obj):
            raise RuntimeError(
                "resource has been deleted, but no finalizer was matched, skipping reconciliation"
            )
        path = self.write_input_dir(obj, kubeconfig)
        max_artifacts = self.annotation_int(
            obj, MAX_RUNNER_ARTIFACTS_ANNOTATION, self.watch.max_runner_artifacts
        )
        verbosity = self.annotation_int(obj, VERBOSITY_ANNOTATION, self.watch.ansible_verbosity)
        finalizer = self.is_finalizer_run(obj)
        if finalizer:
            log.info(
                "Resource is marked for deletion, running finalizer",
                extra=kv(
                    job=ident,
                    name=meta.get("name"),
                    namespace=meta.get("namespace"),
                    Finalizer=self.finalizer_name,
                ),
            )
        argv = self.command(ident, path, max_artifacts, verbosity, finalizer)
        env = dict(os.environ, K8S_AUTH_KUBECONFIG=kubeconfig, KUBECONFIG=kubeconfig)
        return Run(ident, path, argv, env, meta)


def _write(base: str, relative: str, content: str) -> None:
    with open(os.path.join(base, relative), "w", encoding="utf-8") as fh:
        fh.write(content)


class Run:
    """A running `ansible-runner run`: its events as they come, its exit, its output."""

    def __init__(
        self, ident: str, input_dir: str, argv: list[str], env: dict[str, str], meta: dict[str, Any]
    ) -> None:
        self.ident = ident
        self.input_dir = input_dir
        self.artifact_dir = os.path.join(input_dir, "artifacts", ident)
        self.meta = meta
        self.output = ""
        self.terminated = False
        # Its own process group, so that stopping the run stops ansible-playbook and its modules too.
        self.process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read_output, name=f"run-{ident}-output", daemon=True)
        self._reader.start()

    def _read_output(self) -> None:
        assert self.process.stdout is not None
        self.output = self.process.stdout.read().decode("utf-8", "replace")

    def events(self) -> Iterator[dict[str, Any]]:
        """The job events in counter order, until the process has exited and every event was read."""
        seen: set[str] = set()
        events_dir = os.path.join(self.artifact_dir, "job_events")
        while True:
            exited = self.process.poll() is not None
            try:
                names = os.listdir(events_dir)
            except FileNotFoundError:
                names = []
            fresh = sorted(
                ((int(m.group(1)), n) for n in names if (m := _EVENT_FILE.match(n)) and n not in seen),
                key=lambda item: item[0],
            )
            for _, name in fresh:
                seen.add(name)
                try:
                    with open(os.path.join(events_dir, name), encoding="utf-8") as fh:
                        yield json.load(fh)
                except (OSError, ValueError) as exc:
                    log.error("Unreadable job event", extra=kv(job=self.ident, file=name, error=str(exc)))
            if exited and not fresh:
                return
            if not fresh:
                time.sleep(_POLL_SECONDS)

    def wait(self) -> int:
        rc = self.process.wait()
        self._reader.join()
        return rc

    def finish(self) -> None:
        """After the process exited: log its result and point artifacts/latest at this run."""
        rc = self.wait()
        fields = {"job": self.ident, "name": self.meta.get("name"), "namespace": self.meta.get("namespace")}
        if rc == 0:
            log.info("Ansible-runner exited successfully", extra=kv(**fields))
        else:
            log.error("ansible-runner exited with rc %d\n%s", rc, self.output.rstrip(), extra=kv(**fields))
        latest = os.path.join(self.input_dir, "artifacts", "latest")
        try:
            if os.path.lexists(latest):
                os.remove(latest)
            os.symlink(self.artifact_dir, latest)
        except OSError as exc:
            log.error("Error symlinking latest artifacts", extra=kv(job=self.ident, error=str(exc)))

    def stdout(self) -> str:
        with open(os.path.join(self.artifact_dir, "stdout"), encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def terminate(self, grace: float = 10.0) -> None:
        """SIGTERM to the run's process group, SIGKILL after `grace` seconds."""
        if self.process.poll() is not None:
            return
        self.terminated = True
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
