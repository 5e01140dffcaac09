"""Turning table rows into SQL text: the server formats, Python only escapes and frames.

A backup asks the server for a whole chunk of rows in one value:
``GROUP_CONCAT(<row parts> SEPARATOR 0x02)``. Every quoted value is wrapped in U+0001
instead of quotes and left unescaped. Both are control characters that text almost never
holds, single bytes that are valid utf8mb4 (so the server converts nothing, and a
binary marker would make it convert or reject). Python then escapes the whole chunk with a
few C-speed ``bytes.replace`` calls (only for the bytes that occur), cuts it into
statements at the row separators and turns markers and separators into quotes and commas
with one ``bytes.translate``. Counting both against what the server reports proves the
data held neither: a chunk whose data does is dumped again row by row with the server's
QUOTE() instead, so any content is exact.

How each type is written (every one round-trips exactly):
- integers, DECIMAL, YEAR: bare digits.
- DOUBLE: the server's shortest text that reads back to the same bits; FLOAT goes through
  DOUBLE (FLOAT text has only 6 digits). Both through CAST(... AS CHAR(32)), because
  CONCAT/IFNULL would cut ``2.2250738585072014e-308`` to the type's display width.
- text, ENUM, SET, JSON, temporal types, INET/UUID: quoted text, converted to utf8mb4.
- binary strings, BLOBs and geometry: ``X'<hex>'``.
- BIT: ``b'<binary digits>'``.
TIMESTAMP values are written in UTC: the dump session and the file both set time_zone.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible.module_utils.simpledb.connection import quote_identifier

MARK = b"\x01"
ROW_SEPARATOR = b"\x02"
_MARK_SQL = "CHAR(1 USING utf8mb4)"
ROW_SEPARATOR_SQL = "X'02'"
_TO_SQL = bytes.maketrans(MARK + ROW_SEPARATOR, b"',")
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
_HEX_TYPES = {
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

    def value_parts(self, server_quoted: bool = False) -> list[str]:
        """SQL expressions whose concatenation is this column's value as SQL text.

        ``server_quoted`` spells text with QUOTE() (escaped by the server) instead of markers.
        """
        col = quote_identifier(self.name)
        if self.data_type in _BARE_TYPES:
            return [col]
        if self.data_type == "double":
            return [f"CAST({col} AS CHAR(32))"]
        if self.data_type == "float":
            return [f"CAST(CAST({col} AS DOUBLE) AS CHAR(32))"]
        mark = "''''" if server_quoted else _MARK_SQL
        if self.data_type == "bit":
            return ["'b'", mark, f"BIN({col})", mark]
        if self.data_type in _HEX_TYPES:
            return ["'X'", mark, f"HEX({col})", mark]
        if self.charset and self.charset != "utf8mb4":
            col = f"CONVERT({col} USING utf8mb4)"
        if server_quoted:
            return [f"QUOTE({col})"]
        return [_MARK_SQL, col, _MARK_SQL]

    def value_sql(self, server_quoted: bool = False) -> str:
        """One expression for the value, ``NULL`` spelled out (GROUP_CONCAT skips NULL rows)."""
        parts = self.value_parts(server_quoted)
        if not self.nullable or (server_quoted and parts[0].startswith("QUOTE(")):
            return ",".join(parts)  # QUOTE(NULL) is already the word NULL
        expr = parts[0] if len(parts) == 1 else f"CONCAT({','.join(parts)})"
        return f"IFNULL({expr},'NULL')"


def row_parts_sql(columns: list[Column], server_quoted: bool = False) -> str:
    """The argument list of CONCAT/GROUP_CONCAT that spells one row as ``(v1,v2,...)``."""
    parts = ["'('"]
    for index, column in enumerate(columns):
        if index:
            parts.append("','")
        parts.append(column.value_sql(server_quoted))
    parts.append("')'")
    return ",".join(parts)


def chunk_sql(columns: list[Column], from_clause: str, where: str) -> str:
    """One query for a chunk: its rows, its non-NULL values in nullable marked columns, and
    the rows as SQL text (see marked_values())."""
    nullable = [f"COUNT({quote_identifier(c.name)})" for c in columns if c.marked and c.nullable]
    return (
        f"SELECT COUNT(*), {'+'.join(nullable) or '0'}, "
        f"GROUP_CONCAT({row_parts_sql(columns)} SEPARATOR {ROW_SEPARATOR_SQL}) "
        f"FROM {from_clause} WHERE {where}"
    )


def marked_values(columns: list[Column], rows: int, nullable_values: int) -> int:
    """How many values of a chunk carry markers, from chunk_sql()'s two counts."""
    return rows * sum(1 for c in columns if c.marked and not c.nullable) + nullable_values


def rows_sql(columns: list[Column], from_clause: str, where: str | None) -> str:
    """One row per result row, escaped by the server: the path for any table and any data."""
    return f"SELECT CONCAT({row_parts_sql(columns, server_quoted=True)}) FROM {from_clause}" + (
        f" WHERE {where}" if where else ""
    )


def column_list_sql(columns: list[Column]) -> str:
    return "(" + ",".join(quote_identifier(c.name) for c in columns) + ")"


def chunk_is_framed(raw: bytes, rows: int, marked_values: int) -> bool:
    """Whether every marker and separator in the chunk is one the query put there."""
    return raw.count(MARK) == 2 * marked_values and raw.count(ROW_SEPARATOR) == rows - 1


def format_chunk(prefix: bytes, raw: bytes, max_statement_bytes: int) -> list[bytes | memoryview]:
    """INSERT statements for a chunk that passed chunk_is_framed(), as pieces to write in
    order. The rows stay in one buffer (pieces are views of it): copying multi-megabyte
    buffers is what costs here."""
    for byte, escaped in _ESCAPES:
        if byte in raw:
            raw = raw.replace(byte, escaped)
    cuts = statement_cuts(raw, max_statement_bytes)
    text = memoryview(raw.translate(_TO_SQL))
    pieces: list[bytes | memoryview] = []
    start = 0
    for end in cuts:
        pieces += [prefix, text[start:end], b";\n"]
        start = end + 1
    return pieces


def statement_cuts(escaped: bytes, max_statement_bytes: int) -> list[int]:
    """Where to end each INSERT so it stays within the bound: offsets of row separators
    (and the end). A single row longer than the bound becomes a statement of its own."""
    cuts = []
    start, size = 0, len(escaped)
    while start < size:
        end = size
        if size - start > max_statement_bytes:
            cut = escaped.rfind(ROW_SEPARATOR, start, start + max_statement_bytes)
            if cut <= start:
                cut = escaped.find(ROW_SEPARATOR, start + max_statement_bytes)
            if cut != -1:
                end = cut
        cuts.append(end)
        start = end + 1
    return cuts


def escape_quoted_row(row: bytes) -> bytes:
    """A row from rows_sql() on one line."""
    for byte, escaped in _QUOTED_ESCAPES:
        if byte in row:
            row = row.replace(byte, escaped)
    return row


def insert_prefix(table: str, columns: list[Column]) -> bytes:
    return f"INSERT INTO {quote_identifier(table)} {column_list_sql(columns)} VALUES ".encode()
