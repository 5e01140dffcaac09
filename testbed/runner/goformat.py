"""Go's text formats the operator's inputs use: `time.ParseDuration`, `Duration.String`, `os.Expand`.

watches.yaml, the flags and the CR annotations are parsed by the Go standard library in the real
operator, so the local runner accepts and rejects exactly the same strings.
"""

from __future__ import annotations

from collections.abc import Callable

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # micro sign
    "\u03bcs": MICROSECOND,  # Greek mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
# Go checks against 1<<63 while parsing (the magnitude of the most negative duration).
_LIMIT = 1 << 63


class DurationError(ValueError):
    """The same message as Go's `time.ParseDuration` error."""


def _quote(s: str) -> str:
    return '"' + s + '"'


def parse_duration(text: str) -> int:
    """Go `time.ParseDuration`: "1h30m", "500ms", "0" ... Returns nanoseconds."""
    orig = text
    s = text
    negative = False
    if s and s[0] in "+-":
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise DurationError(f"time: invalid duration {_quote(orig)}")
    total = 0
    while s:
        if not (s[0] == "." or _is_digit(s[0])):
            raise DurationError(f"time: invalid duration {_quote(orig)}")
        i = 0
        while i < len(s) and _is_digit(s[i]):
            i += 1
        whole_digits, s = s[:i], s[i:]
        frac_digits = ""
        if s.startswith("."):
            s = s[1:]
            j = 0
            while j < len(s) and _is_digit(s[j]):
                j += 1
            frac_digits, s = s[:j], s[j:]
        if not whole_digits and not frac_digits:
            raise DurationError(f"time: invalid duration {_quote(orig)}")
        k = 0
        while k < len(s) and s[k] != "." and not _is_digit(s[k]):
            k += 1
        if k == 0:
            raise DurationError(f"time: missing unit in duration {_quote(orig)}")
        unit_name, s = s[:k], s[k:]
        if unit_name not in _UNITS:
            raise DurationError(f"time: unknown unit {_quote(unit_name)} in duration {_quote(orig)}")
        unit = _UNITS[unit_name]
        whole = int(whole_digits or "0")
        if whole > _LIMIT // unit:
            raise DurationError(f"time: invalid duration {_quote(orig)}")
        value = whole * unit
        if frac_digits:
            fraction, scale = _leading_fraction(frac_digits)
            # Go computes this part in float64; so does this port.
            value += int(float(fraction) * (float(unit) / scale))
            if value > _LIMIT:
                raise DurationError(f"time: invalid duration {_quote(orig)}")
        total += value
        if total > _LIMIT:
            raise DurationError(f"time: invalid duration {_quote(orig)}")
    if negative:
        return -total
    if total > _LIMIT - 1:
        raise DurationError(f"time: invalid duration {_quote(orig)}")
    return total


def _is_digit(c: str) -> bool:
    return "0" <= c <= "9"


def _leading_fraction(digits: str) -> tuple[int, float]:
    """Go `leadingFraction`: digits past int64 precision are dropped."""
    value = 0
    scale = 1.0
    for c in digits:
        candidate = value * 10 + int(c)
        if candidate > _LIMIT:
            break
        value = candidate
        scale *= 10
    return value, scale


def format_duration(ns: int) -> str:
    """Go `time.Duration.String`: 0s, 1.5s, 2m0s, 10h0m0s, 500ms."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < SECOND:
        for unit, name in ((MILLISECOND, "ms"), (MICROSECOND, "\u00b5s"), (NANOSECOND, "ns")):
            if u >= unit:
                return sign + _fraction(u, unit) + name
    hours, rest = divmod(u, HOUR)
    minutes, rest = divmod(rest, MINUTE)
    seconds = _fraction(rest, SECOND) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")


def _is_shell_special(c: str) -> bool:
    return c in "*#$@!?-0123456789"


def _is_alnum(c: str) -> bool:
    return c == "_" or (c.isascii() and c.isalnum())


def _shell_name(s: str) -> tuple[str, int]:
    if s[0] == "{":
        if len(s) > 2 and _is_shell_special(s[1]) and s[2] == "}":
            return s[1:2], 3
        for i in range(1, len(s)):
            if s[i] == "}":
                if i == 1:
                    return "", 2  # "${}": bad syntax, eaten
                return s[1:i], i + 1
        return "", 1  # "${" without "}": bad syntax, eaten
    if _is_shell_special(s[0]):
        return s[0:1], 1
    i = 0
    while i < len(s) and _is_alnum(s[i]):
        i += 1
    return s[:i], i


def expand(s: str, mapping: Callable[[str], str]) -> str:
    """Go `os.Expand`: replaces `${var}` and `$var` with mapping(var)."""
    out: list[str] = []
    i = 0
    j = 0
    while j < len(s):
        if s[j] == "$" and j + 1 < len(s):
            out.append(s[i:j])
            name, width = _shell_name(s[j + 1 :])
            if name == "" and width > 0:
                pass
            elif name == "":
                out.append("$")
            else:
                out.append(mapping(name))
            j += width
            i = j + 1
        j += 1
    if not out:
        return s
    return "".join(out) + s[i:]
