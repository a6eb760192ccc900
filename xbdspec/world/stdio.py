"""A front end in another process, over the stdio protocol version 2
(``docs/stdio-v2.md``): any language, in the protocol's world.

:class:`StdioImplementation` starts the command in its own process group, creates the
shared memory (a file of ``pages`` pages that the child maps and the harness maps too,
so that the back end reads the ring and the data pages in place, as it would through
grants) and says ``hello``.  Its :meth:`~StdioImplementation.maker` is the
``make_frontend`` of :func:`~xbdspec.world.harness.run_program`: each new world sends
``reset`` and gets a :class:`StdioFrontend`, whose entry points send ``call`` and serve
the child's ``env`` requests against that world's
:class:`~xbdspec.world.harness.FrontendEnv` until ``done``.  One child serves a whole
campaign, shrinking included.

Every message of the child is checked against the protocol's schema
(``xbdspec/world/schema/stdio-v2.schema.json``, compiled once, :func:`check_message`).
A child that crashes, hangs, sends a malformed message or says ``done`` with
``ok: false`` is an :class:`~xbdspec.world.harness.ImplementationFailure`: a divergence
of the event, shrunk and replayed like a protocol violation.  The child is then killed
(its whole process group) and a fresh one serves the next world.  A child whose
``hello`` the harness cannot accept (another protocol, a required call missing) is
:class:`ImplementationRefused`: nothing is run.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.resources
import json
import math
import mmap
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, NoReturn

import fastjsonschema

from xbdspec.errors import XbdspecError
from xbdspec.resources import doc as _doc
from xbdspec.untrusted import JSONRefused, load_json

from .backend import BackendConfig
from .grants import PAGE_SIZE, GrantError
from .harness import BACK, FRONT, Bio, FrontendEnv, ImplementationFailure
from .xenstore import XenstoreError

if TYPE_CHECKING:
    from .registry import Target

PROTOCOL = 2
#: The longest line the child may send, newline aside (docs/stdio-v2.md, Transport).
MAX_LINE = 1 << 20
#: How much of the child's stderr is kept for messages.
STDERR_KEPT = 64 << 10
#: Seconds the child may take for one message before it counts as hung.
DEFAULT_TIMEOUT = 10.0
#: Pages of shared memory (4 MiB): rings and data pages of a few hundred bios.
DEFAULT_PAGES = 1024
#: The protocol's minimum: follow the handshake, be notified, take I/O.
REQUIRED_CALLS = ("otherend_changed", "interrupt", "submit")
REQUIRED_OPS = ("read", "write")
#: The bio operations the harness gives (those the child declares, of these).
OPS = ("read", "write", "flush")
#: The error codes a ``result`` may carry (the schema's ``error_code``).
ERROR_CODES = ("EAGAIN", "ENOENT", "EINVAL", "ENOMEM", "EACCES")
#: Seconds a child has to exit after ``bye`` before it is killed.
EXIT_GRACE = 1.0
#: Requests of a call the harness abandoned (a grant refusal ends the call, as the
#: exception does in-process) that it still answers before it gives the child up.
ABANDONED_MAX = 10_000

Sender = Literal["harness", "child"]


class ImplementationRefused(XbdspecError):
    """The child cannot be run: it did not start, or its ``hello`` is not one the harness
    can accept (another protocol, a required call or bio operation missing, no hello at
    all).  Nothing was tested; the command line exits 2."""


class MalformedMessage(XbdspecError):
    """A message that is not one the protocol allows.

    Attributes:
        reason: what is wrong, in words that stay the same from run to run.
        detail: the message at fault (an excerpt), or nothing.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------------------- the schema
@functools.cache
def schema() -> dict[str, Any]:
    """The protocol's JSON Schema (draft 7), as shipped in the package."""
    text = (
        importlib.resources.files("xbdspec.world")
        .joinpath("schema")
        .joinpath("stdio-v2.schema.json")
        .read_text("utf-8")
    )
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def _validator(sender: Sender) -> Callable[[Any], Any]:
    whole = schema()
    return fastjsonschema.compile(
        {
            "$schema": whole["$schema"],
            "$id": whole["$id"],
            "definitions": whole["definitions"],
            "$ref": f"#/definitions/{sender}_message",
        }
    )


