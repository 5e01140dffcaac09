"""Turning table rows into SQL text: the server formats, Python only escapes and quotes.

A backup asks the server for a whole chunk of rows in one value:
``GROUP_CONCAT(<row parts> SEPARATOR ',')``, rows spelled ``(v1,v2,...)``. Every quoted
value is wrapped in a mark instead of quotes and left unescaped. Python then escapes the
whole chunk with a few C-speed ``bytes.replace`` calls (only for the bytes that occur),
cuts it into statements at row boundaries and turns the marks into quotes. Counting the
marks against what the server reports proves the data held none: a chunk whose data does
is dumped again row by row with the server's QUOTE() instead, so any content is exact.

Two marks (see Framing): tables without binary columns use U+0001, a control character
that text almost never holds, a single byte that is valid utf8mb4 (so the result stays
utf8mb4 text and one same-length ``bytes.replace`` turns marks into quotes). Binary values
hold every byte, so tables with binary columns use a four-byte sequence that contains
0xFE, which UTF-8 text never holds and binary data holds about once in 4 GiB; the chunk is
then a binary string, text values in it are their utf8mb4 bytes.

How each type is written (every one round-trips exactly):
- integers, DECIMAL, YEAR: bare digits.
- DOUBLE: the server's shortest text that reads back to the same bits; FLOAT goes through
  DOUBLE (FLOAT text has only 6 digits). Both through CAST(... AS CHAR(32)), because
  CONCAT/IFNULL would cut ``2.2250738585072014e-308`` to the type's display width.
- text, ENUM, SET, JSON, temporal types, INET/UUID: quoted text, converted to utf8mb4.
- binary strings, BLOBs and geometry: ``_binary '<raw bytes>'``, escaped as
  mysql_real_escape_string does (backslash, quote, NUL, LF, CR, Ctrl-Z); every other byte,
  valid UTF-8 or not, is written as it is (mariadb-dump's way, a third the size of hex).
  The introducer makes the literal binary whatever the connection's character set.
- BIT: ``b'<binary digits>'``.
TIMESTAMP values are written in UTC: the dump session and the file both set time_zone.
Escaped text never holds a raw line break, so every INSERT is one line of the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible.module_utils.simpledb.connection import quote_identifier


@dataclass(frozen=True)
class Framing:
    """The bytes that stand for a chunk's quotes. The mark holds no byte that escaping
    changes and no proper prefix that is also its suffix, so occurrences never overlap and
    escaping neither makes nor breaks one: their count proves the data held none."""

    mark: bytes


TEXT_FRAMING = Framing(b"\x01")
BINARY_FRAMING = Framing(b"\xfe\x01\xa7\xfd")
# An SQL expression, or constant bytes (spelled as one literal with its neighbours).
Part = str | bytes
# Between two rows of a chunk, and only there outside the quoted values.
_ROW_BOUNDARY = b"),("
# Escapes the mariadb client and server both read back; backslash first, so the other
# escapes' backslashes are not doubled.
_ESCAPES = (
    (b"\\", b"\\\\"),
    (b"'", b"\\'"),
    (b"\0", b"\\0"),
    (b"\n", b"\\n"),
    (b"\r", b"\\r"),
    (b"\x1a", b"\\Z"),
)
# In QUOTE() output only raw line breaks are left to escape (the file has one INSERT a line).
_QUOTED_ESCAPES = ((b"\n", b"\\n"), (b"\r", b"\\r"))

_BARE_TYPES = {"tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "year"}
_BINARY_TYPES = {
    "binary",
    "varbinary",
    "tinyblob",
    "blob",
    "mediumblob",
    "longblob",
    "geometry",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
}
_UNQUOTED_TYPES = {*_BARE_TYPES, "double", "float"}


@dataclass(frozen=True)
class Column:
    """A column whose values go into the dump (generated columns never do)."""

    name: str
    data_type: str
    nullable: bool
    charset: str | None = None

    @property
    def marked(self) -> bool:
        """Whether the value is wrapped in markers (and so counted in the marker check)."""
        return self.data_type not in _UNQUOTED_TYPES

    @property
    def binary(self) -> bool:
        return self.data_type in _BINARY_TYPES

    def value_parts(self, framing: Framing | None) -> list[Part]:
        """Constant bytes and SQL expressions whose concatenation is this column's value as
        SQL text. With ``framing`` None, text is spelled with QUOTE() (escaped by the
        server) instead of marks."""
        col = quote_identifier(self.name)
        if self.data_type in _BARE_TYPES:
            return [col]
        if self.data_type == "double":
            return [f"CAST({col} AS CHAR(32))"]
        if self.data_type == "float":
            return [f"CAST(CAST({col} AS DOUBLE) AS CHAR(32))"]
        mark = b"'" if framing is None else framing.mark
        if self.data_type == "bit":
            return [b"b" + mark, f"BIN({col})", mark]
        prefix = b"_binary " if self.binary else b""
        if self.charset and self.charset != "utf8mb4":
            col = f"CONVERT({col} USING utf8mb4)"
        if framing is None:
            return [prefix, f"QUOTE({col})"] if prefix else [f"QUOTE({col})"]
        return [prefix + mark, col, mark]

    def value_sql(self, framing: Framing | None) -> list[Part]:
        """The value's arguments of CONCAT or GROUP_CONCAT, ``NULL`` spelled out (both skip
        a row with a NULL argument)."""
        parts = self.value_parts(framing)
        quoted = len(parts) == 1 and isinstance(parts[0], str) and parts[0].startswith("QUOTE(")
        if not self.nullable or quoted:
            return parts  # QUOTE(NULL) is already the word NULL
        charset = _charset(framing)
        expr = parts[0] if len(parts) == 1 else f"CONCAT({_arguments(parts, charset)})"
        if framing is None and self.binary:  # QUOTE(NULL) is the word NULL, not to follow _binary
            return [f"IF({quote_identifier(self.name)} IS NULL,'NULL',{expr})"]
        return [f"IFNULL({expr},'NULL')"]


def framing_for(columns: list[Column]) -> Framing:
    return BINARY_FRAMING if any(c.binary for c in columns) else TEXT_FRAMING


def row_parts_sql(columns: list[Column], framing: Framing | None) -> str:
    """The argument list of CONCAT/GROUP_CONCAT that spells one row as ``(v1,v2,...)``."""
    parts: list[Part] = [b"("]
    for index, column in enumerate(columns):
        if index:
            parts.append(b",")
        parts += column.value_sql(framing)
    parts.append(b")")
    return _arguments(parts, _charset(framing))


def _charset(framing: Framing | None) -> str:
    return "binary" if framing is BINARY_FRAMING else "utf8mb4"


def _arguments(parts: list[Part], charset: str) -> str:
    """SQL arguments for parts, adjacent constants merged into one literal: the server
    evaluates every argument for every row, so fewer arguments cost less (a quarter less
    server CPU for a sysbench table than with the marks as separate CHAR() calls)."""
    merged: list[Part] = []
    for part in parts:
        if isinstance(part, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += part
        else:
            merged.append(part)
    return ",".join(part if isinstance(part, str) else _literal(part, charset) for part in merged)


def _literal(constant: bytes, charset: str) -> str:
    if all(0x20 <= byte < 0x7F for byte in constant) and b"'" not in constant and b"\\" not in constant:
        return f"'{constant.decode()}'"
    if charset == "binary":
        # An introducer would leave the literal coercible to a text column's utf8mb4 (and
        # the 0xFE refused); the CAST makes the whole row binary.
        return f"CAST(X'{constant.hex().upper()}' AS BINARY)"
    return f"_{charset} X'{constant.hex().upper()}'"


def chunk_sql(columns: list[Column], from_clause: str, where: str) -> str:
    """One query for a chunk: its rows, its non-NULL values in nullable marked columns, and
    the rows as SQL text in framing_for(columns) (see marked_values())."""
    nullable = [f"COUNT({quote_identifier(c.name)})" for c in columns if c.marked and c.nullable]
    return (
        f"SELECT COUNT(*), {'+'.join(nullable) or '0'}, "
        f"GROUP_CONCAT({row_parts_sql(columns, framing_for(columns))} SEPARATOR ',') "
        f"FROM {from_clause} WHERE {where}"
    )


def marked_values(columns: list[Column], rows: int, nullable_values: int) -> int:
    """How many values of a chunk carry markers, from chunk_sql()'s two counts."""
    return rows * sum(1 for c in columns if c.marked and not c.nullable) + nullable_values


