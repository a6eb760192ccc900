"""Checking oxenstored access logs against the protocol model (the default): every vbd
followed commit by commit, with the protocol's verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest
from trace_logs import (
    Log,
    backend_connect,
    backend_initwait,
    backend_state,
    create,
    frontend_publish,
    frontend_state,
    startup,
    unplug,
)

from xbdspec.traces.check import check_file, check_oxenstored
from xbdspec.traces.report import CheckResult, DeviceReport

DATA = Path(__file__).parent / "data"


def check(log: Log) -> CheckResult:
    return check_oxenstored(log.lines, "test.log", log.nb_chars)


def device(result: CheckResult, guest: int, devid: int) -> DeviceReport:
    (found,) = [d for d in result.devices if d.name == f"vbd {devid} of domain {guest}"]
    return found


@pytest.mark.parametrize(
    ("name", "verdicts"),
    [
        ("linux_startup_unplug.log", ["conforms"]),
        ("netbsd_one_transaction.log", ["conforms"]),
        ("front_early.log", ["conforms"]),
        ("conflict_replayed.log", ["conforms"]),
        ("conflict_lost.log", ["violation"]),
        ("cut_value.log", ["unverifiable"]),
        ("two_guests.log", ["conforms", "violation"]),
    ],
)
def test_each_fixture_gets_the_protocols_verdict(name: str, verdicts: list[str]) -> None:
    result = check_file(str(DATA / name))
    assert [d.verdict for d in result.devices] == verdicts, result.render()
    assert all(d.levels == "protocol" for d in result.devices)


def test_linux_detach_writes_closed_directly_and_conforms() -> None:
    log = Log()
    startup(log, 5, 51712, order=2)
    unplug(log, 5, 51712, closing=False)
    d = device(check(log), 5, 51712)
    assert d.verdict == "conforms" and d.final["fe_state"] == "Closed"
    assert d.lifecycles == 1


def test_mini_os_going_straight_to_connected_is_tolerated_and_named() -> None:
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768)
    t = log.tid("D5")
    for key, value in (("ring-ref", "8"), ("event-channel", "17"), ("protocol", "x86_64-abi")):
        log.write(t, f"device/vbd/768/{key}", value)
    log.write(t, "device/vbd/768/state", "4")
    deviation = log.add(t, "commit")
    backend_connect(log, 5, 768)
    result = check(log)
    d = device(result, 5, 768)
    assert d.verdict == "tolerated" and result.exit_code == 0
    assert [(g.kind, g.line) for g in d.gaps] == [("connected-in-key-transaction", deviation)]


def test_a_front_end_going_back_to_connected_after_closing_is_a_violation() -> None:
    log = Log()
    startup(log, 5, 768)
    t = log.tid("A12")
    log.write(t, "/local/domain/0/backend/vbd/5/768/online", "0")
    log.write(t, "/local/domain/0/backend/vbd/5/768/state", "5")
    log.add(t, "commit")
    frontend_state(log, 5, 768, 5)
    bad = frontend_state(log, 5, 768, 4)
    first = check(log).first_divergence
    assert first is not None and first.line == bad
    assert "frontend_connected is a step from Initialised only" in first.reason


def test_a_reconnect_after_closed_conforms() -> None:
    log = Log()
    startup(log, 5, 768)
    frontend_state(log, 5, 768, 5)
    backend_state(log, 5, 768, 5)
    frontend_state(log, 5, 768, 6)
    backend_state(log, 5, 768, 6)
    frontend_state(log, 5, 768, 1)
    backend_initwait(log, 5, 768)
    frontend_publish(log, 5, 768)
    frontend_state(log, 5, 768, 3)
    backend_connect(log, 5, 768)
    frontend_state(log, 5, 768, 4)
    assert device(check(log), 5, 768).verdict == "conforms"


def test_a_log_that_starts_mid_handshake_is_checked_from_there() -> None:
    log = Log()
    log.write("D5", "device/vbd/768/ring-ref", "8")
    log.write("D5", "device/vbd/768/event-channel", "17")
    first = frontend_state(log, 5, 768, 3)
    backend_connect(log, 5, 768)
    frontend_state(log, 5, 768, 4)
    result = check(log)
    assert result.valid, result.render()
    assert device(result, 5, 768).joined_at == first


def test_a_qdisk_back_end_is_followed_like_blkback() -> None:
    log = Log()
    startup(log, 5, 768)
    text = "\n".join(log.lines).replace("backend/vbd/", "backend/qdisk/")
    result = check_oxenstored(text.splitlines(), "qdisk.log")
    d = device(result, 5, 768)
    assert d.verdict == "conforms" and d.paths["backend"] == "/local/domain/0/backend/qdisk/5/768"


def test_an_error_after_an_ignored_key_is_not_blamed_on_the_device() -> None:
    log = Log()
    startup(log, 5, 768)
    log.write("D5", "device/vbd/768/some-driver-key", "x")
    log.add("D5", "error", "EACCES\0")
    d = device(check(log), 5, 768)
    assert d.verdict == "conforms" and d.unverifiable is None


def test_removing_the_ring_while_connected_is_a_violation() -> None:
    log = Log()
    startup(log, 5, 768)
    bad = log.rm("D5", "device/vbd/768/ring-ref")
    first = check(log).first_divergence
    assert first is not None and first.line == bad
    assert "in effect for the whole connection" in first.reason


def test_a_second_lifetime_after_removal() -> None:
    log = Log()
    startup(log, 5, 768)
    unplug(log, 5, 768)
    startup(log, 5, 768)
    d = device(check(log), 5, 768)
    assert d.verdict == "conforms" and d.lifecycles == 2


def test_a_ring_larger_than_offered_is_a_violation_at_the_commit() -> None:
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768, order=1)
    bad = frontend_publish(log, 5, 768, order=2)
    first = check(log).first_divergence
    assert first is not None and first.line == bad
    assert "ring-page-order is at most the back end's max-ring-page-order" in first.reason


@pytest.mark.parametrize(
    ("key", "value"),
    [("ring-page-order", "4000000000"), ("multi-queue-num-queues", "4000000000")],
)
@pytest.mark.parametrize("frontend", ["any", "freebsd"])
def test_a_huge_ring_order_or_queue_count_is_refused_before_allocating(
    key: str, value: str, frontend: str
) -> None:
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768)
    bad = log.write("D5", f"device/vbd/768/{key}", value)
    log.write("D5", "device/vbd/768/event-channel", "17")
    frontend_state(log, 5, 768, 3)
    result = check_oxenstored(log.lines, "huge.log", log.nb_chars, frontend=frontend)
    first = result.first_divergence
    assert first is not None and first.line >= bad
    assert any(w in first.reason for w in ("above", "not a number", "the back end allows"))


def test_an_error_after_a_write_to_no_vbd_node_is_not_blamed_on_the_device() -> None:
    # the real daemon's log (tests/traces/test_oxenstored_daemon.py): blkback writes its
    # state, then an error node outside the device's directory, refused with E2BIG
    log = Log()
    startup(log, 5, 768)
    log.write("D0", "/local/domain/0/error/backend/vbd/5/768/error", "-12 " + "x" * 20)
    log.add("D0", "error", "E2BIG\0")
    d = device(check(log), 5, 768)
    assert d.verdict == "conforms" and d.unverifiable is None


def test_a_value_no_step_can_take_makes_only_that_device_unverifiable() -> None:
    log = Log()
    startup(log, 5, 768)
    startup(log, 6, 769)
    text = [
        ln.replace("sectors 41943040", "sectors 4194..")
        if "/5/768/" in ln or "vbd/768" in ln
        else ln
        for ln in log.lines
    ]
    result = check_oxenstored(text, "cut.log", 0)
    assert device(result, 5, 768).verdict == "unverifiable"
    assert device(result, 6, 769).verdict == "conforms"
