"""What the fuzz suite throws at xbdspec's readers, and how it watches the processes.

Strategies (hypothesis) for hostile lines and values, mutations of valid files, and the
process helpers: :func:`run_limited` runs a command in its own process group under a
memory limit and reports its exit status, output, peak memory and survivors;
:func:`survivors` lists the live members of a process group (zombies are dead: this
machine's init reaps orphans only now and then).

The named constants (:data:`DEEP`, :data:`HUGE_INT`, ...) are the fixed hostile inputs;
:mod:`catalogue` pairs each with a reader and what it gets (``docs/hostile-inputs.md``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
XBDSPEC = [sys.executable, "-m", "xbdspec"]


def examples(cheap: int) -> settings:
    """Settings for a property whose examples are cheap (in process, milliseconds):
    at least ``cheap`` examples, more under a larger profile (``dev``).  Still
    derandomized and bounded under ``ci`` (tests/conftest.py)."""
    return settings(max_examples=max(cheap, _profile_examples()))


def few(costly: int) -> settings:
    """Settings for a property whose examples are costly (a process each): at most
    ``costly`` examples under ``ci``, the profile's number when that is smaller."""
    return settings(max_examples=min(costly, _profile_examples()))


def _profile_examples() -> int:
    """The loaded profile's number of examples (tests/conftest.py loads it)."""
    loaded = settings.default
    assert loaded is not None, "no hypothesis profile is loaded"
    return loaded.max_examples


# ---------------------------------------------------------------------------- fixed inputs
#: 100,000 opening brackets: RecursionError in json.loads before the readers bounded depth.
DEEP = b"[" * 100_000
#: 70 levels of objects, valid JSON, past the readers' 64 (it parses, then is refused).
DEEP_VALID = (b'{"a":' * 70) + b"1" + (b"}" * 70)
#: An integer of 5,000 digits: past Python's 4,300-digit limit (a ValueError in json.loads).
HUGE_INT = b"1" * 5000
#: Bytes that are not UTF-8.
BAD_UTF8 = b"\xff\xfe\x80 not utf-8 \xc3\x28"
#: Constants JSON does not have, which Python's json reads anyway.
NON_FINITE = (b"NaN", b"Infinity", b"-Infinity", b"1e999")
#: The largest single argument Linux passes to a program (MAX_ARG_STRLEN is 128 KiB).
LONG_ARG = "9" * ((128 << 10) - 1)


def hostile_lines() -> st.SearchStrategy[bytes]:
    """One hostile line: random bytes, random JSON, or one of the fixed hostile inputs
    (with its variants inside an object, where a reader finds them after parsing)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=10**18, max_value=10**60),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=30),
    )
    values = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=12,
    )
    fixed = st.sampled_from(
        [
            DEEP,
            DEEP_VALID,
            HUGE_INT,
            b'{"event": ' + HUGE_INT + b"}",
            BAD_UTF8,
            *NON_FINITE,
            b'{"x": NaN}',
            b"",
            b"\x00" * 8,
            b"{",
            b"[]",
            b'"\\ud800"',
        ]
    )
    return st.one_of(
        fixed,
        st.binary(max_size=64),
        values.map(lambda v: json.dumps(v).encode()),
    )


def hostile_values() -> st.SearchStrategy[Any]:
    """A hostile JSON value to put where a reader expects another (a wrong type, a
    number far out of range, a long string, a deep structure)."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.sampled_from([-1, 0, 2**31, 2**32, 2**63, 2**64, 10**4000, -(10**4000)]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.sampled_from(
            [
                "",
                "x" * 100_000,
                "\x00",
                "\udcff".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
            ]
        ),
        st.lists(st.integers(), max_size=3),
        st.just({"a": [[[[]]]]}),
    )


