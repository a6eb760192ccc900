"""Realistic oxenstored access logs, built line by line for the tests.

The lines come out exactly as oxenstored writes them (``format_line``); the
sequences follow what the real parties do: libxl (a socket connection, ``A<n>``)
creates both nodes in one transaction, blkback (in domain 0, ``D0``) publishes its
features and state, the guest's front end (``D<guest>``) writes relative paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xbdspec.traces.oxenstored import format_line


@dataclass
class Log:
    """An access log under construction.

    Attributes:
        lines: the lines so far (no newlines).
        nb_chars: the access-log-nb-chars the lines are cut at.
    """

    lines: list[str] = field(default_factory=list)
    nb_chars: int = 180
    _ms: int = 0
    _tids: dict[str, int] = field(default_factory=dict)

    def add(self, conn: str, op: str, data: str = "") -> int:
        """Append a line; returns its 1-based number."""
        self._ms += 7
        s, ms = divmod(self._ms, 1000)
        m, s = divmod(s, 60)
        date = f"20261126T03:{m:02d}:{s:02d}.{ms:03d}Z"
        self.lines.append(format_line(date, conn, op, data, self.nb_chars))
        return len(self.lines)

    def write(self, conn: str, path: str, value: str) -> int:
        return self.add(conn, "write", f"{path}\0{value}")

    def rm(self, conn: str, path: str) -> int:
        return self.add(conn, "rm", f"{path}\0")

    def tid(self, conn: str) -> str:
        """A new transaction of ``conn``: ``D5.3``."""
        self._tids[conn] = self._tids.get(conn, 0) + 1
        return f"{conn}.{self._tids[conn]}"

    def noise(self, guest: int) -> None:
        """Unrelated traffic: a balloon target, a watch event, a guest's data key."""
        self.write("A1", f"/local/domain/{guest}/memory/target", "1048576")
        self.add(f"D{guest}", "w event", "memory/target\0mem\0")
        self.write(f"D{guest}", "data/updated", "Thu Nov 26 03:00:00 UTC 2026")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def be_path(guest: int, devid: int, backend: int = 0) -> str:
    return f"/local/domain/{backend}/backend/vbd/{guest}/{devid}"


def fe_path(guest: int, devid: int) -> str:
    return f"/local/domain/{guest}/device/vbd/{devid}"


def create(log: Log, guest: int, devid: int, backend: int = 0) -> int:
    """libxl creates both nodes in one transaction; returns the commit line."""
    t = log.tid("A12")
    be, fe = be_path(guest, devid, backend), fe_path(guest, devid)
    log.write(t, f"{be}/frontend", fe)
    log.write(t, f"{be}/frontend-id", str(guest))
    log.write(t, f"{be}/online", "1")
    log.write(t, f"{be}/removable", "0")
    log.write(t, f"{be}/state", "1")
    log.write(t, f"{be}/params", "/dev/vg0/guest-disk")
    log.write(t, f"{fe}/backend", be)
    log.write(t, f"{fe}/backend-id", str(backend))
    log.write(t, f"{fe}/state", "1")
    log.write(t, f"{fe}/virtual-device", str(devid))
    return log.add(t, "commit")


def be_rel(guest: int, devid: int) -> str:
    """The back-end node as blkback writes it: relative to domain 0's home."""
    return f"backend/vbd/{guest}/{devid}"


def backend_initwait(log: Log, guest: int, devid: int, order: int = 4, backend: int = 0) -> int:
    """blkback's probe: features and limits, then InitWait; returns the state line."""
    be, d = be_rel(guest, devid), f"D{backend}"
    log.write(d, f"{be}/feature-max-indirect-segments", "256")
    log.write(d, f"{be}/max-ring-page-order", str(order))
    log.write(d, f"{be}/hotplug-status", "connected")
    return log.write(d, f"{be}/state", "2")