def check_message(message: Any, sender: Sender) -> None:
    """Raise :class:`MalformedMessage` unless ``message`` (a decoded line) is one that
    ``sender`` may send."""
    try:
        _validator(sender)(message)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise MalformedMessage(f"not valid against the schema: {exc.message}") from None


def _excerpt(raw: bytes | str, limit: int = 120) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


# ---------------------------------------------------------------------------- one child
class _Gone(Exception):
    """The child closed its output (it exited, or will)."""


class _Silent(Exception):
    """No message within the timeout."""


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child's whole process group, then reap the child.

    The group is killed before the child is reaped: until then the child (a zombie at
    worst) holds its process group's number, which no other process can take."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    with contextlib.suppress(ChildProcessError):
        proc.wait()


class _Child:
    """One run of the command: the process, its pipes, what the harness has still to
    write to it and what it wrote that the harness has not read yet (both bounded).

    Reads and writes go through one selector with a deadline, so that neither a child
    that stops reading nor one that writes without end can block the harness."""

    def __init__(
        self,
        argv: Sequence[str],
        stderr: IO[bytes],
        cwd: str | None,
        env: Mapping[str, str] | None,
    ) -> None:
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,  # its own process group: killing it kills all
                cwd=cwd,
                env=None if env is None else dict(env),
            )
        except OSError as exc:
            raise ImplementationRefused(
                f"cannot start {shlex.join(argv)!r}: {exc.strerror or exc}"
            ) from None
        self.pid = self.proc.pid
        self._finalizer = weakref.finalize(self, _kill_group, self.proc)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin_fd: int | None = self.proc.stdin.fileno()
        self.stdout_fd = self.proc.stdout.fileno()
        os.set_blocking(self.stdin_fd, False)
        os.set_blocking(self.stdout_fd, False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.stdout_fd, selectors.EVENT_READ)
        # the child's exit, watched beside its output: a process it started may hold
        # the output open after it is gone (without pidfd: looked at every 50 ms)
        self.pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self.pidfd = os.pidfd_open(self.pid)
            self.selector.register(self.pidfd, selectors.EVENT_READ)
        self.writing = False
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        #: whether the child is inside a call the harness gave up on
        self.abandoned = False

    def send(self, message: Mapping[str, Any]) -> None:
        """Queue one message; it is written while the harness waits for the answer."""
        if self.stdin_fd is not None:
            self.outbuf += json.dumps(message, separators=(",", ":")).encode() + b"\n"

    def _write_ready(self) -> None:
        assert self.stdin_fd is not None
        try:
            written = os.write(self.stdin_fd, self.outbuf[: 1 << 16])
        except BlockingIOError:
            return
        except OSError:  # a broken pipe: it closed its input; its output tells the rest
            self._stop_writing()
            return
        del self.outbuf[:written]

    def _stop_writing(self) -> None:
        if self.writing and self.stdin_fd is not None:
            self.selector.unregister(self.stdin_fd)
        self.writing = False
        self.stdin_fd = None
        self.outbuf.clear()

    def receive(self, timeout: float) -> bytes:
        """The child's next line, writing what is queued meanwhile.

        Raises :class:`_Gone` at the end of its output, :class:`_Silent` when nothing
        came within ``timeout`` seconds, :class:`MalformedMessage` for a line over
        :data:`MAX_LINE` bytes."""
        deadline = time.monotonic() + timeout
        while True:
            end = self.inbuf.find(b"\n", 0, MAX_LINE + 1)
            if end >= 0:
                line = bytes(self.inbuf[:end])
                del self.inbuf[: end + 1]
                return line
            if len(self.inbuf) > MAX_LINE:
                raise MalformedMessage(
                    "a line longer than 1 MiB", _excerpt(bytes(self.inbuf[:120]))
                )
            if self.outbuf and self.stdin_fd is not None and not self.writing:
                self.selector.register(self.stdin_fd, selectors.EVENT_WRITE)
                self.writing = True
            elif not self.outbuf and self.writing and self.stdin_fd is not None:
                self.selector.unregister(self.stdin_fd)
                self.writing = False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Silent()
            if self.pidfd is None:
                remaining = min(remaining, 0.05)
            ready = {key.fd for key, _ in self.selector.select(remaining)}
            if self.stdin_fd in ready:
                self._write_ready()
            if self.stdout_fd in ready:
                self._read_ready()
            elif self.pidfd in ready or (self.pidfd is None and self._exited()):
                # it is gone: what it wrote before it went still counts, then the end
                while self._read_ready():
                    pass
                if b"\n" not in self.inbuf:
                    raise _Gone()

    def _read_ready(self) -> bool:
        """Read what the child wrote; whether there was anything."""
        try:
            chunk = os.read(self.stdout_fd, 1 << 16)
        except BlockingIOError:
            return False
        if not chunk:
            raise _Gone()
        self.inbuf += chunk
        return True

    def _exited(self) -> bool:
        with contextlib.suppress(ChildProcessError):
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        return True

    def status(self, wait: float) -> str:
        """How the child ended (waiting up to ``wait`` seconds), without reaping it."""
        deadline = time.monotonic() + wait
        while True:
            try:
                info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # already reaped
                code = self.proc.returncode
                return "it exited" if code is None else _describe(code)
            if info is not None:
                if info.si_code == os.CLD_EXITED:
                    return _describe(info.si_status)
                return _describe(-info.si_status)
            if time.monotonic() >= deadline:
                return "it closed its output and still runs"
            time.sleep(0.005)

    def stop(self, grace: float) -> None:
        """Say ``bye``, give the child ``grace`` seconds to exit, then kill its process
        group (always: whatever it started dies with it) and reap it."""
        if grace > 0 and self.stdin_fd is not None and not self.abandoned:
            self.send({"type": "bye"})
            with contextlib.suppress(OSError):
                while self.outbuf:
                    written = os.write(self.stdin_fd, self.outbuf[: 1 << 16])
                    del self.outbuf[:written]
            self._stop_writing()
            assert self.proc.stdin is not None
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # end of input too: a child may wait for it
            self.status(grace)
        self.kill()

    def kill(self) -> None:
        self.selector.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self._finalizer()


