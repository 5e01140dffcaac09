"""The SimpleDB role end to end: the operator on the local control plane, a real mariadbd behind
every pod. Design sections 2 to 4; issue 8's acceptance."""

import json
import pathlib

import pymysql
import pytest

from tests.e2e.conftest import (
    LOCAL_IMAGE,
    LOCAL_MAJOR_MINOR,
    LOCAL_VERSION,
    last_result,
    seed,
    start_simpledb_operator,
)

pytestmark = [pytest.mark.cluster, pytest.mark.podruntime, pytest.mark.operator]

MIGRATIONS = {
    "V1__create_customers.sql": "CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(255) NOT NULL);",
    "V2__create_orders.sql": (
        "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL,\n"
        "  FOREIGN KEY (customer_id) REFERENCES customers (id));"
    ),
    "V3__add_note.sql": "ALTER TABLE orders ADD COLUMN note VARCHAR(200) NULL;",
}


def migrations_configmap(name: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_seed_cr_becomes_ready_at_schema_version_1(simpledb_operator, sdb):
    sdb.apply(seed())
    obj = sdb.wait_ready("simpledb")
    status = obj["status"]
    assert status["schemaVersion"] == 1
    assert status["engineVersion"].startswith(LOCAL_VERSION)
    assert status["secretName"] == "simpledb-credentials"
    assert status["endpoint"] == f"simpledb.{sdb.namespace}.svc.cluster.local:3306"

    # The application logs in with the generated credentials at the endpoint in status: the
    # Service's name resolves, and its endpoint (what kube-proxy would route to) serves it.
    host, port = status["endpoint"].rsplit(":", 1)
    cluster_ip = sdb.kubectl.get("-n", sdb.namespace, "service/simpledb")["spec"]["clusterIP"]
    assert sdb.resolve(host) == cluster_ip
    password = sdb.secret("simpledb-credentials")["password"]
    conn = pymysql.connect(
        host=sdb.service_endpoint_ip("simpledb"),
        port=int(port),
        user="app",
        password=password,
        database="simpledb",
        connect_timeout=10,
    )
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone()[0] == "app@%"
    conn.close()
    # The baseline is recorded: nothing ran, the version reads back from the history table.
    rows = sdb.query("simpledb", "SELECT version, success FROM simpledb_schema_history", "simpledb")
    assert rows == [(1, 1)]


def test_second_reconcile_changes_nothing(simpledb_operator, operator, cluster, sdb):
    sdb.apply(seed())
    first = last_result(sdb.wait_ready("simpledb"))
    secret_before = sdb.secret("simpledb-credentials")
    simpledb_operator.stop()
    # A restarted operator reconciles every object once: nothing differs, nothing changes.
    start_simpledb_operator(operator, cluster)
    obj = sdb.wait_for("simpledb", lambda o: last_result(o).get("completion", "") > first["completion"])
    assert sdb.condition(obj, "Successful")["status"] == "True"
    assert last_result(obj)["changed"] == 0, last_result(obj)
    assert sdb.secret("simpledb-credentials") == secret_before


def test_migrations_apply_in_order_and_refusals_change_nothing(simpledb_operator, sdb):
    sdb.apply(migrations_configmap("shop-migrations", MIGRATIONS))
    sdb.apply(seed("shop", version=1, migrations={"configMapRef": {"name": "shop-migrations"}}))
    assert sdb.wait_ready("shop")["status"]["schemaVersion"] == 1

    sdb.patch("shop", {"version": 3})
    obj = sdb.wait_for(
        "shop", lambda o: o["status"].get("schemaVersion") == 3 and o["status"]["phase"] == "Ready"
    )
    rows = sdb.query(
        "shop", "SELECT version, description, success FROM simpledb_schema_history ORDER BY version", "shop"
    )
    assert rows == [(1, "create customers", 1), (2, "create orders", 1), (3, "add note", 1)]
    assert {r[0] for r in sdb.query("shop", "SHOW TABLES", "shop")} >= {"customers", "orders"}

    # An applied migration edited: Degraded with the reason, nothing applied.
    edited = dict(
        MIGRATIONS,
        **{
            "V2__create_orders.sql": MIGRATIONS["V2__create_orders.sql"] + " -- edited",
            "V4__more.sql": "CREATE TABLE more_things (id INT PRIMARY KEY);",
        },
    )
    sdb.apply(migrations_configmap("shop-migrations", edited))
    sdb.patch("shop", {"version": 4})
    obj = sdb.wait_for("shop", lambda o: sdb.condition(o, "Degraded").get("status") == "True")
    assert (
        "V2" in sdb.condition(obj, "Degraded")["message"]
        and "checksum" in sdb.condition(obj, "Degraded")["message"]
    )
    assert obj["status"]["schemaVersion"] == 3
    assert "more_things" not in {r[0] for r in sdb.query("shop", "SHOW TABLES", "shop")}

    # A lower version: refused with the reason, nothing changed.
    sdb.apply(migrations_configmap("shop-migrations", MIGRATIONS))
    sdb.patch("shop", {"version": 2})
    obj = sdb.wait_for(
        "shop",
        lambda o: (
            "lower" in sdb.condition(o, "Degraded").get("message", "")
            or "downgrade" in sdb.condition(o, "Degraded").get("message", "")
        ),
    )
    assert sdb.query("shop", "SELECT MAX(version) FROM simpledb_schema_history", "shop") == [(3,)]
    assert "note" in {r[0] for r in sdb.query("shop", "SHOW COLUMNS FROM orders", "shop")}


def test_engine_image_change_rolls_the_server_on_the_same_data(simpledb_operator, sdb):
    sdb.apply(seed())
    sdb.wait_ready("simpledb")
    sdb.query("simpledb", "CREATE TABLE kept (v VARCHAR(20))", "simpledb")
    sdb.query("simpledb", "INSERT INTO kept VALUES ('before upgrade')", "simpledb")
    pod_uid = sdb.kubectl.get("-n", sdb.namespace, "pod/simpledb-0")["metadata"]["uid"]

    new_image = f"docker.io/library/mariadb:{LOCAL_VERSION}"
    sdb.patch("simpledb", {"engine": {"image": new_image}})
    obj = sdb.wait_ready("simpledb")
    assert obj["status"]["image"] == new_image
    pod = sdb.kubectl.get("-n", sdb.namespace, "pod/simpledb-0")
    assert pod["metadata"]["uid"] != pod_uid
    assert pod["spec"]["containers"][0]["image"] == new_image
    assert sdb.query("simpledb", "SELECT v FROM kept", "simpledb") == [("before upgrade",)]
    events = sdb.kubectl.get("-n", sdb.namespace, "events", "--field-selector=involvedObject.name=simpledb")
    reasons = [e["reason"] for e in events["items"]]
    assert "EngineUpgrade" in reasons and reasons.index("EngineUpgrade") < len(reasons)


@pytest.mark.parametrize(
    ("version", "words"),
    [("10.6", "downgrade"), (f"{int(LOCAL_MAJOR_MINOR.split('.')[0]) + 2}.4", "skips a major version")],
    ids=["downgrade", "skipped-major"],
)
def test_refused_engine_change_rolls_nothing(simpledb_operator, sdb, version, words):
    sdb.apply(seed())
    sdb.wait_ready("simpledb")
    pod_uid = sdb.kubectl.get("-n", sdb.namespace, "pod/simpledb-0")["metadata"]["uid"]
    sts_generation = sdb.kubectl.get("-n", sdb.namespace, "statefulset/simpledb")["metadata"]["generation"]

    sdb.patch("simpledb", {"engine": {"version": version}})
    obj = sdb.wait_for("simpledb", lambda o: sdb.condition(o, "Degraded").get("status") == "True")
    assert words in sdb.condition(obj, "Degraded")["message"]
    assert obj["status"]["phase"] == "Degraded"
    assert (
        sdb.kubectl.get("-n", sdb.namespace, "statefulset/simpledb")["metadata"]["generation"]
        == sts_generation
    )
    assert sdb.kubectl.get("-n", sdb.namespace, "pod/simpledb-0")["metadata"]["uid"] == pod_uid
    assert (
        sdb.kubectl.get("-n", sdb.namespace, "statefulset/simpledb")["spec"]["template"]["spec"][
            "containers"
        ][0]["image"]
        == LOCAL_IMAGE
    )


def test_storage_grows_and_never_shrinks(simpledb_operator, sdb):
    sdb.apply(seed(storage={"size": "1Gi"}))
    sdb.wait_ready("simpledb")
    sdb.patch("simpledb", {"storage": {"size": "2Gi"}})
    sdb.wait_ready("simpledb")
    pvc = sdb.kubectl.get("-n", sdb.namespace, "pvc/data-simpledb-0")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "2Gi"

    result = sdb.kubectl.run(
        "patch",
        "-n",
        sdb.namespace,
        "simpledb/simpledb",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"storage": {"size": "1Gi"}}}),
        check=False,
    )
    assert result.returncode != 0 and "storage.size cannot shrink" in result.stderr