def frontend_publish(
    log: Log,
    guest: int,
    devid: int,
    order: int = 0,
    *,
    transaction: bool = True,
    skip_ref: int | None = None,
) -> int:
    """The front end's transport keys (relative paths), in a transaction like Linux;
    returns the line where they take effect."""
    conn = f"D{guest}"
    t = log.tid(conn) if transaction else conn
    node = f"device/vbd/{devid}"
    if order:
        log.write(t, f"{node}/ring-page-order", str(order))
        for i in range(2**order):
            if i != skip_ref:
                log.write(t, f"{node}/ring-ref{i}", str(8 + i))
    else:
        log.write(t, f"{node}/ring-ref", "8")
    log.write(t, f"{node}/event-channel", "17")
    log.write(t, f"{node}/protocol", "x86_64-abi")
    last = log.write(t, f"{node}/feature-persistent", "1")
    return log.add(t, "commit") if transaction else last


def frontend_state(log: Log, guest: int, devid: int, state: int) -> int:
    return log.write(f"D{guest}", f"device/vbd/{devid}/state", str(state))


def backend_connect(log: Log, guest: int, devid: int, backend: int = 0) -> int:
    """blkback's connect(): device keys in a transaction, then Connected; returns the
    state line."""
    be, d = be_rel(guest, devid), f"D{backend}"
    t = log.tid(d)
    log.write(t, f"{be}/feature-flush-cache", "1")
    log.write(t, f"{be}/feature-discard", "1")
    log.write(t, f"{be}/sectors", "41943040")
    log.write(t, f"{be}/info", "0")
    log.write(t, f"{be}/sector-size", "512")
    log.add(t, "commit")
    return log.write(d, f"{be}/state", "4")


def backend_state(log: Log, guest: int, devid: int, state: int, backend: int = 0) -> int:
    return log.write(f"D{backend}", f"{be_rel(guest, devid)}/state", str(state))


def startup(log: Log, guest: int, devid: int, order: int = 0) -> int:
    """A whole Linux-style start-up; returns the front end's Connected line."""
    create(log, guest, devid)
    backend_initwait(log, guest, devid)
    log.noise(guest)
    frontend_publish(log, guest, devid, order)
    frontend_state(log, guest, devid, 3)
    backend_connect(log, guest, devid)
    return frontend_state(log, guest, devid, 4)


def unplug(log: Log, guest: int, devid: int, *, closing: bool = True) -> int:
    """xl block-detach: libxl's online=0 and Closing, both ends close, nodes removed;
    returns the last rm line."""
    be = be_path(guest, devid)
    t = log.tid("A12")
    log.write(t, f"{be}/online", "0")
    log.write(t, f"{be}/state", "5")
    log.add(t, "commit")
    if closing:  # FreeBSD; Linux 6.1 writes Closed directly (blkfront_closing)
        frontend_state(log, guest, devid, 5)
    frontend_state(log, guest, devid, 6)
    backend_state(log, guest, devid, 6)
    log.rm("A12", be)
    return log.rm("A12", fe_path(guest, devid))


# --------------------------------------------------------------------------- the fixtures


def linux_startup_unplug() -> Log:
    """A Linux guest's disk with a four-page ring, unrelated traffic, then detached."""
    log = Log()
    log.add("A12", "newconn")
    startup(log, 5, 51712, order=2)
    log.noise(5)
    unplug(log, 5, 51712, closing=False)
    log.add("A12", "endconn")
    return log


def two_guests() -> Log:
    """Two guests booting at once: guest 7 correct, guest 9's front end forgets its
    event channel before writing Initialised."""
    log = Log()
    create(log, 7, 768)
    create(log, 9, 768)
    backend_initwait(log, 7, 768)
    backend_initwait(log, 9, 768)
    frontend_publish(log, 7, 768)
    t = log.tid("D9")
    log.write(t, "device/vbd/768/ring-ref", "8")
    log.write(t, "device/vbd/768/protocol", "x86_64-abi")
    log.add(t, "commit")
    frontend_state(log, 7, 768, 3)
    frontend_state(log, 9, 768, 3)
    backend_connect(log, 7, 768)
    frontend_state(log, 7, 768, 4)
    return log