def _split(command: str) -> list[str]:
    """``command`` split as a shell splits it; a command it cannot split (an unclosed
    quote) is refused, naming it."""
    try:
        return shlex.split(command)
    except ValueError as exc:
        raise ImplementationRefused(
            f"cannot split the command {command[:200]!r} as a shell would: {exc}"
        ) from None


def _describe(code: int) -> str:
    if code >= 0:
        return f"exit status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = "an unknown signal"
    return f"killed by signal {-code} ({name})"


# ---------------------------------------------------------------------------- the harness
class _Refused(Exception):
    """An environment request the harness refuses (not a violation)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class StdioImplementation:
    """A front end in a child process, over the stdio protocol version 2.

    ``command`` is split as a shell would split it (no shell is run).  Use it as a
    context manager, or call :meth:`close`: the child's process group is killed on
    every path.

    Attributes:
        argv: the command.
        timeout: seconds the child may take for one message (a hang otherwise).
        start_timeout: seconds it may take to start and say hello (by default the larger
            of ``timeout`` and 10 s: an interpreter starts slower than it answers).
        pages: pages of shared memory.
        options: the implementation's own options, given to it in ``hello``.
        cwd, environ: the child's working directory and environment (default: ours).
        name, calls, ops: what the child's ``hello`` declared.
        logs: the child's last ``log`` messages.
        started: the process id (also the process group) of every child started.
    """

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        start_timeout: float | None = None,
        pages: int = DEFAULT_PAGES,
        options: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.argv = _split(command) if isinstance(command, str) else [str(a) for a in command]
        if not self.argv:
            raise ImplementationRefused("an empty command was given for the front end")
        if not (math.isfinite(timeout) and timeout > 0):
            raise XbdspecError(f"a timeout of {timeout} s makes no test: give one above 0")
        if not 1 <= pages <= 1 << 20:
            raise XbdspecError(f"{pages} pages of shared memory: give 1 to {1 << 20}")
        self.timeout = timeout
        self.start_timeout = (
            max(timeout, DEFAULT_TIMEOUT) if start_timeout is None else start_timeout
        )
        self.pages = pages
        self.options = dict(options or {})
        self.cwd = None if cwd is None else str(cwd)
        self.environ = environ
        self.name = shlex.join(self.argv)
        self.calls: tuple[str, ...] = ()
        self.ops: tuple[str, ...] = ()
        self.hello: dict[str, Any] = {}
        self.logs: deque[str] = deque(maxlen=1000)
        self.started: list[int] = []
        self._child: _Child | None = None
        self._dir: Path | None = None
        self._cleanup: weakref.finalize[Any, Any] | None = None
        self._mmap: mmap.mmap | None = None
        self._views: list[memoryview] = []
        self._stderr: IO[bytes] | None = None
        self._free: list[int] = []
        self._allocated: set[int] = set()
        #: worlds served so far: a proxy of an earlier world is stale
        self._generation = 0

    # ------------------------------------------------------------------ resources
    def __enter__(self) -> StdioImplementation:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def memory_path(self) -> Path:
        assert self._dir is not None
        return self._dir / "pages"

    def _open(self) -> None:
        """The temporary directory, the shared memory file mapped, the stderr file."""
        if self._dir is not None:
            return
        self._dir = Path(tempfile.mkdtemp(prefix="xbdspec-stdio-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        size = self.pages * PAGE_SIZE
        fd = os.open(self.memory_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            self._mmap = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        base = memoryview(self._mmap)
        self._views = [base[n * PAGE_SIZE : (n + 1) * PAGE_SIZE] for n in range(self.pages)]
        base.release()
        self._stderr = open(self._dir / "stderr", "ab+")  # noqa: SIM115 (kept open)

    def close(self) -> None:
        """Stop the child (``bye``, then its process group killed) and release the
        shared memory and the temporary files.  Safe to call more than once."""
        child, self._child = self._child, None
        if child is not None:
            child.stop(EXIT_GRACE)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        views, self._views = self._views, []
        for view in views:
            view.release()
        mapping, self._mmap = self._mmap, None
        if mapping is not None:
            # a world still holding a grant's page keeps the mapping until it goes
            with contextlib.suppress(BufferError):
                mapping.close()
        if self._cleanup is not None:
            self._cleanup()
        self._dir = None
        self._cleanup = None

    def stderr_tail(self, limit: int = STDERR_KEPT) -> str:
        """The end of the current child's stderr."""
        if self._stderr is None:
            return ""
        self._stderr.flush()
        size = os.fstat(self._stderr.fileno()).st_size
        self._stderr.seek(max(0, size - limit))
        return self._stderr.read(limit).decode("utf-8", "replace")

    def _trim_stderr(self) -> None:
        """Keep the stderr file bounded: its last :data:`STDERR_KEPT` bytes."""
        assert self._stderr is not None
        if os.fstat(self._stderr.fileno()).st_size > 16 * STDERR_KEPT:
            tail = self.stderr_tail().encode()
            os.ftruncate(self._stderr.fileno(), 0)
            self._stderr.write(tail)  # the file is opened to append: so is the child's
            self._stderr.flush()

    # ------------------------------------------------------------------ the child
    @property
    def label(self) -> str:
        """How messages name the child."""
        pid = f" (pid {self._child.pid})" if self._child is not None else ""
        return f"the front end {shlex.join(self.argv)!r}{pid}"

    def start(self) -> None:
        """Start the child, when none runs, and exchange ``hello``; raise
        :class:`ImplementationRefused` for a child the harness cannot run."""
        if self._child is not None:
            return
        self._open()
        assert self._stderr is not None
        os.ftruncate(self._stderr.fileno(), 0)  # this child's stderr only
        child = _Child(self.argv, self._stderr, self.cwd, self.environ)
        self._child = child
        self.started.append(child.pid)
        child.send(
            {
                "type": "hello",
                "protocol": PROTOCOL,
                "memory": {
                    "path": str(self.memory_path),
                    "pages": self.pages,
                    "page_size": PAGE_SIZE,
                },
                "front": FRONT,
                "back": BACK,
                "options": self.options,
            }
        )
        try:
            hello = self._parse(child.receive(self.start_timeout))
        except _Gone:
            self._refuse(f"it ended before its hello: {child.status(EXIT_GRACE)}")
        except _Silent:
            self._refuse(f"it sent no hello within {self.start_timeout:g} s")
        except MalformedMessage as exc:
            self._refuse(f"its hello is malformed: {exc}")
        if hello["type"] != "hello":
            self._refuse(f"it answered hello with a {hello['type']} message")
        if hello["protocol"] != PROTOCOL:
            self._refuse(
                f"it speaks protocol {hello['protocol']}; this harness speaks protocol "
                f"{PROTOCOL} ({_doc('stdio-v2.md')})"
            )
        calls, ops = tuple(hello["calls"]), tuple(hello["ops"])
        for call in REQUIRED_CALLS:
            if call not in calls:
                self._refuse(
                    f"it lacks the call {call!r} (its calls: {', '.join(calls) or 'none'}); "
                    f"a front end needs {', '.join(REQUIRED_CALLS)}: it follows the "
                    "handshake, is notified and takes I/O"
                )
        for op in REQUIRED_OPS:
            if op not in ops:
                self._refuse(
                    f"it does not take {op} bios (its ops: {', '.join(ops) or 'none'}); "
                    f"a front end takes {' and '.join(REQUIRED_OPS)}"
                )
        self.hello = hello
        self.name = str(hello.get("name") or self.name)
        self.calls, self.ops = calls, ops

    def _refuse(self, reason: str) -> NoReturn:
        label = self.label
        tail = self.stderr_tail(2000).strip()
        self._kill()
        raise ImplementationRefused(
            f"{label}: {reason}" + (f"\nits stderr ends:\n{tail}" if tail else "")
        )

    def _kill(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.kill()

    def _parse(self, line: bytes) -> dict[str, Any]:
        """One line of the child, decoded and checked against the schema."""
        try:
            message = load_json(line, "the child's line")
        except JSONRefused as exc:
            reason = "not JSON" if exc.reason == "not JSON" else f"not JSON: {exc.reason}"
            raise MalformedMessage(reason, _excerpt(line)) from None
        if isinstance(message, dict) and message.get("type") in ("reset", "call", "result", "bye"):
            raise MalformedMessage(f"a {message['type']} message, which only the harness sends")
        try:
            check_message(message, "child")
        except MalformedMessage as exc:
            raise MalformedMessage(exc.reason, _excerpt(line)) from None
        checked: dict[str, Any] = message
        return checked

    def _failure(self, kind: str, what: str, rule: str, detail: str = "") -> ImplementationFailure:
        """The child's failure during ``what``: kill it, say what is known."""
        label = self.label
        tail = self.stderr_tail(4000).strip()
        self._kill()
        lines = [f"{label}"]
        if detail:
            lines.append(detail)
        if tail:
            lines.append(f"its stderr ends:\n{tail}")
        return ImplementationFailure(0, what, rule, kind, "\n".join(lines))

    # ------------------------------------------------------------------ the worlds
    def maker(self) -> _Maker:
        """The ``make_frontend`` of :func:`~xbdspec.world.harness.run_program` and of a
        campaign: each world it is called for resets the child."""
        return _Maker(self)

    def frontend(self, env: FrontendEnv) -> StdioFrontend:
        """The front end of a new world: the memory zeroed and free, ``reset`` sent (a
        child that failed before is replaced by a fresh one first)."""
        if self._child is not None and self._child.abandoned:
            self._kill()  # it did not finish a call the harness gave up on
        self.start()
        self._generation += 1
        self._reset_memory()
        self._trim_stderr()
        proxy = StdioFrontend(self, env, self._generation)
        self.converse(env, {"type": "reset"}, "reset")
        return proxy

    def _reset_memory(self) -> None:
        assert self._mmap is not None
        zeros = bytes(min(len(self._mmap), 1 << 20))
        for offset in range(0, len(self._mmap), len(zeros)):
            end = min(offset + len(zeros), len(self._mmap))
            self._mmap[offset:end] = zeros[: end - offset]
        self._free = list(range(self.pages))
        self._allocated.clear()

    def converse(self, env: FrontendEnv, message: Mapping[str, Any], what: str) -> None:
        """Send ``message`` (a call or a reset) and serve the child's requests against
        ``env`` until its ``done``; raise :class:`ImplementationFailure` when it fails."""
        child = self._child
        if child is None:
            raise ImplementationFailure(
                0, what, f"the front end is not running in its {what} (it failed before)", "crash"
            )
        child.send(message)
        try:
            while True:
                request = self._parse(child.receive(self.timeout))
                kind = request["type"]
                if kind == "env":
                    try:
                        child.send({"type": "result", "value": self._serve(env, request)})
                    except _Refused as exc:
                        child.send(_error(exc.code, str(exc)))
                    except XenstoreError as exc:
                        code = exc.code if exc.code in ERROR_CODES else "EINVAL"
                        child.send(_error(code, str(exc)))
                    except GrantError as exc:
                        # a protocol violation: in-process the exception ends the front
                        # end's call there; so does the harness, answering the rest of
                        # the call with a refusal
                        child.send(_error("EINVAL", str(exc)))
                        self._abandon(child, str(exc))
                        raise
                elif kind == "log":
                    self.logs.append(request["text"])
                elif kind == "done":
                    if request.get("ok", True):
                        return
                    error = str(request.get("error") or "no reason given")
                    raise self._failure(
                        "failed", what, f"the front end failed: {error[:300]}", error[300:]
                    )
                else:
                    raise MalformedMessage(f"a {kind} message in the middle of its {what}")
        except _Gone:
            status = child.status(EXIT_GRACE)
            raise self._failure(
                "crash", what, f"the front end crashed in its {what}: {status}"
            ) from None
        except _Silent:
            raise self._failure(
                "hang",
                what,
                f"the front end hangs in its {what}: no message within {self.timeout:g} s",
            ) from None
        except MalformedMessage as exc:
            raise self._failure(
                "malformed",
                what,
                f"the front end sent a malformed message in its {what}: {exc.reason}",
                f"the message: {exc.detail}" if exc.detail else "",
            ) from None
        except (ImplementationFailure, GrantError):
            raise
        except BaseException:
            self._kill()  # out of step with the harness: a fresh child next time
            raise

    def _abandon(self, child: _Child, why: str) -> None:
        """Finish a call the harness gave up on: refuse every further request of it
        (without effect on the world) until the child's ``done``.  A child that does not
        get there is killed; the next world gets a fresh one."""
        child.abandoned = True
        refusal = _error("EINVAL", f"the harness abandoned this call: {why}"[:4000])
        try:
            for _ in range(ABANDONED_MAX):
                request = self._parse(child.receive(self.timeout))
                if request["type"] == "done":
                    child.abandoned = False
                    return
                if request["type"] == "env":
                    child.send(refusal)
                elif request["type"] != "log":
                    break
        except (_Gone, _Silent, MalformedMessage):
            pass
        self._kill()

    # ------------------------------------------------------------------ env requests
    def _page(self, number: int) -> memoryview:
        if number not in self._allocated:
            raise _Refused("EINVAL", f"page {number} is not allocated")
        return self._views[number]

    def _serve(self, env: FrontendEnv, request: Mapping[str, Any]) -> Any:
        """Do one environment request; its result's value."""
        op = request["op"]
        if op == "read":
            return env.read(request["path"])
        if op == "write":
            env.write(request["path"], request["value"], int(request.get("tid", 0)))
        elif op == "remove":
            env.remove(request["path"], int(request.get("tid", 0)))
        elif op == "transaction_start":
            return env.transaction_start()
        elif op == "transaction_end":
            env.transaction_end(int(request["tid"]), bool(request.get("abort", False)))
        elif op == "alloc_page":
            if not self._free:
                raise _Refused("ENOMEM", f"all {self.pages} pages of shared memory are in use")
            number = self._free.pop(0)
            self._allocated.add(number)
            self._views[number][:] = bytes(PAGE_SIZE)
            return number
        elif op == "free_page":
            number = int(request["page"])
            self._page(number)
            self._allocated.discard(number)
            self._free.append(number)
        elif op == "grant":
            return env.grant(self._page(int(request["page"])), bool(request["readonly"]))
        elif op == "grant_ref":
            page = self._page(int(request["page"]))
            env.grant_ref(int(request["ref"]), page, bool(request["readonly"]))
        elif op == "grant_mapped":
            return env.grant_mapped(int(request["ref"]))
        elif op == "end_grant":
            env.end_grant(int(request["ref"]))
        elif op == "alloc_evtchn":
            return env.alloc_evtchn()
        elif op == "notify":
            port = request.get("port")
            env.notify(None if port is None else int(port))
        elif op == "complete":
            data = bytes.fromhex(request.get("data", ""))
            env.complete(int(request["bio"]), bool(request["ok"]), data)
        return None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "result", "error": code, "message": message[:4000]}


