"""The caps on what uncommitted xenstore transactions hold (``docs/traces.md``, Limits).

A transaction's writes of vbd keys wait in memory for its commit.  The checker holds at
most :data:`~xbdspec.traces.vbd.MAX_OPEN_TRANSACTIONS` such transactions,
:data:`~xbdspec.traces.vbd.MAX_TRANSACTION_WRITES` writes in one and
:data:`~xbdspec.traces.vbd.MAX_BUFFERED` over all; a transaction that would go past a
cap is dropped before the write is held: every device it wrote (or writes afterwards)
is unverifiable, named by the cap, and the other devices are checked on.  Past
:data:`~xbdspec.traces.vbd.MAX_DROPPED` dropped transactions open at once the log is
refused with the line named (exit 2), every verdict reached before it printed.  The
fast reading and the line-by-line one agree under every cap.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_fast_paths import _direct, _random_log, _result
from trace_logs import Log, fe_path, startup

from xbdspec.cli import main
from xbdspec.traces import vbd
from xbdspec.traces.check import PartialCheck, check_oxenstored
from xbdspec.traces.oxenstored import format_line
from xbdspec.traces.vbd_protocol import ProtocolVbdChecker


def _both(lines: list[str]) -> dict[str, object]:
    """The fast reading's document, which must be the direct reading's."""
    fast = _result(functools.partial(check_oxenstored, lines, "t.log", 180))
    direct = _result(functools.partial(_direct, lines, 180, "any"))
    assert fast == direct
    return fast


def _verdicts(doc: dict[str, object]) -> dict[str, str]:
    devices = doc["devices"]
    assert isinstance(devices, list)
    return {d["device"]: d["verdict"] for d in devices}


def _big_transaction(log: Log, guest: int, writes: int) -> str:
    """Guest ``guest``'s front end writes its disk's ``feature-persistent`` (a key the
    checker follows, which the protocol lets it write when it likes) ``writes`` times
    in one transaction and commits it; returns the transaction's connection."""
    t = log.tid(f"D{guest}")
    for i in range(writes):
        log.write(t, "device/vbd/768/feature-persistent", str(i % 2))
    log.add(t, "commit")
    return t


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Caps below a block: writes are counted one at a time (the caps are multiples of
    the block the fast reading counts by)."""
    monkeypatch.setattr(vbd, "_BLOCK", 1)
    return monkeypatch


def test_a_transaction_past_its_cap_makes_only_its_device_unverifiable() -> None:
    log = Log()
    startup(log, 5, 768)
    startup(log, 6, 768)
    _big_transaction(log, 5, vbd.MAX_TRANSACTION_WRITES + 1)
    doc = _both(log.lines)
    assert _verdicts(doc) == {
        "vbd 768 of domain 5": "unverifiable",
        "vbd 768 of domain 6": "conforms",
    }
    devices = doc["devices"]
    assert isinstance(devices, list)
    (dev,) = [d for d in devices if d["device"] == "vbd 768 of domain 5"]
    why = dev["unverifiable"]
    assert f"more than {vbd.MAX_TRANSACTION_WRITES} vbd keys" in why["message"]
    assert "the checker's cap" in why["message"]


def test_a_transaction_at_its_cap_is_followed() -> None:
    """Exactly the cap is within it: the commit is checked (here: extra ring
    references of a one-page ring, which the protocol takes)."""
    log = Log()
    startup(log, 5, 768)
    _big_transaction(log, 5, vbd.MAX_TRANSACTION_WRITES)
    assert _verdicts(_both(log.lines)) == {"vbd 768 of domain 5": "conforms"}


def test_what_a_transaction_holds_never_goes_past_the_cap() -> None:
    """Held before the write is: the checker's buffer of one transaction never holds
    more than the cap, however many writes it makes, and the writes counted against
    the whole cap come back to nothing once the transactions end."""
    log = Log()
    startup(log, 5, 768)
    _big_transaction(log, 5, 3 * vbd.MAX_TRANSACTION_WRITES)
    checker = ProtocolVbdChecker("t.log", 180)
    most = 0
    for line in log.lines:
        checker.feed_lines([line + "\n"])
        for held in checker.transactions.values():
            most = max(most, len(held))
    assert most <= vbd.MAX_TRANSACTION_WRITES
    assert checker.transactions == {} and checker._reserved == 0 and checker._dropped == 0


def test_too_many_open_transactions(tiny: pytest.MonkeyPatch) -> None:
    """Past the count of open transactions, a new one is dropped at its first vbd
    write; the open ones commit as usual."""
    tiny.setattr(vbd, "MAX_OPEN_TRANSACTIONS", 3)
    log = Log()
    guests = range(1, 6)
    for g in guests:
        startup(log, g, 768)
    tids = [log.tid(f"D{g}") for g in guests]
    for t in tids:
        log.write(t, "device/vbd/768/feature-persistent", "1")
    for t in tids:
        log.add(t, "commit")
    verdicts = _verdicts(_both(log.lines))
    assert [verdicts[f"vbd 768 of domain {g}"] for g in guests] == [
        "conforms",
        "conforms",
        "conforms",
        "unverifiable",
        "unverifiable",
    ]


def test_writes_held_over_every_transaction_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cap over all open transactions (counted in blocks of 64 writes): the
    transaction whose write would go past it is dropped, the others are not."""
    monkeypatch.setattr(vbd, "MAX_BUFFERED", 128)
    log = Log()
    for g in (1, 2, 3):
        startup(log, g, 768)
    tids = [log.tid(f"D{g}") for g in (1, 2, 3)]
    for i in range(60):
        for t in tids:
            log.write(t, "device/vbd/768/feature-persistent", str(i % 2))
    for t in tids:
        log.add(t, "commit")
    verdicts = _verdicts(_both(log.lines))
    assert verdicts == {
        "vbd 768 of domain 1": "conforms",
        "vbd 768 of domain 2": "conforms",
        "vbd 768 of domain 3": "unverifiable",
    }