@dataclasses.dataclass(frozen=True)
class Mutation:
    """One change to a valid file's lines (its ``repr`` says which, for a failing example)."""

    kind: str
    line: int
    payload: Any = None

    def apply(self, lines: list[bytes]) -> list[bytes]:
        """The mutated lines (``line`` is taken modulo their number)."""
        out = list(lines)
        if not out:
            return [b"" if self.payload is None else _encode(self.payload)]
        i = self.line % len(out)
        if self.kind == "delete":
            del out[i]
        elif self.kind == "duplicate":
            out.insert(i, out[i])
        elif self.kind == "swap":
            j = (i + 1) % len(out)
            out[i], out[j] = out[j], out[i]
        elif self.kind == "replace-line":
            out[i] = self.payload
        elif self.kind == "truncate":
            out[i] = out[i][: len(out[i]) // 2]
        elif self.kind == "set-value":
            out[i] = _set_value(out[i], self.payload)
        return out


def _encode(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def _set_value(line: bytes, payload: tuple[int, Any]) -> bytes:
    """``line`` with one of its values (the ``index``-th found walking it) set to ``value``."""
    index, value = payload
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # not JSON, or too deep to walk: left as it is
        return line
    slots: list[tuple[Any, Any]] = []
    stack = [obj]
    while stack:
        item = stack.pop()
        keys = (
            item.keys()
            if isinstance(item, dict)
            else range(len(item))
            if isinstance(item, list)
            else ()
        )
        for key in keys:
            slots.append((item, key))
            stack.append(item[key])
    if not slots:
        return json.dumps(value).encode()
    holder, key = slots[index % len(slots)]
    holder[key] = value
    return json.dumps(obj).encode()


def mutations() -> st.SearchStrategy[list[Mutation]]:
    """One to three mutations of a file's lines."""
    one = st.one_of(
        st.builds(
            Mutation,
            st.sampled_from(["delete", "duplicate", "swap", "truncate"]),
            st.integers(0, 200),
        ),
        st.builds(Mutation, st.just("replace-line"), st.integers(0, 200), hostile_lines()),
        st.builds(
            Mutation,
            st.just("set-value"),
            st.integers(0, 200),
            st.tuples(st.integers(0, 50), hostile_values()),
        ),
    )
    return st.lists(one, min_size=1, max_size=3)


def mutate(text: bytes, changes: Sequence[Mutation]) -> bytes:
    """``text`` (lines) with ``changes`` applied in order."""
    lines = text.splitlines()
    for change in changes:
        lines = change.apply(lines)
    return b"\n".join(lines) + b"\n"


# ---------------------------------------------------------------------------- processes
def survivors(pgid: int) -> list[tuple[int, str]]:
    """Live processes (pid, name) of process group ``pgid``; zombies do not count."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name_end = stat.rfind(")")
        fields = stat[name_end + 2 :].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            found.append((int(entry), stat[stat.find("(") + 1 : name_end]))
    return found


@dataclasses.dataclass
class Run:
    """What :func:`run_limited` saw.

    Attributes:
        status: the exit status (negative: killed by that signal; None: timed out).
        stdout, stderr: its output (bytes).
        peak_kib: its peak resident memory (KiB, from ``wait4``).
        survivors: what was left of its process group after it ended.
        seconds: how long it ran.
    """

    status: int | None
    stdout: bytes
    stderr: bytes
    peak_kib: int
    survivors: list[tuple[int, str]]
    seconds: float


#: The address space a fuzzed command may use (``RLIMIT_AS``): generous for Python with
#: z3 loaded, small enough that a runaway allocation fails fast instead of swapping.
MEMORY_LIMIT = 3 << 30


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


#: Runs its arguments as a child and writes the child's peak resident memory (``wait4``)
#: into the file named by ``XBDSPEC_PEAK_FILE``, then exits as the child did.  Linux
#: carries a process's peak across ``exec`` (``ru_maxrss`` starts at what the forked copy
#: of its parent held), so a command forked from a large pytest process would show the
#: test runner's memory as its own; forked from this small process it shows its own.
_TRAMPOLINE = """
import os, signal, sys
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(os.environ["XBDSPEC_PEAK_FILE"], "w") as out:
    out.write(str(usage.ru_maxrss))
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_limited(
    argv: Sequence[str],
    *,
    stdin: bytes = b"",
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Run:
    """Run ``argv`` in its own process group under :data:`MEMORY_LIMIT`; when it ends (or
    is killed at ``timeout``), list its group's survivors, then kill them.  Its peak
    memory is its own (``wait4``), not the largest of every child this process had."""
    started = time.monotonic()
    handle, peak_name = tempfile.mkstemp(prefix="xbdspec-peak-")
    os.close(handle)
    proc = subprocess.Popen(
        [sys.executable, "-S", "-c", _TRAMPOLINE, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_limit,
        env={**os.environ, **(env or {}), "XBDSPEC_PEAK_FILE": peak_name},
        cwd=cwd or REPO,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    chunks: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda n=n, f=f: chunks.__setitem__(n, f.read()), daemon=True)
        for n, f in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for reader in readers:
        reader.start()
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(stdin)
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    status: int | None = None
    peak = 0
    while True:
        pid, wait_status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status = os.waitstatus_to_exitcode(wait_status)
            proc.returncode = status  # reaped here: Popen must not wait for it again
            peak = usage.ru_maxrss
            break
        if time.monotonic() - started > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = -signal.SIGKILL
            peak = usage.ru_maxrss
            break
        time.sleep(0.005)
    with contextlib.suppress(OSError, ValueError):
        # the command's own peak, when the trampoline saw it end (not after a kill)
        text = Path(peak_name).read_text()
        if text:
            peak = int(text)
    with contextlib.suppress(OSError):
        os.unlink(peak_name)
    left = survivors(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left holds the pipes open
    for reader in readers:
        reader.join(10)
    return Run(
        status,
        chunks.get("out", b""),
        chunks.get("err", b""),
        peak,
        left,
        time.monotonic() - started,
    )