class _Maker:
    """``make_frontend`` for the worlds of one child (with the options it runs with,
    which a campaign's findings record)."""

    def __init__(self, impl: StdioImplementation) -> None:
        self.impl = impl
        self.options = impl.options

    def __call__(self, env: FrontendEnv) -> StdioFrontend:
        return self.impl.frontend(env)


class StdioFrontend:
    """The front end of one world, living in the child: each entry point is one
    ``call``, with the child's requests served against the world's environment."""

    def __init__(self, impl: StdioImplementation, env: FrontendEnv, generation: int) -> None:
        self._impl = impl
        self._env = env
        self._generation = generation

    def _call(self, call: str, bio: Bio | None = None) -> None:
        if self._generation != self._impl._generation:
            raise XbdspecError(
                f"{call}: this front end's world is over (the child was reset for another)"
            )
        message: dict[str, Any] = {"type": "call", "call": call}
        if bio is not None:
            message["bio"] = {
                "id": bio.id,
                "op": bio.op,
                "sector": bio.sector,
                "sectors": bio.sectors,
                "data": bio.data.hex(),
            }
        self._impl.converse(self._env, message, f"{call} call")

    def otherend_changed(self) -> None:
        self._call("otherend_changed")

    def interrupt(self) -> None:
        self._call("interrupt")

    def submit(self, bio: Bio) -> None:
        self._call("submit", bio)

    def shutdown(self) -> None:
        """Only for a child that declared ``shutdown``; without it the guest never asks."""
        if "shutdown" in self._impl.calls:
            self._call("shutdown")

    @property
    def resume(self) -> Callable[[], None] | None:
        """The ``resume`` call, for a child that declared it (None otherwise: the
        harness's resume event needs a front end that has one)."""
        if "resume" not in self._impl.calls:
            return None
        return lambda: self._call("resume")


def stdio_target(
    command: str,
    options: Mapping[str, str] | None = None,
    events: int = 24,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Target:
    """A :class:`~xbdspec.world.registry.Target` for ``xbdspec difftest --cmd``: the
    child started and its ``hello`` accepted (or :class:`ImplementationRefused`), its
    programs with the bio operations it takes, and resumes when it has a ``resume``."""
    from .campaign import Shape
    from .registry import Target

    impl = StdioImplementation(command, timeout=timeout, options=options)
    try:
        impl.start()
    except BaseException:
        impl.close()
        raise
    shape = Shape(
        events=events,
        ops=tuple(op for op in OPS if op in impl.ops),
        resume=0.2 if "resume" in impl.calls else 0.0,
        hostile=0.1,
    )
    return Target(
        name=impl.name,
        maker=impl.maker(),
        config=BackendConfig(sectors=shape.sectors),
        shape=shape,
        options=dict(impl.options),
        close=impl.close,
    )
