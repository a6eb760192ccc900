"""The seed's C source, unmodified, on the shim: handshake, I/O, shortages, deferred maps."""

from __future__ import annotations

import pytest
from xbdspec.reference import BackendConfig

from xbdspec.cdriver import BuildResult, CDriverFault, CPlatform

BIO_READ, BIO_WRITE, BIO_FLUSH = 1, 2, 5
BIO_ERROR, BIO_DONE, BIO_ORDERED = 0x01, 0x02, 0x08
EIO = 5
XBDF_BARRIER, XBDF_FLUSH, XBDF_READY = 1 << 1, 1 << 2, 1 << 3
XBDF_GNT_SHORTAGE, XBDF_WAIT_IDLE = 1 << 5, 1 << 6
XBD_Q_FREE, XBD_Q_BUSY, XBD_Q_NONE = 0, 2, 0xFF
XBDCF_FROZEN, XBDCF_Q_FREEZE, XBDCF_ASYNC_MAPPING = 1 << 8, 1 << 9, 1 << 10
FRONT = "device/vbd/51712"


def serve(p: CPlatform) -> int:
    """The back end answers everything in order; the interrupt is delivered."""
    p.backend_fetch()
    count = p.respond_all()
    p.deliver_interrupt()
    return count


def booted(built: BuildResult, **kwargs: object) -> CPlatform:
    p = CPlatform(built, **kwargs)  # type: ignore[arg-type]
    p.boot()
    return p


def test_seed_compiles_with_its_warnings_reported(seed_build: BuildResult) -> None:
    assert seed_build.library.is_file()
    # the seed's own warnings are kept (not fatal): e.g. its int/uint32_t comparisons
    assert any("blkfront.c" in w and "-Wsign-compare" in w for w in seed_build.warnings)
    # the seed's unused SYSCTL_HANDLER_ARGS parameters are reported at the macro's definition
    assert all("error" not in w.split("warning:")[0] for w in seed_build.warnings)


def test_handshake_reaches_connected_with_the_seed_writes(seed_build: BuildResult) -> None:
    p = booted(seed_build)
    keys = [path.rsplit("/", 1)[1] for path, _ in p.front_writes()]
    # after the tool stack's five keys (state Initialising among them; attach's own
    # Initialising is no change, so no write): the transport keys, Initialised, Connected
    assert keys[5:] == ["ring-ref", "event-channel", "protocol", "state", "state"]
    values = p.xenstore.values
    assert values[f"{FRONT}/protocol"] == "x86_64-abi"
    assert values[f"{FRONT}/event-channel"] == str(p.counter("port")) == "5"
    assert values[f"{FRONT}/ring-ref"] == "8"  # the first reference after the 8 reserved ones
    assert [v for path, v in p.front_writes() if path == f"{FRONT}/state"] == ["1", "3", "4"]
    sc = p.softc()
    assert sc["xbd_state"] == 1 and sc["xbd_flags"] == XBDF_BARRIER | XBDF_FLUSH | XBDF_READY
    assert sc["xbd_max_requests"] == 32 and sc["q_free"] == 32 and sc["ring_size"] == 32
    assert sc["d_mediasize"] == 16384 * 512 and sc["d_maxsize"] == 10 * 4096
    assert p.sysctl_features() == "flush, write_barrier"


def test_write_then_read_returns_the_data(seed_build: BuildResult) -> None:
    p = booted(seed_build)
    payload = bytes(range(256)) * 48  # 12 KiB: three segments
    w = p.strategy(BIO_WRITE, 8, len(payload), data=payload)
    [request] = (p.backend_fetch(), p.pending())[1]
    assert (request.operation, request.sector_number, request.nr_segments) == (1, 8, 3)
    assert serve(p) == 1
    assert p.disk(8 * 512, len(payload)) == payload
    r = p.strategy(BIO_READ, 8, len(payload))
    serve(p)
    assert p.bio_data(r, len(payload)) == payload
    assert p.completed() == [w, r]
    assert p.bio(r).done_count == 1 and p.bio(r).bio_error == 0 and p.bio(r).bio_resid == 0
    assert p.softc()["q_free"] == 32


