"""Replay scenario files of xenstore commits into a running oxenstored.

A scenario file (``tests/protocol/scenarios/*.jsonl``) is a header line, then one
commit a line: ``{"by": "toolstack" | "frontend" | "backend", "writes":
{"front/<key>": value, "back/<key>": value}, "remove": ["front", "back/<key>"...]}``.
Each commit is sent by its party's own socket connection (so the log tells who wrote
what; all three are ``A<n>`` socket connections of domain 0, writing absolute
paths):

* ``front/<key>`` is ``/local/domain/<guest>/device/vbd/<devid>/<key>``;
* ``back/<key>`` is ``/local/domain/0/backend/vbd/<guest>/<devid>/<key>``, or
  ``.../backend/qdisk/...`` for QEMU's back end (the front end's ``backend`` key then
  points there);
* a commit of one operation is a plain request; a commit of more (writes, then
  removals, as ``Directories.apply`` of ``xbdspec.traces.protocol`` applies them) is
  one transaction, retried on ``EAGAIN`` as libxl and Linux's xenbus do;
* a removal is ``XS_RM`` of the directory or the key.

The values that name the device (``back/frontend``, ``back/frontend-id``, ``back/dev``,
``front/backend``, ``front/backend-id``, ``front/virtual-device``) are rewritten for
the device a replay uses, so that one daemon can hold one device per scenario.

The parties also watch what the real ones watch (the xenbus bus directories, then the
other end's ``state``), so the log holds oxenstored's ``watch`` and ``w event`` lines.

Besides the scenarios: :func:`play_conflicts` (a transaction replayed by oxenstored
after a conflict, and one whose replay fails, answered ``EAGAIN`` and retried),
:func:`play_errors` (writes xenstored refuses) and :func:`play_misc` (the other
request types and values that need escaping).
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .launcher import Daemon, LaunchError
from .xs_wire import (
    XS_CONTROL,
    XS_DIRECTORY,
    XS_GET_DOMAIN_PATH,
    XS_GET_PERMS,
    XS_IS_DOMAIN_INTRODUCED,
    XS_RESET_WATCHES,
    XS_SET_PERMS,
    XS_UNWATCH,
    XS_WRITE,
    XsConnection,
    XsError,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "protocol" / "scenarios"
ROLES = ("toolstack", "frontend", "backend")
#: The guest every replay uses (the scenarios' own: domain 5).
GUEST = 5
#: How often a transaction is retried on EAGAIN before giving up.
RETRIES = 8
#: A value longer than oxenstored's quota-maxsize (2048): refused with E2BIG.
TOO_BIG = "x" * 3000

__all__ = [
    "GUEST",
    "ROLES",
    "SCENARIOS",
    "Commit",
    "Device",
    "DrivenLog",
    "LogTail",
    "Parties",
    "Scenario",
    "drive_log",
    "load_scenario",
    "misc_base",
    "play_conflicts",
    "play_errors",
    "play_interleaved",
    "play_misc",
    "play_scenario",
    "scenario_files",
    "xvd",
]


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Commit:
    """One commit of a scenario file (``line`` is its line in the file)."""

    by: str
    writes: dict[str, str]
    remove: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Scenario:
    name: str
    header: dict[str, object]
    commits: tuple[Commit, ...]


def scenario_files() -> list[Path]:
    return sorted(SCENARIOS.glob("*.jsonl"))


def load_scenario(path: Path) -> Scenario:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    header = json.loads(lines[0])
    commits = []
    for number, text in enumerate(lines[1:], start=2):
        obj = json.loads(text)
        if obj.get("by") not in ROLES:
            raise ValueError(f"{path}:{number}: 'by' is {obj.get('by')!r}")
        commits.append(
            Commit(obj["by"], dict(obj.get("writes", {})), tuple(obj.get("remove", [])), number)
        )
    return Scenario(path.stem, header, tuple(commits))


# --------------------------------------------------------------------------- devices


def xvd(index: int) -> tuple[int, str]:
    """The ``index``-th xvd disk's virtual-device number and name (Xen's vbd-interface
    numbering: ``202 << 8 | disk << 4`` for the first 16, ``1 << 28 | disk << 8`` after)."""
    name = ""
    n = index + 1
    while n:
        n, r = divmod(n - 1, 26)
        name = chr(ord("a") + r) + name
    if index < 16:
        return (202 << 8) | (index << 4), f"xvd{name}"
    return (1 << 28) | (index << 8), f"xvd{name}"


@dataclass(frozen=True)
class Device:
    """Where one replay's device lives in xenstore."""

    devid: int
    name: str
    kind: str = "vbd"  # the back end's type: vbd (blkback) or qdisk (QEMU)
    guest: int = GUEST
    backend_domid: int = 0

    @classmethod
    def numbered(cls, index: int, kind: str = "vbd") -> Device:
        devid, name = xvd(index)
        return cls(devid, name, kind)

    @property
    def front(self) -> str:
        return f"/local/domain/{self.guest}/device/vbd/{self.devid}"

    @property
    def back(self) -> str:
        return f"/local/domain/{self.backend_domid}/backend/{self.kind}/{self.guest}/{self.devid}"

    def path(self, key: str) -> str:
        """``front``, ``back``, ``front/<key>`` or ``back/<key>`` as an absolute path."""
        side, _, rest = key.partition("/")
        if side not in ("front", "back"):
            raise ValueError(f"{key!r} is neither front/... nor back/...")
        base = self.front if side == "front" else self.back
        return f"{base}/{rest}" if rest else base

    def value(self, key: str, value: str) -> str:
        """``value`` with the device's identity substituted where the key names it."""
        identity = {
            "back/frontend": self.front,
            "back/frontend-id": str(self.guest),
            "back/dev": self.name,
            "front/backend": self.back,
            "front/backend-id": str(self.backend_domid),
            "front/virtual-device": str(self.devid),
        }
        return identity.get(key, value)


