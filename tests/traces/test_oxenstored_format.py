"""oxenstored's access-log lines: fields, connections, escaping, truncation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xbdspec.errors import InputError
from xbdspec.traces.oxenstored import (
    Connection,
    escape,
    format_line,
    parse_connection,
    parse_line,
    unescape,
)

DATE = "20261126T03:00:00.007Z"


def test_a_write_line_has_oxenstoreds_padding() -> None:
    line = format_line(DATE, "D5", "write", "device/vbd/768/state\x003")
    # "[date] " prefix, then " %-12s %-9s %s" (logging.ml access_logging)
    assert line == "[20261126T03:00:00.007Z]  D5           write     device/vbd/768/state 3"
    rec = parse_line(line, 4, "log")
    assert (rec.line, rec.conn, rec.op, rec.data, rec.cut) == (
        4,
        "D5",
        "write",
        "device/vbd/768/state 3",
        False,
    )


@pytest.mark.parametrize(
    ("line", "conn", "op", "data"),
    [
        ("[20261126T03:00:00.007Z]  A12.3        commit    ", "A12.3", "commit", ""),
        (
            "[20261126T03:00:00.007Z]  D5           w event   device/vbd/768/state 1 ",
            "D5",
            "w event",
            "device/vbd/768/state 1 ",
        ),
        ("[20261126T03:00:00.007Z]  D0           t start   ", "D0", "t start", ""),
        ("[20261126T03:00:00.007Z]  r(1):D5.2    write     a/b 1", "r(1):D5.2", "write", "a/b 1"),
        ("[20261126T03:00:00.007Z]  A3           newconn   ", "A3", "newconn", ""),
        ("[20261126T03:00:00.007Z]  D7           error     EACCES ", "D7", "error", "EACCES "),
        # the older date format ([YYYYMMDD HH:MM:SS.mmm])
        (
            "[20140715 11:07:36.123]  D5           rm        device/vbd/768 ",
            "D5",
            "rm",
            "device/vbd/768 ",
        ),
    ],
)
def test_fields_of_each_kind_of_line(line: str, conn: str, op: str, data: str) -> None:
    rec = parse_line(line, 1, "log")
    assert (rec.conn, rec.op, rec.data) == (conn, op, data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("D5", Connection("D5", 5, 0)),
        ("D5.12", Connection("D5", 5, 12)),
        ("A3", Connection("A3", 0, 0)),
        ("A3.1", Connection("A3", 0, 1)),
        ("r(1):D5.2", Connection("r(1):D5", 5, 2)),
        ("=======>", None),
    ],
)
def test_connections(text: str, expected: Connection | None) -> None:
    assert parse_connection(text) == expected


def test_relative_paths_resolve_against_the_domains_home() -> None:
    conn = parse_connection("D5.2")
    assert conn is not None and conn.base == "/local/domain/5/"
    sock = parse_connection("A3")
    assert sock is not None and sock.base == "/local/domain/0/"


def test_a_long_line_is_cut_at_179_characters_with_two_dots() -> None:
    line = format_line(DATE, "D5", "write", "data/x\x00" + "y" * 300)
    assert len(line) == 179 and line.endswith("..")
    rec = parse_line(line, 1, "log")
    assert rec.cut and rec.data.endswith("y") and not rec.data.endswith(".")


def test_a_short_line_ending_in_dots_is_not_cut() -> None:
    rec = parse_line(format_line(DATE, "D5", "write", "data/x\x00wait.."), 1, "log")
    assert not rec.cut and rec.data.endswith("..")


def test_cutting_follows_nb_chars() -> None:
    line = format_line(DATE, "D5", "write", "device/vbd/768/protocol\x00x86_64-abi", nb_chars=70)
    assert len(line) == 69
    assert parse_line(line, 1, "log", nb_chars=70).cut
    assert not parse_line(line, 1, "log", nb_chars=0).cut


def test_escaping_follows_ocamls_string_escaped() -> None:
    assert escape('a"b\\c\nd\te\x01f\x00g') == 'a\\"b\\\\c\\nd\\te\\001f g'
    assert unescape('a\\"b\\\\c\\nd\\te\\001f g', "w") == 'a"b\\c\nd\te\x01f g'


@given(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255)))
def test_unescape_inverts_escape(text: str) -> None:
    assert unescape(escape(text), "w") == text


def test_a_bad_escape_names_where() -> None:
    with pytest.raises(InputError, match=r"log:3: bad escape"):
        unescape("ab\\qc", "log:3")


@pytest.mark.parametrize(
    "text",
    [
        "[20261126|info|xenstored] Xen Storage Daemon, version 1.0",  # the daemon's own log
        "20261126T03:00:00.007Z D5 write a 1",
        "[20261126T03:00:00.007Z]",
        "",
    ],
)
def test_lines_that_are_not_access_log_lines(text: str) -> None:
    with pytest.raises(InputError, match=r"log:9: not an oxenstored access-log line"):
        parse_line(text, 9, "log")
