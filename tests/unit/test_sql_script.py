"""Splitting migration scripts into statements, as the mariadb client does."""

import re

import pytest
from ansible.module_utils.simpledb.sql_script import ScriptError, Statement, split_statements


def texts(script, **kwargs):
    return [s.text for s in split_statements(script, **kwargs)]


def test_plain_statements_and_a_last_one_without_delimiter():
    assert texts("CREATE TABLE a (id INT);\nINSERT INTO a VALUES (1);\nSELECT 1") == [
        "CREATE TABLE a (id INT)",
        "INSERT INTO a VALUES (1)",
        "SELECT 1",
    ]


def test_semicolons_inside_strings_identifiers_and_comments_do_not_split():
    script = (
        "INSERT INTO t VALUES ('a;b', \"c;d\");\n"
        "CREATE TABLE `we;ird` (id INT); -- trailing; comment\n"
        "# hash; comment\n"
        "/* block; comment */ SELECT 1;\n"
    )
    assert texts(script) == [
        "INSERT INTO t VALUES ('a;b', \"c;d\")",
        "CREATE TABLE `we;ird` (id INT)",
        "SELECT 1",
    ]


def test_escaped_and_doubled_quotes_stay_inside_the_string():
    script = "SELECT 'it\\'s;', 'it''s;', \"say \\\";\";SELECT `a``;b`;"
    assert texts(script) == ["SELECT 'it\\'s;', 'it''s;', \"say \\\";\"", "SELECT `a``;b`"]


def test_without_backslash_escapes_a_backslash_ends_nothing():
    # With NO_BACKSLASH_ESCAPES, 'C:\' is a complete string.
    assert texts("INSERT INTO t VALUES ('C:\\');INSERT INTO t VALUES ('x');", backslash_escapes=False) == [
        "INSERT INTO t VALUES ('C:\\')",
        "INSERT INTO t VALUES ('x')",
    ]


def test_double_dash_needs_a_space_to_be_a_comment():
    assert texts("SELECT 1--1;\nSELECT 2 -- not this;\n;") == ["SELECT 1--1", "SELECT 2 -- not this;"]


def test_delimiter_command_for_routines_and_triggers():
    script = """CREATE TABLE t (a INT);
DELIMITER //
CREATE PROCEDURE p()
BEGIN
  INSERT INTO t VALUES (1);
  INSERT INTO t VALUES (2);
END//
delimiter $$
CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = NEW.a + 1; END$$
DELIMITER ;
CALL p();
"""
    statements = split_statements(script)
    assert [s.text.split("\n")[0] for s in statements] == [
        "CREATE TABLE t (a INT)",
        "CREATE PROCEDURE p()",
        "CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = NEW.a + 1; END",
        "CALL p()",
    ]
    assert statements[1].text.endswith("INSERT INTO t VALUES (2);\nEND")
    assert [s.line for s in statements] == [1, 3, 9, 11]


def test_delimiter_word_inside_a_statement_is_sql():
    script = "CREATE TABLE t (\ndelimiter INT\n);"
    assert texts(script) == ["CREATE TABLE t (\ndelimiter INT\n)"]


def test_executable_comments_are_statements_and_plain_comments_are_not():
    script = "/*!40101 SET @saved = @@character_set_client */;\n/* only a comment */;\n-- another\n;"
    assert split_statements(script) == [Statement("/*!40101 SET @saved = @@character_set_client */", 1)]


def test_line_numbers_point_at_the_first_token_after_comments():
    script = "-- header\n\n/* note */\nSELECT 1;\n\n  SELECT\n2;"
    assert [(s.text, s.line) for s in split_statements(script)] == [
        ("SELECT 1", 4),
        ("SELECT\n2", 6),
    ]


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("SELECT 1;\nSELECT 'open;", "line 2: string opened with ' is not closed"),
        ("SELECT `open;", "line 1: quoted identifier opened with ` is not closed"),
        ("SELECT 1;\n\n/* open", "line 3: comment /* is not closed"),
        ("DELIMITER $$ extra\nSELECT 1$$", "line 1: DELIMITER takes one word"),
        ("DELIMITER \\\\\nSELECT 1", "DELIMITER cannot contain a backslash"),
    ],
)
def test_malformed_scripts_name_the_line(script, message):
    with pytest.raises(ScriptError, match=re.escape(message)):
        split_statements(script)


def test_empty_and_comment_only_scripts_have_no_statements():
    assert split_statements("") == []
    assert split_statements("-- nothing\n# here\n/* at all */\n;;") == []
