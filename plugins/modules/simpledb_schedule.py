#!/usr/bin/python
"""Ansible module: when the next scheduled backup is due, and which scheduled backups to prune."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: simpledb_schedule
short_description: Decide when a scheduled backup is due and which ones retention removes
description:
  - Evaluates a cron schedule (UTC) against the current time and the scheduled backups that
    exist, and says whether a backup is due now, for which scheduled time, when the next one is
    (with the wait as a duration for M(requeue_after)), and which scheduled backups the
    retention settings remove.
  - "Cron as Kubernetes CronJobs read it: five fields (minute, hour, day of month, month, day of
    week) with C(*), values, ranges, steps, lists and names, or a macro (C(@hourly), C(@daily),
    C(@weekly), C(@monthly), C(@yearly))."
  - A backup is due when a scheduled time has passed since the latest scheduled backup (or
    since O(since) when there is none). If several passed while the operator was down, one
    backup is due, for the latest of them (O(missed_schedule_policy=RunOnce)), or none is and
    the next scheduled time is awaited (O(missed_schedule_policy=Skip)) once the latest is more
    than O(starting_deadline) seconds late.
  - Computes only; changes nothing.
version_added: "0.1.0"
author: SimpleDB operator authors
options:
  schedule:
    description: Cron schedule in UTC.
    type: str
    required: true
  since:
    description:
      - When the schedule started counting (RFC 3339), for example the SimpleDB's creation time.
        Scheduled times before it are not owed a backup.
    type: str
    required: true
  now:
    description: The current time (RFC 3339). Default the system clock.
    type: str
  backups:
    description: The scheduled backups that exist.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the SimpleDBBackup.
        type: str
        required: true
      scheduled_time:
        description: The scheduled time it was taken for (RFC 3339).
        type: str
        required: true
      phase:
        description: Its phase (C(Pending), C(Running), C(Succeeded), C(Failed)); empty when new.
        type: str
        default: ""
  missed_schedule_policy:
    description: What to do about scheduled times missed while the operator was down.
    type: str
    choices: [RunOnce, Skip]
    default: RunOnce
  starting_deadline:
    description: With O(missed_schedule_policy=Skip), seconds late after which a scheduled time is skipped.
    type: int
    default: 300
  retention_count:
    description: How many successful scheduled backups to keep.
    type: int
    default: 7
  retention_max_age:
    description:
      - Remove scheduled backups older than this (C(720h), C(30d)); the newest successful one
        is always kept.
    type: str
notes:
  - Check mode returns the same result.
seealso:
  - module: requeue_after
"""

EXAMPLES = r"""
- name: Decide on the scheduled backups
  simpledb_schedule:
    schedule: "0 3 * * *"
    since: "{{ simpledb.metadata.creationTimestamp }}"
    backups:
      - name: orders-20260101-030000
        scheduled_time: "2026-01-01T03:00:00Z"
        phase: Succeeded
    retention_count: 7
    retention_max_age: 30d
  register: schedule

- name: Come back when the next backup is due
  requeue_after:
    time: "{{ schedule.requeue_after }}"
"""

RETURN = r"""
due:
  description: Whether a backup should be taken now.
  returned: success
  type: bool
scheduled_time:
  description: The scheduled time the due (or skipped) backup is for; null when none passed.
  returned: success
  type: str
  sample: "2026-01-02T03:00:00Z"
next_time:
  description: The next scheduled time after now.
  returned: success
  type: str
  sample: "2026-01-03T03:00:00Z"
requeue_after:
  description: Seconds until O(next_time) (rounded up, plus one), as a duration for M(requeue_after).
  returned: success
  type: str
  sample: 86341s
missed:
  description: Scheduled times that passed without a backup and will not get one.
  returned: success
  type: int
skipped:
  description: Whether the latest scheduled time was skipped (O(missed_schedule_policy=Skip)).
  returned: success
  type: bool
keep:
  description: Names of the scheduled backups retention keeps, newest first.
  returned: success
  type: list
  elements: str
prune:
  description: Names of the scheduled backups retention removes.
  returned: success
  type: list
  elements: str
"""

import datetime
import math

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.simpledb.schedule import (
    CronSchedule,
    ScheduleError,
    due_backup,
    format_time,
    parse_age,
    parse_time,
    plan_retention,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "schedule": {"type": "str", "required": True},
            "since": {"type": "str", "required": True},
            "now": {"type": "str"},
            "backups": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "scheduled_time": {"type": "str", "required": True},
                    "phase": {"type": "str", "default": ""},
                },
            },
            "missed_schedule_policy": {"type": "str", "choices": ["RunOnce", "Skip"], "default": "RunOnce"},
            "starting_deadline": {"type": "int", "default": 300},
            "retention_count": {"type": "int", "default": 7},
            "retention_max_age": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["retention_count"] < 1:
        module.fail_json(msg="retention_count must be at least 1")
    try:
        schedule = CronSchedule.parse(params["schedule"])
        now = parse_time(params["now"]) if params["now"] else datetime.datetime.now(datetime.UTC)
        backups = params["backups"]
        times = [parse_time(b["scheduled_time"]) for b in backups]
        due = due_backup(
            schedule,
            now,
            since=parse_time(params["since"]),
            last=max(times) if times else None,
            policy=params["missed_schedule_policy"],
            starting_deadline=datetime.timedelta(seconds=params["starting_deadline"]),
        )
        max_age = parse_age(params["retention_max_age"]) if params["retention_max_age"] else None
        keep, prune = plan_retention(backups, params["retention_count"], max_age, now)
    except ScheduleError as exc:
        module.fail_json(msg=str(exc))
    wait = math.ceil((due.next_time - now).total_seconds()) + 1
    module.exit_json(
        changed=False,
        due=due.due,
        scheduled_time=format_time(due.scheduled_time) if due.scheduled_time else None,
        next_time=format_time(due.next_time),
        requeue_after=f"{wait}s",
        missed=due.missed,
        skipped=due.skipped,
        keep=keep,
        prune=prune,
    )


if __name__ == "__main__":
    main()
