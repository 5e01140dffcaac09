"""The operator killed in the middle of a SimpleDB's install, engine upgrade and migrations run
(SIGKILL of it and everything it started, as when its pod is deleted): a new operator converges,
the credentials are the ones created first, and nothing is reported Ready that is not. Issue 8's
acceptance; design section 10.

While each test runs, a ReadyAudit checks every Ready=True the SimpleDB reports against the server
itself: the application user logs in with the credentials Secret and the history table holds the
schema version that the status reports.
"""

from __future__ import annotations

import base64
import json
import threading
import time

import kubernetes
import pymysql
import pytest

from tests.e2e.backups import kill_operator, wait_until
from tests.e2e.conftest import LOCAL_VERSION, seed, start_simpledb_operator

pytestmark = [pytest.mark.cluster, pytest.mark.podruntime, pytest.mark.operator]

MIGRATIONS = {
    "V1__create_customers.sql": "CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(255) NOT NULL);",
}
# Long enough to kill the operator while it runs; the server finishes it after the kill.
SLOW_V2 = "SELECT SLEEP(8);\nCREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL);"
FIXED_V2 = "CREATE TABLE IF NOT EXISTS orders (id INT PRIMARY KEY, customer_id INT NOT NULL);"


class ReadyAudit:
    """Polls a SimpleDB in the background. Whenever its status says Ready=True, the application
    user must be able to log in at pod 0 and read the reported schema version from the history
    table. A claim counts as false when that check fails and the status still makes the same
    claim (same Ready transition) after the check: the status said Ready while it was not."""

    def __init__(self, sdb, k8s_client: kubernetes.client.ApiClient, name: str, interval: float = 0.3):
        self.sdb = sdb
        self.api = kubernetes.client.CustomObjectsApi(k8s_client)
        self.name = name
        self.interval = interval
        self.core = kubernetes.client.CoreV1Api(k8s_client)
        self.password = ""
        self.checked = 0
        self.false_claims: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"ready-audit-{name}", daemon=True)

    def __enter__(self) -> ReadyAudit:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def _read(self) -> dict:
        try:
            return self.api.get_namespaced_custom_object(
                "example.com", "v1alpha1", self.sdb.namespace, "simpledbs", self.name
            )
        except kubernetes.client.exceptions.ApiException:
            return {}

    def _ready_claim(self, obj: dict) -> tuple[str, object] | None:
        ready = self.sdb.condition(obj, "Ready")
        if ready.get("status") != "True":
            return None
        return ready.get("lastTransitionTime", ""), obj.get("status", {}).get("schemaVersion")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            claim = self._ready_claim(self._read())
            if claim is None:
                continue
            problem = self._check(claim[1])
            self.checked += 1
            if problem and self._ready_claim(self._read()) == claim:
                self.false_claims.append(f"{time.strftime('%H:%M:%S')} Ready=True but {problem}")

    def _check(self, schema_version) -> str:
        try:
            if not self.password:
                secret = self.core.read_namespaced_secret(f"{self.name}-credentials", self.sdb.namespace)
                self.password = base64.b64decode(secret.data["password"]).decode()
            host = self.sdb.resolve(
                f"{self.name}-0.{self.name}-headless.{self.sdb.namespace}.svc.cluster.local"
            )
            conn = pymysql.connect(
                host=host,
                port=3306,
                user="app",
                password=self.password,
                database=self.name,
                connect_timeout=3,
            )
        except Exception as exc:  # any failure to reach the server is the finding
            return f"the application user cannot log in: {exc}"
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT MAX(version) FROM simpledb_schema_history WHERE success = 1")
                applied = cur.fetchone()[0]
        except pymysql.MySQLError as exc:
            return f"the history table cannot be read: {exc}"
        finally:
            conn.close()
        if applied != schema_version:
            return f"the status says schema version {schema_version}, the history table {applied}"
        return ""


