"""backend_changed for every state, closing, suspend/resume, free, detach, features,
a full scenario, the simulate command, snapshots and the public names."""

from __future__ import annotations

import argparse
import copy
import json

import pytest
import xbdspec.reference as reference
from reference_helpers import boot, make_bio, serve, submit, write_then_read
from xbdspec.reference import (
    BackendConfig,
    KernelAssertion,
    Platform,
    SuspendSleep,
    XbdState,
    XenbusState,
    backend_changed,
    detach,
    feature_string,
    open_,
    simulate,
    suspend,
    suspend_continue,
    sysctl_features,
)
from xbdspec.reference.constants import (
    BIO_ORDERED,
    BIO_READ,
    BIO_WRITE,
    EBUSY,
    GRANT_REF_INVALID,
    XBD_Q_BUSY,
    XBD_Q_FREE,
    XBD_Q_READY,
    XBDF_BARRIER,
    XBDF_DISCARD,
    XBDF_FLUSH,
    XBDF_PERSISTENT,
    XBDF_WAIT_IDLE,
)


@pytest.mark.parametrize("state", list(XenbusState))
def test_backend_changed_every_state_before_connection(state: XenbusState) -> None:
    platform = Platform()
    dev = platform.plug()
    reference.attach(dev)
    platform.backend.start()  # features published, so initialize can run
    platform.xenstore.pending.clear()
    backend_changed(dev, state)
    sc = platform.softc()
    if state in (XenbusState.InitWait, XenbusState.Initialised):
        assert dev.state == XenbusState.Initialised and sc.xbd_ring.sring is not None
        assert sc.xbd_state == XbdState.DISCONNECTED
    elif state == XenbusState.Connected:
        # initialize ran, then connect found no device properties yet: fatal
        assert sc.xbd_ring.sring is not None
        assert dev.state == XenbusState.Closing and "reading backend fields" in dev.errors[-1][1]
    elif state == XenbusState.Closing:
        assert dev.state == XenbusState.Closed
    else:
        assert dev.state == XenbusState.Initialising and sc.xbd_ring.sring is None


def test_backend_changed_connected_connects() -> None:
    platform = Platform(backend_config=BackendConfig())
    dev = platform.plug()
    reference.attach(dev)
    platform.backend.start()
    platform.xenstore.pending.clear()
    for key, value in platform.backend.config.connected_keys().items():
        assert value is not None
        platform.xenstore.write(f"{platform.back_path}/{key}", value)
    backend_changed(dev, XenbusState.Connected)  # initialize then connect, in one go
    assert dev.state == XenbusState.Connected
    assert platform.softc().xbd_state == XbdState.CONNECTED


def test_initialize_runs_once() -> None:
    platform = boot()
    sc = platform.softc()
    assert platform.dev is not None
    refs = list(sc.xbd_ring_ref)
    backend_changed(platform.dev, XenbusState.InitWait)
    assert sc.xbd_ring_ref == refs


def test_closing_with_users_marks_the_disk_gone() -> None:
    platform = boot()
    sc = platform.softc()
    assert sc.xbd_disk is not None and platform.dev is not None
    open_(sc.xbd_disk)
    backend_changed(platform.dev, XenbusState.Closing)
    assert sc.xbd_disk.gone and not sc.xbd_disk.destroyed
    assert "detaching with pending users" in platform.log[-1]


def test_closing_with_users_but_no_disk_is_an_assertion() -> None:
    platform = boot()
    sc = platform.softc()
    assert platform.dev is not None
    sc.xbd_users = 1
    sc.xbd_disk = None
    with pytest.raises(KernelAssertion, match="NULL disk with pending users"):
        backend_changed(platform.dev, XenbusState.Closing)


def test_unplug_without_users_closes_both_ends() -> None:
    platform = boot()
    sc = platform.softc()
    disk = sc.xbd_disk
    platform.backend.unplug()
    platform.settle()
    assert platform.dev is not None and platform.dev.state == XenbusState.Closed
    assert disk is not None and disk.destroyed and sc.xbd_disk is None
    assert platform.backend.state == XenbusState.Closed


