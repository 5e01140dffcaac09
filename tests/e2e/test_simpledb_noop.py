"""A converged SimpleDB's reconcile takes one look (roles/simpledb/tasks/observe.yml), and that
look still sees drift: an object deleted, the application user dropped or its password changed
in the server. Each drift is repaired by the run it triggers or by the next one.
"""

from __future__ import annotations

import uuid

import pymysql
import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e.conftest import last_result, seed, start_simpledb_operator

pytestmark = pytest.mark.cluster


@pytest.fixture
def poked_operator(operator, simpledb_crds, cluster):
    """The operator on watches.yaml, plus a run when a SimpleDB's annotations change (the test's
    way to ask for a reconcile that has nothing to do), as bench/reconcile.py does."""
    watches = yaml.safe_load((ROOT / "watches.yaml").read_text())
    for watch in watches:
        if watch["kind"] == "SimpleDB":
            watch["watchAnnotationsChanges"] = True
    return start_simpledb_operator(operator, cluster, watches)


def reconcile(sdb, name: str, mark: str) -> dict:
    """Touch the SimpleDB's metadata and wait for the run that follows. The value is new every
    time: annotating the value already there changes nothing and triggers no run."""
    before = last_result(sdb.get(name)).get("completion", "")
    value = f"{mark}-{uuid.uuid4().hex[:8]}"
    sdb.kubectl.run("annotate", "-n", sdb.namespace, f"simpledb/{name}", f"test/touch={value}", "--overwrite")
    return sdb.wait_for(name, lambda o: last_result(o).get("completion", "") > before)


def converged(sdb, name: str) -> dict:
    """The SimpleDB once a run has recorded what it observed as converged."""
    obj = sdb.wait_ready(name)
    for attempt in range(3):
        if obj["status"].get("convergedDigest"):
            return obj
        obj = reconcile(sdb, name, f"converge-{attempt}")
    raise AssertionError(f"no run recorded a converged digest: {obj['status']}")


def app_login_works(sdb, name: str) -> bool:
    try:
        sdb.connect(name, user="app", database=name).close()
    except pymysql.err.OperationalError:
        return False
    return True


def test_unchanged_simpledb_reconciles_in_one_look(poked_operator, sdb):
    sdb.apply(seed())
    full = last_result(converged(sdb, "simpledb"))
    obj = reconcile(sdb, "simpledb", "noop")
    quick = last_result(obj)
    assert quick["changed"] == 0, quick
    assert sdb.condition(obj, "Ready")["status"] == "True"
    # The converged run went through every step; this one observed and stopped.
    assert quick["ok"] * 2 < full["ok"], (quick, full)


def test_drift_is_seen_and_repaired(poked_operator, sdb):
    sdb.apply(seed())
    converged(sdb, "simpledb")

    # A deleted child: its deletion triggers a run, which finds it gone and recreates it.
    sdb.kubectl.run("delete", "-n", sdb.namespace, "service/simpledb")
    sdb.wait_for("simpledb", lambda o: sdb.exists("service", "simpledb"))

    # Changes inside the server trigger nothing; the next run finds them.
    converged(sdb, "simpledb")
    sdb.query("simpledb", "DROP USER 'app'@'%'")
    assert not app_login_works(sdb, "simpledb")
    obj = reconcile(sdb, "simpledb", "user-dropped")
    assert last_result(obj)["changed"] > 0
    assert app_login_works(sdb, "simpledb")

    converged(sdb, "simpledb")
    sdb.query("simpledb", "ALTER USER 'app'@'%' IDENTIFIED BY 'not-the-secret'")
    reconcile(sdb, "simpledb", "password-changed")
    assert app_login_works(sdb, "simpledb")

    converged(sdb, "simpledb")
    sdb.query("simpledb", "REVOKE ALL PRIVILEGES ON `simpledb`.* FROM 'app'@'%'")
    reconcile(sdb, "simpledb", "grants-revoked")
    grants = sdb.query("simpledb", "SHOW GRANTS FOR 'app'@'%'")
    assert any("ALL PRIVILEGES ON `simpledb`.*" in row[0] for row in grants), grants
