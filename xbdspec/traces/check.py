"""Checking a trace file against the model, streaming: a bounded part of it in memory.

* :func:`check_jsonl`: a JSON-lines trace of model events, stepped through
  :meth:`Stepper.step <xbdspec.model.concrete.Stepper.step>`; the first event the model
  does not allow (or a step that breaks an invariant or a step property) is the
  divergence.
* :func:`check_oxenstored`: an oxenstored access log, every vbd followed through the
  protocol model (:mod:`xbdspec.traces.vbd_protocol`), or with ``frontend="freebsd"``
  through the FreeBSD model's handshake projection (:mod:`xbdspec.traces.vbd`).
* :func:`check_file`: either, by ``--format`` or by looking at the first line.
"""

from __future__ import annotations

import io
import itertools
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import IO, Any, cast

from xbdspec.errors import InputError
from xbdspec.model.concrete import StepError, Stepper

from .jsonl import read_trace
from .oxenstored import DEFAULT_NB_CHARS
from .projection import HandshakeProjection
from .report import CheckResult, DeviceReport, Divergence, Finding
from .vbd import VbdChecker
from .vbd_protocol import ProtocolVbdChecker

FORMATS = ("auto", "jsonl", "oxenstored", "commits")


@lru_cache(maxsize=1)
def default_projection() -> HandshakeProjection:
    """The projection for the default sizes, shared by every check in the process (its
    caches hold model states only, bounded by the handshake's reachable states)."""
    return HandshakeProjection()


def _state_dict(state: Any) -> dict[str, Any]:
    """A model state as JSON-ready values (enum members by name)."""
    return {k: _plain(v) for k, v in state._asdict().items()}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else value


def check_jsonl(lines: Iterable[str], source: str) -> CheckResult:
    """Step every event of a JSON-lines trace through the model."""
    started = time.perf_counter()
    trace = read_trace(lines, source)
    stepper = Stepper(trace.spec)
    state = stepper.initial()
    result = CheckResult(source, "jsonl")
    device = DeviceReport("model")
    result.devices.append(device)
    for ev in trace:
        result.events += 1
        try:
            _, after = stepper.step(state, ev.event, **ev.params)
        except StepError as exc:
            device.first_divergence = Divergence(
                line=ev.line,
                event=ev.label,
                allowed=[i.label for i in stepper.enabled(state)],
                reason=str(exc),
                state=_state_dict(state),
            )
            break
        broken = stepper.violated_invariants(after) + stepper.violated_step_properties(state, after)
        if broken:
            device.first_divergence = Divergence(
                line=ev.line,
                event=ev.label,
                allowed=[i.label for i in stepper.enabled(state)],
                reason=f"the step breaks {', '.join(broken)}",
                state=_state_dict(after),
            )
            state = after
            break
        state = after
        device.observations += 1
    device.final = {"model": _state_dict(state)}
    device.lifecycles = 1
    result.seconds = time.perf_counter() - started
    return result


#: What ``--frontend`` checks a log against: the protocol model, or the FreeBSD model
#: (which refines it: what it accepts, the protocol accepts).
FRONTENDS = ("any", "freebsd")


def check_oxenstored(
    lines: Iterable[str],
    source: str,
    nb_chars: int = DEFAULT_NB_CHARS,
    projection: HandshakeProjection | None = None,
    frontend: str = "any",
    table: bool = True,
) -> CheckResult:
    """Follow every vbd of an oxenstored access log through the protocol model (or,
    with ``frontend="freebsd"``, through the FreeBSD model's handshake projection).

    ``lines`` is an iterable of lines, or :class:`Chunks` of a stream (a text file is
    read as chunks).  ``table=False`` checks every commit directly, without the
    protocol's step tables (the same verdicts; the tests compare both)."""
    started = time.perf_counter()
    checker: VbdChecker
    if frontend == "freebsd":
        checker = VbdChecker(projection or default_projection(), source, nb_chars)
    else:
        checker = ProtocolVbdChecker(source, nb_chars, table=table)
    if not isinstance(lines, Chunks) and isinstance(lines, io.TextIOBase):
        lines = Chunks(cast(IO[str], lines), source)
    try:
        if isinstance(lines, Chunks):
            lines.counted = lambda: checker.result.events
            for text in lines:
                if text.endswith("\n"):
                    checker.feed_text(text)
                else:
                    checker.feed_lines((text,))  # the last line, without its newline
        else:
            checker.feed_lines(lines)
    except InputError as exc:
        # the verdicts reached before the bad line are not thrown away
        partial = checker.finish()
        partial.seconds = time.perf_counter() - started
        partial.stopped_at = exc.source
        line = exc.source.rsplit(":", 1)[-1]
        partial.events = int(line) - 1 if line.isdigit() else partial.events
        raise PartialCheck(exc, partial) from None
    result = checker.finish()
    result.seconds = time.perf_counter() - started
    return result


class PartialCheck(InputError):
    """A malformed line stopped a check; ``result`` holds every verdict reached before it.

    Attributes:
        result: the devices as checked up to the line before.
    """

    def __init__(self, error: InputError, result: CheckResult) -> None:
        super().__init__(error.source, str(error)[len(error.source) + 2 :])
        self.result = result


