"""plugins/modules/requeue_after.py, run by Ansible: it returns `period`, which the operator reads."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_module(args: str, check: bool = False) -> dict:
    env = {
        **os.environ,
        "ANSIBLE_LIBRARY": str(ROOT / "plugins" / "modules"),
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
    }
    argv = [
        os.path.join(os.path.dirname(sys.executable), "ansible"),
        "localhost",
        "-m",
        "requeue_after",
        "-a",
        args,
        "-c",
        "local",
        *(["--check"] if check else []),
    ]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    output = json.loads(result.stdout)
    return output["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.mark.parametrize("period", ["30s", "5m", "1h30m", "500ms", "1.5h"])
def test_returns_the_period(period):
    result = run_module(f"time={period}")
    assert result["period"] == period
    assert result["changed"] is False
    assert not result.get("failed")


def test_check_mode_returns_the_same():
    assert run_module("time=30s", check=True)["period"] == "30s"


@pytest.mark.parametrize("period", ["soon", "5", "1d", ""])
def test_a_period_the_operator_cannot_parse_fails_the_task(period):
    result = run_module(f"time={period!r}")
    assert result["failed"] is True
    assert "is not a duration such as 30s" in result["msg"]
