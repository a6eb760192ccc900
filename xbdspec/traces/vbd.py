"""Following every vbd through an oxenstored access log.

Paths (``blkif.h``, Xen's ``xenstore-paths``):

* front end: ``/local/domain/<guest>/device/vbd/<devid>/`` (a guest writes it with
  a path relative to its home, ``device/vbd/<devid>/...``);
* back end: ``/local/domain/<backend>/backend/vbd/<guest>/<devid>/``.

Keys that matter: each end's ``state``; the back end's ``online`` (the tool stack's
unplug); the front end's transport keys (``ring-ref``, ``ring-ref<N>``,
``event-channel``, ``protocol``, ``ring-page-order``, ``num-ring-pages``,
``multi-queue-num-queues``, ``queue-<N>/...``, ``feature-persistent``); the back end's
feature and device keys (``feature-*``, ``max-ring-page-order``, ``max-ring-pages``,
``multi-queue-max-queues``, ``sectors``, ``info``, ``sector-size``,
``physical-sector-size``).  Everything else is ignored.

Writes inside a transaction take effect at its ``commit`` (or ``coalesce``) line and
vanish at a ``conflict``; a transaction whose connection ends is dropped.  What open
transactions hold is capped (:data:`MAX_OPEN_TRANSACTIONS`, :data:`MAX_TRANSACTION_WRITES`,
:data:`MAX_BUFFERED`): a transaction past a cap is dropped before its write is held, and
the devices it writes are unverifiable.  ``rm`` of a device node (or of an ancestor, as
when a domain is destroyed) ends the device's life; a later write starts a new one.

Reading is linear in the log and its memory bounded: chunks of whole lines are split
by one regular expression (:meth:`VbdChecker.feed_text`); connections, paths and the
writes a domain repeats are parsed once and remembered (bounded caches); a removal
finds the nodes it touches through an index of the devices' nodes and their ancestors,
never by looking at every device.  :meth:`VbdChecker._feed_each` is the same reading
one line at a time, and the reference the tests compare the fast one with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from xbdspec.errors import InputError
from xbdspec.model.vocabulary import XenbusState

from .oxenstored import (
    CONNECTION,
    DEFAULT_NB_CHARS,
    LINE,
    AccessRecord,
    parse_connection,
    parse_line,
    record_from_match,
    unescape,
)
from .projection import HandshakeProjection, Observation, States
from .report import CheckResult, DeviceReport, Divergence, Finding

X = XenbusState

_FRONT = re.compile(r"/local/domain/(\d+)/device/vbd/(\d+)(?:/(.+))?\Z")
#: The back end's node, for blkback (``vbd``), XenServer's tapdisk (``vbd3``) and QEMU's
#: qdisk (``qdisk``): the same protocol, the type only names who serves it.
_BACK = re.compile(r"/local/domain/(\d+)/backend/(?:vbd|vbd3|qdisk)/(\d+)/(\d+)(?:/(.+))?\Z")
_FRONT_KEY = re.compile(
    r"(?:state|ring-ref\d*|event-channel|protocol|ring-page-order|num-ring-pages|"
    r"multi-queue-num-queues|feature-persistent|feature-large-sector-size|"
    r"queue-\d+/(?:ring-ref\d*|event-channel))\Z"
)
_BACK_KEY = re.compile(
    r"(?:state|online|feature-[a-z-]+|max-ring-page-order|max-ring-pages|multi-queue-max-queues|"
    r"sectors|info|sector-size|physical-sector-size)\Z"
)
#: Operations that change the store.
_CHANGES = frozenset({"write", "rm"})
#: Operations that end a transaction or a connection (and its transactions).
_TRANSACTION_ENDS = frozenset({"commit", "coalesce", "conflict", "endconn"})
#: Operations that can matter to a vbd (everything else is only checked for form).
_INTERESTING = frozenset({"write", "rm", "commit", "coalesce", "conflict", "endconn", "error"})
#: The caps on what uncommitted transactions hold (the writes and removals of vbd keys
#: they made, which take effect at their commit): at most this many transactions
#: holding any, at most this many writes and removals in one transaction, at most this
#: many over all of them.  A transaction that would go past a cap is *dropped*: what it
#: held is forgotten and every device it wrote, or writes later, is unverifiable from
#: that line on (its commit cannot be followed); at most :data:`MAX_DROPPED` dropped
#: transactions are remembered while open, past that the log is refused (an
#: :class:`~xbdspec.errors.InputError` naming the line).  Each is checked before the
#: write is held.
MAX_OPEN_TRANSACTIONS = 4096
MAX_TRANSACTION_WRITES = 1024
MAX_BUFFERED = 1 << 16
MAX_DROPPED = 4096
#: How many connections' last requests are remembered (for an ``error`` answer).
MAX_CONNECTIONS = 4096
#: Writes held in transactions are counted against :data:`MAX_BUFFERED` this many at a
#: time (a transaction holding n counts as n rounded up to a multiple of it), so the
#: fast reading checks the caps only when a transaction's count reaches a multiple
#: (:data:`MAX_TRANSACTION_WRITES` and :data:`MAX_BUFFERED` are multiples of it).
_BLOCK = 64
assert MAX_TRANSACTION_WRITES % _BLOCK == 0 and MAX_BUFFERED % _BLOCK == 0
#: What a dropped transaction holds in :attr:`VbdChecker.transactions` (its length, 0,
#: is a multiple of :data:`_BLOCK`: the fast reading never appends to it).
_DROPPED: tuple[()] = ()
#: The largest ring order and queue count followed (blkif.h bounds neither; no back end
#: offers more): larger values are refused before anything is allocated for them.
MAX_RING_ORDER = 8
MAX_QUEUES = 64
#: How many known gaps a device records.
MAX_GAPS = 8
#: How many findings that belong to no device a check records.
MAX_NOTES = 32
#: Key names (and name prefixes) that matter, for judging a key cut by truncation.
_FRONT_NAMES = (
    "state",
    "ring-ref",
    "event-channel",
    "protocol",
    "ring-page-order",
    "num-ring-pages",
    "multi-queue-num-queues",
    "feature-persistent",
    "queue-",
)
_BACK_NAMES = (
    "state",
    "online",
    "feature-",
    "max-ring-page-order",
    "max-ring-pages",
    "multi-queue-max-queues",
    "sectors",
    "info",
    "sector-size",
    "physical-sector-size",
)

DeviceKey = tuple[int, int]


# --------------------------------------------------------------------------- the abstraction


_TEMPLATES = (
    ("", "local", "domain", "#", "device", "vbd"),
    ("", "local", "domain", "#", "backend", "vbd"),
)


def _may_name_a_vbd(partial: str) -> bool:
    """Whether an absolute path cut to ``partial`` may lead to a vbd node."""
    parts = partial.split("/")
    for template in _TEMPLATES:
        ok = True
        for i, part in enumerate(parts):
            if i >= len(template):
                break
            last = i == len(parts) - 1
            want = template[i]
            if want == "#":
                ok = part.isdigit() or (last and part == "")
            else:
                ok = want.startswith(part) if last else part == want
            if not ok:
                break
        if ok:
            return True
    return False


def _could_be_relevant(side: str, partial: str) -> bool:
    """Whether a key name cut to ``partial`` may be one that matters."""
    names = _FRONT_NAMES if side == "front" else _BACK_NAMES
    return any(n.startswith(partial) or partial.startswith(n) for n in names)


def transport_published(front: dict[str, str], back: dict[str, str]) -> tuple[bool, str]:
    """Whether the front end's keys make a complete transport (the model's
    ``fe_published``), and if not, what is missing.

    ``blkif.h``: ``event-channel``; ``ring-ref`` for a one-page ring, or
    ``ring-ref0`` .. ``ring-ref<2**order - 1>`` with ``ring-page-order`` = order (or
    ``num-ring-pages`` = 2**order); the order may not exceed the back end's
    ``max-ring-page-order`` (or log2 of ``max-ring-pages``; 0 when it published none).
    With ``multi-queue-num-queues`` > 1, each ``queue-<N>/`` holds its own ring
    references and event channel.
    """
    try:
        order = _order(front, "ring-page-order", "num-ring-pages")
        limit = _order(back, "max-ring-page-order", "max-ring-pages")
        raw = front.get("multi-queue-num-queues", "1")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 10):
            raise ValueError(f"multi-queue-num-queues is {raw!r}, not a number")
        queues = int(raw)
    except ValueError as exc:
        return False, str(exc)
    if order > limit:
        return False, (
            f"the front end's ring has 2**{order} pages but the back end allows 2**{limit}"
        )
    if order > MAX_RING_ORDER or queues > MAX_QUEUES:
        return False, (
            f"ring-page-order {order} or multi-queue-num-queues {queues} is above what the "
            f"checker follows ({MAX_RING_ORDER}, {MAX_QUEUES})"
        )
    prefixes = [""] if queues <= 1 else [f"queue-{q}/" for q in range(queues)]
    for prefix in prefixes:
        if f"{prefix}event-channel" not in front:
            return False, f"{prefix}event-channel is not written"
        if order == 0:
            if f"{prefix}ring-ref" not in front and f"{prefix}ring-ref0" not in front:
                return False, f"{prefix}ring-ref is not written"
        else:
            missing = [
                f"{prefix}ring-ref{i}"
                for i in range(2**order)
                if f"{prefix}ring-ref{i}" not in front
            ]
            if missing:
                return False, f"ring-page-order is {order} but {', '.join(missing[:4])} not written"
    return True, "the transport keys are complete"


def _order(keys: dict[str, str], order_key: str, pages_key: str) -> int:
    if order_key in keys:
        value = keys[order_key]
        if not (value.isascii() and value.isdigit() and len(value) <= 10):
            raise ValueError(f"{order_key} is {value!r}, not a number")
        return int(value)
    if pages_key in keys:
        value = keys[pages_key]
        if (
            not (value.isascii() and value.isdigit() and len(value) <= 10)
            or int(value) < 1
            or int(value) & (int(value) - 1)
        ):
            raise ValueError(f"{pages_key} is {value!r}, not a power of two")
        return int(value).bit_length() - 1
    return 0


# --------------------------------------------------------------------------- one device


@dataclass
class _Device:
    """One vbd: what the log has shown of it and the model states consistent with it."""

    key: DeviceKey
    report: DeviceReport
    backend: int | None = None
    states: States | None = None  # None: no state write yet in this lifetime
    stopped: bool = False  # a divergence or an unverifiable line ended checking
    front: dict[str, str] = field(default_factory=dict)
    back: dict[str, str] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)
    published: bool = False
    #: the order the device was first seen in (reports and removals follow it)
    index: int = 0
    #: the protocol checker's configuration of the device and its transitions
    #: (:class:`~xbdspec.traces.vbd_protocol.ProtocolVbdChecker`); ``out`` is None when
    #: they must be looked up again (``stopped`` changed)
    config: Any = None
    out: Any = None


#: Where a vbd key's path leads: (device, side, key under the node or None, back-end
#: domain or None, ``front/<key>`` or ``back/<key>`` as a commit names it, or None).
Target = tuple[DeviceKey, str, "str | None", "int | None", "str | None"]
#: A request that touched a vbd: (line, op, path, value, target, device, tid).  It waits
#: in its transaction for the commit, and is its connection's last request (an
#: ``error`` answer is about it).
Pending = tuple[int, str, str, "str | None", "Target | None", DeviceKey, int]

#: The access-log lines as the fast reading matches them: :data:`LINE` with ASCII
#: digits in the date (``\d`` also takes other scripts' digits, one look-up in Python's
#: Unicode tables each) and possessive repeats (``++``, ``*+``: no backtracking point
#: kept; none is ever needed, each run being followed by what it cannot match).  What
#: it matches it splits as :data:`LINE` does; a line it does not take (only one with
#: other digits) is matched by the ``.*`` alternative and left to the per-line code,
#: which reads it with :data:`LINE` itself (``tests/traces/test_fast_paths.py``).
_FAST_LINE = (
    r"\[[0-9]{8}[T ][0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]{3}Z?\] ++(\S++) ++"
    r"(\S++(?: event| start| end| notfired| introduced| watches)?) *+(.*+)"
)
#: One line of a chunk of whole lines: an access-log line (the fields of :data:`LINE`)
#: or, when it is not one, any other line (a blank or a malformed line: empty fields).
#: ``^`` in multi-line mode and ``.`` never crossing a newline: each match is one whole
#: line, so ``findall`` splits a chunk into its lines, in order.
_CHUNK_LINE = re.compile("(?m)^(?:" + _FAST_LINE + "|.*)\n")
#: A connection as the fast path keeps it: its name, the base of its relative paths,
#: the transaction id, the writes seen from that base (:meth:`VbdChecker._write_of`),
#: and the key of its transaction in :attr:`VbdChecker.transactions`.
Conn = tuple[str, str, int, dict[str, tuple[str, "Target | None", str]], tuple[str, int]]
#: How many writes :meth:`VbdChecker._write_of` remembers, over every base.
_WRITES = 1 << 14
#: The longest connection field, path or data field the caches keep (longer ones are
#: parsed every time): the caches' memory is bounded whatever the lines' lengths.
_CACHED_KEY = 512
#: A connection field that names no connection (its lines go the per-line way).
_NO_CONNECTION: tuple[()] = ()
#: How many of the caches' entries (connections, paths) are kept before they start afresh.
_CACHE_LIMIT = 1 << 14
#: State values as the model's members (the common spellings; others are parsed).
_STATE_VALUES = {str(int(s)): X(s) for s in X}


def _state_value(value: str) -> XenbusState | None:
    """The XenbusState a state node's value names (ASCII digits only), or None."""
    found = _STATE_VALUES.get(value)
    if found is None and value.isascii() and value.isdigit():
        found = _STATE_VALUES.get(value.lstrip("0") or "0")
    return found