def test_suspend_with_nothing_busy() -> None:
    platform = boot()
    assert platform.dev is not None
    assert suspend(platform.dev) == 0
    assert platform.softc().xbd_state == XbdState.SUSPENDED


def test_suspend_drains_then_returns() -> None:
    platform = boot()
    dev = platform.dev
    assert dev is not None
    bio = submit(platform, make_bio(platform, BIO_READ, 0, 4096))
    sleep = suspend(dev)
    assert isinstance(sleep, SuspendSleep) and platform.sleep_channel == sleep.channel
    assert platform.softc().xbd_io_lock.depth == 0  # msleep dropped the lock
    later = submit(platform, make_bio(platform, BIO_READ, 8, 4096))  # held: suspended
    serve(platform)
    assert bio.done_count == 1 and platform.sleep_woken and later.done_count == 0
    assert suspend_continue(dev, sleep, timed_out=False) == 0
    assert platform.softc().xbd_state == XbdState.SUSPENDED


def test_suspend_times_out_and_restores_the_state() -> None:
    platform = boot()
    dev = platform.dev
    assert dev is not None
    submit(platform, make_bio(platform, BIO_READ, 0, 4096))
    sleep = suspend(dev)
    assert isinstance(sleep, SuspendSleep)
    again = suspend_continue(dev, sleep, timed_out=False)  # spurious wakeup: sleeps again
    assert isinstance(again, SuspendSleep)
    assert suspend_continue(dev, again, timed_out=True) == EBUSY
    assert platform.softc().xbd_state == XbdState.CONNECTED


def test_resume_cancelled_just_reconnects() -> None:
    platform = boot()
    assert platform.dev is not None
    suspend(platform.dev)
    platform.xen_suspend_cancelled = True
    assert platform.resume_device() == 0
    assert platform.softc().xbd_state == XbdState.CONNECTED
    assert write_then_read(platform, 0, 4096, 7).bio_data.read() == b"\x07" * 4096  # type: ignore[union-attr]


def test_resume_rebuilds_and_keeps_stale_features() -> None:
    platform = boot(BackendConfig(barrier=True, flush=True))
    sc = platform.softc()
    dev = platform.dev
    assert dev is not None
    old_refs = [r for r in sc.xbd_ring_ref if r != GRANT_REF_INVALID]
    free_before = platform.gnttab.free_count
    assert suspend(dev) == 0
    platform.backend.reset(BackendConfig(barrier=False, flush=False))
    assert platform.resume_device() == 0
    platform.backend.start()
    platform.settle()
    assert dev.state == XenbusState.Connected and sc.xbd_state == XbdState.CONNECTED
    # seed defect: features are only ever set, never cleared
    assert sc.xbd_flags & XBDF_BARRIER and sc.xbd_flags & XBDF_FLUSH
    # seed defect: the old ring grants were ended but never returned to the pool
    assert platform.gnttab.free_count == free_before - len(old_refs)
    assert write_then_read(platform, 0, 4096, 9).bio_data.read() == b"\x09" * 4096  # type: ignore[union-attr]


def test_resume_loses_a_single_stepped_write_waiting_on_ready() -> None:
    platform = boot(BackendConfig(barrier=False))
    sc = platform.softc()
    dev = platform.dev
    assert dev is not None
    submit(platform, make_bio(platform, BIO_READ, 0, 4096))
    ordered = submit(platform, make_bio(platform, BIO_WRITE, 8, 4096, BIO_ORDERED, fill=1))
    assert sc.xbd_cm_q[XBD_Q_READY].q_length == 1 and sc.xbd_flags & XBDF_WAIT_IDLE
    sleep = suspend(dev)
    assert isinstance(sleep, SuspendSleep)
    platform.backend.fetch()
    platform.backend.respond_all()
    platform.deliver_interrupt()  # drains BUSY; thaw WAIT_IDLE; startio does nothing: suspended
    assert suspend_continue(dev, sleep, timed_out=False) == 0
    assert sc.xbd_flags & XBDF_WAIT_IDLE or sc.xbd_cm_q[XBD_Q_READY].q_length == 1
    platform.backend.reset()
    platform.resume_device()
    platform.backend.start()
    platform.settle()
    # xbd_free re-initialised READY: the ordered write's command, and its bio, are gone
    assert sc.xbd_cm_q[XBD_Q_READY].q_length == 0
    serve(platform)
    assert ordered.done_count == 0


