"""oxenstored's access log, one line at a time.

The line format, from Xen's ``tools/ocaml/xenstored/logging.ml`` (``access_logging``,
``string_of_tid``, ``string_of_access_type``, ``sanitize_data``, ``truncate_line``,
``string_of_date``)::

    [<date>]  <connection>  <operation> <data>

* ``<date>``: ``YYYYMMDDTHH:MM:SS.mmmZ`` (UTC) in current versions, ``YYYYMMDD
  HH:MM:SS.mmm`` in older ones; the file logger's prefix is ``[<date>] `` and the
  message starts with a space, hence the two spaces.
* ``<connection>``: ``D<domid>`` for a domain's ring, ``A<n>`` for a socket (the tool
  stack, in domain 0), ``<conn>.<tid>`` inside a transaction, padded to 12 columns;
  ``r(<tid>):<conn>.<tid'>`` when oxenstored replays a conflicting transaction
  (``transaction_replay`` in ``process.ml``).
* ``<operation>``: padded to 9 columns: ``write``, ``mkdir``, ``rm``, ``setperms``,
  ``read``, ``directory``, ``getperms``, ``watch``, ``unwatch``, ``w event``,
  ``t start``, ``t end``, ``commit``, ``conflict``, ``coalesce``, ``newconn``,
  ``endconn``, ``introduce``, ``release``, ``getdomain``, ``is introduced``,
  ``resume``, ``error``, ``w notfired``, ...
* ``<data>``: the request's payload with each NUL replaced by a space, then escaped
  with OCaml's ``String.escaped`` (``\\"``, ``\\\\``, ``\\n``, ``\\t``, ``\\r``,
  ``\\b``, ``\\ddd``).  For ``write`` it is ``<path> <value>``.
* A line longer than ``access-log-nb-chars - 1`` (180 by default) is cut to exactly
  that length, its last two characters replaced by ``..``.

The log line is written after the request was processed, so a transaction's
``commit`` (or ``conflict``) line comes before its ``t end``; an explicit abort is not
logged at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xbdspec.errors import InputError

#: oxenstored's default ``access-log-nb-chars``.
DEFAULT_NB_CHARS = 180

#: One access-log line: date, connection, operation, data.  Group 1 is the connection,
#: 2 the operation, 3 the data.  An operation whose name holds a space (``w event``,
#: ``t start``...) is matched by its second word; only operations of 9 characters or
#: more are followed by a single space, and none of those matters to a vbd.
LINE = re.compile(
    r"\[\d{8}[T ]\d\d:\d\d:\d\d\.\d{3}Z?\] +(\S+) +"
    r"(\S+(?: event| start| end| notfired| introduced| watches)?) *(.*)"
)

#: A connection field: ``D<domid>``, ``A<n>``, with ``.<tid>`` inside a transaction, and
#: ``r(<tid>):`` before it in a replay.
CONNECTION = re.compile(
    r"(?:r\((?P<replayed>\d+)\):)?(?P<kind>[DA])(?P<num>\d+)(?:\.(?P<tid>\d+))?\Z"
)

__all__ = [
    "CONNECTION",
    "DEFAULT_NB_CHARS",
    "AccessRecord",
    "Connection",
    "escape",
    "format_line",
    "parse_connection",
    "parse_line",
    "unescape",
]


@dataclass(frozen=True)
class Connection:
    """Who made a request.

    Attributes:
        name: the connection without its transaction (``D5``, ``A3``, ``r(2):D5``).
        domid: the domain whose home relative paths resolve against (0 for sockets).
        tid: the transaction id, 0 outside a transaction.
    """

    name: str
    domid: int
    tid: int

    @property
    def base(self) -> str:
        """Where a relative path resolves (``Connection.get_path``)."""
        return f"/local/domain/{self.domid}/"


@dataclass(frozen=True)
class AccessRecord:
    """One access-log line, split into its fields.

    Attributes:
        line: the 1-based line number.
        conn: the connection field as logged (``D5.3``).
        op: the operation, without padding.
        data: the data field, still escaped, without its padding space.
        cut: True when oxenstored truncated the line (the data ends in ``..`` that
            stand for the rest).
        maybe_cut: the data ends in ``..`` although the line is shorter than
            ``nb_chars - 1``: the log may have been written with a smaller
            ``access-log-nb-chars`` than the check was told.
    """

    line: int
    conn: str
    op: str
    data: str
    cut: bool
    maybe_cut: bool = False


def parse_connection(text: str) -> Connection | None:
    """The connection named by ``text`` (``D5``, ``A3.7``, ``r(2):D5.9``), or None."""
    m = CONNECTION.match(text)
    if m is None:
        return None
    domid = int(m["num"]) if m["kind"] == "D" else 0
    name = text if m["tid"] is None else text[: text.rindex(".")]
    return Connection(name, domid, int(m["tid"] or 0))


def parse_line(text: str, line: int, source: str, nb_chars: int = DEFAULT_NB_CHARS) -> AccessRecord:
    """Split one line (without its newline) into an :class:`AccessRecord`.

    ``nb_chars`` is the log's ``access-log-nb-chars`` (0 or less: never cut).

    Raises:
        InputError: the line is not an access-log line.
    """
    m = LINE.match(text)
    if m is None or m.end() != len(text):
        raise InputError(
            f"{source}:{line}",
            "not an oxenstored access-log line (expected `[YYYYMMDDTHH:MM:SS.mmmZ]  <connection> "
            f"<operation> <data>`): {text[:80]!r}",
        )
    return record_from_match(m, text, line, nb_chars)


def record_from_match(m: re.Match[str], text: str, line: int, nb_chars: int) -> AccessRecord:
    """The record of a line :data:`LINE` matched (``text`` without its newline)."""
    data = m[3]
    ends = text.endswith("..")
    cut = ends and nb_chars > 0 and len(text) == nb_chars - 1
    if cut:
        data = data[:-2]
    return AccessRecord(line, m[1], m[2], data, cut, ends and not cut and nb_chars > 0)


_SIMPLE_ESCAPES = {
    "\\": "\\",
    '"': '"',
    "'": "'",
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    " ": " ",
}


def unescape(text: str, where: str) -> str:
    """Undo OCaml's ``String.escaped`` (NULs were already turned into spaces).

    Raises:
        InputError: a backslash that starts no escape ``String.escaped`` produces.
    """
    if "\\" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[nxt])
            i += 2
        elif text[i + 1 : i + 4].isdigit() and len(text[i + 1 : i + 4]) == 3:
            out.append(chr(int(text[i + 1 : i + 4])))
            i += 4
        else:
            raise InputError(
                where, f"bad escape {text[i : i + 4]!r} in the data field {text[:60]!r}"
            )
    return "".join(out)


def escape(data: str) -> str:
    """``sanitize_data``: NULs become spaces, then OCaml's ``String.escaped``."""
    out: list[str] = []
    for ch in data.replace("\0", " "):
        if ch in _ESCAPE_OUT:
            out.append(_ESCAPE_OUT[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\{ord(ch):03d}")
    return "".join(out)


_ESCAPE_OUT = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b"}


def format_line(
    date: str, conn: str, op: str, data: str = "", nb_chars: int = DEFAULT_NB_CHARS
) -> str:
    """An access-log line as oxenstored writes it (no newline); ``data`` unescaped,
    with NULs where the request has them (``path\\0value`` for a write).

    ``date`` is ``YYYYMMDDTHH:MM:SS.mmmZ``.  The inverse of :func:`parse_line`, for
    tests and benchmarks.
    """
    line = f"[{date}]  {conn:<12} {op:<9} {escape(data)}"
    if nb_chars > 0 and len(line) > nb_chars - 1:
        keep = max(nb_chars - 1, 2)
        line = line[: keep - 2] + ".."
    return line
