"""The status conditions across runs, compared with the sequence the real operator wrote
(ansible-operator-traces.md: status after a successful run, and after a failing one while it
retried)."""

from testbed.runner import status as st

OLD = "2020-01-01T00:00:00Z"
STATS = {
    "event": "playbook_on_stats",
    "created": "2026-11-26T16:35:15.374910+00:00",
    "event_data": {
        "ok": {"localhost": 1},
        "changed": {"localhost": 1},
        "skipped": {"localhost": 1},
        "failures": {},
    },
}


def apply(obj, change):
    status = st.Status.from_object(obj)
    change(status)
    obj["status"] = status.to_map()
    return obj["status"]


def by_type(status):
    return {c["type"]: c for c in status["conditions"]}


def types(status):
    return [c["type"] for c in status["conditions"]]


def test_first_run_then_success_matches_the_trace():
    obj = {"spec": {}}
    status = apply(obj, st.mark_running)
    assert status["conditions"] == [
        {
            "type": "Running",
            "status": "True",
            "lastTransitionTime": status["conditions"][0]["lastTransitionTime"],
            "reason": "Running",
            "message": "Running reconciliation",
        }
    ]
    running_since = status["conditions"][0]["lastTransitionTime"]

    result = st.AnsibleResult.from_stats(STATS)
    status = apply(obj, lambda s: st.mark_done(s, result, []))
    assert types(status) == ["Running", "Successful", "Failure"]
    c = by_type(status)
    assert c["Running"] == {
        "type": "Running",
        "status": "True",
        "lastTransitionTime": running_since,  # status unchanged: time kept
        "ansibleResult": {
            "ok": 1,
            "changed": 1,
            "skipped": 1,
            "failures": 0,
            "completion": "2026-11-26T16:35:15.37491+00:00",
        },
        "reason": "Successful",
        "message": "Awaiting next reconciliation",
    }
    assert {k: v for k, v in c["Successful"].items() if k != "lastTransitionTime"} == {
        "type": "Successful",
        "status": "True",
        "reason": "Successful",
        "message": "Last reconciliation succeeded",
    }
    assert {k: v for k, v in c["Failure"].items() if k != "lastTransitionTime"} == {
        "type": "Failure",
        "status": "False",
        "reason": "",
        "message": "",
    }


def succeeded_long_ago():
    return {
        "status": {
            "conditions": [
                {
                    "type": "Running",
                    "status": "True",
                    "lastTransitionTime": OLD,
                    "reason": "Successful",
                    "message": "Awaiting next reconciliation",
                    "ansibleResult": {
                        "ok": 1,
                        "changed": 0,
                        "skipped": 0,
                        "failures": 0,
                        "completion": "2020-01-01T00:00:00.5+00:00",
                    },
                },
                {
                    "type": "Successful",
                    "status": "True",
                    "lastTransitionTime": OLD,
                    "reason": "Successful",
                    "message": "Last reconciliation succeeded",
                },
                {
                    "type": "Failure",
                    "status": "False",
                    "lastTransitionTime": OLD,
                    "reason": "",
                    "message": "",
                },
            ]
        }
    }


def test_failure_then_retry_matches_the_trace():
    obj = succeeded_long_ago()
    status = apply(obj, st.mark_running)
    c = by_type(status)
    # Successful flips to False but keeps its reason, message and time (operator-sdk #6560).
    assert (c["Successful"]["status"], c["Successful"]["reason"]) == ("False", "Successful")
    assert c["Successful"]["message"] == "Last reconciliation succeeded"
    assert c["Successful"]["lastTransitionTime"] == OLD
    assert (c["Running"]["reason"], c["Running"]["lastTransitionTime"]) == ("Running", OLD)
    assert "ansibleResult" not in c["Running"]

    failed = dict(STATS, event_data=dict(STATS["event_data"], failures={"localhost": 1}, skipped={}))
    status = apply(
        obj, lambda s: st.mark_done(s, st.AnsibleResult.from_stats(failed), ["requested failure: boom"])
    )
    assert types(status) == ["Running", "Failure", "Successful"]
    c = by_type(status)
    assert (c["Running"]["status"], c["Running"]["reason"], c["Running"]["lastTransitionTime"]) == (
        "False",
        "Running",
        OLD,
    )
    assert c["Failure"]["status"] == "True"
    assert (c["Failure"]["reason"], c["Failure"]["message"]) == ("Failed", "requested failure: boom")
    assert c["Failure"]["ansibleResult"]["failures"] == 1
    assert c["Failure"]["lastTransitionTime"] != OLD
    assert (c["Successful"]["status"], c["Successful"]["reason"], c["Successful"]["message"]) == (
        "False",
        "",
        "",
    )
    assert c["Successful"]["lastTransitionTime"] == OLD

    # The retry's markRunning: the state the trace recorded.
    status = apply(obj, st.mark_running)
    assert types(status) == ["Failure", "Successful", "Running"]
    c = by_type(status)
    assert (c["Failure"]["status"], c["Failure"]["message"]) == ("True", "requested failure: boom")
    assert (c["Successful"]["status"], c["Successful"]["reason"], c["Successful"]["message"]) == (
        "False",
        "",
        "",
    )
    assert (c["Running"]["status"], c["Running"]["reason"], c["Running"]["message"]) == (
        "True",
        "Running",
        "Running reconciliation",
    )
    assert c["Running"]["lastTransitionTime"] != OLD