def test_error_response_fails_the_bio(seed_build: BuildResult) -> None:
    p = booted(seed_build)
    b = p.strategy(BIO_READ, 0, 4096)
    p.backend_fetch()
    p.respond(0, status=-1)
    p.deliver_interrupt()
    status = p.bio(b)
    assert status.bio_error == EIO and status.bio_flags & BIO_ERROR and status.done_count == 1
    assert any("disk error" in line for line in p.log)


def test_grant_shortage_freezes_then_the_free_callback_restarts(seed_build: BuildResult) -> None:
    p = booted(seed_build)
    p.grants_take(p.grant_free_count() - 5)  # fewer than max_request_segments (11) remain
    b = p.strategy(BIO_READ, 0, 4096)
    sc = p.softc()
    assert sc["xbd_flags"] & XBDF_GNT_SHORTAGE and sc["xbd_qfrozen_cnt"] == 1 and sc["q_bio"] == 1
    assert p.backend_fetch() == 0
    p.grants_give_back()  # the free callback runs xbd_restart_queue_callback
    sc = p.softc()
    assert not sc["xbd_flags"] & XBDF_GNT_SHORTAGE and sc["xbd_qfrozen_cnt"] == 0
    serve(p)
    assert p.bio(b).done_count == 1


def test_grant_free_callback_from_inside_the_driver_recurses_on_the_io_lock(
    seed_build: BuildResult,
) -> None:
    """seed-notes #12: the callback fires inside xbd_int with xbd_io_lock held."""
    p = booted(seed_build)
    first = p.strategy(BIO_READ, 0, 4096)
    p.grants_take(p.grant_free_count() - 10)  # its one reference back makes 11 free
    p.strategy(BIO_READ, 8, 4096)
    assert p.softc()["xbd_flags"] & XBDF_GNT_SHORTAGE
    p.backend_fetch()
    p.respond_all()
    with pytest.raises(CDriverFault, match="recursed on non-recursive mutex") as info:
        p.deliver_interrupt()  # 11 references come back: the callback runs nested
    assert info.value.kind == "KernelAssertion"
    assert p.counter("io_lock_recursions") == 1
    assert p.bio(first).done_count == 0  # the panic came before its completion


def test_deferred_mapping_is_published_by_its_callback(seed_build: BuildResult) -> None:
    p = booted(seed_build)
    p.dma_next("DEFERRED")
    first = p.strategy(BIO_READ, 0, 4096)
    second = p.strategy(BIO_READ, 8, 4096)
    sc = p.softc()
    assert p.deferred_count() == 1 and sc["xbd_qfrozen_cnt"] == 1 and sc["q_bio"] == 1
    cm = p.command_flags()
    assert any(f & XBDCF_ASYNC_MAPPING and f & XBDCF_FROZEN for f in cm)
    assert p.run_deferred()
    assert p.backend_fetch() == 1  # xbd_queue_cb flushed it itself
    p.respond_all()
    p.deliver_interrupt()  # thaw: the second bio goes out
    serve(p)
    assert p.completed() == [first, second]


def test_finding_9_deferred_single_stepped_write_is_never_published(
    seed_build: BuildResult,
) -> None:
    p = booted(seed_build, backend_config=BackendConfig(barrier=False))
    p.dma_next("DEFERRED")
    p.strategy(BIO_WRITE, 0, 4096, flags=BIO_ORDERED, data=b"\x01" * 4096)
    [flags] = [f for f in p.command_flags() if f & 0xFF == XBD_Q_NONE]
    assert flags & XBDCF_Q_FREEZE and not flags & XBDCF_ASYNC_MAPPING
    p.run_deferred()
    sc = p.softc()
    assert sc["req_prod_pvt"] == 1 and sc["sring_req_prod"] == 0  # on the ring, never pushed
    assert p.backend_fetch() == 0
    later = p.strategy(BIO_READ, 8, 4096)
    assert p.backend_fetch() == 0 and p.bio(later).done_count == 0