# --------------------------------------------------------------------------- the log


_CONN_LINE = re.compile(r"\[[^\]]*\] +(\S+) +(newconn|endconn)\b")


class LogTail:
    """Follows the daemon's current access log, to learn the name oxenstored gives each
    new connection and to know when it has logged a connection's end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.unread: deque[str] = deque()

    def reset(self) -> None:
        """The log was rotated: follow the new file from its start."""
        self.offset = 0
        self.partial = b""
        self.unread.clear()

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        self.unread.extend(line.decode("utf-8", "replace") for line in lines)

    def wait_for(
        self, want: Callable[[str], bool], what: str, daemon: Daemon, timeout: float = 10.0
    ) -> str:
        """The next complete line ``want`` accepts (lines before it are passed over)."""
        deadline = time.monotonic() + timeout
        while True:
            self._read()
            while self.unread:
                line = self.unread.popleft()
                if want(line):
                    return line
            daemon.check_running(f"wait for {what}")
            if time.monotonic() > deadline:
                raise LaunchError(
                    f"wait for {what}",
                    f"not in {self.path} after {timeout:.0f} s" + daemon.tails(),
                )
            time.sleep(0.002)


# --------------------------------------------------------------------------- the parties


@dataclass
class Sent:
    """A request that changed (or tried to change) the store, as the driver sent it."""

    role: str
    op: str  # write, rm
    path: str
    value: str | None
    tid: int
    answer: str  # OK or the error's name


class Parties:
    """The three parties' socket connections, one each, in the order of :data:`ROLES`.

    ``names`` maps each role to the connection name oxenstored logs (``A4``).
    """

    def __init__(self, daemon: Daemon, tail: LogTail) -> None:
        self.daemon = daemon
        self.tail = tail
        self.conns: dict[str, XsConnection] = {}
        self.names: dict[str, str] = {}
        self.sent: list[Sent] = []

    def open(self) -> None:
        for role in ROLES:
            self.conns[role] = XsConnection(str(self.daemon.socket))
            line = self.tail.wait_for(
                lambda text: _CONN_LINE.match(text) is not None and "newconn" in text,
                f"the {role}'s newconn line",
                self.daemon,
            )
            match = _CONN_LINE.match(line)
            assert match is not None
            self.names[role] = match[1]

    def close(self) -> None:
        """Close every connection and wait until oxenstored has logged their ends."""
        for conn in self.conns.values():
            conn.close()
        waiting = {self.names[role] for role in self.conns if role in self.names}
        self.conns.clear()
        while waiting:
            line = self.tail.wait_for(
                lambda text: (
                    (m := _CONN_LINE.match(text)) is not None
                    and m[2] == "endconn"
                    and m[1] in waiting
                ),
                f"the endconn lines of {', '.join(sorted(waiting))}",
                self.daemon,
            )
            match = _CONN_LINE.match(line)
            assert match is not None
            waiting.discard(match[1])

    def __getitem__(self, role: str) -> XsConnection:
        return self.conns[role]

    # ---- requests, recorded
    def write(self, role: str, path: str, value: str, tid: int = 0) -> None:
        self._send(role, "write", path, value, tid, lambda: self[role].write(path, value, tid))

    def rm(self, role: str, path: str, tid: int = 0) -> None:
        self._send(role, "rm", path, None, tid, lambda: self[role].rm(path, tid))

    def _send(
        self, role: str, op: str, path: str, value: str | None, tid: int, call: Callable[[], None]
    ) -> None:
        sent = Sent(role, op, path, value, tid, "OK")
        self.sent.append(sent)
        try:
            call()
        except XsError as exc:
            sent.answer = exc.errno
            raise

    def transaction(
        self, role: str, body: Callable[[int], None], retries: int = RETRIES
    ) -> list[int]:
        """Run ``body(tid)`` in a transaction and commit it, again on EAGAIN; returns
        the transaction ids used (more than one when a commit was refused)."""
        conn = self[role]
        tids = []
        for _ in range(retries):
            tid = conn.transaction_start()
            tids.append(tid)
            body(tid)
            try:
                conn.transaction_end(tid, commit=True)
            except XsError as exc:
                if exc.errno != "EAGAIN":
                    raise
                continue
            return tids
        raise LaunchError(f"commit a transaction of the {role}", f"EAGAIN {retries} times")

    def read_or_none(self, role: str, path: str, tid: int = 0) -> str | None:
        try:
            return self[role].read(path, tid)
        except XsError as exc:
            if exc.errno != "ENOENT":
                raise
            return None


@contextmanager
def open_parties(daemon: Daemon, tail: LogTail) -> Iterator[Parties]:
    parties = Parties(daemon, tail)
    try:
        parties.open()
        yield parties
    finally:
        parties.close()


# --------------------------------------------------------------------------- replays


def play_commit(parties: Parties, device: Device, commit: Commit) -> None:
    """One commit: a plain request if it is one operation, else a transaction."""
    ops: list[tuple[str, str, str | None]] = [
        ("write", device.path(k), device.value(k, v)) for k, v in commit.writes.items()
    ]
    ops += [("rm", device.path(k), None) for k in commit.remove]
    role = commit.by

    def send(tid: int) -> None:
        for op, path, value in ops:
            if op == "write":
                assert value is not None
                parties.write(role, path, value, tid)
            else:
                parties.rm(role, path, tid)

    if len(ops) == 1:
        send(0)
    elif ops:
        parties.transaction(role, send)


def watch_bus(parties: Parties, device: Device) -> None:
    """The xenbus bus watches: the back end's on its type's directory, the front end's
    on the guest's ``device`` directory (Linux's xenbus_backend / xenbus_frontend)."""
    parties["backend"].watch(f"/local/domain/{device.backend_domid}/backend/{device.kind}", "be")
    parties["frontend"].watch(f"/local/domain/{device.guest}/device", "fe")


def watch_otherend(parties: Parties, device: Device) -> None:
    """Each end's watch on the other end's ``state`` (xenbus ``watch_otherend``)."""
    parties["backend"].watch(f"{device.front}/state", f"otherend-{device.devid}")
    parties["frontend"].watch(f"{device.back}/state", f"otherend-{device.devid}")


def play_scenario(
    parties: Parties,
    device: Device,
    scenario: Scenario,
    hooks: dict[int, Callable[[], None]] | None = None,
) -> None:
    """Every commit of ``scenario`` for ``device``; ``hooks[n]`` runs after the commit
    on the file's line ``n``."""
    hooks = hooks or {}
    watch_bus(parties, device)
    for i, commit in enumerate(scenario.commits):
        play_commit(parties, device, commit)
        if i == 0:
            watch_otherend(parties, device)
        hook = hooks.get(commit.line)
        if hook is not None:
            hook()


