"""Cron schedules, due backups and retention (module_utils/simpledb/schedule.py), and the
simpledb_schedule module run by Ansible."""

import datetime

import pytest
from ansible.module_utils.simpledb.schedule import (
    CronSchedule,
    ScheduleError,
    due_backup,
    format_time,
    parse_age,
    parse_time,
    plan_retention,
)

from tests.fixtures.ansible_module import run_module


def t(text: str) -> datetime.datetime:
    return parse_time(text)


def next_times(expression: str, start: str, count: int) -> list[str]:
    schedule = CronSchedule.parse(expression)
    moment, found = t(start), []
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(format_time(moment))
    return found


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        ("*/15 * * * *", "2026-01-01T00:07:30Z", ["2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z"]),
        ("0 3 * * *", "2026-01-01T03:00:00Z", ["2026-01-02T03:00:00Z", "2026-01-03T03:00:00Z"]),
        ("30 1,13 * * *", "2026-01-01T02:00:00Z", ["2026-01-01T13:30:00Z", "2026-01-02T01:30:00Z"]),
        ("0 0 * * mon-fri", "2026-01-02T12:00:00Z", ["2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z"]),
        ("0 0 * * 7", "2026-01-01T00:00:00Z", ["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"]),
        ("0 0 1 */3 *", "2026-01-15T00:00:00Z", ["2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z"]),
        ("0 12 29 feb *", "2026-01-01T00:00:00Z", ["2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"]),
        ("@hourly", "2026-01-01T10:59:59Z", ["2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z"]),
        ("@weekly", "2026-01-01T00:00:00Z", ["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"]),
        ("@monthly", "2026-01-31T00:00:00Z", ["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"]),
        ("@yearly", "2026-06-01T00:00:00Z", ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]),
        ("0 6-10/2 * * *", "2026-01-01T07:00:00Z", ["2026-01-01T08:00:00Z", "2026-01-01T10:00:00Z"]),
    ],
)
def test_next_scheduled_times(expression, start, expected):
    assert next_times(expression, start, 2) == expected


def test_both_day_fields_restricted_match_either():
    # The 13th of the month or any Friday (Vixie cron), here in February 2026.
    found = next_times("0 0 13 * 5", "2026-02-01T00:00:00Z", 4)
    assert found == [
        "2026-02-06T00:00:00Z",
        "2026-02-13T00:00:00Z",
        "2026-02-20T00:00:00Z",
        "2026-02-27T00:00:00Z",
    ]
    # A stepped day field starts with '*' and does not widen the weekday's days.
    assert next_times("0 0 */2 * 1", "2026-02-01T00:00:00Z", 2) == [
        "2026-02-02T00:00:00Z",
        "2026-02-09T00:00:00Z",
    ]


def test_latest_scheduled_time_at_or_before():
    schedule = CronSchedule.parse("0 3 * * *")
    assert format_time(schedule.last_at_or_before(t("2026-01-05T03:00:00Z"))) == "2026-01-05T03:00:00Z"
    assert format_time(schedule.last_at_or_before(t("2026-01-05T02:59:59Z"))) == "2026-01-04T03:00:00Z"
    assert schedule.count_between(t("2026-01-01T03:00:00Z"), t("2026-01-05T03:00:00Z")) == 3


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 3 * *", "must have five fields"),
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("0 24 * * *", "hour 24 is out of range 0-23"),
        ("0 0 0 * *", "day of month 0 is out of range 1-31"),
        ("0 0 * foo *", "'foo' is not a valid month"),
        ("*/0 * * * *", "step '0' of the minute must be a positive number"),
        ("0 10-2 * * *", "range '10-2' of the hour runs backwards"),
        ("0 0 30 2 *", "never runs"),
        ("@often", "must have five fields"),
    ],
)
def test_invalid_schedules_say_what_is_wrong(expression, message):
    with pytest.raises(ScheduleError, match=message):
        CronSchedule.parse(expression)