def rows_sql(columns: list[Column], from_clause: str, where: str | None) -> str:
    """One row per result row, escaped by the server: the path for any table and any data."""
    return f"SELECT CONCAT({row_parts_sql(columns, None)}) FROM {from_clause}" + (
        f" WHERE {where}" if where else ""
    )


def column_list_sql(columns: list[Column]) -> str:
    return "(" + ",".join(quote_identifier(c.name) for c in columns) + ")"


def format_chunk(
    prefix: bytes, raw: bytes, marks: int, max_statement_bytes: int, framing: Framing
) -> list[bytes | memoryview] | None:
    """INSERT statements for a chunk from chunk_sql(), as pieces to write in order; None
    when the data itself holds the mark (``marks`` is how many the query put in: twice
    marked_values()), so those rows must be dumped another way.

    What costs here is passes over multi-megabyte buffers: the escapes (memchr-fast when a
    byte does not occur), one count of the marks and one replace. With the text mark the
    replace keeps every offset, so the statements are views of one buffer."""
    for byte, escaped in _ESCAPES:
        if byte in raw:
            raw = raw.replace(byte, escaped)
    spans = statement_spans(raw, max_statement_bytes, framing.mark)
    if sum(span_marks for _, _, span_marks in spans) != marks:
        return None
    pieces: list[bytes | memoryview] = []
    if framing is TEXT_FRAMING:
        text = memoryview(raw.replace(framing.mark, b"'"))
        for start, end, _ in spans:
            pieces += [prefix, text[start:end], b";\n"]
        return pieces
    for start, end, _ in spans:
        pieces += [prefix, raw[start:end].replace(framing.mark, b"'"), b";\n"]
    return pieces


