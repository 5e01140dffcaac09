"""The image recipe, checked without a Docker engine: COPY sources exist and the Python
libraries and collections it installs are the ones the local environment tests with."""

import importlib.metadata
import json
import pathlib
import re

import ansible_collections
import yaml

from tests.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def test_from_the_v1_42_3_base_image():
    assert "quay.io/operator-framework/ansible-operator:v1.42.3" in instructions("FROM")[-1]


def test_every_copy_source_exists():
    for args in instructions("COPY"):
        if args.startswith("--from="):
            continue
        *sources, _dest = args.split()
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_installs_exactly_the_runtime_requirements():
    runs = " ".join(instructions("RUN"))
    assert "pip install" in runs and "-r /tmp/runtime.txt" in runs
    assert any(c.startswith("requirements/runtime.txt ") for c in instructions("COPY"))
    runtime = {
        line.split("==")[0].lower(): line.split("==")[1]
        for line in (ROOT / "requirements/runtime.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    locked = {
        line.split("==")[0].lower(): line.split("==")[1]
        for line in (ROOT / "requirements/dev.lock").read_text().splitlines()
        if "==" in line
    }
    assert runtime, "requirements/runtime.txt lists nothing"
    for name, version in runtime.items():
        assert locked.get(name) == version, f"{name}: image {version}, dev.lock {locked.get(name)}"


def test_collections_match_the_local_ones():
    wanted = yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]
    base = pathlib.Path(ansible_collections.__path__[0])
    for collection in wanted:
        namespace, name = collection["name"].split(".")
        manifest = json.loads((base / namespace / name / "MANIFEST.json").read_text())
        assert manifest["collection_info"]["version"] == collection["version"], collection["name"]
    assert importlib.metadata.version("ansible-core").startswith("2.18.")


def test_ansible_settings_match_local_runs():
    env = " ".join(instructions("ENV"))
    for setting in (
        "ANSIBLE_LIBRARY=${HOME}/plugins/modules",
        "ANSIBLE_MODULE_UTILS=${HOME}/plugins/module_utils",
        "ANSIBLE_GATHERING=explicit",
    ):
        assert setting in env
