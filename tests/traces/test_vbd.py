"""Checking oxenstored access logs against the FreeBSD model (``--frontend freebsd``):
every vbd followed through its handshake projection.  (Against the protocol model, the
default: ``test_vbd_protocol.py``.)

Each test builds or reads a realistic log and checks the verdict and the line it is
given at; the line is found from the log's own text, so the assertion says which
write is to blame.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from trace_logs import (
    FIXTURES,
    Log,
    backend_connect,
    backend_initwait,
    backend_state,
    create,
    fe_path,
    frontend_publish,
    frontend_state,
    startup,
    unplug,
)

from xbdspec.errors import InputError
from xbdspec.traces import check as _check
from xbdspec.traces.report import CheckResult, DeviceReport

DATA = Path(__file__).parent / "data"


def check(log: Log) -> CheckResult:
    return _check.check_oxenstored(log.lines, "test.log", log.nb_chars, frontend="freebsd")


def check_file(path: str) -> CheckResult:
    return _check.check_file(path, frontend="freebsd")


def device(result: CheckResult, guest: int, devid: int) -> DeviceReport:
    (found,) = [d for d in result.devices if d.name == f"vbd {devid} of domain {guest}"]
    return found


def line_of(path: Path, needle: str, conn: str = "") -> int:
    """The number of the first line of ``path`` holding ``needle`` (and ``conn``)."""
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if needle in text and conn in text:
            return number
    raise AssertionError(f"{needle!r} is not in {path}")


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixtures_are_what_the_builder_makes(name: str) -> None:
    """The logs under data/ are generated (`python tests/traces/trace_logs.py`)."""
    assert (DATA / name).read_text() == FIXTURES[name]().text()


# --------------------------------------------------------------------------- correct handshakes


def test_linux_startup_with_a_four_page_ring_and_unplug_is_valid() -> None:
    result = check_file(str(DATA / "linux_startup_unplug.log"))
    assert result.valid and result.exit_code == 0 and result.first_divergence is None
    (d,) = result.devices
    # Linux 6.1 answers the back end's Closing with Closed: legal (the protocol model's
    # frontend_closed), outside the FreeBSD model this checker follows: a known gap
    assert d.verdict == "outside-model"
    assert [g.kind for g in d.gaps] == ["FrontClosedDirectly"]
    # both nodes were removed at the end: no model state is left to show
    assert d.final == {
        "fe_state": "Closed",
        "be_state": "Closed",
        "online": 0,
        "transport_published": True,
    }
    assert d.paths == {
        "frontend": "/local/domain/5/device/vbd/51712",
        "backend": "/local/domain/0/backend/vbd/5/51712",
    }
    # the fixture holds four state writes on the front end's side (Linux 6.1 writes Closed
    # straight after Connected, no Closing), five on the back end's (Closing by libxl)
    # and both of libxl's online writes
    assert d.observations == 11


def test_netbsd_keys_in_one_transaction_then_initialised_are_valid() -> None:
    result = check_file(str(DATA / "netbsd_one_transaction.log"))
    assert result.valid, result.render()


def test_a_conflicting_transaction_replayed_by_oxenstored_takes_effect() -> None:
    result = check_file(str(DATA / "conflict_replayed.log"))
    assert result.valid, result.render()


def test_a_back_end_skipping_initwait_is_valid() -> None:
    log = Log()
    create(log, 5, 768)
    backend_state(log, 5, 768, 3)  # Initialising -> Initialised, a shortcut blkif.h allows
    frontend_publish(log, 5, 768)
    frontend_state(log, 5, 768, 3)
    backend_connect(log, 5, 768)
    frontend_state(log, 5, 768, 4)
    assert check(log).valid


def test_detach_and_reattach_of_the_same_disk_is_a_second_lifetime() -> None:
    log = Log()
    startup(log, 5, 768)
    unplug(log, 5, 768)
    startup(log, 5, 768)
    result = check(log)
    assert result.valid, result.render()
    assert device(result, 5, 768).lifecycles == 2


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


def test_unrelated_traffic_is_ignored() -> None:
    log = Log()
    for guest in range(1, 20):
        log.noise(guest)
    log.write("D3", "device/vif/0/state", "7")  # a network device, not a vbd
    log.write("A1", "/local/domain/3/device/vbd-ish/0/state", "9")
    result = check(log)
    assert result.valid and result.devices == []


# --------------------------------------------------------------------------- incorrect handshakes


def test_each_guest_is_checked_on_its_own() -> None:
    path = DATA / "two_guests.log"
    result = check_file(str(path))
    assert result.exit_code == 1
    good, bad = device(result, 7, 768), device(result, 9, 768)
    assert good.verdict == "valid" and bad.verdict == "divergent"
    assert bad.first_divergence is not None
    assert bad.first_divergence.line == line_of(path, "device/vbd/768/state 3", "D9 ")
    assert "PublishedBeforeInitialised" in bad.first_divergence.reason
    assert "event-channel is not written" in bad.first_divergence.reason


def test_a_conflicting_transaction_that_is_not_retried_vanishes() -> None:
    path = DATA / "conflict_lost.log"
    result = check_file(str(path))
    first = result.first_divergence
    assert first is not None and first.line == line_of(path, "device/vbd/768/state 3")
    assert "PublishedBeforeInitialised" in first.reason


def test_a_multi_page_ring_with_a_page_missing_diverges() -> None:
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768, order=4)
    frontend_publish(log, 5, 768, order=2, skip_ref=2)
    bad = frontend_state(log, 5, 768, 3)
    first = check(log).first_divergence
    assert first is not None and first.line == bad
    assert "ring-page-order is 2 but ring-ref2 not written" in first.reason


def test_a_ring_larger_than_the_back_end_allows_diverges() -> None:
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768, order=1)
    frontend_publish(log, 5, 768, order=2)
    bad = frontend_state(log, 5, 768, 3)
    first = check(log).first_divergence
    assert first is not None and first.line == bad
    assert "2**2 pages but the back end allows 2**1" in first.reason


def test_a_back_end_connecting_before_the_front_end_published_diverges() -> None:
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768)
    bad = backend_connect(log, 5, 768)
    first = check(log).first_divergence
    assert first is not None and first.line == bad
    assert first.event.startswith("back end writes state Connected (4)")
    assert any(a.startswith("front end writes state Initialised (3)") for a in first.allowed)
    assert first.state[0]["fe_state"] == "Initialising"


def test_keys_written_in_a_transaction_count_only_from_its_commit() -> None:
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768)
    t = log.tid("D5")
    log.write(t, "device/vbd/768/ring-ref", "8")
    log.write(t, "device/vbd/768/event-channel", "17")
    bad = frontend_state(log, 5, 768, 3)  # before the transaction commits
    log.add(t, "commit")
    first = check(log).first_divergence
    assert first is not None and first.line == bad


def test_removing_the_ring_while_connected_diverges_at_the_rm() -> None:
    log = Log()
    startup(log, 5, 768)
    bad = log.rm("D5", "device/vbd/768/ring-ref")
    first = check(log).first_divergence
    assert first is not None and first.line == bad
    assert "PublishedBeforeInitialised" in first.reason


def test_a_front_end_reconnecting_after_unplug_diverges() -> None:
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
    assert any("front end writes state Closed (6)" in a for a in first.allowed)


def test_a_state_value_that_is_no_xenbus_state_diverges() -> None:
    log = Log()
    create(log, 5, 768)
    bad = backend_state(log, 5, 768, 9)
    first = check(log).first_divergence
    assert first is not None and first.line == bad and "not a XenbusState" in first.reason


def test_only_the_first_divergence_of_a_device_is_reported() -> None:
    log = Log()
    create(log, 5, 768)
    first_bad = backend_state(log, 5, 768, 4)
    backend_state(log, 5, 768, 9)
    result = check(log)
    assert result.first_divergence is not None and result.first_divergence.line == first_bad


# ------------------------------------------------ what blkif.h allows and the model does not


def test_a_front_end_initialised_before_initwait_is_legal() -> None:
    # blkif.h allows the front end to go to Initialised before the back end reaches
    # InitWait; the model has the shortcut (FrontendInitialiseEarly).
    path = DATA / "front_early.log"
    result = check_file(str(path))
    (d,) = result.devices
    assert d.verdict == "valid" and result.exit_code == 0
    assert d.gaps == []
    assert d.final["fe_state"] == "Connected"


def test_mini_os_going_straight_to_connected_is_a_gap_the_model_cannot_follow() -> None:
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768)
    frontend_publish(log, 5, 768, transaction=False)
    gap = frontend_state(log, 5, 768, 4)
    backend_connect(log, 5, 768)
    d = device(check(log), 5, 768)
    assert [g.kind for g in d.gaps] == ["FrontConnectedWithoutInitialised"]
    assert d.verdict == "unverifiable" and d.unverifiable is not None
    assert d.unverifiable.line == gap


# ----------------------------------------------------- truncation, refusals, malformed lines


def test_a_cut_value_of_a_key_that_matters_is_unverifiable() -> None:
    path = DATA / "cut_value.log"
    result = check_file(str(path))
    (d,) = result.devices
    assert d.verdict == "unverifiable" and result.exit_code == 3
    assert d.unverifiable is not None
    assert d.unverifiable.line == line_of(path, "device/vbd/51712/protocol")
    assert "was cut" in d.unverifiable.message
    assert d.final["fe_state"] == "Initialised"  # observed, though no longer checked


def test_a_path_cut_by_a_small_nb_chars_is_reported_not_guessed() -> None:
    log = Log(nb_chars=70)
    create(log, 5, 51712)
    result = check(log)
    assert not result.valid and result.exit_code == 3
    assert result.notes and "may concern a vbd" in result.notes[0].message


def test_a_write_xenstored_refused_is_unverifiable() -> None:
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768)
    frontend_publish(log, 5, 768)
    frontend_state(log, 5, 768, 3)
    refused = log.add("D5", "error", "EACCES\0")
    d = device(check(log), 5, 768)
    assert d.unverifiable is not None and d.unverifiable.line == refused
    assert "EACCES" in d.unverifiable.message


def test_a_write_refused_inside_a_transaction_never_enters_it() -> None:
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768)
    t = log.tid("D5")
    log.write(t, "device/vbd/768/ring-ref", "8")
    log.write(t, "device/vbd/768/event-channel", "17")
    log.add(t, "error", "EQUOTA\0")
    log.add(t, "commit")
    bad = frontend_state(log, 5, 768, 3)
    first = check(log).first_divergence
    assert first is not None and first.line == bad and "event-channel" in first.reason


def test_a_malformed_line_is_an_input_error_naming_its_line() -> None:
    path = DATA / "malformed.log"
    with pytest.raises(InputError, match=r"malformed\.log:12: not an oxenstored access-log line"):
        check_file(str(path))


def test_a_relative_path_from_an_unknown_connection_is_an_input_error() -> None:
    lines = ["[20261126T03:00:00.007Z]  =======>     write     device/vbd/768/state 3"]
    with pytest.raises(InputError, match=r"test.log:1: connection '=======>'"):
        _check.check_oxenstored(lines, "test.log")


def test_the_front_end_path_of_a_device_uses_the_guests_domain() -> None:
    assert fe_path(5, 768) == "/local/domain/5/device/vbd/768"


def test_an_error_after_a_later_unrelated_write_is_not_blamed_on_the_vbd() -> None:
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768)
    frontend_publish(log, 5, 768)
    frontend_state(log, 5, 768, 3)
    log.write("D5", "data/cant-write-here", "1")
    log.add("D5", "error", "EACCES\0")
    assert device(check(log), 5, 768).unverifiable is None


def test_a_transaction_merged_by_coalescing_takes_effect() -> None:
    """oxenstored logs `coalesce  write <path>` instead of `commit` when it merged the
    transaction (`commit_partial` in transaction.ml)."""
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768)
    t = log.tid("D5")
    log.write(t, "device/vbd/768/ring-ref", "8")
    log.write(t, "device/vbd/768/event-channel", "17")
    log.add(t, "coalesce", "write /local/domain/5/device/vbd/768")
    frontend_state(log, 5, 768, 3)
    assert check(log).valid


def test_a_transaction_dies_with_its_connection() -> None:
    log = Log()
    create(log, 5, 768)
    backend_initwait(log, 5, 768)
    t = log.tid("A7")
    log.write(t, "/local/domain/5/device/vbd/768/ring-ref", "8")
    log.write(t, "/local/domain/5/device/vbd/768/event-channel", "17")
    log.add("A7", "endconn")
    log.add(t, "commit")  # not a real oxenstored sequence: shows nothing was kept
    bad = frontend_state(log, 5, 768, 3)
    first = check(log).first_divergence
    assert first is not None and first.line == bad


def multi_queue(log: Log, queues: int, skip_channel: int | None = None) -> int:
    create(log, 5, 768)
    backend_initwait(log, 5, 768)
    t = log.tid("D5")
    log.write(t, "device/vbd/768/multi-queue-num-queues", str(queues))
    for q in range(queues):
        log.write(t, f"device/vbd/768/queue-{q}/ring-ref", str(8 + q))
        if q != skip_channel:
            log.write(t, f"device/vbd/768/queue-{q}/event-channel", str(17 + q))
    log.add(t, "commit")
    return frontend_state(log, 5, 768, 3)


def test_multi_queue_keys_are_per_queue() -> None:
    ok = Log()
    multi_queue(ok, 2)
    assert check(ok).valid
    bad_log = Log()
    bad = multi_queue(bad_log, 2, skip_channel=1)
    first = check(bad_log).first_divergence
    assert first is not None and first.line == bad
    assert "queue-1/event-channel is not written" in first.reason


def test_destroying_the_domain_ends_the_devices_life() -> None:
    """libxl removes the guest's home and the back-end directory of its devices;
    a new guest that reuses the domid starts afresh."""
    log = Log()
    startup(log, 5, 768)
    log.rm("A12", "/local/domain/0/backend/vbd/5")
    log.rm("A12", "/local/domain/5")
    startup(log, 5, 768)
    result = check(log)
    assert result.valid, result.render()
    assert device(result, 5, 768).lifecycles == 2


def test_without_the_removal_a_second_start_up_diverges() -> None:
    log = Log()
    startup(log, 5, 768)
    bad = create(log, 5, 768)  # state=1 again on both ends, in libxl's transaction
    first = check(log).first_divergence
    assert first is not None and first.line == bad