def detect_format(first_line: str) -> str:
    """``jsonl``, ``commits`` or ``oxenstored``, from a trace's first non-blank line: a
    commits file's header names its ``frontend`` or ``scenario``, or is the protocol
    harness's trace (``"kind": "protocol"``)."""
    text = first_line.lstrip()
    if text.startswith("{"):
        kind = re.search(r'"kind"\s*:\s*"([a-z-]+)"', text)
        if kind is not None and kind.group(1) == "world-program":
            raise InputError(
                "the trace",
                "this is a replay of the protocol harness (harness events, not observations): "
                "run it with `xbdspec difftest --replay FILE`; its protocol trace is the "
                "FILE.protocol.jsonl beside it",
            )
        if kind is not None and kind.group(1) == "protocol":
            return "commits"
        if '"scenario"' in text or '"frontend"' in text:
            return "commits"
        return "jsonl"
    if text.startswith("["):
        return "oxenstored"
    return ""


#: The longest line any format may have (characters); a longer one is refused before
#: it is read whole (``/dev/zero`` is one endless line).
MAX_LINE = 1 << 20


def bounded_lines(handle: IO[str], source: str, limit: int = MAX_LINE) -> Iterator[str]:
    """The lines of ``handle`` (a file, a FIFO, standard input), each read at most
    ``limit`` characters at a time: a longer line is an :class:`InputError` naming it."""
    number = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith("\n"):
            raise InputError(f"{source}:{number}", f"the line is longer than {limit} characters")
        yield line


class Chunks:
    """A text stream read in chunks of whole lines (the access-log checker's fast
    reading): each chunk ends with a newline, except a last line that has none.

    The same rules as :func:`bounded_lines`: a line longer than ``limit`` characters is
    an :class:`InputError` naming it, found before more than ``limit`` characters of it
    are held.  Chunks are read :data:`CHUNK` characters at a time, fewer than
    ``limit``, so only a chunk's first line can have grown past it.

    Attributes:
        truncated: the stream's last line has no newline (known once read to the end).
        counted: how many lines the consumer has read (whole chunks are read before
            the next is asked for): what an error's line number counts from.  Without
            it the chunks' newlines are counted here (``str.count`` is slow next to the
            checker's own count).
    """

    #: How many characters are read at a time.
    CHUNK = 1 << 16

    def __init__(
        self, handle: IO[str], source: str, head: Iterable[str] = (), limit: int = MAX_LINE
    ) -> None:
        self.handle = handle
        self.source = source
        self.head = list(head)
        self.limit = limit
        self.truncated = False
        self.counted: Callable[[], int] | None = None
        self._yielded = 0

    def _before(self) -> int:
        return self.counted() if self.counted is not None else self._yielded

    def _give(self, text: str) -> str:
        if self.counted is None:
            self._yielded += text.count("\n")
        return text

    def __iter__(self) -> Iterator[str]:
        limit = self.limit
        held = "".join(self.head)
        if held and not held.endswith("\n"):
            chunk = held
        else:
            if held:
                yield self._give(held)
            chunk = ""
        read = self.handle.read
        while True:
            more = read(self.CHUNK)
            if not more:
                break
            chunk = chunk + more if chunk else more
            end = chunk.rfind("\n") + 1
            first = chunk.find("\n")
            if first > limit or (not end and len(chunk) > limit):
                raise InputError(
                    f"{self.source}:{self._before() + 1}",
                    f"the line is longer than {limit} characters",
                )
            if end:
                whole = chunk[:end] if end < len(chunk) else chunk
                chunk = chunk[end:]
                yield self._give(whole)
        if chunk:
            self.truncated = True
            yield chunk


def open_lines(path: str) -> tuple[str, Iterator[str], Callable[[], None]]:
    """``(format detected from the first line, every line, close)`` of the trace at
    ``path`` (``-``: standard input); read once, as a stream: FIFOs work."""
    fmt, head, handle, close = _open_head(path)
    return fmt, itertools.chain(head, bounded_lines(handle, path)), close


def _open_head(path: str) -> tuple[str, list[str], IO[str], Callable[[], None]]:
    """``(format, the lines read to find it, the stream after them, close)``."""
    if path == "-":
        handle: IO[str] = sys.stdin
        close: Callable[[], None] = lambda: None  # noqa: E731
    else:
        try:
            handle = open(path, encoding="utf-8", errors="replace", newline="\n")  # noqa: SIM115
        except OSError as exc:
            raise InputError(path, f"cannot open the trace: {exc.strerror}") from None
        close = handle.close
    head: list[str] = []
    fmt = ""
    for line in bounded_lines(handle, path):
        head.append(line)
        if line.strip():
            fmt = detect_format(line[:4096])
            break
    return fmt, head, handle, close


def check_file(
    path: str, fmt: str = "auto", nb_chars: int = DEFAULT_NB_CHARS, frontend: str = "any"
) -> CheckResult:
    """Check the trace at ``path`` (``-``: standard input); ``fmt`` is one of
    :data:`FORMATS` (files of commits: :func:`xbdspec.traces.protocol.check_scenario`)."""
    if fmt not in FORMATS:
        raise InputError(path, f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    detected, head, handle, close = _open_head(path)
    try:
        if fmt == "auto":
            if not detected:
                raise InputError(
                    f"{path}:1",
                    "neither a JSON-lines trace (lines start with `{`) "
                    "nor an oxenstored access log (lines start with `[`); "
                    "name the format with --format.",
                )
            fmt = detected
        if fmt == "jsonl":
            return check_jsonl(itertools.chain(head, bounded_lines(handle, path)), path)
        chunks = Chunks(handle, path, head)
        result = check_oxenstored(chunks, path, nb_chars, frontend=frontend)
        if chunks.truncated:
            result.notes.append(
                Finding(
                    result.events,
                    "truncated",
                    "the log's last line has no newline: it may have been cut while being "
                    "written, so what it says is not taken as checked",
                )
            )
        return result
    finally:
        close()
