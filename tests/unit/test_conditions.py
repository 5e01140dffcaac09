"""Condition and status merging (the pure part of simpledb_status)."""

import re

import pytest
from ansible.module_utils.simpledb.conditions import (
    InvalidCondition,
    merge_conditions,
    merge_patch,
    normalize_condition,
    utc_now,
)

T0 = "2026-11-26T16:00:00Z"
T1 = "2026-11-26T16:05:00Z"

# What the operator writes after a successful run (ansible-operator-traces.md).
OPERATOR_CONDITIONS = [
    {
        "ansibleResult": {
            "changed": 1,
            "completion": "2026-11-26T16:35:15.374915+00:00",
            "failures": 0,
            "ok": 1,
        },
        "lastTransitionTime": "2026-11-26T16:35:13Z",
        "message": "Awaiting next reconciliation",
        "reason": "Successful",
        "status": "True",
        "type": "Running",
    },
    {
        "lastTransitionTime": "2026-11-26T16:35:15Z",
        "message": "Last reconciliation succeeded",
        "reason": "Successful",
        "status": "True",
        "type": "Successful",
    },
    {
        "lastTransitionTime": "2026-11-26T16:35:15Z",
        "message": "",
        "reason": "",
        "status": "False",
        "type": "Failure",
    },
]


def ready(status="True", reason="ServerReady", message="up"):
    return {"type": "Ready", "status": status, "reason": reason, "message": message}


def test_new_conditions_are_appended_and_others_kept_untouched():
    merged = merge_conditions(OPERATOR_CONDITIONS, [ready()], T0)

    assert merged[:3] == OPERATOR_CONDITIONS
    assert merged[3] == {**ready(), "lastTransitionTime": T0}


def test_the_inputs_are_not_modified():
    existing = [{**ready(), "lastTransitionTime": T0}]
    snapshot = [dict(c) for c in existing]
    merge_conditions(existing, [ready(status="False", reason="ServerDown")], T1)
    assert existing == snapshot


def test_transition_time_moves_only_when_the_status_changes():
    existing = [{**ready(), "lastTransitionTime": T0}]

    same_status = merge_conditions(existing, [ready(reason="StillUp", message="still up")], T1)
    flipped = merge_conditions(existing, [ready(status="False", reason="ServerDown", message="down")], T1)

    assert same_status == [{**ready(reason="StillUp", message="still up"), "lastTransitionTime": T0}]
    assert flipped == [
        {**ready(status="False", reason="ServerDown", message="down"), "lastTransitionTime": T1}
    ]


def test_setting_the_same_condition_again_is_no_change():
    existing = merge_conditions([], [ready()], T0)
    assert merge_conditions(existing, [ready()], T1) == existing


def test_an_existing_condition_without_transition_time_gets_one():
    assert merge_conditions([ready()], [ready()], T1) == [{**ready(), "lastTransitionTime": T1}]


def test_updating_an_operator_condition_keeps_its_extra_fields_and_position():
    merged = merge_conditions(
        OPERATOR_CONDITIONS, [{"type": "Running", "status": "True", "reason": "Running", "message": "x"}], T1
    )
    assert [c["type"] for c in merged] == ["Running", "Successful", "Failure"]
    assert merged[0]["ansibleResult"] == OPERATOR_CONDITIONS[0]["ansibleResult"]
    assert merged[0]["lastTransitionTime"] == OPERATOR_CONDITIONS[0]["lastTransitionTime"]
    assert (merged[0]["reason"], merged[0]["message"]) == ("Running", "x")


def test_several_conditions_in_one_call_keep_their_order():
    merged = merge_conditions(
        [],
        [
            ready(),
            {"type": "Progressing", "status": "False", "reason": "Ready"},
            {"type": "Degraded", "status": "False", "reason": "AsExpected", "message": None},
        ],
        T0,
    )
    assert [(c["type"], c["message"]) for c in merged] == [
        ("Ready", "up"),
        ("Progressing", ""),
        ("Degraded", ""),
    ]


@pytest.mark.parametrize(("given", "expected"), [(True, "True"), (False, "False"), ("Unknown", "Unknown")])
def test_yaml_booleans_become_condition_statuses(given, expected):
    assert normalize_condition(ready(status=given))["status"] == expected


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (ready(status="yes"), "condition Ready: status must be True, False or Unknown, got 'yes'"),
        (ready(reason="has space"), "condition Ready: reason 'has space' is not valid"),
        (ready(reason=""), "condition Ready: reason '' is not valid"),
        (ready(reason=None), "condition Ready: reason None is not valid"),
        ({**ready(), "type": "not valid!"}, "condition type 'not valid!' is not valid"),
        ({**ready(), "type": ""}, "condition type '' is not valid"),
    ],
)
def test_invalid_conditions_are_refused_with_the_rule(condition, message):
    with pytest.raises(InvalidCondition, match=re.escape(message)):
        merge_conditions([], [condition], T0)


def test_prefixed_condition_types_are_valid():
    assert (
        normalize_condition({**ready(), "type": "example.com/BackupReady"})["type"]
        == "example.com/BackupReady"
    )


def test_a_type_given_twice_is_refused():
    with pytest.raises(InvalidCondition, match="condition type Ready is given more than once"):
        merge_conditions([], [ready(), ready(status="False")], T0)


def test_very_long_messages_are_cut():
    message = normalize_condition(ready(message="x" * 40000))["message"]
    assert len(message) == 32768 and message.endswith("...")


def test_merge_patch_follows_rfc_7386():
    status = {"phase": "Ready", "lastBackup": {"name": "b1", "size": 10}, "tables": ["a", "b"], "keep": 1}
    patch = {"phase": "Degraded", "lastBackup": {"size": None, "sha256": "ab"}, "tables": ["c"], "gone": None}

    assert merge_patch(status, patch) == {
        "phase": "Degraded",
        "lastBackup": {"name": "b1", "sha256": "ab"},
        "tables": ["c"],
        "keep": 1,
    }
    assert status["lastBackup"] == {"name": "b1", "size": 10}  # the input is not modified
    assert merge_patch(None, {"a": {"b": 1}}) == {"a": {"b": 1}}
    assert merge_patch({"a": 1}, {}) == {"a": 1}


def test_timestamps_are_rfc3339_utc_seconds():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_now())
