"""The negotiation findings: each scenario shows its violation on the seed and runs clean
with its own fix; the fixes themselves checked directly on the reference."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_helpers import make_bio, serve, submit, write_then_read
from xbdspec.reference import (
    BackendConfig,
    Fixes,
    Platform,
    UndefinedBehaviour,
    XbdState,
    XenbusState,
    attach,
    close,
    connect,
    detach,
    open_,
    suspend,
)
from xbdspec.reference.cint import QUAD_MAX
from xbdspec.reference.constants import (
    BIO_READ,
    DISKFLAG_CANFLUSHCACHE,
    EEXIST,
    EINVAL,
    ENOMEM,
    XBD_Q_FREE,
    XBDF_BARRIER,
    XBDF_FLUSH,
)

from xbdspec.findings import negotiation
from xbdspec.findings.scenario import SCENARIOS, run_scenario

FRONT = "device/vbd/51712"

#: finding -> the violation its scenario shows on the seed (a substring of it)
SEED_VIOLATIONS: dict[str, str] = {
    "ring-page-order-shift": (
        "UndefinedBehaviour in 1 << max_ring_page_order: 1 << 31 overflows int"
    ),
    "sector-size-division-by-zero": (
        "UndefinedBehaviour in (uintmax_t)sectors / (1048576 / sector_size): division by zero"
    ),
    "sector-size-unchecked": "sector-size = 1 (blkif.h: a power of two, at least 512) is refused",
    "media-size-overflow": "d_mediasize is its true size in bytes, not -9223372036854775808",
    "indirect-pages-before-clamp": "no command holds an indirection page or its grant (32 do)",
    "vdevice-name-collision": "no second disk is published under the name xbd0",
    "media-size-in-sector-units": (
        "d_mediasize is sectors * 512 = 8388608 bytes (blkif.h), not 67108864"
    ),
    "blank-xenstore-value-uninitialised": (
        "UndefinedBehaviour in xbd_connect: reads `sectors`, left uninitialised because sscanf "
        "returned EOF"
    ),
    "ring-grant-references-leak": "(free references: 2039 before, 2038 after)",
    "indirect-pages-partial-allocation": (
        "UndefinedBehaviour in xbd_queue_cb: xbd_mksegarray writes through NULL "
        "cm->cm_indirectionpages"
    ),
    "no-commands-after-shadow-failure": "a read submitted to the connected disk completes",
}


def test_every_negotiation_scenario_is_registered() -> None:
    assert set(negotiation.__all__) == {name.replace("-", "_") for name in SEED_VIOLATIONS}
    assert set(SEED_VIOLATIONS) <= set(SCENARIOS)
    assert set(SEED_VIOLATIONS) <= set(Fixes.names())


@pytest.mark.parametrize("finding", sorted(SEED_VIOLATIONS))
def test_scenario_violates_on_the_seed(finding: str) -> None:
    run = run_scenario(finding, Fixes())
    assert run.steps
    assert any(SEED_VIOLATIONS[finding] in v for v in run.violations), run.violations


@pytest.mark.parametrize("finding", sorted(SEED_VIOLATIONS))
def test_scenario_is_clean_with_its_fix(finding: str) -> None:
    run = run_scenario(finding, Fixes.only(finding))
    assert run.violations == []


@pytest.mark.parametrize("finding", sorted(SEED_VIOLATIONS))
def test_scenario_is_clean_with_every_fix(finding: str) -> None:
    assert run_scenario(finding, Fixes.all()).violations == []


def fixed(*findings: str, **kwargs: object) -> Platform:
    """A platform running with the named fixes only."""
    return Platform(fixes=Fixes.only(*findings), **kwargs)  # type: ignore[arg-type]


def refused_with(platform: Platform, errno: int) -> bool:
    dev = platform.dev
    assert dev is not None
    return (
        any(err == errno for err, _ in dev.errors)
        and dev.state in (XenbusState.Closing, XenbusState.Closed)
        and not platform.disks
        and platform.softc().xbd_state == XbdState.DISCONNECTED
    )


# ------------------------------------------------------------- ring-page-order-shift
@given(st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1)))
def test_every_ring_page_order_gives_a_clamped_power_of_two(order: int) -> None:
    platform = fixed(
        "ring-page-order-shift", backend_config=BackendConfig(max_ring_page_order=order)
    )
    platform.boot()
    sc = platform.softc()
    assert sc.xbd_ring_pages == 1 << min(order, 5)
    assert platform.backend.state == XenbusState.Connected
    assert (order > 5) == any("ring-page-order of" in line for line in platform.log)


@pytest.mark.parametrize("text", ["-1", "4294967295", "31", "99999999999999999999"])
def test_hostile_ring_page_orders_are_clamped_to_32_pages(text: str) -> None:
    platform = fixed(
        "ring-page-order-shift",
        backend_config=BackendConfig(overrides={"max-ring-page-order": text}),
    )
    platform.boot()
    assert platform.softc().xbd_ring_pages == 32
    assert platform.xenstore.read(f"{FRONT}/ring-page-order") == "5"


# ----------------------------------------------------------------- sector-size checks
def test_sector_sizes_up_to_one_mebibyte_still_connect() -> None:
    platform = fixed(
        "sector-size-division-by-zero", backend_config=BackendConfig(sector_size=1048576)
    )
    platform.boot()
    assert platform.softc().xbd_state == XbdState.CONNECTED
    platform = fixed(
        "sector-size-division-by-zero", backend_config=BackendConfig(sector_size=2 * 1048576)
    )
    platform.boot()
    assert refused_with(platform, EINVAL)


@pytest.mark.parametrize(
    ("sector_size", "accepted"),
    [
        *[(size, False) for size in (1, 256, 511, 513, 1000, 3 << 10)],
        *[(size, True) for size in (512, 1024, 4096, 65536)],
    ],
)
def test_sector_size_must_be_a_power_of_two_of_at_least_512(
    sector_size: int, accepted: bool
) -> None:
    platform = fixed("sector-size-unchecked", backend_config=BackendConfig(sector_size=sector_size))
    platform.boot()
    if accepted:
        disk = platform.softc().xbd_disk
        assert disk is not None and disk.d_sectorsize == sector_size
    else:
        assert refused_with(platform, EINVAL)
        assert "is not a power of two of at least 512" in platform.dev.errors[0][1]  # type: ignore[union-attr]


# ---------------------------------------------------------------- media size in bytes
def test_a_4096_byte_sector_disk_reports_sectors_times_512_bytes() -> None:
    platform = fixed(
        "media-size-in-sector-units",
        backend_config=BackendConfig(sectors=16384, sector_size=4096),
    )
    platform.boot()
    sc = platform.softc()
    assert sc.xbd_disk is not None
    assert sc.xbd_disk.d_mediasize == 16384 * 512 and sc.xbd_disk.d_sectorsize == 4096
    # the resize path counts in 512-byte units too
    platform.xenstore.write(f"{platform.back_path}/sectors", "32768")
    connect(sc)
    assert sc.xbd_disk.d_mediasize == 32768 * 512


@pytest.mark.parametrize("unit_fix", [False, True])
def test_media_size_must_fit_in_off_t(unit_fix: bool) -> None:
    names = ["media-size-overflow"] + (["media-size-in-sector-units"] if unit_fix else [])
    largest = QUAD_MAX // 512
    platform = Platform(
        fixes=Fixes.only(*names),
        backend_config=BackendConfig(overrides={"sectors": str(largest)}),
    )
    platform.boot()
    sc = platform.softc()
    assert sc.xbd_disk is not None and sc.xbd_disk.d_mediasize == largest * 512
    # a resize past off_t is reported and the size kept
    platform.xenstore.write(f"{platform.back_path}/sectors", str(largest + 1))
    connect(sc)
    assert sc.xbd_disk.d_mediasize == largest * 512
    assert platform.dev is not None and platform.dev.errors[-1][0] == EINVAL
    # and a disk one sector too large is refused
    platform = Platform(
        fixes=Fixes.only(*names),
        backend_config=BackendConfig(overrides={"sectors": str(largest + 1)}),
    )
    platform.boot()
    assert refused_with(platform, EINVAL)


# -------------------------------------------------------- indirect pages and commands
@pytest.mark.parametrize(
    ("advertised", "segments", "pages"),
    [
        *[(text, 11, 0) for text in (None, "0", "1", "5", "11")],
        *[("12", 12, 1), ("512", 257, 1), ("100000", 257, 1)],
    ],
)
def test_indirect_pages_only_when_requests_can_be_indirect(
    advertised: str | None, segments: int, pages: int
) -> None:
    platform = fixed(
        "indirect-pages-before-clamp",
        backend_config=BackendConfig(overrides={"feature-max-indirect-segments": advertised}),
    )
    platform.boot()
    sc = platform.softc()
    assert (sc.xbd_max_request_segments, sc.xbd_max_request_indirectpages) == (segments, pages)
    assert sc.xbd_shadow is not None
    assert all((cm.cm_indirectionpages is not None) == (pages > 0) for cm in sc.xbd_shadow)


def test_indirect_page_failure_part_way_falls_back_to_direct_requests() -> None:
    plain = Platform()
    plain.boot()
    platform = fixed(
        "indirect-pages-partial-allocation", backend_config=BackendConfig(max_indirect_segments=64)
    )
    platform.malloc_failures["contigmalloc"] = 2  # the third command's page fails
    platform.boot()
    sc = platform.softc()
    assert sc.xbd_max_request_indirectpages == 0 and sc.xbd_max_request_segments == 11
    assert sc.xbd_max_request_size == 10 * 4096
    assert sc.xbd_disk is not None and sc.xbd_disk.d_maxsize == 10 * 4096
    assert sc.xbd_shadow is not None
    assert all(cm.cm_indirectionpages is None for cm in sc.xbd_shadow)
    assert sc.xbd_cm_q[XBD_Q_FREE].q_length == sc.xbd_max_requests
    # the two pages granted before the failure were ended and returned
    assert platform.gnttab.free_count == plain.gnttab.free_count
    assert any("direct requests only" in line for line in platform.log)
    read = write_then_read(platform, 0, 10 * 4096, 3)
    assert read.bio_data is not None and read.bio_data.read() == b"\x03" * 10 * 4096


def test_seed_partial_indirect_failure_reaches_a_null_page() -> None:
    platform = Platform(backend_config=BackendConfig(max_indirect_segments=64))
    platform.malloc_failures["contigmalloc"] = 0
    platform.boot()
    with pytest.raises(UndefinedBehaviour, match="cm_indirectionpages"):
        submit(platform, make_bio(platform, BIO_READ, 0, 12 * 4096))


def test_no_command_at_all_fails_the_connection_with_enomem() -> None:
    platform = fixed("no-commands-after-shadow-failure")
    platform.malloc_failures["sg_refs"] = 0
    platform.boot()
    assert refused_with(platform, ENOMEM)
    assert platform.backend.state == XenbusState.Closed
    assert platform.dev is not None and detach(platform.dev) == 0
    assert platform.softc().xbd_shadow is None


def test_fewer_commands_still_connect_with_the_fix() -> None:
    platform = fixed("no-commands-after-shadow-failure")
    platform.malloc_failures["sg_refs"] = 5
    platform.boot()
    sc = platform.softc()
    assert sc.xbd_state == XbdState.CONNECTED and sc.xbd_cm_q[XBD_Q_FREE].q_length == 5
    bios = [submit(platform, make_bio(platform, BIO_READ, 8 * i, 4096)) for i in range(7)]
    serve(platform)
    serve(platform)
    assert all(b.done_count == 1 for b in bios)


# ------------------------------------------------------------ ring grants over resumes
def resume_once(platform: Platform, config: BackendConfig | None = None) -> None:
    """Suspend, then resume on a fresh back end that is already waiting (InitWait)."""
    assert platform.dev is not None and suspend(platform.dev) == 0
    platform.backend.reset(config)
    platform.backend.start()
    platform.resume_device()
    platform.settle()


@pytest.mark.parametrize("fix", [False, True])
def test_resumes_return_the_ring_grant_references(fix: bool) -> None:
    fixes = Fixes.only("ring-grant-references-leak") if fix else Fixes()
    platform = Platform(fixes=fixes, backend_config=BackendConfig(max_ring_page_order=5))
    platform.boot()
    before = platform.gnttab.free_count
    for _ in range(3):
        resume_once(platform)
    assert platform.softc().xbd_ring_pages == 32
    assert platform.gnttab.free_count == (before if fix else before - 3 * 32)
    assert write_then_read(platform, 0, 4096, 1).bio_error == 0


# --------------------------------------------------------------- blank xenstore values
def test_blank_values_are_errors_with_the_fix() -> None:
    names = ("blank-xenstore-value-uninitialised",)
    platform = fixed(*names, vdevice="")
    dev = platform.plug()
    assert attach(dev) != 0
    assert dev.state == XenbusState.Closing and "reading virtual-device" in dev.errors[0][1]
    # a blank feature is not offered; a blank optional property is absent
    overrides: dict[str, str | None] = {
        "feature-barrier": "",
        "feature-flush-cache": " ",
        "physical-sector-size": "",
        "feature-max-indirect-segments": "",
    }
    platform = fixed(*names, backend_config=BackendConfig(overrides=overrides))
    platform.boot()
    sc = platform.softc()
    assert sc.xbd_state == XbdState.CONNECTED
    assert not sc.xbd_flags & (XBDF_BARRIER | XBDF_FLUSH)
    assert sc.xbd_max_request_segments == 11
    # a blank size on a resize is reported, the size kept
    assert sc.xbd_disk is not None
    size = sc.xbd_disk.d_mediasize
    platform.xenstore.write(f"{platform.back_path}/sectors", "")
    connect(sc)
    assert sc.xbd_disk.d_mediasize == size and platform.dev is not None
    assert platform.dev.errors[-1] == (EINVAL, f"reading sectors at {platform.back_path}")


@pytest.mark.parametrize("fix", [False, True])
def test_a_blank_back_end_state_read_by_close(fix: bool) -> None:
    # xbd_close asks xenbus_get_otherend_state, which reads the node afresh
    fixes = Fixes.only("blank-xenstore-value-uninitialised") if fix else Fixes()
    platform = Platform(fixes=fixes)
    platform.boot()
    disk = platform.softc().xbd_disk
    assert disk is not None
    open_(disk)
    platform.xenstore.write(f"{platform.back_path}/state", "")
    if fix:
        assert close(disk) == 0  # read as an error: Closed, not Closing; nothing to do
        assert platform.softc().xbd_users == 0 and platform.softc().xbd_disk is disk
    else:
        with pytest.raises(UndefinedBehaviour, match="state is blank"):
            close(disk)


# ------------------------------------------------------------- stale features (code)
@pytest.mark.parametrize("fix", [False, True])
def test_resume_rereads_the_features(fix: bool) -> None:
    fixes = Fixes.only("stale-features-after-resume") if fix else Fixes()
    platform = Platform(fixes=fixes, backend_config=BackendConfig(barrier=True, flush=True))
    platform.boot()
    sc = platform.softc()
    assert sc.xbd_flags & XBDF_BARRIER and sc.xbd_flags & XBDF_FLUSH
    resume_once(platform, BackendConfig(barrier=False, flush=True))
    assert sc.xbd_state == XbdState.CONNECTED
    assert bool(sc.xbd_flags & XBDF_BARRIER) is not fix
    assert sc.xbd_flags & XBDF_FLUSH
    assert sc.xbd_disk is not None and sc.xbd_disk.d_flags & DISKFLAG_CANFLUSHCACHE


@pytest.mark.parametrize("fix", [False, True])
def test_resume_on_a_back_end_without_flush_stops_advertising_it(fix: bool) -> None:
    fixes = Fixes.only("stale-features-after-resume") if fix else Fixes()
    platform = Platform(fixes=fixes)
    platform.boot()
    sc = platform.softc()
    resume_once(platform, BackendConfig(barrier=False, flush=False))
    assert sc.xbd_disk is not None
    # GEOM then fails BIO_FLUSH itself instead of handing it to xbd_bio_command, which
    # would panic now that neither feature is set
    assert bool(sc.xbd_disk.d_flags & DISKFLAG_CANFLUSHCACHE) is not fix
    assert bool(sc.xbd_flags & (XBDF_BARRIER | XBDF_FLUSH)) is not fix


# ------------------------------------------------------------------ vdevice collision
def test_attach_fails_on_a_taken_unit_and_works_on_a_free_one() -> None:
    platform = fixed("vdevice-name-collision", vdevice=0)
    platform.units["xbd"] = {0}
    dev = platform.plug()
    assert attach(dev) == EEXIST
    assert dev.state == XenbusState.Closing and dev.errors[0][0] == EEXIST
    platform = fixed("vdevice-name-collision", vdevice=0)
    dev = platform.boot()
    assert dev.unit == 0 and platform.softc().xbd_state == XbdState.CONNECTED


# -------------------------------------------------------------------- every fix at once
def test_every_fix_boots_resumes_and_does_io() -> None:
    platform = Platform(
        fixes=Fixes.all(),
        backend_config=BackendConfig(max_indirect_segments=32, max_ring_page_order=2),
        ring_index_start=2**32 - 3,
    )
    platform.boot()
    sc = platform.softc()
    assert sc.xbd_state == XbdState.CONNECTED and sc.xbd_ring_pages == 4
    for round_ in range(2):
        for i in range(20):
            nbytes = 512 * (1 + (i * 7) % 200)
            read = write_then_read(platform, 300 * i, nbytes, i + 1 + round_)
            assert read.bio_data is not None
            assert read.bio_data.read() == bytes([i + 1 + round_]) * nbytes
        if round_ == 0:
            resume_once(platform)
            assert sc.xbd_state == XbdState.CONNECTED
    assert sc.xbd_cm_q[XBD_Q_FREE].q_length == sc.xbd_max_requests