def netbsd_one_transaction() -> Log:
    """NetBSD's xbd (xbd_xenbus.c 1.133): the transport keys in one transaction, committed,
    then Initialised outside it."""
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768)
    t = log.tid("D5")
    log.write(t, "device/vbd/768/ring-ref", "8")
    log.write(t, "device/vbd/768/event-channel", "17")
    log.write(t, "device/vbd/768/protocol", "x86_64-abi")
    log.add(t, "commit")
    frontend_state(log, 5, 768, 3)
    backend_connect(log, 5, 768)
    frontend_state(log, 5, 768, 4)
    return log


def conflict_replayed() -> Log:
    """The front end's transaction conflicts; oxenstored replays it and the replay
    commits (``transaction_replay``); then Initialised."""
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768)
    t = log.tid("D5")
    log.write(t, "device/vbd/768/ring-ref", "8")
    log.write(t, "device/vbd/768/event-channel", "17")
    log.add(t, "conflict")
    replay = "r(1):D5.2"
    log.write(replay, "device/vbd/768/ring-ref", "8")
    log.add(replay, "write")
    log.write(replay, "device/vbd/768/event-channel", "17")
    log.add(replay, "write")
    log.add(replay, "commit")
    frontend_state(log, 5, 768, 3)
    backend_connect(log, 5, 768)
    frontend_state(log, 5, 768, 4)
    return log


def conflict_lost() -> Log:
    """The front end's transaction conflicts and is not retried; it writes
    Initialised anyway."""
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768)
    t = log.tid("D5")
    log.write(t, "device/vbd/768/ring-ref", "8")
    log.write(t, "device/vbd/768/event-channel", "17")
    log.add(t, "conflict")
    log.add("D5", "error", "EAGAIN\0")
    frontend_state(log, 5, 768, 3)
    return log


def front_early() -> Log:
    """A front end that goes to Initialised before the back end's InitWait (legal)."""
    log = Log()
    create(log, 5, 768)
    frontend_publish(log, 5, 768, transaction=False)
    frontend_state(log, 5, 768, 3)
    backend_initwait(log, 5, 768)
    backend_connect(log, 5, 768)
    frontend_state(log, 5, 768, 4)
    return log


def cut_value() -> Log:
    """Lines longer than 179 characters are cut with ``..``: a long irrelevant value
    (ignored) and a front end's over-long ``protocol`` value (unverifiable)."""
    log = Log()
    create(log, 5, 51712)
    backend_initwait(log, 5, 51712)
    log.write("D5", "data/os-info", "FreeBSD 15.0-CURRENT " + "x" * 200)
    log.write("D5", "device/vbd/51712/ring-ref", "8")
    log.write("D5", "device/vbd/51712/event-channel", "17")
    log.write("D5", "device/vbd/51712/protocol", "x86_64-abi" + " " * 150 + "!")
    frontend_state(log, 5, 51712, 3)
    return log


def malformed() -> Log:
    """A start-up with a line that is not an access-log line in the middle."""
    log = Log()
    create(log, 5, 768)
    log.lines.append("[20261126|info|xenstored] Xen Storage Daemon, version 1.0")
    backend_initwait(log, 5, 768)
    return log


FIXTURES = {
    "linux_startup_unplug.log": linux_startup_unplug,
    "two_guests.log": two_guests,
    "netbsd_one_transaction.log": netbsd_one_transaction,
    "conflict_replayed.log": conflict_replayed,
    "conflict_lost.log": conflict_lost,
    "front_early.log": front_early,
    "cut_value.log": cut_value,
    "malformed.log": malformed,
}


def main() -> None:
    """Write the fixtures into ``tests/traces/data`` (run from the repository root)."""
    from pathlib import Path

    here = Path(__file__).parent / "data"
    for name, build in FIXTURES.items():
        (here / name).write_text(build().text())


if __name__ == "__main__":
    main()