def test_finding_10_late_mapping_failure_leaves_the_queue_frozen(seed_build: BuildResult) -> None:
    p = booted(seed_build)
    free_before = p.grant_free_count()
    p.dma_next("DEFERRED")
    b = p.strategy(BIO_WRITE, 0, 4096, data=b"\x01" * 4096)
    p.run_deferred(0, error=27)
    status = p.bio(b)
    assert status.bio_error == EIO and status.done_count == 1
    assert not status.bio_flags & BIO_ERROR  # bio_error set without BIO_ERROR
    assert p.softc()["xbd_qfrozen_cnt"] == 1  # xbd_free_command dropped FROZEN without a thaw
    assert p.grant_free_count() == free_before - 11  # cm_gref_head never freed
    later = p.strategy(BIO_READ, 8, 4096)
    assert p.backend_fetch() == 0 and p.bio(later).done_count == 0


def test_finding_1_ring_page_order_31_is_a_shift_overflow(seed_build: BuildResult) -> None:
    """Without UBSan the shift wraps (gcc: 1 << 31 = INT_MIN): the plain build shows what the
    hardware does; the sanitizer test shows the report."""
    p = CPlatform(seed_build, backend_config=BackendConfig(overrides={"max-ring-page-order": "31"}))
    p.boot()
    # 1 << 31 is INT_MIN; as u_int 2^31 > 32 -> clamped to the front-end limit
    assert p.softc()["xbd_ring_pages"] == 32
    assert any("limited to front-end limit of 32" in line for line in p.log)


def test_finding_2_huge_sector_size_divides_by_zero(seed_build: BuildResult) -> None:
    p = CPlatform(seed_build, backend_config=BackendConfig(sector_size=2 * 1048576))
    with pytest.raises(CDriverFault, match="division by zero") as info:
        p.boot()
    assert info.value.kind == "UndefinedBehaviour" and "xbd_backend_changed(4)" in info.value.where


def test_finding_4_flush_without_support_panics(seed_build: BuildResult) -> None:
    p = booted(seed_build, backend_config=BackendConfig(barrier=False, flush=False))
    with pytest.raises(CDriverFault, match="no flush support available") as info:
        p.strategy(BIO_FLUSH, 0, 0)
    assert info.value.kind == "KernelPanic"


def test_finding_18_response_for_a_command_not_busy_panics(seed_build: BuildResult) -> None:
    p = booted(seed_build)
    p.raw_response(3, 0, 0)
    with pytest.raises(CDriverFault, match="not specified queue 2") as info:
        p.deliver_interrupt()
    assert info.value.kind == "KernelPanic"


def test_ordered_write_waits_for_idle_without_barrier(seed_build: BuildResult) -> None:
    p = booted(seed_build, backend_config=BackendConfig(barrier=False))
    first = p.strategy(BIO_READ, 0, 4096)
    ordered = p.strategy(BIO_WRITE, 8, 4096, flags=BIO_ORDERED, data=b"\x02" * 4096)
    sc = p.softc()
    assert sc["xbd_flags"] & XBDF_WAIT_IDLE and sc["q_ready"] == 1 and sc["xbd_qfrozen_cnt"] == 1
    serve(p)  # idle: the ordered write goes out single-stepped
    assert p.backend_fetch() == 1 and p.pending()[0].operation == 1  # BLKIF_OP_WRITE
    p.respond_all()
    p.deliver_interrupt()
    assert p.completed() == [first, ordered] and p.softc()["xbd_qfrozen_cnt"] == 0


def test_suspend_drains_through_msleep_and_resume_reconnects(seed_build: BuildResult) -> None:
    p = booted(seed_build)
    b = p.strategy(BIO_READ, 0, 4096)

    def backend_answers() -> None:
        p.backend_fetch()
        p.respond_all()
        p.deliver_interrupt()

    p.on_msleep = backend_answers
    p.msleep_answers = [0]
    assert p.suspend() == 0
    assert p.bio(b).done_count == 1 and p.counter("wakeups") >= 1
    assert p.softc()["xbd_state"] == 2  # SUSPENDED


def test_suspend_times_out_with_ebusy(seed_build: BuildResult) -> None:
    p = booted(seed_build)
    p.strategy(BIO_READ, 0, 4096)
    p.msleep_answers = []  # the 30 s pass
    assert p.suspend() == 16  # EBUSY
    assert p.softc()["xbd_state"] == 1