class VbdChecker:
    """Checks every vbd of an access log against the handshake projection.

    Feed lines with :meth:`feed_lines` (or whole chunks of lines with
    :meth:`feed_text`); :meth:`finish` returns the result.  Memory: one record per
    device, the open transactions' relevant writes, bounded caches of the connections
    and paths seen, and the projection's caches (bounded by the model's handshake
    states).

    The reading is linear in the log: a line costs one match of a compiled regular
    expression over its chunk and, when it touches a vbd, a few dictionary look-ups
    (the connection and the path are parsed once and remembered); a removal finds the
    devices it touches through an index of the devices' nodes and their ancestors,
    whatever the number of devices seen.
    """

    def __init__(
        self,
        projection: HandshakeProjection,
        source: str,
        nb_chars: int = DEFAULT_NB_CHARS,
    ) -> None:
        self.projection = projection
        self.source = source
        self.nb_chars = nb_chars
        self.devices: dict[DeviceKey, _Device] = {}
        #: (connection name, tid) -> the writes and removals of vbd keys the open
        #: transaction holds (:data:`_DROPPED` when it went past a cap)
        self.transactions: dict[tuple[str, int], list[Pending] | tuple[()]] = {}
        #: the writes counted against :data:`MAX_BUFFERED` (in blocks of :data:`_BLOCK`),
        #: and how many open transactions are dropped
        self._reserved = 0
        self._dropped = 0
        #: connection field (``D5.3``) -> its last request, when that request touched a
        #: vbd (bounded: the oldest is forgotten)
        self.last_request: dict[str, Pending] = {}
        self._forgotten = 0
        self.result = CheckResult(source, "oxenstored")
        #: the connection fields seen: (name, base of relative paths, tid), or
        #: :data:`_NO_CONNECTION`
        self._connections: dict[str, Conn | tuple[()]] = {}
        #: base of relative paths -> data field of a write -> (path, target, value); and
        #: how many are held
        self._writes: dict[str, dict[str, tuple[str, Target | None, str]]] = {}
        self._writes_held = 0
        #: absolute paths seen in writes and removals: (the path without trailing ``/``,
        #: its target when the key matters)
        self._paths: dict[str, tuple[str, Target | None]] = {}
        #: the last chunk a line of which went the per-line way, and its lines
        self._split_of = ""
        self._split: list[str] = []
        #: the devices' nodes: node path -> {device: side}
        self._nodes: dict[str, dict[DeviceKey, str]] = {}
        #: every proper ancestor of a node -> {(device, side): None}
        self._ancestors: dict[str, dict[tuple[DeviceKey, str], None]] = {}
        #: (device, side) -> its node path
        self._node_of: dict[tuple[DeviceKey, str], str] = {}

    # ---- lines
    def feed_lines(self, lines: Iterable[str]) -> None:
        """Feed a whole file (an iterable of lines, all with or all without newlines),
        a few thousand lines at a time through :meth:`feed_text`."""
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) == 4096:
                self._feed_batch(batch)
                batch = []
        if batch:
            self._feed_batch(batch)

    def _feed_batch(self, batch: list[str]) -> None:
        text = "".join(batch)
        newlines = text.count("\n")
        if newlines == 0:
            self.feed_text("\n".join(batch) + "\n")
        elif newlines == len(batch) and all(line.endswith("\n") for line in batch):
            self.feed_text(text)
        else:
            self._feed_each(batch)

    def feed(self, text: str, line: int) -> None:
        """One line of the log (without its newline)."""
        self.result.events = line - 1
        self._feed_each((text,))

    def feed_text(self, text: str) -> None:
        """Feed whole lines: ``text`` is empty or ends with a newline.

        The fast path: one regular expression splits the chunk into its lines' fields
        (:data:`_CHUNK_LINE`).  A write or a removal (not cut) and a commit are handled
        here, with the connection and the path looked up in caches; the rarer lines
        (conflicts, errors, ends of connections, coalesced commits, lines ending with
        ``..``, blank and malformed lines) go through the per-line code of
        :meth:`_feed_each`, one at a time, in order.  Both give the same verdicts
        (``tests/traces/test_fast_paths.py`` compares them).
        """
        found = _CHUNK_LINE.findall(text)
        interesting = _INTERESTING
        last_request = self.last_request
        transactions = self.transactions
        connections = self._connections
        paths = self._paths
        pending: Pending
        number = start = self.result.events
        try:
            for conn, op, data in found:
                number += 1
                if op == "write":
                    if "vbd" not in data and "qdisk" not in data:
                        if data.endswith(".."):
                            self._feed_one(text, start, number)
                        elif last_request:  # an error no longer refers to a vbd
                            last_request.pop(conn, None)
                        continue
                    c = connections.get(conn) or self._connection(conn)
                    if not c:  # no connection: the per-line code says why
                        self._feed_one(text, start, number)
                        continue
                    written = c[3].get(data)  # a write seen before: not a cut one
                    if written is None:
                        if data.endswith(".."):
                            self._feed_one(text, start, number)
                            continue
                        written = self._write_of(c, data, number)
                    path, target, value = written
                    if target is None:
                        # a request about no tracked key: an answer to it is not about
                        # a tracked write
                        last_request.pop(conn, None)
                        continue
                    tid = c[2]
                    last_request[conn] = pending = (
                        number,
                        "write",
                        path,
                        value,
                        target,
                        target[0],
                        tid,
                    )
                    if len(last_request) > MAX_CONNECTIONS:  # conn was not there
                        self._forget_oldest_request()
                    if not tid:
                        self._write_now(number, pending)
                        continue
                    buffered = transactions.get(c[4])
                    if buffered is not None and len(buffered) & _BLOCK - 1:
                        buffered.append(pending)  # type: ignore[union-attr]
                    else:  # a new transaction, a new block, a dropped one: the caps
                        self._buffer(c[0], tid, pending)
                elif op == "commit":
                    if not transactions:
                        continue  # no transaction holds a vbd write: nothing to commit
                    c = connections.get(conn) or self._connection(conn)
                    if not c or not c[2]:  # no connection, or outside a transaction
                        continue
                    writes = transactions.pop(c[4], None)
                    if writes:
                        self._release(writes)
                        self._apply_group(number, writes)
                    elif writes is _DROPPED:  # its devices are unverifiable already
                        self._dropped -= 1
                elif op == "rm":
                    if data.endswith(".."):
                        self._feed_one(text, start, number)
                        continue
                    if "vbd" not in data and "qdisk" not in data and not self.devices:
                        continue
                    c = connections.get(conn) or self._connection(conn)
                    if not c:
                        self._feed_one(text, start, number)
                        continue
                    raw_path = data.partition(" ")[0]
                    full = raw_path if raw_path[:1] == "/" else c[1] + raw_path
                    path, target = paths.get(full) or self._path_info(full)
                    if target is None:
                        # no tracked key: an ancestor of a device's node, or nothing (a
                        # key that does not matter has no device node under it)
                        under = self._device_under(path)
                        if under is None:
                            last_request.pop(conn, None)
                            continue
                    else:
                        under = target[0]
                    if len(last_request) >= MAX_CONNECTIONS and conn not in last_request:
                        self._forget_oldest_request()
                    tid = c[2]
                    last_request[conn] = pending = (number, "rm", path, None, None, under, tid)
                    if tid:
                        self._buffer(c[0], tid, pending)
                    else:
                        self._apply_group(number, [pending])
                elif op in interesting:
                    if op in _TRANSACTION_ENDS and not transactions:
                        continue
                    self._feed_one(text, start, number)
                elif not op:  # no access-log line: a blank line, or an error
                    self._feed_one(text, start, number)
        finally:
            self.result.events = number

    def _feed_each(self, lines: Iterable[str]) -> None:
        """Feed lines one at a time (the reference reading; :meth:`feed_text` takes it
        for a chunk with a blank or malformed line)."""
        match = LINE.match
        interesting = _INTERESTING
        last_request = self.last_request
        number = self.result.events
        try:
            for text in lines:
                number += 1
                m = match(text)
                if m is None:
                    self._malformed(text, number)
                    continue
                op = m[2]
                if op in interesting:
                    if op == "write":
                        data = m[3]
                        if (
                            "vbd" not in data
                            and "qdisk" not in data
                            and not text.endswith(("..", "..\n"))
                        ):
                            if last_request:  # a later request: an error no longer refers to a vbd
                                last_request.pop(m[1], None)
                            continue
                    elif op in _TRANSACTION_ENDS and not self.transactions:
                        continue  # no transaction holds a vbd write: nothing to commit
                    self._record(record_from_match(m, text.rstrip("\n"), number, self.nb_chars))
        finally:
            self.result.events = number

    def _feed_one(self, text: str, start: int, number: int) -> None:
        """Line ``number`` of the chunk ``text`` (read by :meth:`feed_text` after line
        ``start``), left to the per-line code; the chunk is split into its lines the
        first time one of them is."""
        if self._split_of is not text:
            self._split_of, self._split = text, text.split("\n")
        self.result.events = number - 1
        self._feed_each((self._split[number - start - 1],))

    def _connection(self, conn: str) -> Conn | tuple[()]:
        """``(name, base of relative paths, tid, the writes seen from that base)`` of a
        connection field, as :func:`~xbdspec.traces.oxenstored.parse_connection` reads
        it, or :data:`_NO_CONNECTION` (remembered)."""
        m = CONNECTION.match(conn)
        found: Conn | tuple[()] = _NO_CONNECTION
        if m is not None:
            domid = int(m["num"]) if m["kind"] == "D" else 0
            name = conn if m["tid"] is None else conn[: conn.rindex(".")]
            base = f"/local/domain/{domid}/"
            writes = self._writes.get(base)
            if writes is None:
                if len(self._writes) >= _CACHE_LIMIT // 16:  # many domains: start afresh
                    self._writes.clear()
                    self._connections.clear()
                    self._writes_held = 0
                writes = self._writes[base] = {}
            tid = int(m["tid"] or 0)
            found = (name, base, tid, writes, (name, tid))
        if len(conn) > _CACHED_KEY:
            return found
        if len(self._connections) >= _CACHE_LIMIT:
            self._connections.clear()
        self._connections[conn] = found
        return found

    def _write_of(self, c: Conn, data: str, number: int) -> tuple[str, Target | None, str]:
        """``(path, target when the key matters, value)`` of a write's data field from
        the connection ``c`` (remembered for the connection's domain: a domain writes the
        same keys over and over, often with the same values)."""
        raw_path, _, raw_value = data.partition(" ")
        full = raw_path if raw_path[:1] == "/" else c[1] + raw_path
        path, target = self._paths.get(full) or self._path_info(full)
        value = (
            raw_value if "\\" not in raw_value else unescape(raw_value, f"{self.source}:{number}")
        )
        found = (path, target, value)
        if len(data) > _CACHED_KEY:
            return found
        if self._writes_held >= _WRITES:  # start afresh (connections keep their dicts)
            for held in self._writes.values():
                held.clear()
            self._writes_held = 0
        c[3][data] = found
        self._writes_held += 1
        return found

    def _path_info(self, full: str) -> tuple[str, Target | None]:
        """An absolute path without its trailing ``/``, and its target when its key
        matters (a device's node, or a key the checker follows), else None (remembered)."""
        path = full.rstrip("/")
        target = self._target(path)
        if not (
            target is None
            or target[2] is None
            or (_FRONT_KEY if target[1] == "front" else _BACK_KEY).match(target[2]) is not None
        ):
            target = None
        found = (path, target)
        if len(full) > _CACHED_KEY:
            return found
        if len(self._paths) >= _CACHE_LIMIT:
            self._paths.clear()
        self._paths[full] = found
        return found

    def _buffer(self, name: str, tid: int, pending: Pending) -> None:
        """A write or removal inside transaction ``tid`` of connection ``name``: it
        takes effect at the commit.  The caps (:data:`MAX_OPEN_TRANSACTIONS`,
        :data:`MAX_TRANSACTION_WRITES`, :data:`MAX_BUFFERED`) are checked before it is
        held; past one, the transaction is dropped (:meth:`_drop`)."""
        key = (name, tid)
        held = self.transactions.get(key)
        if held is _DROPPED:
            self._unfollowed(pending, f"transaction {name}.{tid} went past the checker's caps")
            return
        if held is None:
            if len(self.transactions) - self._dropped >= MAX_OPEN_TRANSACTIONS:
                self._drop(
                    key,
                    pending,
                    f"more than {MAX_OPEN_TRANSACTIONS} transactions writing vbd keys are open",
                )
                return
            held = self.transactions[key] = []
        assert isinstance(held, list)
        if len(held) >= MAX_TRANSACTION_WRITES:
            self._drop(
                key,
                pending,
                f"transaction {name}.{tid} writes more than {MAX_TRANSACTION_WRITES} vbd keys",
            )
            return
        if not len(held) % _BLOCK:
            if self._reserved + _BLOCK > MAX_BUFFERED:
                self._drop(
                    key,
                    pending,
                    f"open transactions hold more than {MAX_BUFFERED} writes to vbd keys",
                )
                return
            self._reserved += _BLOCK
        held.append(pending)

    def _release(self, writes: list[Pending]) -> None:
        """A transaction's writes no longer held (its commit, its conflict, its end)."""
        self._reserved -= -(-len(writes) // _BLOCK) * _BLOCK

    def _drop(self, key: tuple[str, int], pending: Pending, why: str) -> None:
        """Transaction ``key`` goes past a cap with ``pending``: what it held is
        forgotten, and every device it wrote (or writes from now on) is unverifiable."""
        held = self.transactions.get(key)
        if held is not _DROPPED and self._dropped >= MAX_DROPPED:
            raise InputError(
                self._where(pending[0]),
                f"{why}, and {MAX_DROPPED} transactions past the checker's caps are open "
                "already: the log cannot be followed further",
            )
        reason = f"{why} (the checker's cap): what it commits is not followed"
        if isinstance(held, list):
            self._release(held)
            for earlier in held:
                self._unfollowed(earlier, reason, pending[0])
        if held is not _DROPPED:
            self._dropped += 1
        self.transactions[key] = _DROPPED
        self._unfollowed(pending, reason)

    def _unfollowed(self, pending: Pending, reason: str, line: int | None = None) -> None:
        """The device a write (or each device a removal) of a dropped transaction
        touches is unverifiable, at ``line`` (default: the request's own)."""
        at = pending[0] if line is None else line
        if pending[1] == "rm":
            keys = dict.fromkeys(key for key, _, _ in self._touched_by(pending[2]))
            keys.setdefault(pending[5], None)
        else:
            keys = {pending[5]: None}
        for key in keys:
            self._unverifiable(key, at, reason)

    def _forget_transaction(self, key: tuple[str, int]) -> list[Pending] | None:
        """Transaction ``key`` ends (its commit, conflict or connection's end): what it
        held, None when it held nothing (or was dropped)."""
        held = self.transactions.pop(key, None)
        if held is _DROPPED:
            self._dropped -= 1
            return None
        if held:
            assert isinstance(held, list)
            self._release(held)
            return held
        return None

    def _forget_oldest_request(self) -> None:
        """Forget the oldest connection's last request (:data:`MAX_CONNECTIONS` are
        remembered).  A dictionary whose first keys are deleted one by one keeps their
        empty slots at its front until it grows, and finding its first key walks them:
        after a quarter of :data:`MAX_CONNECTIONS` such deletions it is rebuilt in place
        (the same keys, in the same order), so forgetting costs the same however long
        the log."""
        requests = self.last_request
        del requests[next(iter(requests))]
        self._forgotten += 1
        if self._forgotten >= MAX_CONNECTIONS // 4:
            self._forgotten = 0
            kept = dict(requests)
            requests.clear()
            requests.update(kept)

    def _malformed(self, text: str, line: int) -> None:
        if not text.strip():
            return
        parse_line(text.rstrip("\n"), line, self.source, self.nb_chars)  # raises
        raise AssertionError("parse_line accepted a line LINE did not")  # pragma: no cover

    def _record(self, record: AccessRecord) -> None:
        op = record.op
        if op in _CHANGES:
            self._change(record)
        elif op in ("commit", "coalesce"):
            if op == "coalesce" and not record.data.startswith("write"):
                return
            self._end_transaction(record, commit=True)
        elif op == "conflict":
            self._end_transaction(record, commit=False)
        elif op == "endconn":
            conn = parse_connection(record.conn)
            if conn is not None:
                for key in [k for k in self.transactions if k[0] == conn.name]:
                    self._forget_transaction(key)
                self.last_request.pop(record.conn, None)
        elif op == "error":
            self._error(record)

    def _where(self, line: int) -> str:
        return f"{self.source}:{line}"

    def _change(self, record: AccessRecord) -> None:
        data = record.data
        if (
            "vbd" not in data
            and "qdisk" not in data
            and not record.cut
            and not (record.op == "rm" and self.devices)
        ):
            return
        conn = parse_connection(record.conn)
        raw_path, sep, raw_value = data.partition(" ")
        if conn is None:
            if not raw_path.startswith("/"):
                raise InputError(
                    self._where(record.line),
                    f"connection {record.conn!r} is not D<domid>, A<n> or "
                    "r(<tid>):<conn>, so the relative path cannot be resolved.",
                )
            conn = parse_connection("A0")
            assert conn is not None
        path = raw_path if raw_path.startswith("/") else conn.base + raw_path
        path = path.rstrip("/")
        target = self._target(path)
        if (record.cut or record.maybe_cut) and (not sep or record.op == "rm"):
            # the path itself is cut: its last component is partial
            if target is not None and target[2] is not None:
                if _could_be_relevant(target[1], target[2]):
                    self._unverifiable(
                        target[0], record.line, f"the line was cut in the path ({raw_path}..)"
                    )
            elif _may_name_a_vbd(path):
                self._note(record.line, f"a line cut in its path may concern a vbd: {path}..")
            return
        if target is None:
            ancestor_of = self._device_under(path) if record.op == "rm" else None
            if ancestor_of is None:
                # a request about no vbd node: an answer to it is not about a tracked write
                self.last_request.pop(record.conn, None)
                return
            target = (ancestor_of, "front", None, None, None)
        key, side, sub, _, _ = target
        if sub is not None and not (_FRONT_KEY if side == "front" else _BACK_KEY).match(sub):
            # an answer to this request (an error, say) is not about a tracked write
            self.last_request.pop(record.conn, None)
            return
        value: str | None = None
        if record.op == "write":
            if record.cut:
                self._unverifiable(key, record.line, f"the value written to {path} was cut (..)")
                return
            if record.maybe_cut and sub is not None:
                self._unverifiable(
                    key,
                    record.line,
                    f"the value written to {path} ends with `..` in a line of "
                    f"{len(raw_path) + len(raw_value)}+ characters, shorter than the "
                    f"{self.nb_chars - 1} of --nb-chars {self.nb_chars}: the log may have been "
                    "written with a smaller access-log-nb-chars (check with --nb-chars N)",
                )
                return
            value = unescape(raw_value, self._where(record.line))
        if record.conn not in self.last_request and len(self.last_request) >= MAX_CONNECTIONS:
            self._forget_oldest_request()
        pending = (
            record.line,
            record.op,
            path,
            value,
            target if record.op == "write" else None,
            key,
            conn.tid,
        )
        self.last_request[record.conn] = pending
        if conn.tid:
            self._buffer(conn.name, conn.tid, pending)
        else:
            self._apply_group(record.line, [pending])

    @staticmethod
    def _locate(path: str) -> tuple[DeviceKey, str, str | None, int | None] | None:
        """(device, side, key under the node or None, back-end domain) of a path."""
        m = _FRONT.match(path)
        if m is not None:
            return (int(m[1]), int(m[2])), "front", m[3], None
        m = _BACK.match(path)
        if m is not None:
            return (int(m[2]), int(m[3])), "back", m[4], int(m[1])
        return None

    @classmethod
    def _target(cls, path: str) -> Target | None:
        """:meth:`_locate`, with the key as a commit names it (``front/state``)."""
        found = cls._locate(path)
        if found is None:
            return None
        key, side, sub, backend = found
        return key, side, sub, backend, None if sub is None else f"{side}/{sub}"

    # ---- the devices' nodes, indexed for removals
    def _device_nodes(self, device: _Device) -> tuple[str, str | None]:
        """The front-end and back-end node paths a removal is compared with."""
        guest, devid = device.key
        back = (
            None
            if device.backend is None
            else f"/local/domain/{device.backend}/backend/vbd/{guest}/{devid}"
        )
        return f"/local/domain/{guest}/device/vbd/{devid}", back

    def _index(self, device: _Device) -> None:
        """Bring the node index up to date with :meth:`_device_nodes` of ``device``."""
        for side, node in zip(("front", "back"), self._device_nodes(device), strict=True):
            slot = (device.key, side)
            old = self._node_of.get(slot)
            if old == node:
                continue
            if old is not None:
                holders = self._nodes[old]
                del holders[device.key]
                if not holders:
                    del self._nodes[old]
                for ancestor in _ancestors(old):
                    below = self._ancestors[ancestor]
                    del below[slot]
                    if not below:
                        del self._ancestors[ancestor]
                del self._node_of[slot]
            if node is None:
                continue
            self._node_of[slot] = node
            self._nodes.setdefault(node, {})[device.key] = side
            for ancestor in _ancestors(node):
                self._ancestors.setdefault(ancestor, {})[slot] = None

    def _touched_by(self, path: str) -> list[tuple[DeviceKey, str, str | None]]:
        """The device nodes a removal of ``path`` takes away (``None``: the whole node,
        ``path`` being the node or one of its ancestors) or takes a key of (the key under
        the node), in the order of the devices, front end first: as comparing ``path``
        with every device's nodes would find them, in a few look-ups."""
        found: list[tuple[int, int, DeviceKey, str, str | None]] = []
        devices = self.devices
        sides = {"front": 0, "back": 1}
        for key, side in self._nodes.get(path, {}).items():
            found.append((devices[key].index, sides[side], key, side, None))
        for key, side in self._ancestors.get(path, {}):
            found.append((devices[key].index, sides[side], key, side, None))
        parts = path.split("/", 8)
        for depth in (7, 8):  # the nodes' depths: /local/domain/G/device/vbd/D and the back's
            if len(parts) > depth:
                node = "/".join(parts[:depth])
                for key, side in self._nodes.get(node, {}).items():
                    found.append(
                        (devices[key].index, sides[side], key, side, path[len(node) + 1 :])
                    )
        found.sort(key=lambda f: (f[0], f[1]))
        return [(key, side, sub) for _, _, key, side, sub in found]

    def _device_under(self, path: str) -> DeviceKey | None:
        """A device whose front-end or back-end node lies under ``path``, if any."""
        below = self._ancestors.get(path)
        if not below:
            return None
        return min(below, key=lambda slot: self.devices[slot[0]].index)[0]

    def _end_transaction(self, record: AccessRecord, commit: bool) -> None:
        conn = parse_connection(record.conn)
        if conn is None or not conn.tid:
            return
        writes = self._forget_transaction((conn.name, conn.tid))
        if commit and writes:
            self._apply_group(record.line, writes)

    def _error(self, record: AccessRecord) -> None:
        conn = parse_connection(record.conn)
        last = self.last_request.pop(record.conn, None)
        if conn is None or last is None:
            return
        origin, key, tid = last[0], last[5], last[6]
        if tid:
            writes = self.transactions.get((conn.name, tid))
            if isinstance(writes, list) and writes and writes[-1][0] == origin:
                writes.pop()  # the refused write never entered the transaction
                if not len(writes) % _BLOCK:
                    self._reserved -= _BLOCK  # its block is empty again
            return
        self._unverifiable(
            key,
            record.line,
            f"xenstored answered {record.data.strip() or 'an error'} to the write "
            f"at line {origin}, so it may not have happened",
        )

    # ---- devices
    def _device(self, key: DeviceKey) -> _Device:
        device = self.devices.get(key)
        if device is None:
            guest, devid = key
            report = DeviceReport(f"vbd {devid} of domain {guest}")
            report.paths["frontend"] = f"/local/domain/{guest}/device/vbd/{devid}"
            self.result.devices.append(report)
            device = _Device(key, report, index=len(self.devices))
            self.devices[key] = device
            self._index(device)
        return device

    def _write_now(self, line: int, pending: Pending) -> None:
        """A write outside a transaction: a commit of its own."""
        self._apply_group(line, [pending])

    def _apply_group(self, line: int, writes: list[Pending]) -> None:
        """The writes and removals of one commit (a transaction, or one request) taking
        effect at ``line``; the FreeBSD projection takes them one at a time."""
        for origin, op, path, value, target, _, _ in writes:
            self._apply(line, origin, op, path, value, target)

    def _apply(
        self,
        line: int,
        origin: int,
        op: str,
        path: str,
        value: str | None,
        target: Target | None = None,
    ) -> None:
        """A write or removal taking effect at ``line`` (made at ``origin``)."""
        if op == "rm":
            self._remove(line, path)
            return
        located = target if target is not None else self._target(path)
        if located is None:
            return
        key, side, sub, backend, _ = located
        device = self._device(key)
        if backend is not None and device.backend != backend:
            device.backend = backend
            device.report.paths["backend"] = (
                f"/local/domain/{backend}/backend/vbd/{key[0]}/{key[1]}"
            )
            self._index(device)
        if sub is None or value is None:
            return
        if device.states is None and not device.front and not device.back:
            device.report.lifecycles += 1
        (device.front if side == "front" else device.back)[sub] = value
        when = f"line {origin}" + (f", committed at line {line}" if origin != line else "")
        event = f"{path} = {value!r} ({when})"
        if (
            sub == "state"
            and value.isascii()
            and value.isdigit()
            and len(value) < 3
            and int(value) in X._value2member_map_
        ):
            device.seen["fe_state" if side == "front" else "be_state"] = X(int(value))
        elif sub == "online" and side == "back" and value in ("0", "1"):
            device.seen["be_online"] = value == "1"
        if device.stopped:
            return
        if sub == "state":
            self._state_write(
                device, line, "fe_state" if side == "front" else "be_state", value, event
            )
        elif sub == "online" and side == "back":
            if value not in ("0", "1"):
                self._diverge(device, line, event, f"online must be 0 or 1, not {value!r}")
                return
            self._observe(device, line, Observation("be_online", value == "1"), event)
        else:
            self._published_changed(device, line, event)

    def _state_write(
        self, device: _Device, line: int, field_name: str, value: str, event: str
    ) -> None:
        if (
            not (value.isascii() and value.isdigit() and len(value) < 3)
            or int(value) not in X._value2member_map_
        ):
            self._diverge(device, line, event, f"{value!r} is not a XenbusState (0..8)")
            return
        self._observe(device, line, Observation(field_name, X(int(value))), event)

    def _observe(self, device: _Device, line: int, obs: Observation, event: str) -> None:
        device.report.observations += 1
        p = self.projection
        if device.states is None:
            if obs.field == "be_online":
                return  # the tool stack's initial online=1, before any state
            device.states = frozenset({p.initial}) if obs.value == X.Initialising else p.join(obs)
            if obs.value != X.Initialising:
                device.report.joined_at = line
                return
        outcome = p.observe(device.states, obs)
        states = outcome.states
        if not states:
            gap = p.gap(device.states, obs)
            resumed = p.resynchronise(device.states, obs) if gap is not None else frozenset()
            if gap is None or not resumed:
                reason = "the model has no step that makes this write from here"
                if gap is not None:
                    reason += (
                        f" ({gap.name}: legal per blkif.h but outside the model, and no "
                        "model state agrees with the log after it)"
                    )
                    self._gap(device, line, gap.name, gap.doc)
                    self._stop_unverifiable(
                        device,
                        line,
                        f"{gap.name}: the model cannot follow this device past this write",
                    )
                    return
                self._diverge(device, line, f"{obs.describe()}: {event}", reason)
                return
            self._gap(device, line, gap.name, gap.doc)
            states = resumed
        self._check_published(device, line, states, f"{obs.describe()}: {event}")

    def _published_changed(self, device: _Device, line: int, event: str) -> None:
        if device.states is None:
            return
        self._check_published(device, line, device.states, event)

    def _check_published(self, device: _Device, line: int, states: States, event: str) -> None:
        published, why = transport_published(device.front, device.back)
        device.published = published
        kept, broken = self.projection.check_published(states, published)
        if not kept:
            self._diverge(
                device,
                line,
                event,
                f"the log breaks the model's invariant {', '.join(broken)}: {why}",
            )
            return
        device.states = kept

    def _remove(self, line: int, path: str) -> None:
        """``rm`` of ``path`` taking effect: a device whose node goes ends its life; a key
        removed under a node is gone from that side."""
        ended: DeviceKey | None = None
        for key, side, sub in self._touched_by(path):
            if key == ended:
                continue
            device = self.devices[key]
            if sub is None:
                self._end_life(device)
                ended = key
                continue
            keys = device.front if side == "front" else device.back
            removed = [k for k in keys if k == sub or k.startswith(sub + "/")]
            for k in removed:
                del keys[k]
            if removed and not device.stopped:
                self._published_changed(device, line, f"rm {path} (line {line})")

    def _end_life(self, device: _Device) -> None:
        """A node was removed: this lifetime is over (the verdict stays)."""
        device.states = None
        device.stopped = device.report.first_divergence is not None
        device.front.clear()
        device.back.clear()

    # ---- findings
    def _diverge(self, device: _Device, line: int, event: str, reason: str) -> None:
        """Record the device's first divergence: the model states before the line and
        the writes they allow."""
        p = self.projection
        before = device.states if device.states is not None else frozenset({p.initial})
        device.report.first_divergence = Divergence(
            line=line,
            event=event,
            allowed=p.allowed(before),
            reason=reason,
            state=p.describe_states(p.closure(before)),
        )
        device.stopped = True

    def _note(self, line: int, message: str) -> None:
        if len(self.result.notes) < MAX_NOTES:
            self.result.notes.append(Finding(line, "unverifiable", message))

    def _gap(self, device: _Device, line: int, name: str, doc: str) -> None:
        if len(device.report.gaps) < MAX_GAPS:
            device.report.gaps.append(Finding(line, name, doc))

    def _unverifiable(self, key: DeviceKey, line: int, message: str) -> None:
        device = self._device(key)
        if not device.stopped:
            self._stop_unverifiable(device, line, message)

    def _stop_unverifiable(self, device: _Device, line: int, message: str) -> None:
        device.report.unverifiable = Finding(line, "unverifiable", message)
        device.stopped = True
        device.out = None

    # ---- the end
    def finish(self) -> CheckResult:
        """The result, with every device's final state filled in."""
        for device in self.devices.values():
            final: dict[str, Any] = {}
            for name in ("fe_state", "be_state"):
                if name in device.seen:
                    final[name] = X(device.seen[name]).name
            if "be_online" in device.seen:
                final["online"] = int(device.seen["be_online"])
            final["transport_published"] = device.published
            if device.states is not None and not device.stopped:
                final["model"] = self.projection.describe_states(device.states, limit=1)
            device.report.final = final
        return self.result


def _ancestors(node: str) -> tuple[str, ...]:
    """Every proper ancestor of a node path, the root (``""``) first."""
    if "/" not in node:
        return ()
    parent = node.rpartition("/")[0]
    return (*_ancestors_of(parent), parent)


@lru_cache(maxsize=4096)
def _ancestors_of(path: str) -> tuple[str, ...]:
    """:func:`_ancestors` of a devices' parent directory (shared by its devices)."""
    if "/" not in path:
        return ()
    parent = path.rpartition("/")[0]
    return (*_ancestors_of(parent), parent)
