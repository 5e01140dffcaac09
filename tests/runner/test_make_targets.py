"""`make run` (testbed/run.sh) and `make ansible-operator` (hack/ansible-operator.sh), run from a
copy of the repository layout so that nothing in the checkout changes. Only loopback is used:
the download tests serve the "release" from a local HTTP server or point at a closed port."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(directory: pathlib.Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture
def layout(tmp_path):
    """A repository root with the two scripts, a watches.yaml and a role."""
    for script in ("hack/ansible-operator.sh", "testbed/run.sh"):
        (tmp_path / script).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / script, tmp_path / script)
    (tmp_path / "roles" / "probe" / "tasks").mkdir(parents=True)
    (tmp_path / "roles" / "probe" / "tasks" / "main.yml").write_text("[]\n")
    (tmp_path / "watches.yaml").write_text(
        "- {version: v1alpha1, group: conformance.example.com, kind: Probe, role: probe}\n"
    )
    return tmp_path


def machine() -> str:
    arch = os.uname().machine.replace("x86_64", "amd64").replace("aarch64", "arm64")
    return f"{os.uname().sysname.lower()}_{arch}"


def run_download(layout, releases: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_OPERATOR_RELEASES": releases, "ANSIBLE_OPERATOR_TIMEOUT": "20"}
    return subprocess.run(
        ["hack/ansible-operator.sh"], cwd=layout, env=env, capture_output=True, text=True, timeout=60
    )


def test_download_without_internet_says_so_and_changes_nothing(layout):
    result = run_download(layout, f"http://127.0.0.1:{closed_port()}/releases")
    assert result.returncode == 1
    assert "download failed" in result.stderr
    assert "ANSIBLE_OPERATOR=/path/to/ansible-operator" in result.stderr
    assert "local runner" in result.stderr
    assert list((layout / "bin").iterdir()) == []


def test_download_of_a_missing_release_fails_the_same_way(layout, tmp_path_factory):
    with serving(tmp_path_factory.mktemp("empty")) as url:
        result = run_download(layout, url)
    assert result.returncode == 1
    assert "404" in result.stderr
    assert not (layout / "bin" / "ansible-operator").exists()


def test_download_puts_the_release_binary_in_bin(layout, tmp_path_factory):
    releases = tmp_path_factory.mktemp("releases")
    (releases / "v1.42.3").mkdir()
    fake = releases / "v1.42.3" / f"ansible-operator_{machine()}"
    fake.write_text('#!/bin/sh\necho \'ansible-operator version: "v1.42.3", commit: "test"\'\n')
    with serving(releases) as url:
        result = run_download(layout, url)
        assert result.returncode == 0, result.stderr
        assert f"v1.42.3/ansible-operator_{machine()}" in result.stdout
        target = layout / "bin" / "ansible-operator"
        assert os.access(target, os.X_OK)
        assert "v1.42.3" in subprocess.run([target, "version"], capture_output=True, text=True).stdout
        again = run_download(layout, url)
    assert again.returncode == 0
    assert "already in bin/" in again.stdout
    assert sorted(p.name for p in (layout / "bin").iterdir()) == ["ansible-operator"]


FAKE_OPERATOR = """#!/bin/sh
# Records how it was started, then waits to be stopped like an operator.
{ echo "argv: $*"; for v in ANSIBLE_GATHERING ANSIBLE_LIBRARY ANSIBLE_MODULE_UTILS ANSIBLE_ROLES_PATH \\
  RELATED_IMAGE_MARIADB SIMPLEDB_DNS_SERVER SIMPLEDB_DNS_PORT SIMPLEDB_ENDPOINT_OVERRIDE \\
  SIMPLEDB_CLUSTER_DOMAIN WATCH_NAMESPACE VIRTUAL_ENV KUBECONFIG; do eval "echo $v=\\$$v"; done
  echo "runner=$(command -v ansible-runner)"; } > "$0.calls"