#: A cap above the transactions of a device's start-up (libxl's creation, the front
#: end's keys), for the tests that lower it.
CAP = 20


def test_a_dropped_transaction_stays_dropped_until_it_ends(tiny: pytest.MonkeyPatch) -> None:
    """Writes a dropped transaction makes later, to another device, make that device
    unverifiable too; once it has ended (its conflict), the connection's next
    transaction is followed again."""
    tiny.setattr(vbd, "MAX_TRANSACTION_WRITES", CAP)
    log = Log()
    startup(log, 5, 768)
    startup(log, 5, 832)
    t = log.tid("D5")
    for i in range(CAP + 1):
        log.write(t, "device/vbd/768/feature-persistent", str(i % 2))
    log.write(t, "device/vbd/832/feature-persistent", "1")
    log.add(t, "conflict")
    t = log.tid("D5")
    log.write(t, "device/vbd/768/feature-persistent", "1")
    log.add(t, "commit")
    startup(log, 7, 768)
    verdicts = _verdicts(_both(log.lines))
    assert verdicts == {
        "vbd 768 of domain 5": "unverifiable",
        "vbd 832 of domain 5": "unverifiable",
        "vbd 768 of domain 7": "conforms",
    }


def test_a_removal_in_a_dropped_transaction_names_every_device_it_removes(
    tiny: pytest.MonkeyPatch,
) -> None:
    tiny.setattr(vbd, "MAX_TRANSACTION_WRITES", CAP)
    log = Log()
    startup(log, 5, 768)
    startup(log, 5, 832)
    startup(log, 6, 768)
    t = log.tid("A12")
    for i in range(CAP):
        log.write(t, f"{fe_path(6, 768)}/feature-persistent", str(i % 2))
    log.rm(t, "/local/domain/5")
    log.add(t, "commit")
    assert _verdicts(_both(log.lines)) == {
        "vbd 768 of domain 5": "unverifiable",
        "vbd 832 of domain 5": "unverifiable",
        "vbd 768 of domain 6": "unverifiable",
    }