def test_spec_that_cannot_be_honoured_says_why_and_creates_nothing(simpledb_operator, sdb):
    sdb.apply(seed("nosecret", credentialsSecret="does-not-exist"))
    obj = sdb.wait_for("nosecret", lambda o: sdb.condition(o, "Degraded").get("status") == "True")
    assert "does-not-exist" in sdb.condition(obj, "Degraded")["message"]
    assert not sdb.exists("statefulset", "nosecret")
    assert not sdb.exists("service", "nosecret")


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_deletion_policy(simpledb_operator, sdb, policy, cluster):
    sdb.apply(seed(deletionPolicy=policy))
    sdb.wait_ready("simpledb")
    pvc = sdb.kubectl.get("-n", sdb.namespace, "pvc/data-simpledb-0")
    volume = sdb.kubectl.get("pv/" + pvc["spec"]["volumeName"])
    data_dir = pathlib.Path(volume["spec"]["hostPath"]["path"])
    assert data_dir.exists()

    sdb.kubectl.run("delete", "-n", sdb.namespace, "simpledb/simpledb", "--timeout=180s")
    sdb.kubectl.run(
        "wait", "-n", sdb.namespace, "--for=delete", "pod/simpledb-0", "--timeout=120s", check=False
    )
    if policy == "Retain":
        assert sdb.exists("pvc", "data-simpledb-0")
        assert sdb.exists("secret", "simpledb-credentials")
        assert data_dir.exists()
    else:
        sdb.kubectl.run("wait", "-n", sdb.namespace, "--for=delete", "pvc/data-simpledb-0", "--timeout=60s")
        assert not sdb.exists("secret", "simpledb-credentials")
    assert not sdb.exists("statefulset", "simpledb")