def play_interleaved(parties: Parties, replays: list[tuple[Device, Scenario]]) -> None:
    """Many devices at once: commit ``n`` of every scenario in turn, then commit
    ``n + 1``... (guests booting together), each scenario on its own device."""
    kinds: dict[tuple[str, int], Device] = {}
    for device, _ in replays:
        kinds.setdefault((device.kind, device.guest), device)
    for device in kinds.values():
        watch_bus(parties, device)
    longest = max(len(scenario.commits) for _, scenario in replays)
    for n in range(longest):
        for device, scenario in replays:
            if n < len(scenario.commits):
                play_commit(parties, device, scenario.commits[n])
                if n == 0:
                    watch_otherend(parties, device)


def play_conflicts(parties: Parties, first: Device, second: Device, scenario: Scenario) -> None:
    """Two devices, each replaying ``scenario`` (a start-up), with two real conflicts.

    1. The tool stack's transaction creating ``first`` (its writes span the front and
       back directories, so the transaction's lowest common path is /local/domain) is
       still open while ``second``'s back end makes its probe writes: the commit
       conflicts (``conflict``), oxenstored replays the transaction (``r(<tid>):``
       lines), the replay's answers are the same, so it commits.
    2. Once ``first`` is connected: its front end goes Closing; its back end starts
       switching its own state in a transaction that reads it (Linux's
       ``__xenbus_switch_state``); the tool stack's detach transaction (reads the state,
       writes online 0 and state 5) commits meanwhile; the back end's commit conflicts,
       the replay reads another value, so the answer is ``EAGAIN``; the back end retries
       and commits.  Then Closed on both sides and the tool stack removes both nodes.
    """
    commits = scenario.commits
    create, rest = commits[0], commits[1:]
    probe = [c for c in rest if c.by == "backend"][:4]  # limits, then InitWait
    if len(probe) < 4 or probe[-1].writes != {"back/state": "2"}:
        raise ValueError(f"{scenario.name}: the back end's probe is not its first 4 commits")
    after_probe = [c for c in rest if c not in probe]

    watch_bus(parties, first)
    play_commit(parties, second, create)
    watch_otherend(parties, second)

    # 1. the creation of `first` conflicts with `second`'s probe, and is replayed
    conn = parties["toolstack"]
    tid = conn.transaction_start()
    for key, value in create.writes.items():
        parties.write("toolstack", first.path(key), first.value(key, value), tid)
    for commit in probe:
        play_commit(parties, second, commit)
    conn.transaction_end(tid)  # answered OK: the replay committed
    watch_otherend(parties, first)
    for commit in rest:
        play_commit(parties, first, commit)
    for commit in after_probe:
        play_commit(parties, second, commit)

    # 2. the back end's state switch loses against the tool stack's detach
    parties.write("frontend", first.path("front/state"), "5")
    tries = [0]

    def switch_closing(tid: int) -> None:
        parties.read_or_none("backend", first.path("back/state"), tid)
        if tries[0] == 0:  # the first attempt: the tool stack commits in between

            def detach(ttid: int) -> None:
                parties.read_or_none("toolstack", first.path("back/state"), ttid)
                parties.write("toolstack", first.path("back/online"), "0", ttid)
                parties.write("toolstack", first.path("back/state"), "5", ttid)

            parties.transaction("toolstack", detach)
        tries[0] += 1
        parties.write("backend", first.path("back/state"), "5", tid)

    tids = parties.transaction("backend", switch_closing)
    if len(tids) < 2:
        raise LaunchError("make a transaction conflict", "the back end's commit was not refused")
    parties.write("frontend", first.path("front/state"), "6")
    parties.write("backend", first.path("back/state"), "6")

    def destroy(tid: int) -> None:
        parties.rm("toolstack", first.front, tid)
        parties.rm("toolstack", first.back, tid)

    parties.transaction("toolstack", destroy)