def statement_spans(raw: bytes, max_statement_bytes: int, mark: bytes) -> list[tuple[int, int, int]]:
    """``(start, end, marks)`` of each INSERT's rows in an escaped chunk, ``marks`` counting
    the marks in ``raw[start:end]``. Statements end at row boundaries (``),(`` with an even
    number of marks before it, so outside any quoted value) and stay within the bound; a
    single row longer than the bound becomes a statement of its own."""
    spans = []
    start, size = 0, len(raw)
    while start < size:
        end, marks = size, None
        if size - start > max_statement_bytes:
            boundary = _boundary_before(raw, start, start + max_statement_bytes, mark) or _boundary_after(
                raw, start, start + max_statement_bytes, mark
            )
            if boundary is not None:
                end, marks = boundary
        if marks is None:
            marks = raw.count(mark, start, end)
        spans.append((start, end, marks))
        start = end + 1  # past the comma between the rows
    return spans


def _boundary_before(raw: bytes, start: int, limit: int, mark: bytes) -> tuple[int, int] | None:
    """The last row boundary in ``raw[start:limit]``: (the end of the row before it, the
    marks from start to there). Each mark is counted once, however many candidates fall
    inside a quoted value."""
    counted_to = limit
    marks = raw.count(mark, start, counted_to)
    search_end = limit + 2  # a row may end at limit - 1
    while (found := raw.rfind(_ROW_BOUNDARY, start, search_end)) != -1:
        marks -= raw.count(mark, found + 1, counted_to)
        counted_to, search_end = found + 1, found + 2
        if marks % 2 == 0:
            return found + 1, marks
    return None


def _boundary_after(raw: bytes, start: int, limit: int, mark: bytes) -> tuple[int, int] | None:
    """The first row boundary at or after ``limit`` (the row from start is longer than the
    bound), as _boundary_before() reports it; None when that row is the chunk's last."""
    counted_to = limit
    marks = raw.count(mark, start, counted_to)
    while (found := raw.find(_ROW_BOUNDARY, counted_to)) != -1:
        marks += raw.count(mark, counted_to, found + 1)
        counted_to = found + 1
        if marks % 2 == 0:
            return found + 1, marks
    return None


def escape_quoted_row(row: bytes) -> bytes:
    """A row from rows_sql() on one line."""
    for byte, escaped in _QUOTED_ESCAPES:
        if byte in row:
            row = row.replace(byte, escaped)
    return row


def insert_prefix(table: str, columns: list[Column]) -> bytes:
    return f"INSERT INTO {quote_identifier(table)} {column_list_sql(columns)} VALUES ".encode()
