"""Every module's documentation renders with ansible-doc and matches its argument_spec.

The documentation (with its fragments) comes from ``ansible-doc --json`` run from the
repository root, as a user would run it. The argument_spec comes from ansible-test's own
extraction (the helper of ``ansible-test sanity --test validate-modules``): it runs the module
file until it builds its AnsibleModule and records the arguments, in a separate process.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if not p.name.startswith("_"))
SECRET_NAME = re.compile(r"password|passwd|secret|token|api_key|private_key|access_key")

_EXTRACT = """
import json, os, sys
import ansible_test
root, package_dir, module = sys.argv[1:4]
sys.path.insert(0, os.path.join(os.path.dirname(ansible_test.__file__), "_util", "controller", "sanity",
                                "validate-modules"))
sys.path.insert(0, package_dir)
import ansible.module_utils
ansible.module_utils.__path__.append(os.path.join(root, "plugins", "module_utils"))
from validate_modules.module_args import get_py_argument_spec
spec, kwargs = get_py_argument_spec(module + ".py", "simpledb_modules")
print(json.dumps(spec, default=repr))
"""


@pytest.fixture(scope="module")
def docs():
    """ansible-doc's JSON for every module, in one run."""
    completed = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-doc"),
            "-M",
            "plugins/modules",
            "--json",
            *MODULES,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory):
    """plugins/modules importable as a package, as ansible-test expects a module to be."""
    directory = tmp_path_factory.mktemp("modules")
    (directory / "simpledb_modules").symlink_to(ROOT / "plugins" / "modules")
    return directory


def argument_spec(module, package_dir):
    completed = subprocess.run(
        [sys.executable, "-c", _EXTRACT, str(ROOT), str(package_dir), module],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def compare_options(documented, spec, where):
    """Differences between documented options and argument_spec entries, as readable lines."""
    problems = []
    if set(documented) != set(spec):
        only_doc = sorted(set(documented) - set(spec))
        only_spec = sorted(set(spec) - set(documented))
        problems.append(f"{where}: documented only {only_doc}, in argument_spec only {only_spec}")
    for name in sorted(set(documented) & set(spec)):
        doc, arg = documented[name], spec[name]
        for field, doc_value, spec_value in (
            ("type", doc.get("type", "str"), arg.get("type", "str")),
            ("elements", doc.get("elements"), arg.get("elements")),
            ("required", bool(doc.get("required", False)), bool(arg.get("required", False))),
            ("default", doc.get("default"), arg.get("default")),
            ("choices", doc.get("choices"), arg.get("choices")),
            ("aliases", sorted(doc.get("aliases") or []), sorted(arg.get("aliases") or [])),
        ):
            if doc_value != spec_value:
                problems.append(
                    f"{where}.{name}: {field} is {doc_value!r} in the docs, {spec_value!r} in the code"
                )
        names = [name, *(arg.get("aliases") or [])]
        # An explicit no_log=False says the name only looks like a secret (as ansible-test accepts).
        if any(SECRET_NAME.search(n) for n in names) and arg.get("no_log") is None:
            problems.append(f"{where}.{name}: a secret without no_log=True")
        if "options" in arg or "suboptions" in doc:
            problems += compare_options(
                doc.get("suboptions") or {}, arg.get("options") or {}, f"{where}.{name}"
            )
    return problems


def test_there_are_modules():
    assert {"simpledb_probe", "simpledb_migrations", "simpledb_status", "simpledb_event"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_documentation_matches_the_argument_spec(module, docs, package_dir):
    doc = docs[module]["doc"]
    spec = argument_spec(module, package_dir)

    assert compare_options(doc.get("options") or {}, spec, module) == []


@pytest.mark.parametrize("module", MODULES)
def test_documentation_is_complete(module, docs):
    entry = docs[module]
    assert entry["doc"]["module"] == module
    assert entry["doc"]["short_description"]
    assert entry["doc"]["description"]
    examples = yaml.safe_load(entry["examples"])
    assert isinstance(examples, list) and examples, "EXAMPLES must be a list of tasks"
    uses = [task for task in examples if module in task]
    assert uses, f"no example uses {module}"
    assert entry["return"], "RETURN must document what the module returns"


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_for_a_reader(module):
    completed = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "-M", "plugins/modules", module],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "PAGER": "cat"},
    )
    assert completed.returncode == 0, completed.stderr
    assert f"> MODULE {module}" in completed.stdout
    assert (
        "OPTIONS" in completed.stdout
        and "EXAMPLES" in completed.stdout
        and "RETURN VALUES" in completed.stdout
    )
    assert "[WARNING]" not in completed.stderr, completed.stderr


def test_the_comparison_catches_mismatches():
    """The checker itself: each kind of drift is reported."""
    documented = {
        "a": {"type": "int"},
        "b": {"type": "str", "default": "x"},
        "login_password": {"type": "str"},
        "c": {"type": "dict", "suboptions": {"d": {"type": "str", "required": True}}},
        "only_doc": {},
    }
    spec = {
        "a": {"type": "str"},
        "b": {"type": "str", "default": "y"},
        "login_password": {"type": "str"},
        "c": {"type": "dict", "options": {"d": {"type": "str"}}},
        "only_spec": {},
    }
    assert compare_options(documented, spec, "m") == [
        "m: documented only ['only_doc'], in argument_spec only ['only_spec']",
        "m.a: type is 'int' in the docs, 'str' in the code",
        "m.b: default is 'x' in the docs, 'y' in the code",
        "m.c.d: required is True in the docs, False in the code",
        "m.login_password: a secret without no_log=True",
    ]