def play_errors(parties: Parties, device: Device, scenario: Scenario) -> dict[str, list[str]]:
    """``scenario`` (a start-up) with requests xenstored refuses, each right after a
    write the checker tracks on the same connection.  Returns what each answered.

    * after the back end's InitWait: blkback's ``xenbus_dev_error`` writes its message
      to ``/local/domain/0/error/backend/<type>/<guest>/<devid>/error`` (outside the
      device's node); the message exceeds quota-maxsize: ``E2BIG``;
    * after the front end's Initialised: a write of a key the protocol does not name,
      under the front end's node, too big: ``E2BIG``;
    * after the front end's Connected: a read of ``max-ring-pages``, which blkback 6.1
      does not write: ``ENOENT`` (logged only with ``access-log-read-ops``); and a
      removal under a directory that does not exist: ``ENOENT`` too (the removal of a
      missing node whose parent exists is answered OK).
    """
    answers: dict[str, list[str]] = {}

    def refused(what: str, call: Callable[[], object]) -> None:
        try:
            call()
        except XsError as exc:
            answers.setdefault(what, []).append(exc.errno)
        else:
            answers.setdefault(what, []).append("OK")

    def after_initwait() -> None:
        error_node = (
            f"/local/domain/{device.backend_domid}/error/backend/{device.kind}/"
            f"{device.guest}/{device.devid}/error"
        )
        refused(
            "backend error node", lambda: parties.write("backend", error_node, f"-12 {TOO_BIG}")
        )

    def after_initialised() -> None:
        refused(
            "frontend unknown key",
            lambda: parties.write("frontend", f"{device.front}/debug-message", TOO_BIG),
        )

    def after_connected() -> None:
        refused("frontend read", lambda: parties["frontend"].read(f"{device.back}/max-ring-pages"))
        refused(
            "frontend rm missing",
            lambda: parties.rm("frontend", f"{device.front}/queue-9/ring-ref"),
        )
        refused("frontend rm absent key", lambda: parties.rm("frontend", f"{device.front}/nokey"))

    lines = _hook_lines(scenario)
    play_scenario(
        parties,
        device,
        scenario,
        {
            lines["initwait"]: after_initwait,
            lines["initialised"]: after_initialised,
            lines["connected"]: after_connected,
        },
    )
    return answers