def test_due_after_a_scheduled_time_passed():
    schedule = CronSchedule.parse("0 3 * * *")
    since = t("2026-01-01T12:00:00Z")
    before = due_backup(schedule, t("2026-01-02T02:59:00Z"), since, None)
    assert not before.due and format_time(before.next_time) == "2026-01-02T03:00:00Z"
    first = due_backup(schedule, t("2026-01-02T03:00:05Z"), since, None)
    assert first.due and format_time(first.scheduled_time) == "2026-01-02T03:00:00Z" and first.missed == 0
    taken = due_backup(schedule, t("2026-01-02T03:01:00Z"), since, t("2026-01-02T03:00:00Z"))
    assert not taken.due and format_time(taken.next_time) == "2026-01-03T03:00:00Z"


def test_missed_times_give_one_backup_or_are_skipped():
    schedule = CronSchedule.parse("0 3 * * *")
    since, last = t("2026-01-01T00:00:00Z"), t("2026-01-02T03:00:00Z")
    now = t("2026-01-05T10:00:00Z")  # the operator was down for the 3rd, 4th and 5th
    run_once = due_backup(schedule, now, since, last, policy="RunOnce")
    assert run_once.due and format_time(run_once.scheduled_time) == "2026-01-05T03:00:00Z"
    assert run_once.missed == 2
    skip = due_backup(schedule, now, since, last, policy="Skip")
    assert not skip.due and skip.skipped and skip.missed == 3
    on_time = due_backup(schedule, t("2026-01-05T03:02:00Z"), since, last, policy="Skip")
    assert on_time.due and not on_time.skipped


def backup(name, when, phase="Succeeded"):
    return {"name": name, "scheduled_time": when, "phase": phase}


def test_retention_keeps_the_newest_successes_and_recent_failures():
    backups = [
        backup("b1", "2026-01-01T03:00:00Z"),
        backup("b2", "2026-01-02T03:00:00Z", "Failed"),
        backup("b3", "2026-01-03T03:00:00Z"),
        backup("b4", "2026-01-04T03:00:00Z"),
        backup("b5", "2026-01-05T03:00:00Z", "Failed"),
        backup("b6", "2026-01-06T03:00:00Z", "Running"),
    ]
    keep, prune = plan_retention(backups, 2, None, t("2026-01-06T03:01:00Z"))
    assert keep == ["b6", "b5", "b4", "b3"]
    assert prune == ["b2", "b1"]


def test_retention_by_age_never_removes_the_newest_success():
    backups = [backup(f"b{day}", f"2026-01-0{day}T03:00:00Z") for day in range(1, 6)]
    backups.append(backup("b6", "2026-01-06T03:00:00Z", "Failed"))
    keep, prune = plan_retention(backups, 7, parse_age("50h"), t("2026-01-06T04:00:00Z"))
    assert keep == ["b6", "b5", "b4"] and prune == ["b3", "b2", "b1"]
    keep, prune = plan_retention(backups, 7, parse_age("1d"), t("2026-02-01T00:00:00Z"))
    assert keep == ["b5"] and prune == ["b6", "b4", "b3", "b2", "b1"]
    with pytest.raises(ScheduleError, match="such as 720h or 30d"):
        parse_age("2w")


def test_the_module_returns_the_decision():
    result = run_module(
        "simpledb_schedule",
        {
            "schedule": "*/5 * * * *",
            "since": "2026-01-01T00:00:00Z",
            "now": "2026-01-01T00:12:30Z",
            "backups": [
                {"name": "db-20260101-000500", "scheduled_time": "2026-01-01T00:05:00Z", "phase": "Succeeded"}
            ],
            "retention_count": 1,
        },
    )
    assert result["changed"] is False
    assert result["due"] is True and result["scheduled_time"] == "2026-01-01T00:10:00Z"
    assert result["next_time"] == "2026-01-01T00:15:00Z" and result["requeue_after"] == "151s"
    assert result["keep"] == ["db-20260101-000500"] and result["prune"] == []
    refused = run_module("simpledb_schedule", {"schedule": "0 25 * * *", "since": "2026-01-01T00:00:00Z"})
    assert (
        refused["failed"] is True and refused["msg"] == "schedule '0 25 * * *': hour 25 is out of range 0-23"
    )
