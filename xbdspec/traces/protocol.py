"""Checking what a vbd's two ends and the tool stack write to xenstore against the
protocol model.

The input is a sequence of *commits*: each one xenstore transaction or single write
(or removal), by the front end, the back end or the tool stack, with the keys it
writes relative to the front end's (``front/``) and the back end's (``back/``)
directory.  The checker keeps the two directories as xenstore holds them and the set
of protocol states consistent with what it has seen; each commit becomes the protocol
steps it stands for (:func:`steps_of`), with their parameters read from the
directories (the back end's offers and features when it writes its state, the front
end's transport keys when they are complete), and every state of the set takes them.

A verdict has three levels:

* **conforms**: every commit is a protocol step (or changes nothing the protocol
  sees);
* **tolerated deviation**: some commit was a step the headers do not allow but real
  peers accept, named (:data:`xbdspec.model.protocol.DEVIATIONS`);
* **violation**: some commit is no step from any state the checker holds; the report
  names the commit and, for the step it stood for, the rules it breaks.

Keys whose value only needs to be present are checked for presence; numbers must be
decimal ASCII digits (at most 10, 20 for ``sectors``), and ring orders and queue counts are
capped at :data:`LIMITS`.  When the back end goes Connected its device properties must
keep blkif.h's rules (:data:`xbdspec.model.protocol.content.PROPERTY_RULES`).

Checking is a walk in a table (:class:`StepTable`), built as the commits come: the set
of states held, with the directories as the checker reads them, is a node; a commit
seen before from the same node is a look-up of the node it leads to.  Only steps that
are taken are recorded: a violation is always worked out, and worded, by the direct
step.  The ring steps of a protocol trace (a harness's) are taken by compiled steps
(:mod:`xbdspec.traces.compiled`: each step of the declaration, with its parameters,
made one Python function of the state the second time it is met), line after line
(:meth:`ProtocolChecker.take_line`); :meth:`ProtocolChecker.take` looks them up, as
commits, on the held set with the ring's indices moved back to where they start (the
ring's macros read only their differences).  A refused step is always worded by the
model's own step.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from xbdspec.errors import InputError
from xbdspec.model.concrete import Stepper, effect_changes
from xbdspec.model.declaration import Bindings, Instance, Spec
from xbdspec.model.protocol import DEVIATIONS, ProtocolSizes, build_protocol_spec
from xbdspec.model.protocol.content import PROPERTY_RULES, DeviceProperties, broken_rules
from xbdspec.model.protocol.ring import table as ring_table
from xbdspec.model.protocol.vocabulary import Operation
from xbdspec.model.vocabulary import XenbusState

from .compiled import CompiledStep, compile_step

X = XenbusState

#: The largest values the checker instantiates the protocol model with.
LIMITS = {"ring-page-order": 8, "queues": 64}
#: A commit line longer than this is refused before it is parsed.
MAX_LINE = 1 << 16

_RING_REF = re.compile(r"ring-ref([0-9]+)?")
_QUEUE_KEY = re.compile(r"queue-([0-9]+)/(ring-ref([0-9]+)?|event-channel)")
TRANSPORT_KEYS = frozenset(
    {"event-channel", "protocol", "ring-page-order", "num-ring-pages", "multi-queue-num-queues"}
)


#: The protocol's ring steps: a xenstore log shows none of them.
RING_STEPS = frozenset(t.name for t in ring_table.transitions)


class Verdict:
    """The three levels of a verdict."""

    CONFORMS = "conforms"
    TOLERATED = "tolerated deviation"
    VIOLATION = "violation"


@dataclass(frozen=True)
class Commit:
    """One atomic xenstore commit.

    Attributes:
        by: ``frontend``, ``backend`` or ``toolstack``.
        writes: ``{"front/state": "3", ...}``.
        remove: the directories (``front``, ``back``) or keys removed.
        where: the commit's place in its source (``file:line``).
    """

    by: str
    writes: Mapping[str, str]
    remove: tuple[str, ...]
    where: str


@dataclass
class Report:
    """What checking a sequence of commits found.

    Attributes:
        verdict: one of :class:`Verdict`'s levels.
        commits: how many commits were checked.
        steps: the protocol steps taken, as labels, in order (along one consistent path).
        deviations: the tolerated deviations the path used.
        violation: for a violation, where and why.
    """

    verdict: str = Verdict.CONFORMS
    commits: int = 0
    steps: list[str] = field(default_factory=list)
    deviations: list[str] = field(default_factory=list)
    violation: str = ""

    @property
    def exit_code(self) -> int:
        """0 conforms or tolerated, 1 a violation (``xbdspec check``'s statuses)."""
        return 1 if self.verdict == Verdict.VIOLATION else 0

    def render(self, source: str) -> str:
        """The report as text."""
        lines = [
            f"{source}: {self.verdict} ({self.commits} commits, {len(self.steps)} protocol steps)"
        ]
        for name in self.deviations:
            lines.append(f"  tolerated deviation {name}: {DEVIATIONS[name]}")
        if self.violation:
            lines.append(f"  {self.violation}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "commits": self.commits,
            "steps": self.steps,
            "deviations": self.deviations,
            "violation": self.violation,
        }


# --------------------------------------------------------------------------- reading


def read_commits(lines: Iterable[str], source: str) -> tuple[dict[str, Any], list[Commit]]:
    """The header object and the commits of a JSON-lines file of commits."""
    stream = iter_commits(lines, source)
    header = next(stream)
    assert isinstance(header, dict)
    return header, [c for c in stream if isinstance(c, Commit)]


def iter_commits(
    lines: Iterable[str], source: str
) -> Iterator[dict[str, Any] | Commit | RingSteps]:
    """The header object, then each commit as it is read (one line in memory at a time).

    A line read before (a harness repeats its ring steps line for line) is not parsed
    again: what it says is remembered (lines of at most :data:`CACHED_LINE` characters,
    :data:`CACHED_LINES` of them), and only its place in the file is new.  A line that
    differs from one read before only in the harness's event number it ends with
    (``, "event": N}``, which the check does not read) counts as read before."""
    for number, item in _read_lines(lines, source):
        if isinstance(item, RingLine):
            yield RingSteps(item.queue, item.steps, item.what, f"{source}:{number}", item.key)
        elif isinstance(item, Commit):
            yield Commit(item.by, item.writes, item.remove, f"{source}:{number}")
        else:
            yield item


@dataclass(eq=False)
class RingLine:
    """A line of ring steps as it was read, shared by every line that says the same
    (:func:`_read_lines`): what :class:`RingSteps` says but its place, and what the
    checkers work out of it once (the steps' instances and labels, their compiled
    steps: :meth:`ProtocolChecker.take_line`).

    Attributes:
        queue: the ring's queue.
        steps: ``(transition name, parameters)`` of the ring's table, in order.
        what: what the harness saw happen, in words.
        key: the steps as the step table keys them (:func:`steps_key`).
        named: ``what`` as a violation names it (with the queue when it is not 0).
    """

    queue: int
    steps: tuple[tuple[str, dict[str, Any]], ...]
    what: str
    key: str
    named: str = ""
    #: the checker of the line's queue in the stream it was read from
    #: (:func:`_check_stream`)
    checker: Any = field(default=None, repr=False)
    #: the step table the fields below were worked out for
    table: Any = field(default=None, repr=False)
    #: the steps' instances and labels (:meth:`StepTable.prepared`)
    prepared: Any = field(default=None, repr=False)
    #: the compiled steps and their deviations, once every step is compiled
    compiled: Any = field(default=None, repr=False)


def _read_lines(
    lines: Iterable[str], source: str
) -> Iterator[tuple[int, dict[str, Any] | Commit | RingLine]]:
    """:func:`iter_commits` with each item's line number: the header object, then
    each commit (a :class:`Commit` whose ``where`` is the first line that said it) or
    line of ring steps (a :class:`RingLine`), the same object for every line that
    says the same."""
    reader = _Reader(source)
    known = reader.known
    for number, line in enumerate(lines, 1):
        found: dict[str, Any] | Commit | RingLine | None = known.get(_without_event(line))
        if found is None:
            found = reader.parse(line, number)
            if found is None:
                continue
        yield number, found
    reader.finish()


class _Reader:
    """What :func:`_read_lines` and :func:`_check_stream` share: the lines met (a line
    read before is not parsed again), and the parsing of a new line.

    Attributes:
        known: :func:`_without_event` of each line met (of at most
            :data:`CACHED_LINE` characters, :data:`CACHED_LINES` of them) -> what it
            says.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.known: dict[str, Commit | RingLine] = {}
        self.seen_header = False

    def parse(self, line: str, number: int) -> dict[str, Any] | Commit | RingLine | None:
        """What line ``number`` says (the first object is the header), None for a blank
        line; an :class:`InputError` naming the line when it says nothing a file of
        commits can."""
        where = f"{self.source}:{number}"
        if len(line) > MAX_LINE:
            raise InputError(where, f"the line is longer than {MAX_LINE} characters")
        if not line.strip():
            return None
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:  # ValueError: not JSON, or past 4300 digits
            reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
            raise InputError(where, f"not a JSON object: {reason}") from None
        if not isinstance(obj, dict):
            raise InputError(where, "each line must be a JSON object")
        if not self.seen_header:
            self.seen_header = True
            return obj
        item: Commit | RingLine
        if "steps" in obj:
            ring = _ring_steps(obj, where)
            named = f"queue {ring.queue}: {ring.what}" if ring.queue else ring.what
            item = RingLine(ring.queue, ring.steps, ring.what, ring.key, named)
        else:
            item = _commit(obj, where)
        if len(line) <= CACHED_LINE:
            if len(self.known) >= CACHED_LINES:
                self.known.clear()
            self.known[_without_event(line)] = item
        return item

    def finish(self) -> None:
        """The end of the file: an :class:`InputError` when it held no header."""
        if not self.seen_header:
            raise InputError(self.source, "empty: a file of commits starts with a header object")


#: Lines remembered by :func:`iter_commits`: at most this long, and this many.
CACHED_LINE = 2048
CACHED_LINES = 4096
_EVENT = ', "event": '


def _without_event(line: str) -> str:
    """``line`` without the harness's event number when it ends with one (``, "event":
    N}`` with N a JSON whole number, then only white space), else ``line`` itself."""
    at = line.rfind(_EVENT)
    if at >= 0 and _EVENT_TAIL.match(line, at + len(_EVENT)) is not None:
        return line[:at] + "}"
    return line


#: What follows ``, "event": `` at the end of a line with a harness's event number: a
#: JSON whole number (no leading zero), ``}``, white space (``str.isspace``'s).
_EVENT_TAIL = re.compile(r"(?:0|[1-9][0-9]*)\}\s*\Z")


@dataclass(frozen=True)
class RingSteps:
    """Protocol steps on one queue's ring that a harness saw (not xenstore commits):
    a line ``{"by": "frontend", "queue": 0, "steps": [["frontend_write_request",
    {"id": 0, "op": "READ", ...}], ...], "what": "..."}`` of a trace the protocol
    harness (:mod:`xbdspec.world`) recorded.

    Attributes:
        queue: the ring's queue.
        steps: ``(transition name, parameters)`` of the ring's table, in order.
        what: what the harness saw happen, in words (for a violation's message).
        where: the line's place in its source.
    """

    queue: int
    steps: tuple[tuple[str, dict[str, Any]], ...]
    what: str
    where: str
    #: the steps as the step table keys them (:func:`steps_key`)
    key: str = field(default="", compare=False, repr=False)


def steps_key(steps: Iterable[tuple[str, Mapping[str, Any]]]) -> str:
    """Ring steps as the step table keys them: their exact text (``1`` and ``True``,
    equal in Python, are different parameters of a step)."""
    return repr([(name, sorted(params.items())) for name, params in steps])


#: At most this many steps on one line of ring steps.
MAX_STEPS_PER_LINE = 4096


def _ring_steps(obj: Mapping[str, Any], where: str) -> RingSteps:
    queue = obj.get("queue", 0)
    if not isinstance(queue, int) or isinstance(queue, bool) or not 0 <= queue < LIMITS["queues"]:
        raise InputError(where, f"'queue' must be a queue number below {LIMITS['queues']}")
    raw = obj.get("steps")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_STEPS_PER_LINE:
        raise InputError(
            where, f"'steps' must be a list of 1 to {MAX_STEPS_PER_LINE} [name, parameters]"
        )
    steps: list[tuple[str, dict[str, Any]]] = []
    for item in raw:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not isinstance(item[0], str)
            or not isinstance(item[1], dict)
        ):
            raise InputError(where, "each step is [name, {parameters}]")
        name, params = item
        if name not in RING_STEPS:
            raise InputError(
                where, f"{name[:60]!r} is no ring step; ring steps: {', '.join(sorted(RING_STEPS))}"
            )
        steps.append((name, _step_params(params, where)))
    what = obj.get("what", "ring steps")
    return RingSteps(
        queue,
        tuple(steps),
        what if isinstance(what, str) else "ring steps",
        where,
        steps_key(steps),
    )


def _step_params(params: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A step's JSON parameters as the model's values: ``op`` by name, lists as tuples;
    every other value a bool or a small whole number."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key == "op":
            if not isinstance(value, str) or value not in Operation.__members__:
                raise InputError(
                    where, f"'op' must name a BLKIF_OP: {', '.join(Operation.__members__)}"
                )
            out[key] = Operation[value]
        elif isinstance(value, list):
            if not all(isinstance(v, bool) for v in value) or len(value) > 1024:
                raise InputError(where, f"{key[:40]!r} must be a list of booleans")
            out[key] = tuple(value)
        elif isinstance(value, bool) or (isinstance(value, int) and 0 <= value < 1 << 32):
            out[key] = value
        else:
            raise InputError(where, f"{key[:40]!r} must be a boolean or a whole number")
    return out


def _commit(obj: Mapping[str, Any], where: str) -> Commit:
    by = obj.get("by")
    if by not in ("frontend", "backend", "toolstack"):
        raise InputError(where, f"'by' must be frontend, backend or toolstack, not {by!r}")
    writes = obj.get("writes", {})
    remove = obj.get("remove", [])
    if not isinstance(writes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in writes.items()
    ):
        raise InputError(where, "'writes' must map keys to string values")
    if not isinstance(remove, list) or not all(isinstance(r, str) for r in remove):
        raise InputError(where, "'remove' must be a list of directories or keys")
    for key in (*writes, *remove):
        if key.split("/", 1)[0] not in ("front", "back"):
            raise InputError(where, f"key {key!r} is in neither front/ nor back/")
    for key in writes:
        if not key.partition("/")[2]:
            raise InputError(where, f"a write names a key under front/ or back/, not {key!r}")
    return Commit(by, dict(writes), tuple(remove), where)


def _number(value: str, key: str, where: str, digits: int = 10) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > digits:
        raise InputError(where, f"{key} = {value!r} is not a decimal number (ASCII digits)")
    return int(value)


# --------------------------------------------------------------------------- the directories


@dataclass
class Directories:
    """The front end's and the back end's directories as xenstore holds them."""

    front: dict[str, str] = field(default_factory=dict)
    back: dict[str, str] = field(default_factory=dict)
    #: bumped by every change made through :meth:`apply` (the step table's node of a
    #: checker is valid for one version)
    version: int = field(default=0, compare=False, repr=False)

    def apply(self, commit: Commit) -> None:
        """The directories after ``commit``: its writes, then its removals."""
        self.apply_parts(commit.writes, commit.remove)

    def apply_parts(self, writes: Mapping[str, str], remove: Iterable[str]) -> None:
        """:meth:`apply` of a commit's writes and removals."""
        self.version += 1
        for key, value in writes.items():
            side, name = key.split("/", 1)
            (self.front if side == "front" else self.back)[name] = value
        for key in remove:
            side, _, name = key.partition("/")
            target = self.front if side == "front" else self.back
            if not name:
                target.clear()
            else:
                for existing in [k for k in target if k == name or k.startswith(name + "/")]:
                    del target[existing]

    def back_offers(self, where: str) -> dict[str, int]:
        """The back end's transport limits (their defaults when absent)."""
        b = self.back
        order = (
            _number(b["max-ring-page-order"], "max-ring-page-order", where)
            if "max-ring-page-order" in b
            else 0
        )
        if "max-ring-pages" in b:
            pages = _number(b["max-ring-pages"], "max-ring-pages", where)
            order = max(order, max(pages.bit_length() - 1, 0))
        queues = (
            _number(b["multi-queue-max-queues"], "multi-queue-max-queues", where)
            if "multi-queue-max-queues" in b
            else 1
        )
        return {
            "max_order": min(order, LIMITS["ring-page-order"]),
            "max_queues": max(1, min(queues, LIMITS["queues"])),
        }

    def back_features(self, where: str) -> dict[str, bool]:
        """The back end's feature keys (absent: 0)."""

        def flag(key: str) -> bool:
            return key in self.back and _number(self.back[key], key, where) != 0

        return {
            "barrier": flag("feature-barrier"),
            "flush": flag("feature-flush-cache"),
            "discard": flag("feature-discard"),
            "indirect": "feature-max-indirect-segments" in self.back,
            "persistent": flag("feature-persistent"),
        }

    def device_properties(self, where: str) -> DeviceProperties | str:
        """The back end's device properties, or what is missing."""
        b = self.back
        missing = [k for k in ("sectors", "sector-size") if k not in b]
        if missing:
            return f"the back end goes Connected without {', '.join(missing)}"
        large = self.front.get("feature-large-sector-size", "0")
        return DeviceProperties(
            sectors=_number(b["sectors"], "sectors", where, digits=20),
            sector_size=_number(b["sector-size"], "sector-size", where),
            info=_number(b.get("info", "0"), "info", where),
            physical_sector_size=(
                _number(b["physical-sector-size"], "physical-sector-size", where)
                if "physical-sector-size" in b
                else None
            ),
            large_sector_size=_number(large, "feature-large-sector-size", where) != 0,
        )

    def front_transport(self, where: str) -> tuple[bool, dict[str, Any], str]:
        """Whether the front end's transport keys are complete, their values, and what
        is missing or inconsistent (empty when complete and consistent)."""
        f = self.front
        queues = (
            _number(f["multi-queue-num-queues"], "multi-queue-num-queues", where)
            if "multi-queue-num-queues" in f
            else 1
        )
        order = (
            _number(f["ring-page-order"], "ring-page-order", where)
            if "ring-page-order" in f
            else None
        )
        if "num-ring-pages" in f:
            pages = _number(f["num-ring-pages"], "num-ring-pages", where)
            from_pages = max(pages.bit_length() - 1, 0)
            if pages & (pages - 1) or pages == 0:
                return False, {}, f"inconsistent: num-ring-pages = {pages} is not a power of two"
            if order is not None and order != from_pages:
                return (
                    False,
                    {},
                    (
                        f"inconsistent: ring-page-order = {order} and num-ring-pages = {pages} "
                        "disagree (blkif.h "
                        "note 3: both schemes publish identical ring parameters)"
                    ),
                )
            order = from_pages
        order = order or 0
        for name, value, cap in (
            ("ring-page-order", order, LIMITS["ring-page-order"]),
            ("multi-queue-num-queues", queues, LIMITS["queues"]),
        ):
            if value > cap:
                return (
                    False,
                    {},
                    (
                        f"inconsistent: {name} = {value} is above {cap}, the most the checker "
                        "follows (no back end offers more)"
                    ),
                )
        toplevel = any(_RING_REF.fullmatch(k) for k in f) or "event-channel" in f
        persistent = (
            "feature-persistent" in f
            and _number(f["feature-persistent"], "feature-persistent", where) != 0
        )
        values = {
            "order": min(order, LIMITS["ring-page-order"]),
            "queues": max(1, min(queues, LIMITS["queues"])),
            "toplevel": toplevel,
            "persistent": persistent,
        }
        prefixes = [""] if queues == 1 else [f"queue-{q}/" for q in range(queues)]
        for prefix in prefixes:
            refs = (
                [f"{prefix}ring-ref"]
                if order == 0
                else [f"{prefix}ring-ref{i}" for i in range(1 << order)]
            )
            if order == 0 and f"{prefix}ring-ref" not in f and f"{prefix}ring-ref0" in f:
                refs = [f"{prefix}ring-ref0"]
            missing = [k for k in (*refs, f"{prefix}event-channel") if k not in f]
            if missing:
                return False, values, f"missing {', '.join(missing)}"
        return True, values, ""


def _is_transport_key(key: str) -> bool:
    return (
        key in TRANSPORT_KEYS or bool(_RING_REF.fullmatch(key)) or bool(_QUEUE_KEY.fullmatch(key))
    )


def _state(commit: Commit, side: str) -> int | None:
    value = commit.writes.get(f"{side}/state")
    return None if value is None else _number(value, f"{side}/state", commit.where)


# --------------------------------------------------------------------------- commits as steps


_FRONT_STATE_STEP: dict[int, str] = {
    X.Initialising: "frontend_reconnect",
    X.Initialised: "frontend_initialised",
    X.Connected: "frontend_connected",
    X.Closing: "frontend_closing",
    X.Closed: "frontend_closed",
}
_BACK_STATE_STEP: dict[int, str] = {
    X.InitWait: "backend_init_wait",
    X.Initialised: "backend_skip_init_wait",
    X.Connected: "backend_connect",
    X.Closing: "backend_closing",
    X.Closed: "backend_closed",
}
_PUBLISH_STEP: dict[int | None, str] = {
    None: "frontend_publish_transport",
    X.Initialised: "frontend_publish_transport_initialised",
    X.Connected: "frontend_publish_transport_connected",
}


def steps_of(
    commit: Commit, before: Directories, after: Directories, current: Mapping[str, int]
) -> list[tuple[str, dict[str, Any]]] | str:
    """The protocol steps ``commit`` stands for, in order, with their parameters; or, for
    a commit that can be no step at all, why.

    ``current`` holds the state nodes' values before the commit (``front``, ``back``):
    a state written again with the value it has changes nothing.
    """
    where = commit.where
    front_state, back_state = _state(commit, "front"), _state(commit, "back")
    if commit.by == "toolstack":
        steps: list[tuple[str, dict[str, Any]]] = []
        online = commit.writes.get("back/online")
        if online is not None and _number(online, "back/online", where) == 0:
            steps.append(
                ("toolstack_detach" if back_state == X.Closing else "toolstack_set_offline", {})
            )
        elif back_state is not None and back_state != current["back"]:
            if back_state == X.Initialising and front_state == X.Initialising:
                steps.append(("toolstack_resume", {}))
            else:
                shown = _name(back_state)
                return f"the tool stack writes the back end's state {shown} outside a detach"
        elif front_state is not None and front_state != current["front"]:
            return f"the tool stack writes the front end's state {_name(front_state)}"
        for removed in commit.remove:
            if removed == "front":
                steps.append(("toolstack_remove_front", {}))
            elif removed == "back":
                steps.append(("toolstack_remove_back", {}))
        return steps
    if commit.by == "backend":
        if front_state is not None:
            return "the back end writes the front end's state node"
        if back_state is None or back_state == current["back"]:
            return []
        if back_state not in _BACK_STATE_STEP:
            return f"the back end writes state {_name(back_state)}, which no protocol step writes"
        name = _BACK_STATE_STEP[back_state]
        params: dict[str, Any] = {}
        if name in ("backend_init_wait", "backend_skip_init_wait", "backend_connect"):
            params.update(after.back_features(where))
        if name == "backend_init_wait":
            params.update(after.back_offers(where))
        return [(name, params)]
    # the front end
    if back_state is not None:
        return "the front end writes the back end's state node"
    transport_written = any(
        _is_transport_key(key.split("/", 1)[1]) for key in commit.writes if key.startswith("front/")
    )
    # removing a key that is not there changes nothing (xenstored answers ENOENT)
    taken = [
        k
        for k in commit.remove
        if k.startswith("front/") and _is_transport_key(k[6:]) and k[6:] in before.front
    ]
    if taken and current["front"] not in (X.Initialising, X.Closed, X.Unknown):
        return (
            f"the front end removes {', '.join(taken)} while {_name(current['front'])}: the "
            "transport parameters are in effect for the whole connection"
        )
    if transport_written:
        complete, values, missing = after.front_transport(where)
        if missing.startswith("inconsistent: "):
            return missing.removeprefix("inconsistent: ")
        if complete:
            publish = _PUBLISH_STEP.get(front_state)
            if publish is None:
                return (
                    f"the front end writes state {_name(front_state)} with its transport keys; "
                    "only Initialised or Connected may go with them"
                )
            return [(publish, values)]
        if current["front"] != X.Initialising:
            # a key written outside Initialising: the publish step names the rule it breaks
            return [
                (
                    _PUBLISH_STEP[None],
                    values or {"order": 0, "queues": 1, "toplevel": True, "persistent": False},
                )
            ]
    if front_state is None or front_state == current["front"]:
        return []
    if front_state not in _FRONT_STATE_STEP:
        return f"the front end writes state {_name(front_state)}, which no protocol step writes"
    return [(_FRONT_STATE_STEP[front_state], {})]


def _name(value: int | None) -> str:
    if value is None:
        return "none"
    try:
        return f"{XenbusState(value).name} ({value})"
    except ValueError:
        return repr(value)


# --------------------------------------------------------------------------- the step table


#: The keys whose *values* the checker reads (:func:`steps_of` and the
#: :class:`Directories` methods it calls); of every other key it reads only whether it is
#: there.  Two directories that agree on these values and on which keys exist are
#: checked alike, which is what makes the step table below finite.
VALUE_KEYS = frozenset(
    {
        "front/state",
        "front/multi-queue-num-queues",
        "front/ring-page-order",
        "front/num-ring-pages",
        "front/feature-persistent",
        "front/feature-large-sector-size",
        "back/state",
        "back/online",
        "back/max-ring-page-order",
        "back/max-ring-pages",
        "back/multi-queue-max-queues",
        "back/feature-barrier",
        "back/feature-flush-cache",
        "back/feature-discard",
        "back/feature-persistent",
        "back/sectors",
        "back/sector-size",
        "back/info",
        "back/physical-sector-size",
    }
)

#: The ring's free-running indices (``RING_IDX``) in a protocol state.
RING_INDICES = (
    "req_prod_pvt",
    "req_prod",
    "req_event",
    "req_cons",
    "rsp_prod_pvt",
    "rsp_prod",
    "rsp_event",
    "rsp_cons",
)

#: A held set of states with the ring's indices moved back to where they start.
RingSet = tuple[tuple[Any, frozenset[str]], ...]

#: A commit as the step table sees it: who, each key written with its value when the
#: checker reads it (else None), and what is removed.
Signature = tuple[str, tuple[tuple[str, str | None], ...], tuple[str, ...]]


def signature(by: str, writes: Mapping[str, str], remove: tuple[str, ...]) -> Signature:
    """The commit as the step table keys it: values the checker never reads left out."""
    return (by, tuple([(k, v if k in VALUE_KEYS else None) for k, v in writes.items()]), remove)


def abstract(dirs: Directories) -> frozenset[tuple[str, str | None]]:
    """The directories as the step table sees them (values the checker never reads left
    out)."""
    keys = [("front/" + k, v) for k, v in dirs.front.items()]
    keys += [("back/" + k, v) for k, v in dirs.back.items()]
    return frozenset((k, v if k in VALUE_KEYS else None) for k, v in keys)


class StepTable:
    """The protocol checker's steps as a lazily determinised automaton, shared by every
    checker of one set of sizes.

    A checker's configuration is the set of protocol states it holds (each with the
    deviations of its path) and the two directories; what a commit does to it depends
    only on the states, on which keys the directories hold and on the values of
    :data:`VALUE_KEYS` (:func:`signature`).  The table interns each configuration seen
    as a small number (a *node*) and records, the first time a commit of a given
    signature is checked from a node, the node it leads to and the steps' labels: the
    next time the same commit from the same node is a dictionary look-up.  Only steps
    that are taken are recorded; a violation, or a value no step can take, is always
    worked out by the direct step (:meth:`ProtocolChecker.check_direct`), so its
    message is the direct step's own.

    It also holds the compiled ring steps (:meth:`compiled`), shared the same way.

    Memory is bounded: past :data:`MAX_NODES` nodes or :data:`MAX_EDGES` transitions the
    table starts afresh (a new :attr:`generation`; checkers re-intern their
    configuration on their next commit); past :data:`MAX_COMPILED` compiled steps, they
    are compiled afresh.
    """

    #: The most configurations, and transitions, kept before the table starts afresh.
    MAX_NODES = 1 << 14
    MAX_EDGES = 1 << 16
    #: Commits of more keys, lines of more ring steps, held sets of more states and
    #: directories of more keys than this, and ring steps whose text is longer than
    #: :data:`MAX_KEY_TEXT`, are always taken directly: the table's memory is bounded.
    MAX_KEYS = 64
    MAX_KEY_TEXT = 1024
    #: The most ring-step transitions, and prepared lines of ring steps, kept.
    MAX_RING_EDGES = 1 << 15
    MAX_PREPARED = 1 << 12
    #: A ring step (an instance) is compiled (:mod:`xbdspec.traces.compiled`) the time
    #: it is taken this many times, in any line (the first time: 1); at most
    #: :data:`MAX_COMPILED` compiled steps are kept.
    COMPILE_AFTER = 2
    MAX_COMPILED = 1 << 12

    def __init__(self, sizes: ProtocolSizes) -> None:
        self.sizes = sizes
        self.spec: Spec = build_protocol_spec(sizes)
        self.stepper = Stepper(self.spec)
        self.transitions = {t.name: t for t in self.spec.transitions}
        self.controls = {t.name: self.spec.control_of(t) for t in self.spec.transitions}
        self.initial: dict[Any, frozenset[str]] = {self.stepper.initial(): frozenset()}
        fields = self.spec.State._fields
        self._indices = tuple(fields.index(f) for f in RING_INDICES)
        self._cons = fields.index("req_cons")
        self.generation = 0
        self._instances: dict[tuple[Any, ...], Instance] = {}
        self._labels: dict[tuple[Any, ...], str] = {}
        self._prepared: dict[str, tuple[list[tuple[Instance, str]], tuple[str, ...]]] = {}
        #: instance (by id) -> (the instance, its compiled step or None, how many times
        #: it was asked for before (-1: it cannot be compiled))
        self._compiled: dict[int, tuple[Instance, CompiledStep | None, int]] = {}
        self._sample = self.stepper.initial()
        #: the compiled steps' code objects, by their text
        self._codes: dict[str, types.CodeType] = {}
        self.restart()

    def restart(self) -> None:
        """Forget every node and transition (a new generation)."""
        self.generation += 1
        self._ids: dict[tuple[Any, ...], int] = {}
        #: node -> the states it holds (shared: a checker never changes a held set in place)
        self.states: list[dict[Any, frozenset[str]]] = []
        #: (node, signature) -> (the node after the commit, the steps' labels)
        self.edges: dict[tuple[int, Signature], tuple[int, tuple[str, ...]]] = {}
        #: held sets of states up to where the ring's indices start (:meth:`canonical`)
        self._ring_ids: dict[RingSet, int] = {}
        #: (ring set, steps) -> (the ring set after, its number, how far its indices
        #: moved, the steps' labels)
        self.ring_edges: dict[tuple[int, str], tuple[int, RingSet, int, tuple[str, ...]]] = {}

    # ---- ring steps, up to where the indices start
    def canonical(self, states: Mapping[Any, frozenset[str]]) -> tuple[int, RingSet, int]:
        """``(number, ring set, offset)``: the held states with every ring index moved back by
        ``offset`` (the first state's ``req_cons``), interned.  Ring steps read the
        indices only through differences and equalities modulo 2**32 (ring.h's
        macros) and move them only relative to themselves, so what they do from a set
        does not depend on where its indices start: the ring steps of a long trace
        meet the same few sets again and again.  (A handshake step may reset the ring
        to an absolute index, so commits are not taken this way.)"""
        offset = next(iter(states))[self._cons]
        key = tuple((self._moved(s, -offset), used) for s, used in states.items())
        found = self._ring_ids.get(key)
        if found is None:
            if len(self._ring_ids) >= self.MAX_NODES:
                self.restart()
            found = self._ring_ids[key] = len(self._ring_ids)
        return found, key, offset

    def placed(self, ring_set: RingSet, offset: int) -> dict[Any, frozenset[str]]:
        """The held states of ``ring_set`` with their indices starting at ``offset``."""
        return {self._moved(s, offset): used for s, used in ring_set}

    def _moved(self, state: Any, by: int) -> Any:
        values = list(state)
        for i in self._indices:
            values[i] = (values[i] + by) & 0xFFFF_FFFF
        return state._make(values)

    def node(self, states: dict[Any, frozenset[str]], dirs: Directories) -> int:
        """The number of the configuration ``(states, dirs)`` (interned on first sight;
        -1, never recorded, for one too big to keep).  The order of ``states`` is part
        of it: the checker reads the first state held."""
        if len(states) > 4 * self.MAX_KEYS or len(dirs.front) + len(dirs.back) > 4 * self.MAX_KEYS:
            return -1
        key = (tuple(states.items()), abstract(dirs))
        found = self._ids.get(key)
        if found is None:
            if len(self.states) >= self.MAX_NODES:
                self.restart()
            found = self._ids[key] = len(self.states)
            self.states.append(states)
        return found

    def record(self, node: int, sig: Signature, after: int, labels: tuple[str, ...]) -> None:
        """A commit of signature ``sig`` from ``node`` was checked and led to ``after``."""
        if node < 0 or after < 0:
            return
        if len(self.edges) >= self.MAX_EDGES:
            self.restart()
            return
        self.edges[(node, sig)] = (after, labels)

    def instance(self, name: str, params: Mapping[str, Any]) -> Instance:
        """The transition ``name`` with ``params`` bound (absent ones None), memoised."""
        t = self.transitions.get(name)
        if t is None:
            t = self.spec.transition(name)  # raises, naming it
        wanted = tuple((p.name, params.get(p.name)) for p in t.params)
        key = (name, wanted, tuple(type(v) for _, v in wanted))  # True is not 1 here
        try:
            found = self._instances.get(key)
        except TypeError:  # an unhashable parameter value: bound afresh every time
            return Instance(t, Bindings(self.sizes, dict(wanted)))
        if found is None:
            found = Instance(t, Bindings(self.sizes, dict(wanted)))
            if len(self._instances) < self.MAX_EDGES:
                self._instances[key] = found
        return found

    def prepared(
        self, key: str, steps: list[tuple[str, dict[str, Any]]]
    ) -> tuple[list[tuple[Instance, str]], tuple[str, ...]]:
        """The instances and labels of ring steps whose :func:`steps_key` is ``key``
        (made once, remembered)."""
        found = self._prepared.get(key)
        if found is None:
            found = (
                [(self.instance(name, params), name) for name, params in steps],
                tuple(self.label(name, params) for name, params in steps),
            )
            if len(key) > self.MAX_KEY_TEXT:
                return found  # not kept: the table's memory is bounded
            if len(self._prepared) >= self.MAX_PREPARED:
                self._prepared.clear()
            self._prepared[key] = found
        return found

    def compiled(self, instance: Instance, name: str) -> CompiledStep | None:
        """The compiled step of ``instance`` (:mod:`xbdspec.traces.compiled`), compiled
        the :data:`COMPILE_AFTER`-th time it is asked for (each time counts); None
        before, or when it cannot be compiled."""
        key = id(instance)
        held = self._compiled.get(key)
        if held is not None:
            if held[1] is not None or held[2] < 0:
                return held[1]
            taken = held[2] + 1
        else:
            if len(self._compiled) >= self.MAX_COMPILED:
                self._compiled.clear()
                self._codes.clear()
            taken = 1
        step = None
        if taken >= self.COMPILE_AFTER:
            step = compile_step(
                instance.transition, self.controls[name], instance, self._sample, self._codes
            )
            taken = -1 if step is None else taken  # never again
        self._compiled[key] = (instance, step, taken)
        return step

    def label(self, name: str, params: Mapping[str, Any]) -> str:
        """``name(param=value, ...)``, the step as a report lists it, memoised."""
        t = self.transitions.get(name) or self.spec.transition(name)
        wanted = tuple((p.name, params.get(p.name)) for p in t.params)
        key = (name, wanted, tuple(type(v) for _, v in wanted))
        try:
            found = self._labels.get(key)
        except TypeError:
            found = None
        if found is None:
            found = f"{name}({', '.join(f'{n}={v!r}' for n, v in wanted)})"
            try:
                if len(self._labels) < self.MAX_EDGES:
                    self._labels[key] = found
            except TypeError:
                pass
        return found


@lru_cache(maxsize=16)
def step_table(sizes: ProtocolSizes) -> StepTable:
    """The step table of the protocol model for ``sizes`` (one per process)."""
    return StepTable(sizes)


#: The sizes the checker instantiates the protocol model with when none are named.
DEFAULT_SIZES = ProtocolSizes(
    ids=0, ring_slots=1, max_order=LIMITS["ring-page-order"], max_queues=LIMITS["queues"]
)


# --------------------------------------------------------------------------- checking


class ProtocolChecker:
    """Checks commits one at a time against the protocol model.

    Each commit is a walk in the shared :class:`StepTable` when the same commit was
    checked from the same configuration before, and the direct step
    (:meth:`check_direct`) otherwise; both give the same verdicts, states and messages
    (``table=False`` takes the direct step always, which the tests compare with).

    Attributes:
        spec: the protocol model the checker steps (handshake only: no request ids).
        states: the protocol states consistent with the commits so far, each with the
            deviations its path used (read-only: a held set may be shared with other
            checkers through the table).
    """

    def __init__(self, sizes: ProtocolSizes | None = None, table: bool = True) -> None:
        self.table = step_table(sizes or DEFAULT_SIZES)
        self.use_table = table
        self.spec: Spec = self.table.spec
        self.stepper = self.table.stepper
        self.dirs = Directories()
        self._states: dict[Any, frozenset[str]] | None = self.table.initial
        #: the held states as a ring set of the table: (its number, the set, offset,
        #: the table's generation)
        self._ring: tuple[int, RingSet, int, int] | None = None
        #: the one state held and its deviations, when the compiled ring steps last
        #: took it (no set made, no state hashed: :meth:`_take_compiled`)
        self._one: tuple[Any, frozenset[str]] | None = None
        self.report = Report()
        #: the table node of (states, dirs), valid while the states held, dirs.version
        #: and the table's generation are those it was computed for
        self._node = -1
        self._node_states: dict[Any, frozenset[str]] | None = None
        self._node_version = -1
        self._node_generation = -1

    @property
    def states(self) -> dict[Any, frozenset[str]]:
        """The protocol states consistent with the commits so far, each with the
        deviations its path used (read-only: a held set may be shared)."""
        if self._states is None:
            if self._one is not None:
                self._states = {self._one[0]: self._one[1]}
            else:
                assert self._ring is not None
                self._states = self.table.placed(self._ring[1], self._ring[2])
        return self._states

    @states.setter
    def states(self, value: dict[Any, frozenset[str]]) -> None:
        self._states = value
        self._ring = None
        self._one = None

    def join(self, front: int | None, back: int | None) -> bool:
        """Start from every protocol state whose state nodes agree with what a log that
        begins mid-handshake shows (the keys' part: published or not); False when a
        value is no XenbusState."""
        try:
            fronts = [X(front)] if front is not None else list(X)
            backs = [X(back)] if back is not None else list(X)
        except ValueError:
            return False
        start = self.stepper.initial()
        self.states = {
            start._replace(fe_state=f, be_state=b, fe_transport=published): frozenset()
            for f in fronts
            for b in backs
            for published in (False, True)
            if not (f in (X.Initialised, X.Connected) and not published)
        }
        return True

    def allowed(self, limit: int = 24) -> list[str]:
        """The handshake steps the protocol allows next, from the states held (each with
        its parameters at their defaults: one page, one queue, no feature)."""
        defaults = {"order": 0, "queues": 1, "toplevel": True, "max_order": 0, "max_queues": 1}
        found: list[str] = []
        for t in self.spec.transitions:
            if t.name in RING_STEPS:
                continue
            params = {p.name: defaults.get(p.name, False) for p in t.params}
            instance = self._instance(t.name, params)
            if any(self.stepper.is_enabled(s, instance) for s in self.states):
                found.append(t.name)
        return found[:limit]

    def _instance(self, name: str, params: Mapping[str, Any]) -> Instance:
        return self.table.instance(name, params)

    def best_deviations(self) -> frozenset[str]:
        """The deviations of the best path held (the fewest)."""
        return min(self.states.values(), key=len)

    # ---- commits
    def check(self, commit: Commit) -> bool:
        """Take one commit; False (and the report says why) when it is a violation."""
        return self.commit(commit.by, commit.writes, commit.remove, commit.where)

    def commit(
        self, by: str, writes: Mapping[str, str], remove: tuple[str, ...], where: str
    ) -> bool:
        """:meth:`check` of the commit ``Commit(by, writes, remove, where)``, through the
        step table when it knows the commit from here."""
        if self.report.verdict == Verdict.VIOLATION:
            return False
        if not self.use_table or len(writes) + len(remove) > self.table.MAX_KEYS:
            return self.check_direct(Commit(by, writes, remove, where))
        table = self.table
        if (
            self._node_states is not self.states
            or self._node_version != self.dirs.version
            or self._node_generation != table.generation
        ):
            self._remember(table.node(self.states, self.dirs), table.generation)
        sig = signature(by, writes, remove)
        hit = table.edges.get((self._node, sig))
        if hit is not None:
            self.report.commits += 1
            self.dirs.apply_parts(writes, remove)
            node, labels = hit
            self.states = table.states[node]
            self._remember(node, table.generation)
            if labels:
                self.report.steps.extend(labels)
            return True
        before, generation, taken = self._node, table.generation, len(self.report.steps)
        ok = self.check_direct(Commit(by, writes, remove, where))
        if ok:
            after = table.node(self.states, self.dirs)
            if table.generation == generation:
                table.record(before, sig, after, tuple(self.report.steps[taken:]))
                self._remember(after, generation)
        return ok

    def _remember(self, node: int, generation: int) -> None:
        """``node`` is the table's number of the configuration held now."""
        self._node = node
        self._node_states = self.states
        self._node_version = self.dirs.version
        self._node_generation = generation

    def check_direct(self, commit: Commit) -> bool:
        """:meth:`check` worked out from the model: the commit's protocol steps
        (:func:`steps_of`) taken from every state held."""
        if self.report.verdict == Verdict.VIOLATION:
            return False
        self.report.commits += 1
        before = Directories(dict(self.dirs.front), dict(self.dirs.back))
        self.dirs.apply(commit)
        current = {
            "front": _current(before.front, self.states, "fe_state"),
            "back": _current(before.back, self.states, "be_state"),
        }
        steps = steps_of(commit, before, self.dirs, current)
        if isinstance(steps, str):
            return self._violate(commit, steps)
        if not steps:
            return True
        survivors, reasons = self._survivors(steps)
        if not survivors:
            return self._violate(commit, "; ".join(dict.fromkeys(reasons)))
        if any(name == "backend_connect" for name, _ in steps):
            props = self.dirs.device_properties(commit.where)
            if isinstance(props, str):
                return self._violate(commit, props)
            broken = broken_rules(PROPERTY_RULES, props)
            if broken:
                why = "; ".join(f"{r.name} ({r.doc})" for r in broken)
                return self._violate(commit, f"the device properties break {why}")
        self.states = survivors
        self.report.steps.extend(self._label(n, p) for n, p in steps)
        return True

    def _survivors(
        self,
        steps: list[tuple[str, dict[str, Any]]],
        instances: list[tuple[Instance, str]] | None = None,
    ) -> tuple[dict[Any, frozenset[str]], list[str]]:
        """Every held state after ``steps`` (with the deviations its path used), and why
        the others refuse them."""
        survivors: dict[Any, frozenset[str]] = {}
        reasons: list[str] = []
        if instances is None:
            instances = [(self._instance(name, params), name) for name, params in steps]
        for state, used in self.states.items():
            result = self._take(state, instances, reasons)
            if result is not None:
                survivors[result[0]] = used | result[1] if result[1] else used
        return survivors, reasons

    def take(
        self,
        steps: Iterable[tuple[str, dict[str, Any]]],
        where: str,
        what: str,
        key: str = "",
    ) -> bool:
        """Apply protocol steps other than a xenstore commit's (the ring's, seen by a
        harness) to every state held; False, and a violation naming ``what`` happened
        ``where``, when no state allows them.

        Through the step table's ring sets (:meth:`StepTable.canonical`): the same steps
        from the same set, wherever its indices start, are a look-up; ``key`` is
        :func:`steps_key` of the steps when the caller has it."""
        if self.report.verdict == Verdict.VIOLATION:
            return False
        steps = list(steps)
        if not self.use_table or len(steps) > self.table.MAX_KEYS:
            return self._take_direct(steps, where, what)
        return self._take_table(steps, where, what, key or steps_key(steps))

    def take_line(self, line: RingLine, source: str, number: int) -> bool:
        """:meth:`take` of a line of ring steps read by :func:`_read_lines` (line
        ``number`` of ``source``).

        Each step is taken by the model's own step the first
        :data:`StepTable.COMPILE_AFTER` - 1 times it is met (in any line), and by its
        compiled step (:mod:`xbdspec.traces.compiled`) from then on; once every step
        of the line is compiled, the line is a tuple of compiled steps
        (:meth:`_take_compiled`).  A step met once costs no compilation, a step met
        often is taken compiled almost every time.  (The ring sets of :meth:`take`
        are not used here: the states a harness's ring meets are many, and rarely met
        again, where its lines, and their steps, are met again and again.)  What the
        checkers work out of a line (its steps' instances and labels, their compiled
        steps) is kept on the line.

        The common case, a compiled line from the one state held, is done here; the
        rest by :meth:`_take_line`."""
        compiled = line.compiled
        one = self._one
        if compiled is not None and one is not None and line.table is self.table:
            state, used = one
            for step in compiled[0]:
                state = step(state)
                if state is None:
                    break
            else:
                deviations = compiled[1]
                self._one = (state, used | deviations if deviations else used)
                self.report.steps.extend(line.prepared[1])
                return True
        return self._take_line(line, source, number)

    def _take_line(self, line: RingLine, source: str, number: int) -> bool:
        """:meth:`take_line` but for its common case: the line's steps that are
        compiled by their compiled steps, the others by the model's own steps
        (:meth:`_take_some`), until every one is compiled."""
        if self.report.verdict == Verdict.VIOLATION:
            return False
        table = self.table
        if line.table is not table:
            line.table, line.prepared, line.compiled = table, None, None
        compiled = line.compiled
        if compiled is None and self.use_table and len(line.steps) <= table.MAX_KEYS:
            if line.prepared is None:
                line.prepared = table.prepared(line.key, list(line.steps))
            instances = line.prepared[0]
            steps = [table.compiled(instance, name) for instance, name in instances]
            deviations = frozenset(
                i.transition.deviation for i, _ in instances if i.transition.deviation
            )
            if all(step is not None for step in steps):
                compiled = line.compiled = (tuple(steps), deviations)
            elif self._take_some(instances, steps, deviations, line.prepared[1]):
                return True
        if compiled is not None and self._take_compiled(compiled, line.prepared[1]):
            return True
        where = f"{source}:{number}"
        steps_ = list(line.steps)
        if not self.use_table or len(steps_) > table.MAX_KEYS:
            return self._take_direct(steps_, where, line.named)
        return self._take_direct(steps_, where, line.named, line.key)

    def _take_some(
        self,
        instances: list[tuple[Instance, str]],
        steps: list[CompiledStep | None],
        deviations: frozenset[str],
        labels: tuple[str, ...],
    ) -> bool:
        """Ring steps from every state held, each by its compiled step when it has one
        (``steps``), else by the model's own (:meth:`_take`, one step at a time: what
        it does with a list, step after step); False, changing nothing, when no state
        allows them."""
        survivors: dict[Any, frozenset[str]] = {}
        for state, used in self.states.items():
            for (instance, name), step in zip(instances, steps, strict=True):
                if step is not None:
                    state = step(state)
                else:
                    taken = self._take(state, [(instance, name)], [])
                    state = None if taken is None else taken[0]
                if state is None:
                    break
            else:
                survivors[state] = used | deviations if deviations else used
        if not survivors:
            return False
        self.states = survivors
        self.report.steps.extend(labels)
        return True

    def _take_table(
        self, steps: list[tuple[str, dict[str, Any]]], where: str, what: str, key: str
    ) -> bool:
        """:meth:`take` through the step table's ring sets (or directly when the held
        set or the steps' text is too big for the table)."""
        table = self.table
        ring = self._ring
        held = len(ring[1]) if ring is not None else len(self.states)
        if len(key) > table.MAX_KEY_TEXT or held > table.MAX_KEYS:
            return self._take_direct(steps, where, what)
        if ring is None or ring[3] != table.generation:
            ring = self._ring = (*table.canonical(self.states), table.generation)
        hit = table.ring_edges.get((ring[0], key))
        if hit is not None:
            after, ring_set, moved, labels = hit
            self._states = None
            self._one = None
            self._ring = (after, ring_set, (ring[2] + moved) & 0xFFFF_FFFF, ring[3])
            self.report.steps.extend(labels)
            return True
        taken = len(self.report.steps)
        if not self._take_direct(steps, where, what, key):
            return False
        after, ring_set, offset = table.canonical(self.states)
        generation = table.generation
        if generation == ring[3]:
            if len(table.ring_edges) >= table.MAX_RING_EDGES:
                table.restart()  # this checker's number is then of the old generation
            else:
                moved = (offset - ring[2]) & 0xFFFF_FFFF
                labels = tuple(self.report.steps[taken:])
                table.ring_edges[(ring[0], key)] = (after, ring_set, moved, labels)
        self._ring = (after, ring_set, offset, generation)
        self._one = None
        return True

    def _take_compiled(
        self,
        compiled: tuple[tuple[CompiledStep, ...], frozenset[str]],
        labels: tuple[str, ...],
    ) -> bool:
        """Ring steps by their compiled steps (:mod:`xbdspec.traces.compiled`), from
        every state held, as :meth:`_survivors` takes them; False, changing nothing,
        when no state allows them (the caller then takes them by the model's own
        steps, which word why)."""
        steps, deviations = compiled
        one = self._one
        if one is None and self._states is not None and len(self._states) == 1:
            one = next(iter(self._states.items()))
        if one is not None:
            state, used = one
            for step in steps:
                state = step(state)
                if state is None:
                    return False
            self._one = (state, used | deviations if deviations else used)
            self._states = None
            self._ring = None
            self.report.steps.extend(labels)
            return True
        survivors: dict[Any, frozenset[str]] = {}
        for state, used in self.states.items():
            for step in steps:
                state = step(state)
                if state is None:
                    break
            else:
                survivors[state] = used | deviations if deviations else used
        if not survivors:
            return False
        self.states = survivors
        self.report.steps.extend(labels)
        return True

    def _take_direct(
        self, steps: list[tuple[str, dict[str, Any]]], where: str, what: str, key: str = ""
    ) -> bool:
        """:meth:`take` worked out from the model, from every state held (``key``: the
        steps' :func:`steps_key`, to find their instances and labels made before)."""
        if key:
            instances, labels = self.table.prepared(key, steps)
        else:
            instances = [(self._instance(name, params), name) for name, params in steps]
            labels = tuple(self._label(n, p) for n, p in steps)
        survivors, reasons = self._survivors(steps, instances)
        if not survivors:
            self._stop()
            self.report.verdict = Verdict.VIOLATION
            self.report.violation = f"{where}: {what}: " + "; ".join(dict.fromkeys(reasons))
            return False
        self.states = survivors
        self.report.steps.extend(labels)
        return True

    def _take(
        self, state: Any, instances: list[tuple[Instance, str]], reasons: list[str]
    ) -> tuple[Any, frozenset[str]] | None:
        deviations: set[str] = set()
        controls = self.table.controls
        for instance, name in instances:
            t = instance.transition
            control = controls[name]
            if getattr(state, control) not in t.source:
                where = getattr(state, control)
                reasons.append(
                    f"{name} is a step from {_sources(t.source)} only, and the "
                    f"{_owner(control)} is {where.name}"
                )
                return None
            if t.conditions:
                failed = [text for text, cond in t.conditions(state, instance.bindings) if not cond]
                if failed:
                    reasons.append(f"{name} requires: " + "; ".join(failed))
                    return None
            state = state._replace(**effect_changes(t, control, state, instance.bindings))
            if t.deviation:
                deviations.add(t.deviation)
        return state, frozenset(deviations)

    def _label(self, name: str, params: Mapping[str, Any]) -> str:
        return self.table.label(name, params)

    def _violate(self, commit: Commit, why: str) -> bool:
        shown = ", ".join(f"{k}={v}" for k, v in commit.writes.items())
        if commit.remove:
            shown += (", " if shown else "") + "remove " + ", ".join(commit.remove)
        self._stop()
        self.report.verdict = Verdict.VIOLATION
        self.report.violation = f"{commit.where}: {commit.by} commits {{{shown}}}: {why}"
        return False

    def _stop(self) -> None:
        """A violation: the states held stay as they were (for the report), as a set
        (:meth:`take_line`'s shortcut never takes a step after a violation)."""
        _ = self.states
        self._one = None

    def finish(self) -> Report:
        """The verdict: a violation stays one; otherwise the best path decides."""
        if self.report.verdict != Verdict.VIOLATION:
            best = min(self.states.values(), key=len)
            self.report.deviations = sorted(best)
            self.report.verdict = Verdict.TOLERATED if best else Verdict.CONFORMS
        return self.report


def _current(directory: Mapping[str, str], states: Mapping[Any, Any], field: str) -> int:
    """A state node's value before a commit: as xenstore holds it, else the protocol's."""
    value = directory.get("state")
    if value is not None and value.isascii() and value.isdigit():
        return int(value)
    return int(getattr(next(iter(states)), field))


def _owner(control: str) -> str:
    return {"fe_state": "front end", "be_state": "back end", "ts_phase": "tool stack"}[control]


def _sources(source: tuple[Any, ...]) -> str:
    return ", ".join(getattr(s, "name", str(s)) for s in source)


def check_commits(commits: Iterable[Commit], table: bool = True) -> Report:
    """Check a whole sequence of commits (``table=False``: every one by the direct step)."""
    checker = ProtocolChecker(table=table)
    for commit in commits:
        if not checker.check(commit):
            break
    return checker.finish()


def check_scenario(path: str, table: bool = True) -> tuple[dict[str, Any], Report]:
    """Read and check a file of commits (a header, then commits), streaming; ``-`` is
    standard input.  ``table=False`` takes every commit by the direct step."""
    import sys

    if path == "-":
        return _check_stream(sys.stdin, "<stdin>", table)
    try:
        handle = open(path, encoding="utf-8", errors="strict")  # noqa: SIM115
    except OSError as exc:
        raise InputError(path, f"cannot open: {exc.strerror}") from None
    with handle:
        try:
            return _check_stream(handle, path, table)
        except UnicodeDecodeError as exc:
            raise InputError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _bounded(handle: Iterable[str]) -> Iterator[str]:
    """Lines of ``handle``, each cut off (and refused) past :data:`MAX_LINE`.

    A stream (an object with ``read``) is read :data:`CHUNK` characters at a time and
    split at its newlines (a line is handed out without its newline; the last one as
    it ends): what ``readline(MAX_LINE + 1)`` would give, the first line longer than
    :data:`MAX_LINE` with its newline cut to its first ``MAX_LINE + 1`` characters
    (which :func:`_read_lines` refuses, naming it), and nothing after it."""
    read = getattr(handle, "read", None)
    if read is None:
        yield from handle
        return
    rest = ""
    while True:
        chunk = read(CHUNK)
        if not chunk:
            if rest:
                yield rest[: MAX_LINE + 1]  # refused when longer than MAX_LINE
            return
        lines = (rest + chunk).split("\n")
        rest = lines.pop()
        for line in lines:
            if len(line) >= MAX_LINE:  # with its newline, longer than MAX_LINE
                yield (line + "\n")[: MAX_LINE + 1]
                return
            yield line
        if len(rest) > MAX_LINE:
            yield rest[: MAX_LINE + 1]
            return


#: How many characters :func:`_bounded` reads at a time.
CHUNK = 1 << 16


#: Bounds on the sizes a trace's header may ask for (each is a model instance's size).
HEADER_SIZE_LIMITS = {"ids": 512, "ring_slots": 4096, "max_order": 8, "max_queues": 16}


def header_sizes(header: Mapping[str, Any], where: str) -> ProtocolSizes | None:
    """The protocol sizes a trace's header names (a harness's trace of ring steps), or
    None for a file of commits only."""
    raw = header.get("sizes")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InputError(where, "the header's 'sizes' must be an object")
    values: dict[str, int] = {}
    for key, value in raw.items():
        if key == "ring_base":
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 32
        else:
            limit = HEADER_SIZE_LIMITS.get(key)
            if limit is None:
                raise InputError(
                    where,
                    f"the header's sizes name {key[:40]!r}; sizes: ring_base, "
                    + ", ".join(HEADER_SIZE_LIMITS),
                )
            ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= limit
        if not ok:
            raise InputError(where, f"the header's size {key} = {str(value)[:40]} is out of range")
        values[key] = value
    return ProtocolSizes(**values)


def _check_stream(
    handle: Iterable[str], source: str, table: bool = True
) -> tuple[dict[str, Any], Report]:
    """Check commits (and ring steps, one checker per queue: every queue sees every
    commit, its own ring's steps only) as they are read.

    As :func:`_read_lines` reads them, with its look-up of a line met before done
    here: a line of ring steps met before costs finding it, and its checker's
    :meth:`ProtocolChecker.take_line`."""
    reader = _Reader(source)
    lines = enumerate(_bounded(handle), 1)
    header: Any = None
    for number, line in lines:
        header = reader.parse(line, number)
        if header is not None:
            break
    reader.finish()
    assert isinstance(header, dict)
    sizes = header_sizes(header, f"{source}:1")
    queues = (
        [ProtocolChecker(sizes, table)]
        if sizes is None
        else [ProtocolChecker(sizes, table) for _ in range(sizes.max_queues)]
    )
    failed: ProtocolChecker | None = None
    known = reader.known
    skip, tail = len(_EVENT), _EVENT_TAIL.match
    for number, line in lines:
        at = line.rfind(_EVENT)
        key = line[:at] + "}" if at >= 0 and tail(line, at + skip) is not None else line
        item: dict[str, Any] | Commit | RingLine | None = known.get(key)
        if item is None:
            item = reader.parse(line, number)
            if item is None:
                continue
        if type(item) is RingLine:
            checker = item.checker  # the line's queue's, once the line was met
            if checker is None:
                if sizes is None:
                    raise InputError(
                        f"{source}:{number}",
                        "a line of ring steps needs the header's 'sizes' (the protocol "
                        "model's request ids and ring slots)",
                    )
                if item.queue >= len(queues):
                    raise InputError(
                        f"{source}:{number}",
                        f"queue {item.queue} is beyond the header's max_queues",
                    )
                checker = item.checker = queues[item.queue]
            if not checker.take_line(item, source, number):
                failed = checker
                break
        elif isinstance(item, Commit):
            commit = Commit(item.by, item.writes, item.remove, f"{source}:{number}")
            failed = next((c for c in queues if not c.check(commit)), None)
            if failed is not None:
                break
    report = (failed or queues[0]).finish()
    if failed is not None and failed is not queues[0]:
        report.commits = queues[0].report.commits
    return header, report
