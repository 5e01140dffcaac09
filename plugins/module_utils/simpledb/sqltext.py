"""Turning table rows into SQL text: the server formats, Python only escapes and frames.

A backup asks the server for a whole chunk of rows in one value:
``GROUP_CONCAT(<row parts> SEPARATOR <separator>)``. Every quoted value is wrapped in a
marker instead of quotes and left unescaped. Python then escapes the whole chunk with a
few C-speed ``bytes.replace`` calls (only for the bytes that occur), cuts it into
statements at the row separators and turns markers and separators into quotes and commas.
Counting both against what the server reports proves the data held neither: a chunk whose
data does is dumped again row by row with the server's QUOTE() instead, so any content is
exact.

Two framings (see Framing): tables without binary columns use U+0001 and U+0002, control
characters that text almost never holds, single bytes that are valid utf8mb4 (so the
result stays utf8mb4 text and one ``bytes.translate`` turns them into quotes and commas).
Binary values hold every byte, so tables with binary columns use four-byte sequences that
contain 0xFE, which UTF-8 text never holds and binary data holds about once in 4 GiB; the
chunk is then a binary string, text values in it are their utf8mb4 bytes.

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
    """The bytes that stand for a chunk's quotes (``mark``) and row separators, and how the
    query spells them. Neither holds a byte that escaping changes, nor a proper prefix
    that is also its own or the other's suffix, so occurrences never overlap and escaping
    neither makes nor breaks one: their counts prove the data held none."""

    mark: bytes
    separator: bytes
    mark_sql: str
    separator_sql: str


TEXT_FRAMING = Framing(b"\x01", b"\x02", "CHAR(1 USING utf8mb4)", "X'02'")
# A bare X'..' literal would be converted to a text value's utf8mb4 (and refused); the CAST
# makes the whole row binary. SEPARATOR takes only a literal, which the binary rows convert.
BINARY_FRAMING = Framing(
    b"\xfe\x01\xa7\xfd", b"\xfe\x02\xa7\xfd", "CAST(X'FE01A7FD' AS BINARY)", "X'FE02A7FD'"
)
_TEXT_TO_SQL = bytes.maketrans(TEXT_FRAMING.mark + TEXT_FRAMING.separator, b"',")
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

    def value_parts(self, framing: Framing | None) -> list[str]:
        """SQL expressions whose concatenation is this column's value as SQL text.

        With ``framing`` None, text is spelled with QUOTE() (escaped by the server) instead
        of markers.
        """
        col = quote_identifier(self.name)
        if self.data_type in _BARE_TYPES:
            return [col]
        if self.data_type == "double":
            return [f"CAST({col} AS CHAR(32))"]
        if self.data_type == "float":
            return [f"CAST(CAST({col} AS DOUBLE) AS CHAR(32))"]
        if self.data_type == "bit":
            mark = "''''" if framing is None else framing.mark_sql
            return ["'b'", mark, f"BIN({col})", mark]
        prefix = ["'_binary '"] if self.binary else []
        if self.charset and self.charset != "utf8mb4":
            col = f"CONVERT({col} USING utf8mb4)"
        if framing is None:
            return [*prefix, f"QUOTE({col})"]
        return [*prefix, framing.mark_sql, col, framing.mark_sql]

    def value_sql(self, framing: Framing | None) -> str:
        """One expression for the value, ``NULL`` spelled out (GROUP_CONCAT skips NULL rows)."""
        parts = self.value_parts(framing)
        if not self.nullable or (framing is None and parts[0].startswith("QUOTE(")):
            return ",".join(parts)  # QUOTE(NULL) is already the word NULL
        expr = parts[0] if len(parts) == 1 else f"CONCAT({','.join(parts)})"
        if framing is None and self.binary:  # QUOTE(NULL) is the word NULL, not to follow _binary
            return f"IF({quote_identifier(self.name)} IS NULL,'NULL',{expr})"
        return f"IFNULL({expr},'NULL')"


def framing_for(columns: list[Column]) -> Framing:
    return BINARY_FRAMING if any(c.binary for c in columns) else TEXT_FRAMING


def row_parts_sql(columns: list[Column], framing: Framing | None) -> str:
    """The argument list of CONCAT/GROUP_CONCAT that spells one row as ``(v1,v2,...)``."""
    parts = ["'('"]
    for index, column in enumerate(columns):
        if index:
            parts.append("','")
        parts.append(column.value_sql(framing))
    parts.append("')'")
    return ",".join(parts)


def chunk_sql(columns: list[Column], from_clause: str, where: str) -> str:
    """One query for a chunk: its rows, its non-NULL values in nullable marked columns, and
    the rows as SQL text in framing_for(columns) (see marked_values())."""
    framing = framing_for(columns)
    nullable = [f"COUNT({quote_identifier(c.name)})" for c in columns if c.marked and c.nullable]
    return (
        f"SELECT COUNT(*), {'+'.join(nullable) or '0'}, "
        f"GROUP_CONCAT({row_parts_sql(columns, framing)} SEPARATOR {framing.separator_sql}) "
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


def chunk_is_framed(raw: bytes, rows: int, marked_values: int, framing: Framing) -> bool:
    """Whether every marker and separator in the chunk is one the query put there."""
    return raw.count(framing.mark) == 2 * marked_values and raw.count(framing.separator) == rows - 1


def format_chunk(
    prefix: bytes, raw: bytes, max_statement_bytes: int, framing: Framing
) -> list[bytes | memoryview]:
    """INSERT statements for a chunk that passed chunk_is_framed(), as pieces to write in
    order. Copying multi-megabyte buffers is what costs here: with the text framing the
    rows stay in one buffer (pieces are views of it); the binary framing's markers shrink
    to one byte, so each statement gets a buffer of its own (there is usually one)."""
    for byte, escaped in _ESCAPES:
        if byte in raw:
            raw = raw.replace(byte, escaped)
    cuts = statement_cuts(raw, max_statement_bytes, framing.separator)
    pieces: list[bytes | memoryview] = []
    start = 0
    if framing is TEXT_FRAMING:
        text = memoryview(raw.translate(_TEXT_TO_SQL))
        for end in cuts:
            pieces += [prefix, text[start:end], b";\n"]
            start = end + 1
        return pieces
    for end in cuts:
        statement = raw if start == 0 and end == len(raw) else raw[start:end]
        pieces += [prefix, statement.replace(framing.mark, b"'").replace(framing.separator, b","), b";\n"]
        start = end + len(framing.separator)
    return pieces


def statement_cuts(escaped: bytes, max_statement_bytes: int, separator: bytes) -> list[int]:
    """Where to end each INSERT so it stays within the bound: offsets of row separators
    (and the end). A single row longer than the bound becomes a statement of its own."""
    cuts = []
    start, size = 0, len(escaped)
    while start < size:
        end = size
        if size - start > max_statement_bytes:
            cut = escaped.rfind(separator, start, start + max_statement_bytes)
            if cut <= start:
                cut = escaped.find(separator, start + max_statement_bytes)
            if cut != -1:
                end = cut
        cuts.append(end)
        start = end + len(separator)
    return cuts


def escape_quoted_row(row: bytes) -> bytes:
    """A row from rows_sql() on one line."""
    for byte, escaped in _QUOTED_ESCAPES:
        if byte in row:
            row = row.replace(byte, escaped)
    return row


def insert_prefix(table: str, columns: list[Column]) -> bytes:
    return f"INSERT INTO {quote_identifier(table)} {column_list_sql(columns)} VALUES ".encode()
