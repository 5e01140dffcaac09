"""Go's duration syntax and os.Expand, with expected values produced by the Go standard library."""

import pytest

from testbed.runner.goformat import DurationError, expand, format_duration, parse_duration

# (input, nanoseconds, Duration.String()) from Go 1.26 time.ParseDuration.
DURATIONS = [
    ("0", 0, "0s"),
    ("0s", 0, "0s"),
    ("5s", 5_000_000_000, "5s"),
    ("+5s", 5_000_000_000, "5s"),
    ("-5s", -5_000_000_000, "-5s"),
    ("1m", 60_000_000_000, "1m0s"),
    ("1h30m", 5_400_000_000_000, "1h30m0s"),
    ("1.5h", 5_400_000_000_000, "1h30m0s"),
    ("10h", 36_000_000_000_000, "10h0m0s"),
    ("500ms", 500_000_000, "500ms"),
    ("1us", 1_000, "1µs"),
    ("1µs", 1_000, "1µs"),
    ("1μs", 1_000, "1µs"),
    ("1ns", 1, "1ns"),
    ("1.000000001s", 1_000_000_001, "1.000000001s"),
    (".5s", 500_000_000, "500ms"),
    ("5.s", 5_000_000_000, "5s"),
    ("3m20.5s", 200_500_000_000, "3m20.5s"),
    ("72h3m0.5s", 259_380_500_000_000, "72h3m0.5s"),
    ("0.1ns", 0, "0s"),
    ("9223372036854775807ns", 9_223_372_036_854_775_807, "2562047h47m16.854775807s"),
    ("-9223372036854775808ns", -9_223_372_036_854_775_808, "-2562047h47m16.854775808s"),
]

# Go's error messages, verbatim.
DURATION_ERRORS = [
    ("", 'time: invalid duration ""'),
    ("5", 'time: missing unit in duration "5"'),
    ("s", 'time: invalid duration "s"'),
    (".s", 'time: invalid duration ".s"'),
    ("1d", 'time: unknown unit "d" in duration "1d"'),
    ("1h1", 'time: missing unit in duration "1h1"'),
    ("1e3s", 'time: unknown unit "e" in duration "1e3s"'),
    (" 5s", 'time: invalid duration " 5s"'),
    ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
    ("2562048h", 'time: invalid duration "2562048h"'),
]


@pytest.mark.parametrize(("text", "ns", "string"), DURATIONS)
def test_parse_and_format_duration_like_go(text, ns, string):
    assert parse_duration(text) == ns
    assert format_duration(ns) == string


@pytest.mark.parametrize(("text", "message"), DURATION_ERRORS)
def test_duration_errors_like_go(text, message):
    with pytest.raises(DurationError) as excinfo:
        parse_duration(text)
    assert str(excinfo.value) == message


# os.Expand with the operator's mapping (undefined variables stay as ${NAME}); SET_A=aval,
# SET_EMPTY="" and the rest unset. Expected values from Go.
EXPANSIONS = [
    ("${SET_A}", "aval"),
    ("$SET_A", "aval"),
    ("x${SET_A}y", "xavaly"),
    ("$SET_A$SET_A", "avalaval"),
    ("${UNSET_VAR}", "${UNSET_VAR}"),
    ("$UNSET_VAR", "${UNSET_VAR}"),
    ("$a-b", "${a}-b"),
    ("${SET_EMPTY}", ""),
    ("$SET_EMPTY.", "."),
    ("$$", "${$}"),
    ("$1a", "${1}a"),
    ("${}", ""),
    ("${", ""),
    ("${SET_A", "SET_A"),
    ("${ab}}", "${ab}}"),
    ("a$", "a$"),
    ("price: 5$", "price: 5$"),
    ("{{ ansible_operator_meta }}", "{{ ansible_operator_meta }}"),
]


@pytest.mark.parametrize(("text", "expected"), EXPANSIONS)
def test_expand_like_go_os_expand(text, expected):
    env = {"SET_A": "aval", "SET_EMPTY": ""}
    assert expand(text, lambda name: env.get(name, "${" + name + "}")) == expected