def test_secret_values_never_reach_logs_or_artifacts(simpledb_operator, sdb):
    sentinel_root, sentinel_app = "Sentinel-Root-7f3a9c", "Sentinel-App-51b2e8"
    sdb.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "given"},
            "stringData": {"root-password": sentinel_root, "password": sentinel_app},
        }
    )
    sdb.apply(seed(credentialsSecret="given"))
    sdb.wait_ready("simpledb")
    assert sdb.query("simpledb", "SELECT 1") == [(1,)]
    log = simpledb_operator.log()
    assert sentinel_root not in log and sentinel_app not in log
    artifacts = pathlib.Path("/tmp/ansible-operator/runner/example.com/v1alpha1/SimpleDB") / sdb.namespace
    assert artifacts.exists()
    for path in artifacts.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert sentinel_root not in text and sentinel_app not in text, path


def test_operand_pods_pass_the_restricted_standard(simpledb_operator, sdb):
    sdb.kubectl.run(
        "label", "namespace", sdb.namespace, "pod-security.kubernetes.io/enforce=restricted", "--overwrite"
    )
    sdb.apply(seed())
    sdb.wait_ready("simpledb")
    events = sdb.kubectl.get("-n", sdb.namespace, "events", "--field-selector=reason=FailedCreate")
    assert events["items"] == []
    pod = sdb.kubectl.get("-n", sdb.namespace, "pod/simpledb-0")
    assert pod["spec"]["securityContext"]["runAsUser"] == 999