trap 'echo stopped >> "$0.calls"; exit 0' TERM
while :; do sleep 0.1; done
"""


def local_engine() -> str:
    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    version = subprocess.run([mariadbd, "--version"], capture_output=True, text=True).stdout
    return re.search(r"Ver (\d+\.\d+)\.", version).group(1)


def start_run(layout, env_extra):
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "SIMPLEDB_", "RELATED_IMAGE_"))
    }
    env.pop("WATCH_NAMESPACE", None)
    env.update(SIMPLEDB_PYTHON=sys.executable, KUBECONFIG=str(layout / "kubeconfig"), **env_extra)
    return subprocess.Popen(
        ["testbed/run.sh"],
        cwd=layout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # A terminal's Ctrl-C, even when this test runs in a background job that ignores SIGINT.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_make_run_starts_the_named_binary_with_the_images_settings_and_stops_it(layout):
    fake = layout / "fake-operator"
    fake.write_text(FAKE_OPERATOR)
    fake.chmod(0o755)
    run = start_run(
        layout,
        {
            "ANSIBLE_OPERATOR": str(fake),
            "SIMPLEDB_ENDPOINT_OVERRIDE": "127.0.0.1:13306",
            "WATCH_NAMESPACE": "apps",
            "SIMPLEDB_CLUSTER_DOMAIN": "example.internal",
            "OPERATOR_ARGS": "--max-concurrent-reconciles=3",
        },
    )
    calls = layout / "fake-operator.calls"
    deadline = time.monotonic() + 30
    while not calls.exists() or "KUBECONFIG" not in calls.read_text():
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in the terminal reaches the whole group
    _, stderr = run.communicate(timeout=30)
    assert run.returncode == 0
    assert f"operator: {fake} (the real ansible-operator)" in stderr
    recorded = dict(
        line.split("=", 1) for line in calls.read_text().splitlines() if "=" in line and ":" not in line[:5]
    )
    assert calls.read_text().splitlines()[0] == (
        f"argv: run --watches-file={layout}/watches.yaml --reconcile-period=0s "
        "--health-probe-bind-address=127.0.0.1:6789 --metrics-bind-address=0 --max-concurrent-reconciles=3"
    )
    assert recorded["ANSIBLE_GATHERING"] == "explicit"
    assert recorded["ANSIBLE_LIBRARY"] == f"{layout}/plugins/modules"
    assert recorded["ANSIBLE_MODULE_UTILS"] == f"{layout}/plugins/module_utils"
    assert recorded["ANSIBLE_ROLES_PATH"] == f"{layout}/roles"
    assert recorded["RELATED_IMAGE_MARIADB"] == f"docker.io/library/mariadb:{local_engine()}"
    assert recorded["SIMPLEDB_ENDPOINT_OVERRIDE"] == "127.0.0.1:13306"
    assert recorded["WATCH_NAMESPACE"] == "apps"
    assert recorded["SIMPLEDB_CLUSTER_DOMAIN"] == "example.internal"
    assert recorded["KUBECONFIG"] == str(layout / "kubeconfig")
    assert recorded["runner"] == os.path.join(os.path.dirname(sys.executable), "ansible-runner")
    assert calls.read_text().splitlines()[-1] == "stopped"


def test_make_run_falls_back_to_the_local_runner_and_says_so(layout):
    port = closed_port()
    (layout / "kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    # The runner module comes from the checkout; the layout has the rest.
    (layout / "testbed" / "__init__.py").write_text("")
    (layout / "testbed" / "runner").symlink_to(ROOT / "testbed" / "runner")
    env_path = ":".join(
        p for p in os.environ["PATH"].split(":") if not shutil.which("ansible-operator", path=p)
    )
    run = start_run(layout, {"PATH": env_path, "RELATED_IMAGE_MARIADB": "example/mariadb:test"})
    stdout, stderr = run.communicate(timeout=60)
    assert "operator: the local runner (python -m testbed.runner)" in stderr
    assert "RELATED_IMAGE_MARIADB=example/mariadb:test" in stderr
    # Nothing listens there: the runner reports it and make run passes its exit status on.
    assert run.returncode == 1
    assert "connection" in stdout.lower()