def _hook_lines(scenario: Scenario) -> dict[str, int]:
    found: dict[str, int] = {}
    for c in scenario.commits:
        state_b = c.writes.get("back/state")
        state_f = c.writes.get("front/state")
        if c.by == "backend" and state_b == "2":
            found.setdefault("initwait", c.line)
        if c.by == "frontend" and state_f == "3":
            found.setdefault("initialised", c.line)
        if c.by == "frontend" and state_f == "4":
            found["connected"] = c.line
    missing = {"initwait", "initialised", "connected"} - set(found)
    if missing:
        raise ValueError(f"{scenario.name}: no commit for {', '.join(sorted(missing))}")
    return found


#: Values whose log form needs OCaml's String.escaped, and that form (sanitize_data:
#: NUL becomes a space first).  Found from what oxenstored wrote.
ESCAPED_VALUES = {
    "quote": 'say "hi"',
    "backslash": "C:\\disk",
    "tab": "a\tb",
    "newline": "line1\nline2",
    "carriage-return": "a\rb",
    "nul": "a\0b",
    "control": "bell\x07",
    "delete": "del\x7f",
    "apostrophe": "it's",
    "utf-8": "caf\u00e9",
}


def misc_base(guest: int = GUEST) -> str:
    """Where :func:`play_misc` writes: a guest's ``data`` directory, no device's node."""
    return f"/local/domain/{guest}/data/xbdspec"


