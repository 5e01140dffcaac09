"""Backup schedules: cron expressions (UTC) and the retention of scheduled backups.

Cron follows Vixie cron, as Kubernetes CronJobs do: five fields (minute, hour, day of month,
month, day of week), each ``*``, a value, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a
comma-separated list of those; month and weekday names (``jan``, ``mon``); weekday 7 is Sunday
like 0; and the macros ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly``,
``@yearly`` (``@annually``). When both day fields are restricted, a day matches either one.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

UTC = datetime.UTC
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)},
    ),
    ("day of week", 0, 7, {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}),
)
# How far a search for the next or previous run goes: a schedule with no run in 8 years (such
# as 30 February) never runs.
_SEARCH_DAYS = 8 * 366
_AGE = re.compile(r"^([0-9]+)([hd])$")
IN_PROGRESS = ("", "Pending", "Running")


class ScheduleError(ValueError):
    """The schedule or the retention setting is not valid; the message says which part."""


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        text = MACROS.get(expression.strip().lower(), expression.strip())
        parts = text.split()
        if len(parts) != 5:
            raise ScheduleError(
                f"schedule {expression!r} must have five fields (minute hour day-of-month month day-of-week) "
                f"or be one of {', '.join(sorted(MACROS))}"
            )
        values = [_parse_field(expression, part, *field) for part, field in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(0 if d == 7 else d for d in values[4])
        schedule = cls(
            expression=expression,
            minutes=tuple(sorted(values[0])),
            hours=tuple(sorted(values[1])),
            days=frozenset(values[2]),
            months=frozenset(values[3]),
            weekdays=weekdays,
            # Vixie cron: a day field starting with '*' (also '*/2') does not restrict the other.
            any_day=parts[2].startswith("*"),
            any_weekday=parts[4].startswith("*"),
        )
        if schedule.next_after(datetime.datetime(2000, 1, 1, tzinfo=UTC)) is None:
            raise ScheduleError(f"schedule {expression!r} never runs (no such day)")
        return schedule

    def day_matches(self, day: datetime.date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        on_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return on_weekday
        if self.any_weekday:
            return in_month
        return in_month or on_weekday

    def next_after(self, moment: datetime.datetime) -> datetime.datetime | None:
        """The first scheduled time strictly after moment, or None within the search window."""
        start = moment.astimezone(UTC).replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
        day = start.date()
        for _ in range(_SEARCH_DAYS):
            if self.day_matches(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        candidate = datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if candidate >= start:
                            return candidate
            day += datetime.timedelta(days=1)
        return None

    def last_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        """The latest scheduled time at or before moment, or None within the search window."""
        end = moment.astimezone(UTC)
        day = end.date()
        for _ in range(_SEARCH_DAYS):
            if self.day_matches(day):
                for hour in reversed(self.hours):
                    for minute in reversed(self.minutes):
                        candidate = datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if candidate <= end:
                            return candidate
            day -= datetime.timedelta(days=1)
        return None

    def count_between(self, after: datetime.datetime, until: datetime.datetime, limit: int = 1000) -> int:
        """How many scheduled times lie in (after, until), up to limit."""
        count = 0
        moment = self.next_after(after)
        while moment is not None and moment < until and count < limit:
            count += 1
            moment = self.next_after(moment)
        return count


def _parse_field(
    expression: str, text: str, name: str, low: int, high: int, names: dict[str, int]
) -> set[int]:
    def number(token: str) -> int:
        token = token.lower()
        if token in names:
            return names[token]
        if not token.isdigit():
            raise ScheduleError(f"schedule {expression!r}: {token!r} is not a valid {name}")
        value = int(token)
        if not low <= value <= high:
            raise ScheduleError(f"schedule {expression!r}: {name} {value} is out of range {low}-{high}")
        return value

    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        if step_text and (not step_text.isdigit() or int(step_text) == 0):
            raise ScheduleError(
                f"schedule {expression!r}: step {step_text!r} of the {name} must be a positive number"
            )
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first_text, _, last_text = span.partition("-")
            first, last = number(first_text), number(last_text)
            if first > last:
                raise ScheduleError(f"schedule {expression!r}: range {span!r} of the {name} runs backwards")
        else:
            first = number(span)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return values


def parse_time(text: str) -> datetime.datetime:
    """An RFC 3339 time as Kubernetes writes it (``2026-01-01T03:00:00Z``), timezone-aware."""
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ScheduleError(f"{text!r} is not a time such as 2026-01-01T03:00:00Z") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_time(moment: datetime.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_age(text: str) -> datetime.timedelta:
    """``30d`` or ``720h``."""
    match = _AGE.match(text)
    if not match:
        raise ScheduleError(f"maximum age {text!r} must be a number of hours or days, such as 720h or 30d")
    amount = int(match.group(1))
    return datetime.timedelta(days=amount) if match.group(2) == "d" else datetime.timedelta(hours=amount)


@dataclass
class Due:
    """What the schedule asks for now."""

    due: bool
    scheduled_time: datetime.datetime | None
    next_time: datetime.datetime
    missed: int
    skipped: bool


def due_backup(
    schedule: CronSchedule,
    now: datetime.datetime,
    since: datetime.datetime,
    last: datetime.datetime | None,
    policy: str = "RunOnce",
    starting_deadline: datetime.timedelta = datetime.timedelta(minutes=5),
) -> Due:
    """Whether a scheduled backup is due: a scheduled time passed since the last scheduled
    backup (or since ``since``, when the schedule started counting).

    Several scheduled times missed (the operator was down) give one backup, for the latest of
    them; ``missed`` counts the others. With policy ``Skip``, a scheduled time more than
    ``starting_deadline`` in the past is skipped instead, and the next one awaited.
    """
    reference = max(last, since) if last else since
    latest = schedule.last_at_or_before(now)
    next_time = schedule.next_after(now)
    if next_time is None:  # pragma: no cover - parse() refuses schedules that never run
        raise ScheduleError(f"schedule {schedule.expression!r} never runs")
    if latest is None or latest <= reference:
        return Due(False, None, next_time, 0, False)
    missed = schedule.count_between(reference, latest)
    if policy == "Skip" and now - latest > starting_deadline:
        return Due(False, latest, next_time, missed + 1, True)
    return Due(True, latest, next_time, missed, False)


def plan_retention(
    backups: list[dict[str, Any]], count: int, max_age: datetime.timedelta | None, now: datetime.datetime
) -> tuple[list[str], list[str]]:
    """(keep, prune): names of scheduled backups ({name, scheduled_time, phase}), newest first.

    Kept: backups still in progress; the ``count`` newest that Succeeded; Failed ones among the
    ``count`` newest of all (so that recent failures stay visible). Older than ``max_age``:
    pruned, except the newest that Succeeded, which retention never removes.
    """
    ordered = sorted(backups, key=lambda b: parse_time(b["scheduled_time"]), reverse=True)
    succeeded = [b["name"] for b in ordered if b.get("phase") == "Succeeded"]
    newest_success = succeeded[0] if succeeded else None
    recent = {b["name"] for b in ordered[:count]}
    keep, prune = [], []
    for backup in ordered:
        name, phase = backup["name"], backup.get("phase") or ""
        if phase in IN_PROGRESS:
            keep.append(name)
            continue
        kept = name in succeeded[:count] if phase == "Succeeded" else name in recent
        too_old = max_age is not None and now - parse_time(backup["scheduled_time"]) > max_age
        if name == newest_success or (kept and not too_old):
            keep.append(name)
        else:
            prune.append(name)
    return keep, prune