def test_free_and_detach() -> None:
    platform = boot(BackendConfig(max_indirect_segments=64))
    sc = platform.softc()
    assert platform.dev is not None
    assert detach(platform.dev) == 0
    assert sc.xbd_state == XbdState.DISCONNECTED and sc.xbd_shadow is None
    assert sc.xbd_ring.sring is None and sc.xen_intr_handle is None
    assert all(r == GRANT_REF_INVALID for r in sc.xbd_ring_ref)
    assert sc.xbd_cm_q[XBD_Q_FREE].q_length == 0
    assert sc.xbd_cm_q[XBD_Q_BUSY].q_length == 0


def test_feature_string() -> None:
    platform = boot(BackendConfig(barrier=False, flush=False))
    sc = platform.softc()
    assert feature_string(sc) == (0, "")
    sc.xbd_flags |= XBDF_FLUSH | XBDF_BARRIER | XBDF_DISCARD | XBDF_PERSISTENT
    text = "flush, write_barrier, discard, persistent_grants"
    assert feature_string(sc) == (len(text), text)
    assert sysctl_features(sc) == text
    assert feature_string(sc, 10) == (-1, text[:9])


def test_full_handshake_and_io_scenario() -> None:
    platform = Platform(
        backend_config=BackendConfig(max_indirect_segments=32), ring_index_start=2**32 - 3
    )
    dev = platform.boot()
    assert dev.state == XenbusState.Connected
    assert platform.backend.state == XenbusState.Connected
    assert platform.backend.event_channel == platform.evtchn.port
    assert platform.backend.protocol == "x86_64-abi"
    for i in range(40):
        nbytes = 512 * (1 + (i * 7) % 200)
        read = write_then_read(platform, 300 * i, nbytes, i + 1)
        assert read.bio_data is not None and read.bio_data.read() == bytes([i + 1]) * nbytes
    sc = platform.softc()
    assert sc.xbd_ring.req_prod_pvt == (2**32 - 3 + 80) % 2**32  # wrapped
    assert sc.xbd_cm_q[XBD_Q_FREE].q_length == sc.xbd_max_requests


def test_snapshot_and_restore_with_deepcopy() -> None:
    platform = boot()
    submit(platform, make_bio(platform, BIO_WRITE, 0, 4096, fill=3))
    snapshot = copy.deepcopy(platform)
    serve(platform)
    assert platform.completed and not snapshot.completed
    serve(snapshot)
    assert len(snapshot.completed) == 1
    assert snapshot.backend.disk[:4096] == b"\x03" * 4096


def test_simulate_in_process() -> None:
    report = simulate.run_simulation(400, 1)
    assert report.ok and report.bios_completed == 400
    args = argparse.Namespace(ios=300, seed=3, json=True)
    assert simulate.run(args) == 0


def test_simulate_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate.run(argparse.Namespace(ios=200, seed=5, json=True)) == 0
    data = json.loads(capsys.readouterr().out)
    for key in (
        "bios_submitted",
        "bios_completed",
        "bios_lost",
        "double_completions",
        "data_mismatches",
        "frontend_state",
        "backend_state",
        "seed",
    ):
        assert key in data
    assert data["bios_lost"] == 0 and data["frontend_state"] == "Connected"


def test_simulate_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    assert simulate.run(parser.parse_args(["--ios", "100", "--seed", "2"])) == 0
    assert "seed 2" in capsys.readouterr().out


def test_public_names() -> None:
    exported = {name for name in dir(reference) if not name.startswith("_")}
    missing = set(reference.__all__) - exported
    assert not missing
    assert len(reference.__all__) == len(set(reference.__all__))