def play_misc(parties: Parties, guest: int = GUEST) -> dict[str, str]:
    """The request types a vbd replay does not make, and values that need escaping
    (written under :func:`misc_base`); returns each answer, ``OK`` or the error."""
    answers: dict[str, str] = {}
    conn = parties["toolstack"]

    def answer(what: str, call: Callable[[], object]) -> None:
        try:
            call()
        except XsError as exc:
            answers[what] = exc.errno
        else:
            answers[what] = "OK"

    base = misc_base(guest)
    answer("mkdir", lambda: conn.mkdir(base))
    for name, value in ESCAPED_VALUES.items():
        answer(
            f"write {name}", functools.partial(parties.write, "toolstack", f"{base}/{name}", value)
        )
    answer("read", lambda: conn.read(f"{base}/quote"))
    answer("directory", lambda: conn.request(XS_DIRECTORY, f"{base}\0".encode()))
    answer("getperms", lambda: conn.request(XS_GET_PERMS, f"{base}\0".encode()))
    answer("setperms", lambda: conn.request(XS_SET_PERMS, f"{base}\0n0\0r{guest}\0".encode()))
    answer("watch", lambda: conn.watch(base, "misc"))
    answer("unwatch", lambda: conn.request(XS_UNWATCH, f"{base}\0misc\0".encode()))
    answer("getdomainpath", lambda: conn.request(XS_GET_DOMAIN_PATH, f"{guest}\0".encode()))
    answer("isintroduced", lambda: conn.request(XS_IS_DOMAIN_INTRODUCED, f"{guest}\0".encode()))
    answer("reset watches", lambda: conn.request(XS_RESET_WATCHES, b"\0"))
    answer("control print", lambda: conn.request(XS_CONTROL, b"print\0hello from the tests\0"))
    answer("unknown type", lambda: conn.request(999, b"\0"))
    answer("write without value", lambda: conn.request(XS_WRITE, f"{base}/novalue".encode()))
    answer("invalid path", lambda: conn.write(f"{base}/bad key", "1"))

    def aborted() -> None:
        tid = conn.transaction_start()
        conn.write(f"{base}/aborted", "1", tid)
        conn.transaction_end(tid, commit=False)

    answer("aborted transaction", aborted)
    answer("rm", lambda: parties.rm("toolstack", base))
    return answers


# --------------------------------------------------------------------------- one log


@dataclass
class DrivenLog:
    """One access log the daemon wrote, and what was driven into it.

    Attributes:
        name: the log's name (the scenario's, or ``conflict``, ``errors``, ``misc``).
        path: the log file.
        nb_chars: the daemon's access-log-nb-chars.
        devices: the devices whose nodes the log holds.
        roles: role -> the connection name oxenstored gave it (``A7``).
        sent: the writes and removals sent, in order.
        answers: what the special requests were answered (errors, misc).
        seconds: how long the driving took.
    """

    name: str
    path: Path
    nb_chars: int
    devices: list[Device]
    roles: dict[str, str]
    sent: list[Sent] = field(default_factory=list)
    answers: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0


def drive_log(
    daemon: Daemon,
    tail: LogTail,
    name: str,
    dest: Path,
    devices: list[Device],
    play: Callable[[Parties], object],
) -> DrivenLog:
    """Open the three parties, ``play(parties)``, close them, wait for their endconn
    lines, then rotate the access log to ``dest`` (so the file holds this log only)."""
    started = time.monotonic()
    with open_parties(daemon, tail) as parties:
        answers = play(parties)
    daemon.rotate_access_log(dest)
    tail.reset()
    log = DrivenLog(name, dest, daemon.config.nb_chars, devices, dict(parties.names))
    log.sent = parties.sent
    if isinstance(answers, dict):
        log.answers = dict(answers)
    log.seconds = time.monotonic() - started
    return log
