"""Root of the test suite: makes the project's module_utils importable and loads shared fixtures.

Suites: tests/unit (no services), tests/modules (a real MariaDB), tests/testbed, tests/runner
and tests/e2e (the local control plane of design section 8).
"""

import pathlib

import ansible.module_utils

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The operator image sets ANSIBLE_MODULE_UTILS to plugins/module_utils; tests import the same
# code as ansible.module_utils.simpledb.*.
_module_utils = str(ROOT / "plugins" / "module_utils")
if _module_utils not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_module_utils)

pytest_plugins = [
    "tests.fixtures.mariadb",
    "tests.fixtures.minio",
    "tests.fixtures.cluster",
    "tests.fixtures.crds",
    "tests.fixtures.operator",
]
