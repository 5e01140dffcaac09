"""A chunk of server-formatted rows becomes INSERT statements: cut only between rows, marks
counted, anything the marks cannot frame refused (the dump then takes the row-by-row path)."""

from __future__ import annotations

import pytest
from ansible.module_utils.simpledb.sqltext import (
    BINARY_FRAMING,
    TEXT_FRAMING,
    format_chunk,
    statement_spans,
)

PREFIX = b"INSERT INTO `t` (`id`,`v`) VALUES "


def chunk(values: list[bytes], mark: bytes) -> tuple[bytes, int]:
    """What the server returns for rows (n, v) and how many marks the query put in."""
    rows = [b"(%d,%s%s%s)" % (n, mark, v, mark) for n, v in enumerate(values)]
    return b",".join(rows), 2 * len(values)


def statements(pieces: list) -> list[bytes]:
    text = b"".join(bytes(piece) for piece in pieces)
    assert text.endswith(b";\n")
    found = text[: -len(b";\n")].split(b";\n")
    assert all(s.startswith(PREFIX) for s in found)
    return [s[len(PREFIX) :] for s in found]


def expected_rows(values: list[bytes]) -> list[bytes]:
    escaped = [v.replace(b"\\", b"\\\\").replace(b"'", b"\\'").replace(b"\n", b"\\n") for v in values]
    return [b"(%d,'%s')" % (n, v) for n, v in enumerate(escaped)]


@pytest.mark.parametrize("framing", [TEXT_FRAMING, BINARY_FRAMING], ids=["text", "binary"])
def test_statements_end_between_rows_even_where_a_value_looks_like_a_row_boundary(framing):
    # Values holding "),(" (and quotes, so escaping moves them) sit wherever a cut could fall.
    values = [b"x" * (n % 7) + b"'),(" * (n % 5) + b"\n),(9,'" for n in range(400)]
    raw, marks = chunk(values, framing.mark)
    pieces = format_chunk(PREFIX, raw, marks, 1000, framing)

    found = statements(pieces)
    assert len(found) > 10
    assert all(len(s) <= 1000 for s in found)
    rows = expected_rows(values)
    # Every statement is a run of whole rows, in order, and together they are all the rows.
    at = 0
    for statement in found:
        count = next(k for k in range(1, len(rows) + 1) if b",".join(rows[at : at + k]) == statement)
        at += count
    assert at == len(rows)


def test_a_row_longer_than_the_bound_is_a_statement_of_its_own():
    values = [b"a", b"),(" * 500, b"b", b"c"]
    raw, marks = chunk(values, TEXT_FRAMING.mark)
    found = statements(format_chunk(PREFIX, raw, marks, 100, TEXT_FRAMING))
    assert found == [b"(0,'a')", b"(1,'" + b"),(" * 500 + b"')", b"(2,'b'),(3,'c')"]


def test_spans_count_every_mark_once():
    values = [b"),(" * 40, b"plain", b"),(x"] * 30
    raw, marks = chunk(values, TEXT_FRAMING.mark)
    spans = statement_spans(raw, 300, TEXT_FRAMING.mark)
    assert sum(count for _, _, count in spans) == marks == raw.count(TEXT_FRAMING.mark)
    assert [start for start, _, _ in spans][1:] == [end + 1 for _, end, _ in spans][:-1]
    assert spans[-1][1] == len(raw)


@pytest.mark.parametrize("framing", [TEXT_FRAMING, BINARY_FRAMING], ids=["text", "binary"])
def test_data_holding_the_mark_is_refused(framing):
    raw, marks = chunk([b"ok", b"has " + framing.mark + b" inside", b"ok"], framing.mark)
    assert format_chunk(PREFIX, raw, marks, 1 << 20, framing) is None
    assert format_chunk(PREFIX, raw, marks, 20, framing) is None


def test_text_and_binary_framing_write_the_same_sql():
    values = [b"it's", b"back\\slash", b"line\nbreak", b"\x00\x1a\r"]
    text = format_chunk(PREFIX, *chunk(values, TEXT_FRAMING.mark), 1 << 20, TEXT_FRAMING)
    binary = format_chunk(PREFIX, *chunk(values, BINARY_FRAMING.mark), 1 << 20, BINARY_FRAMING)
    assert b"".join(map(bytes, text)) == b"".join(map(bytes, binary))
    assert statements(text) == [b"(0,'it\\'s'),(1,'back\\\\slash'),(2,'line\\nbreak'),(3,'\\0\\Z\\r')"]