def app_login(sdb, name: str, password: str) -> list[tuple]:
    conn = sdb.connect(name, user="app", password=password, database=name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            return list(cur.fetchall())
    finally:
        conn.close()


def not_ready(obj: dict, sdb) -> bool:
    return (
        sdb.condition(obj, "Ready").get("status") != "True" and obj.get("status", {}).get("phase") != "Ready"
    )


def pod_ready(sdb, name: str) -> bool:
    result = sdb.kubectl.run("get", "-n", sdb.namespace, f"pod/{name}", "-o", "json", check=False)
    if result.returncode != 0:
        return False
    pod = json.loads(result.stdout)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def test_operator_killed_mid_install_converges(operator, simpledb_crds, cluster, sdb, k8s_client):
    running = start_simpledb_operator(operator, cluster)
    with ReadyAudit(sdb, k8s_client, "simpledb") as audit:
        sdb.apply(seed())
        wait_until(lambda: sdb.exists("statefulset", "simpledb"), 120, "the StatefulSet", interval=0.1)
        kill_operator(running)
        assert not_ready(sdb.get("simpledb"), sdb)
        credentials = sdb.secret("simpledb-credentials")

        # The server comes up without the operator; the SimpleDB does not claim Ready for it (the
        # database, user and schema were never checked).
        wait_until(lambda: pod_ready(sdb, "simpledb-0"), 180, "the pod to become Ready", interval=0.5)
        time.sleep(3)
        obj = sdb.get("simpledb")
        assert not_ready(obj, sdb), obj["status"]

        start_simpledb_operator(operator, cluster)
        obj = sdb.wait_ready("simpledb")
    assert obj["status"]["schemaVersion"] == 1
    assert obj["status"]["engineVersion"].startswith(LOCAL_VERSION)
    assert sdb.secret("simpledb-credentials") == credentials
    assert app_login(sdb, "simpledb", credentials["password"]) == [("app@%",)]
    assert sdb.query("simpledb", "SELECT version, success FROM simpledb_schema_history", "simpledb") == [
        (1, 1)
    ]
    assert audit.checked > 0 and audit.false_claims == [], audit.false_claims


def test_operator_killed_mid_engine_upgrade_converges(operator, simpledb_crds, cluster, sdb, k8s_client):
    running = start_simpledb_operator(operator, cluster)
    sdb.apply(seed())
    sdb.wait_ready("simpledb")
    credentials = sdb.secret("simpledb-credentials")
    sdb.query("simpledb", "CREATE TABLE kept (v VARCHAR(20))", "simpledb")
    sdb.query("simpledb", "INSERT INTO kept VALUES ('before upgrade')", "simpledb")
    pod_uid = sdb.kubectl.get("-n", sdb.namespace, "pod/simpledb-0")["metadata"]["uid"]

    def template_image() -> str:
        sts = sdb.kubectl.get("-n", sdb.namespace, "statefulset/simpledb")
        return sts["spec"]["template"]["spec"]["containers"][0]["image"]

    new_image = f"docker.io/library/mariadb:{LOCAL_VERSION}"
    with ReadyAudit(sdb, k8s_client, "simpledb") as audit:
        sdb.patch("simpledb", {"engine": {"image": new_image}})
        wait_until(lambda: template_image() == new_image, 120, "the StatefulSet to roll", interval=0.1)
        kill_operator(running)
        obj = sdb.get("simpledb")
        assert obj["status"]["phase"] == "Upgrading" and not_ready(obj, sdb), obj["status"]

        # The roll goes on without the operator: the pod is replaced on the new image.
        wait_until(
            lambda: (
                sdb.exists("pod", "simpledb-0")
                and sdb.kubectl.get("-n", sdb.namespace, "pod/simpledb-0")["metadata"]["uid"] != pod_uid
            ),
            180,
            "the pod to be replaced",
            interval=0.5,
        )
        obj = sdb.get("simpledb")
        assert not_ready(obj, sdb), obj["status"]

        start_simpledb_operator(operator, cluster)
        obj = sdb.wait_ready("simpledb", timeout=300)
    assert obj["status"]["image"] == new_image
    assert obj["status"]["engineVersion"].startswith(LOCAL_VERSION)
    assert obj["status"]["schemaVersion"] == 1
    pod = sdb.kubectl.get("-n", sdb.namespace, "pod/simpledb-0")
    assert pod["spec"]["containers"][0]["image"] == new_image
    assert sdb.query("simpledb", "SELECT v FROM kept", "simpledb") == [("before upgrade",)]
    assert sdb.secret("simpledb-credentials") == credentials
    assert app_login(sdb, "simpledb", credentials["password"]) == [("app@%",)]
    assert audit.checked > 0 and audit.false_claims == [], audit.false_claims


def test_operator_killed_mid_migration_refuses_until_fixed(operator, simpledb_crds, cluster, sdb, k8s_client):
    running = start_simpledb_operator(operator, cluster)
    sdb.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shop-migrations"}, "data": MIGRATIONS}
    )
    sdb.apply(seed("shop", version=1, migrations={"configMapRef": {"name": "shop-migrations"}}))
    assert sdb.wait_ready("shop")["status"]["schemaVersion"] == 1
    credentials = sdb.secret("shop-credentials")

    def history() -> list[tuple]:
        return sdb.query(
            "shop", "SELECT version, success FROM simpledb_schema_history ORDER BY installed_rank", "shop"
        )

    with ReadyAudit(sdb, k8s_client, "shop") as audit:
        sdb.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "shop-migrations"},
                "data": {**MIGRATIONS, "V2__create_orders.sql": SLOW_V2},
            }
        )
        sdb.patch("shop", {"version": 2})
        wait_until(lambda: (2, None) in history(), 120, "V2 to start", interval=0.2)
        kill_operator(running)

        # The interrupted script blocks: refused while its statement still runs, then because it
        # is not known how far it got. Never Ready at version 2.
        start_simpledb_operator(operator, cluster)
        obj = sdb.wait_for(
            "shop",
            lambda o: "interrupted" in sdb.condition(o, "Degraded").get("message", ""),
            timeout=180,
        )
        assert "V2" in sdb.condition(obj, "Degraded")["message"]
        assert obj["status"]["schemaVersion"] == 1
        assert sdb.condition(obj, "Ready")["status"] == "False"
        assert "orders" not in {r[0] for r in sdb.query("shop", "SHOW TABLES", "shop")}

        # Corrected (a changed checksum is retried): the operator's next retry converges.
        sdb.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "shop-migrations"},
                "data": {**MIGRATIONS, "V2__create_orders.sql": FIXED_V2},
            }
        )
        obj = sdb.wait_ready("shop", timeout=300)
    assert obj["status"]["schemaVersion"] == 2
    assert history() == [(1, 1), (2, None), (2, 1)]
    assert "orders" in {r[0] for r in sdb.query("shop", "SHOW TABLES", "shop")}
    assert sdb.secret("shop-credentials") == credentials
    assert audit.checked > 0 and audit.false_claims == [], audit.false_claims
