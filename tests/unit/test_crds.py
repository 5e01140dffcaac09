"""The CRDs: generated files current, schemas structural, names and printer columns as designed.

The real API server applies them and the invalid-spec list in tests/testbed/test_crd_validation.py.
"""

import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

CRD_DIR = ROOT / "deploy" / "crd" / "bases"
CRDS = {p.name: yaml.safe_load(p.read_text()) for p in sorted(CRD_DIR.glob("*.yaml"))}


def test_generated_crds_are_current():
    result = subprocess.run(
        [sys.executable, "hack/crdgen.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_three_kinds_with_short_names():
    names = {doc["spec"]["names"]["kind"]: doc["spec"]["names"]["shortNames"] for doc in CRDS.values()}
    assert names == {"SimpleDB": ["sdb"], "SimpleDBBackup": ["sdbb"], "SimpleDBRestore": ["sdbr"]}


def structural_errors(schema, path="") -> list[str]:
    """The rules of a structural schema (Kubernetes API conventions) that a hand check can apply."""
    errors = []
    special = schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields")
    if "type" not in schema and not special:
        errors.append(f"{path or '<root>'}: no type")
    if schema.get("x-kubernetes-int-or-string") and "type" in schema:
        errors.append(f"{path}: int-or-string must not set type")
    for key in ("$ref", "definitions", "dependencies", "additionalItems", "patternProperties"):
        if key in schema:
            errors.append(f"{path}: {key} is not allowed in a structural schema")
    if "properties" in schema and "additionalProperties" in schema:
        errors.append(f"{path}: properties and additionalProperties are mutually exclusive")
    for alternative in schema.get("anyOf", []) + schema.get("allOf", []) + schema.get("oneOf", []):
        # Alternatives may only restrict values; "type" is allowed for int-or-string only.
        allowed = {"pattern", "format", "enum", "minimum", "maximum", "minLength", "maxLength"}
        if schema.get("x-kubernetes-int-or-string"):
            allowed.add("type")
        if set(alternative) - allowed:
            errors.append(f"{path}: anyOf/allOf/oneOf may only restrict values")
    for name, sub in schema.get("properties", {}).items():
        errors += structural_errors(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        errors += structural_errors(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        errors += structural_errors(schema["additionalProperties"], f"{path}{{}}")
    if schema.get("type") == "array" and "items" not in schema:
        errors.append(f"{path}: an array needs items")
    return errors


@pytest.mark.parametrize("name", CRDS)
def test_schema_is_structural_and_described(name):
    (version,) = CRDS[name]["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]
    assert structural_errors(schema) == []
    assert version["subresources"] == {"status": {}}

    def undocumented(node, path=""):
        missing = [] if node.get("description") or path.startswith(".metadata") else [path]
        for key, sub in node.get("properties", {}).items():
            missing += undocumented(sub, f"{path}.{key}")
        return missing

    # kubectl explain shows every field's description.
    spec_and_status = {k: schema["properties"][k] for k in ("spec", "status")}
    assert undocumented({"description": "root", "properties": spec_and_status}) == []


def test_simpledb_printer_columns():
    doc = CRDS["example.com_simpledbs.yaml"]
    columns = [
        c["name"] for c in doc["spec"]["versions"][0]["additionalPrinterColumns"] if not c.get("priority")
    ]
    assert columns == ["Ready", "Phase", "Engine", "Schema", "Age"]


def test_seed_spec_needs_nothing_else():
    schema = CRDS["example.com_simpledbs.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert "required" not in schema["properties"]["spec"]
    assert schema["properties"]["spec"]["properties"]["version"]["type"] == "integer"