def test_failure_condition_always_takes_the_new_message():
    obj = {
        "status": {
            "conditions": [
                {
                    "type": "Failure",
                    "status": "True",
                    "lastTransitionTime": OLD,
                    "reason": "Failed",
                    "message": "first",
                }
            ]
        }
    }
    status = apply(obj, lambda s: st.mark_done(s, st.AnsibleResult(), ["second", "third"]))
    failure = by_type(status)["Failure"]
    assert failure["message"] == "second\nthird"
    assert failure["lastTransitionTime"] == OLD  # still True: time kept


def test_other_status_keys_and_condition_types_survive_normalised():
    obj = {
        "status": {
            "phase": "Ready",
            "endpoints": {"primary": "db-0"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Up",
                    "message": "m",
                    "observedGeneration": 3,
                    "lastTransitionTime": "2021-05-05T10:00:00.123456Z",
                },
                {"type": "Backup", "status": "False"},
                "not-a-condition",
            ],
        }
    }
    status = apply(obj, st.mark_running)
    assert status["phase"] == "Ready"
    assert status["endpoints"] == {"primary": "db-0"}
    assert types(status) == ["Ready", "Backup", "Running"]
    c = by_type(status)
    # Only the operator's Condition fields are written back, as Go re-marshals them.
    assert c["Ready"] == {
        "type": "Ready",
        "status": "True",
        "lastTransitionTime": "2021-05-05T10:00:00Z",
        "reason": "Up",
        "message": "m",
    }
    assert (c["Backup"]["reason"], c["Backup"]["message"]) == ("", "")
    assert c["Backup"]["lastTransitionTime"].endswith("Z")


def test_mark_error():
    status = apply(succeeded_long_ago(), lambda s: st.mark_error(s, "Unable to run reconciliation"))
    c = by_type(status)
    assert (c["Running"]["status"], c["Successful"]["status"]) == ("False", "False")
    assert (c["Failure"]["status"], c["Failure"]["reason"]) == ("True", "Failed")
    assert c["Failure"]["message"] == "Unable to run reconciliation"


def test_event_time_is_formatted_like_go():
    assert st.event_time("2026-11-26T16:35:15.374915+00:00") == "2026-11-26T16:35:15.374915+00:00"
    assert st.event_time("2026-11-26T16:35:15.374910+00:00") == "2026-11-26T16:35:15.37491+00:00"
    assert st.event_time("2026-11-26T16:35:15.000000+00:00") == "2026-11-26T16:35:15+00:00"
    assert st.event_time("2026-11-26T16:35:15.123456789+00:00") == "2026-11-26T16:35:15.12345678+00:00"
    assert st.event_time("2026-11-26T16:35:15") == "0001-01-01T00:00:00+00:00"
    assert st.event_time(None) == "0001-01-01T00:00:00+00:00"


def test_ansible_result_counts_only_localhost():
    stats = {"created": "x", "event_data": {"ok": {"localhost": 2, "other": 9}, "changed": {"other": 1}}}
    assert st.AnsibleResult.from_stats(stats).to_map() == {
        "ok": 2,
        "changed": 0,
        "skipped": 0,
        "failures": 0,
        "completion": "0001-01-01T00:00:00+00:00",
    }
