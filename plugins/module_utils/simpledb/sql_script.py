"""Splitting an SQL script into statements the way the ``mariadb`` command-line client does.

The server runs one statement per call, so a script must be split on its delimiter (``;``)
without being fooled by a delimiter inside a string, a quoted identifier or a comment, and
must honour the client's ``DELIMITER`` command, which scripts use to define stored routines
and triggers whose bodies contain ``;``::

    DELIMITER //
    CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; END//
    DELIMITER ;

Rules (those of the client):
- strings in '...' and "...": a doubled quote or, unless the session's sql_mode has
  NO_BACKSLASH_ESCAPES, a backslash escapes the next character;
- identifiers in `...`: a doubled backtick escapes it;
- comments: ``#`` and ``-- `` (two dashes and a space or control character) to the end of
  the line, ``/* ... */``. Executable comments (``/*! ... */``, ``/*M! ... */``) are sent to
  the server, which runs their content;
- ``DELIMITER <string>`` at the start of a line, outside any statement, changes the
  delimiter for what follows. A line starting with the word inside a statement is SQL.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

_DELIMITER_COMMAND = re.compile(r"[ \t]*delimiter[ \t]+(\S+)[ \t]*(.*)", re.IGNORECASE)
_WHITESPACE = " \t\r\n\f\v"


class ScriptError(ValueError):
    """The script cannot be split (an unterminated string, comment or a bad DELIMITER line)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class Statement:
    """One statement to send to the server, from its first token (comments before it are dropped);
    ``line`` is where that token is (1-based)."""

    text: str
    line: int


class _Lines:
    """Index to line number, in O(log n)."""

    def __init__(self, text: str) -> None:
        self._newlines = [i for i, c in enumerate(text) if c == "\n"]

    def of(self, index: int) -> int:
        return bisect.bisect_left(self._newlines, index) + 1


def split_statements(script: str, backslash_escapes: bool = True) -> list[Statement]:
    """Split ``script`` into statements; comment-only pieces are dropped.

    ``backslash_escapes`` must be False when the session's sql_mode has NO_BACKSLASH_ESCAPES.
    Raises ScriptError with the line number when the script is malformed.
    """
    lines = _Lines(script)
    statements: list[Statement] = []
    delimiter = ";"
    first_token: int | None = None  # index of its first non-comment character
    i = 0
    n = len(script)
    while i < n:
        at_line_start = i == 0 or script[i - 1] == "\n"
        if at_line_start and first_token is None:
            command = _DELIMITER_COMMAND.match(script, i)
            if command:
                delimiter = _parse_delimiter(command, lines.of(i))
                end = script.find("\n", i)
                i = n if end < 0 else end + 1
                continue
        char = script[i]
        if script.startswith(delimiter, i):
            if first_token is not None:
                statements.append(Statement(script[first_token:i].strip(), lines.of(first_token)))
            i += len(delimiter)
            first_token = None
            continue
        if char in "'\"`":
            if first_token is None:
                first_token = i
            i = _end_of_quoted(script, i, backslash_escapes and char != "`", lines)
        elif char == "#" or (script.startswith("--", i) and (i + 2 == n or script[i + 2] in _WHITESPACE)):
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
        elif script.startswith("/*", i):
            end = script.find("*/", i + 2)
            if end < 0:
                raise ScriptError("comment /* is not closed", lines.of(i))
            if first_token is None and (script.startswith("/*!", i) or script.startswith("/*M!", i)):
                first_token = i
            i = end + 2
        else:
            if first_token is None and char not in _WHITESPACE:
                first_token = i
            i += 1
    if first_token is not None:
        statements.append(Statement(script[first_token:].strip(), lines.of(first_token)))
    return statements


def _parse_delimiter(command: re.Match[str], line: int) -> str:
    delimiter, rest = command.group(1), command.group(2).strip()
    if rest and not (rest.startswith("#") or rest.startswith("-- ") or rest == "--"):
        raise ScriptError(f"DELIMITER takes one word, found {command.group(0).strip()!r}", line)
    if "\\" in delimiter:
        raise ScriptError("DELIMITER cannot contain a backslash", line)
    return delimiter


def _end_of_quoted(script: str, i: int, backslash_escapes: bool, lines: _Lines) -> int:
    """Index just past the string or quoted identifier opened at ``i``."""
    quote = script[i]
    j = i + 1
    n = len(script)
    while j < n:
        char = script[j]
        if backslash_escapes and char == "\\":
            j += 2
        elif char == quote:
            if j + 1 < n and script[j + 1] == quote:
                j += 2
            else:
                return j + 1
        else:
            j += 1
    what = "quoted identifier" if quote == "`" else "string"
    raise ScriptError(f"{what} opened with {quote} is not closed", lines.of(i))
