"""An implementation in another process, driven over the stdio protocol.

:class:`SubprocessImplementation` starts the program, says ``hello``, and turns every
call of the adapter contract into one request line and one validated response line
(:mod:`.protocol`).  A child that crashes, closes its output, answers garbage or says
nothing for ``timeout`` seconds (a safety net, generous by default) is reported as an
:class:`~xbdspec.conformance.contract.ImplementationError` naming the command and the
message number; the child is then stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Any

from xbdspec.errors import InputError
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes

from . import protocol
from .contract import Capabilities, EnvChoices, ImplementationError, Observation

#: Seconds without a response before the child counts as hung (a safety net only).
DEFAULT_TIMEOUT = 60.0


class SubprocessImplementation:
    """A child process speaking the stdio protocol.

    Attributes:
        argv: the command line.
        timeout: seconds to wait for one response.
    """

    def __init__(self, command: str | Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> None:
        try:
            self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        except ValueError as exc:  # an unclosed quote
            raise ImplementationError(
                f"cannot split the command {command[:200]!r} as a shell would: {exc}"
            ) from None
        if not self.argv:
            raise ImplementationError("an empty command was given for the implementation")
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.msg_id = 0
        self.buffer = b""
        self.sizes = Sizes()
        self._caps: Capabilities | None = None

    @property
    def label(self) -> str:
        """How errors name the child."""
        pid = f" (pid {self.proc.pid})" if self.proc is not None else ""
        return f"implementation process {shlex.join(self.argv)!r}{pid}"

    # ------------------------------------------------------------------ process
    def _start(self) -> None:
        if self.proc is not None:
            return
        try:
            # its own process group, so that stopping it stops whatever it started
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise ImplementationError(
                f"cannot start {shlex.join(self.argv)!r}: {exc.strerror}"
            ) from None
        self.buffer = b""
        self.msg_id = 0

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.write((protocol.request(self.msg_id + 1, "quit") + "\n").encode())
                proc.stdin.flush()
        except OSError:
            pass
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):  # flushing to a dead process: a broken pipe
                    stream.close()
        try:
            proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # what it left running

    def _fail(self, message: str) -> ImplementationError:
        label = self.label
        self.close()
        return ImplementationError(f"{label}, message {self.msg_id}: {message}")

    # ------------------------------------------------------------------ one exchange
    def _exchange(self, line: str) -> dict[str, Any]:
        self._start()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            raise self._fail(
                f"the process is gone ({self._exit_status()}); it did not read the request"
            ) from None
        raw = self._read_line()
        source = f"{self.label}, message {self.msg_id}"
        try:
            obj = protocol.parse_line(raw, source)
            op = json.loads(line).get("op")
            protocol.check_response(obj, self.msg_id, source, op if isinstance(op, str) else None)
        except InputError as exc:
            self.close()
            raise ImplementationError(str(exc)) from None
        return obj

    def _read_line(self) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + self.timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                if len(self.buffer) > protocol.MAX_LINE:
                    raise self._fail(f"response longer than {protocol.MAX_LINE} bytes")
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    raise self._fail(
                        f"no response within {self.timeout:g} s: the process looks hung"
                    )
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise self._fail(f"the process closed its output ({self._exit_status()})")
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def _exit_status(self) -> str:
        if self.proc is None:
            return "not running"
        try:
            code = self.proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            return "still running"
        return f"exit status {code}" if code >= 0 else f"killed by signal {-code}"

    def _next(self) -> int:
        self.msg_id += 1
        return self.msg_id

    # ------------------------------------------------------------------ the contract
    def capabilities(self) -> Capabilities:
        if self._caps is None:
            self._start()
            obj = self._exchange(protocol.hello(self._next()))
            events = frozenset(build_spec(self.sizes).events())
            try:
                self._caps = protocol.capabilities(
                    obj, f"{self.label}, message {self.msg_id}", events
                )
            except InputError as exc:
                self.close()
                raise ImplementationError(str(exc)) from None
        return self._caps

    def _observation(self, obj: Mapping[str, Any]) -> Observation:
        try:
            return protocol.observation(
                obj, f"{self.label}, message {self.msg_id}", build_spec(self.sizes)
            )
        except InputError as exc:
            self.close()
            raise ImplementationError(str(exc)) from None

    def reset(self, sizes: Sizes) -> Observation:
        self.sizes = sizes
        self.capabilities()
        return self._observation(self._exchange(protocol.reset(self._next(), sizes)))

    def apply(self, event: str, params: Mapping[str, Any], env: EnvChoices) -> Observation:
        return self._observation(self._exchange(protocol.apply(self._next(), event, params, env)))

    def observe(self) -> Observation:
        return self._observation(self._exchange(protocol.request(self._next(), "observe")))