def test_too_many_dropped_transactions_refuse_the_log_naming_the_line(
    tiny: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A named input error (exit 2, no traceback), the verdicts reached before it
    printed; both readings stop at the same line."""
    tiny.setattr(vbd, "MAX_OPEN_TRANSACTIONS", 1)
    tiny.setattr(vbd, "MAX_DROPPED", 2)
    log = Log()
    startup(log, 9, 768)
    for g in (1, 2, 3, 4):
        log.write(log.tid(f"D{g}"), "device/vbd/768/state", "1")
    doc = _both(log.lines)
    assert "2 transactions past the checker's caps" in str(doc["error"])
    assert doc["stopped_at"] == f"t.log:{len(log.lines)}"
    path = tmp_path / "t.log"
    path.write_text(log.text())
    status = main(["check", str(path), "--json"])
    out, err = capsys.readouterr()
    assert status == 2 and "Traceback" not in err
    assert "past the checker's caps" in err
    assert json.loads(out)["devices"][0]["verdict"] == "conforms"


def _endless(writes: int) -> Iterator[str]:
    """A guest's disk started, then one transaction writing ``writes`` vbd keys that
    never commits."""
    log = Log()
    startup(log, 5, 768)
    yield from (line + "\n" for line in log.lines)
    date = "20261126T03:00:00.000Z"
    for i in range(writes):
        data = f"device/vbd/768/ring-ref{i % 5000}\x00{i}"
        yield format_line(date, "D5.9", "write", data) + "\n"


def _peak(writes: int) -> int:
    tracemalloc.start()
    try:
        result = check_oxenstored(_endless(writes), "t.log")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [d.verdict for d in result.devices] == ["unverifiable"]
    return peak


def test_an_endless_transaction_is_checked_in_bounded_memory() -> None:
    """Ten times the writes in one open transaction, the same memory: what the
    transaction held went when it passed its cap."""
    small, large = _peak(20_000), _peak(200_000)
    assert large < small + (1 << 20), (small, large)


@pytest.mark.parametrize("block", [1, 4])
def test_random_logs_under_tiny_caps_are_checked_alike_fast_and_directly(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(vbd, "_BLOCK", block)
    monkeypatch.setattr(vbd, "MAX_OPEN_TRANSACTIONS", 2)
    monkeypatch.setattr(vbd, "MAX_TRANSACTION_WRITES", 8)
    monkeypatch.setattr(vbd, "MAX_BUFFERED", 12)
    monkeypatch.setattr(vbd, "MAX_DROPPED", 3)
    rng = random.Random(4)
    dropped = 0
    for _ in range(120):
        lines, nb_chars = _random_log(rng)
        fast = _result(functools.partial(check_oxenstored, lines, "t.log", nb_chars))
        assert fast == _result(functools.partial(_direct, lines, nb_chars, "any"))
        dropped += "the checker's cap" in json.dumps(fast)
    assert dropped  # the caps were met


def test_the_caps_are_stated_in_the_docs() -> None:
    """``docs/traces.md`` states each cap with its value."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "traces.md").read_text()
    for value in (
        vbd.MAX_OPEN_TRANSACTIONS,
        vbd.MAX_TRANSACTION_WRITES,
        vbd.MAX_BUFFERED,
        vbd.MAX_DROPPED,
    ):
        assert f"{value:,}" in text, value


def test_partial_check_is_what_the_cap_raises(tiny: pytest.MonkeyPatch) -> None:
    tiny.setattr(vbd, "MAX_OPEN_TRANSACTIONS", 1)
    tiny.setattr(vbd, "MAX_DROPPED", 1)
    lines = [
        format_line("20261126T03:00:00.000Z", f"D{g}.1", "write", f"device/vbd/768/state\x00{s}")
        for g, s in itertools.product((1, 2, 3), ("1",))
    ]
    with pytest.raises(PartialCheck, match=r"t\.log:3: .*past the checker's caps"):
        check_oxenstored(lines, "t.log")
