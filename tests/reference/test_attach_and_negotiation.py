"""probe, attach, vdevice_to_unit, initialize and connect, with hostile xenstore values
checked against an oracle written from the C semantics."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_helpers import boot, make_bio, serve, submit
from xbdspec.reference import (
    BackendConfig,
    KernelHang,
    Platform,
    Tunables,
    UndefinedBehaviour,
    XbdState,
    XenbusState,
    attach,
    connect,
    probe,
    vdevice_to_unit,
)
from xbdspec.reference.constants import (
    BIO_READ,
    ENXIO,
    ERANGE,
    XBD_Q_FREE,
    XBDF_BARRIER,
    XBDF_CM_SHORTAGE,
    XBDF_FLUSH,
)
from xbdspec.reference.lifecycle import VDEV_INFO

FRONT = "device/vbd/51712"


# ---------------------------------------------------------------- an independent oracle
def c_uint(text: str | None, bits: int = 32) -> tuple[str, int | None]:
    """('missing'|'nomatch'|'eof'|'ok', value) for ``%u``/``%lu`` per subr_scanf.c."""
    if text is None:
        return "missing", None
    text = text.split("\0", 1)[0].lstrip(" \t\n\v\f\r")
    if not text:
        return "eof", None
    match = re.match(r"[+-]?\d+", text[:31], flags=re.ASCII)
    if not match:
        return "nomatch", None
    token = match.group(0)
    magnitude = int(token.lstrip("+-"))
    value = 2**64 - 1 if magnitude >= 2**64 else (-magnitude if token[0] == "-" else magnitude)
    return "ok", value % 2**bits


def expected_ring_pages(order_text: str | None, pages_text: str | None) -> int | None:
    """xbd_initialize's ring size, or None when ``1 << order`` is undefined."""
    status, value = c_uint(order_text)
    order = value if status == "ok" and value is not None else 0
    if order >= 31:
        return None
    pages = 1 << order
    status, value = c_uint(pages_text)
    if status == "ok" and value is not None:
        pages = value
    pages = min(max(pages, 1), 32)
    if pages & (pages - 1):
        pages = 1 << (pages.bit_length() - 1)
    return pages


hostile = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "1",
            "2",
            "3",
            "5",
            "31",
            "32",
            "33",
            "-1",
            "4294967296",
            "99999999999999999999",
            "abc",
            "2junk",
            " +4",
            "\x001",
        ]
    ),
    st.integers(-(2**40), 2**40).map(str),
    st.text(max_size=8),
)


@given(order=hostile, pages=hostile)
def test_initialize_ring_negotiation_matches_the_c_semantics(
    order: str | None, pages: str | None
) -> None:
    platform = Platform(
        backend_config=BackendConfig(
            overrides={"max-ring-page-order": order, "max-ring-pages": pages}
        )
    )
    expected = expected_ring_pages(order, pages)
    if expected is None:
        with pytest.raises(UndefinedBehaviour, match="max_ring_page_order"):
            platform.boot()
        return
    platform.boot()
    sc = platform.softc()
    assert sc.xbd_ring_pages == expected
    assert sc.xbd_max_requests == {1: 32, 2: 64, 4: 128, 8: 256, 16: 512, 32: 1024}[expected]
    xs = platform.xenstore
    if expected == 1:
        assert xs.read(f"{FRONT}/ring-ref") is not None
        assert xs.read(f"{FRONT}/num-ring-pages") is None
    else:
        assert xs.read(f"{FRONT}/ring-ref") is None
        assert xs.read(f"{FRONT}/num-ring-pages") == str(expected)
        assert xs.read(f"{FRONT}/ring-page-order") == str(expected.bit_length() - 1)
        for i in range(expected):
            assert xs.read(f"{FRONT}/ring-ref{i}") == str(sc.xbd_ring_ref[i])
    assert xs.read(f"{FRONT}/event-channel") == str(platform.evtchn.port)
    assert xs.read(f"{FRONT}/protocol") == "x86_64-abi"
    assert platform.backend.state == XenbusState.Connected


def expected_segments(text: str | None, enable: int = 1, maxphys: int = 1 << 20) -> tuple[int, int]:
    """(max_request_segments, max_request_indirectpages) per xbd_connect."""
    status, value = c_uint(text)
    segs = value if status == "ok" and value is not None else 0  # the field starts at 0
    if status in ("missing", "nomatch") or enable == 0:
        segs = 0
    segs = min(segs, 4096, maxphys // 4096 + 1)
    pages = (segs + 511) // 512
    return max(segs, 11), pages


@given(hostile)
def test_connect_indirect_segment_clamps(text: str | None) -> None:
    platform = Platform(
        backend_config=BackendConfig(overrides={"feature-max-indirect-segments": text})
    )
    platform.boot()
    sc = platform.softc()
    segs, pages = expected_segments(text)
    assert (sc.xbd_max_request_segments, sc.xbd_max_request_indirectpages) == (segs, pages)
    assert sc.xbd_max_request_size == (segs - 1) * 4096


@pytest.mark.parametrize(
    ("enable", "maxphys", "text", "expected"),
    [
        (0, 1 << 20, "256", (11, 0)),
        (1, 128 * 1024, "256", (33, 1)),
        (1, 1 << 20, "5", (11, 1)),  # indirect pages computed before the minimum clamp
        (1, 1 << 30, "100000", (4096, 8)),
    ],
)
def test_indirect_tunables(enable: int, maxphys: int, text: str, expected: tuple[int, int]) -> None:
    platform = Platform(
        tunables=Tunables(xbd_enable_indirect=enable, maxphys=maxphys),
        backend_config=BackendConfig(overrides={"feature-max-indirect-segments": text}),
    )
    platform.boot()
    sc = platform.softc()
    assert (sc.xbd_max_request_segments, sc.xbd_max_request_indirectpages) == expected
    assert expected == expected_segments(text, enable, maxphys)


@given(
    st.sampled_from(["0", "1", "7", "-1", "abc", "", None, "2x"]),
    st.sampled_from(["0", "1", "-3", "abc", "", None]),
)
def test_connect_feature_flags(barrier: str | None, flush: str | None) -> None:
    platform = Platform(
        backend_config=BackendConfig(
            overrides={"feature-barrier": barrier, "feature-flush-cache": flush}
        )
    )
    if barrier == "" or flush == "":
        with pytest.raises(UndefinedBehaviour, match="uninitialised"):
            platform.boot()
        return
    platform.boot()
    sc = platform.softc()

    def on(text: str | None) -> bool:
        status, value = c_uint(text)
        return status == "ok" and value != 0

    assert bool(sc.xbd_flags & XBDF_BARRIER) == on(barrier)
    assert bool(sc.xbd_flags & XBDF_FLUSH) == on(flush)


@pytest.mark.parametrize(
    ("key", "value"), [("sectors", None), ("sectors", "abc"), ("info", "x"), ("sector-size", None)]
)
def test_connect_missing_or_bad_properties_is_fatal(key: str, value: str | None) -> None:
    platform = Platform(backend_config=BackendConfig(overrides={key: value}))
    platform.boot()
    dev = platform.dev
    assert dev is not None and dev.state in (XenbusState.Closing, XenbusState.Closed)
    assert "reading backend fields" in dev.errors[-1][1]
    assert platform.softc().xbd_state == XbdState.DISCONNECTED


@pytest.mark.parametrize("key", ["sectors", "sector-size"])
def test_connect_zero_properties_is_fatal(key: str) -> None:
    platform = Platform(backend_config=BackendConfig(overrides={key: "0"}))
    platform.boot()
    assert platform.dev is not None and "invalid parameters" in platform.dev.errors[-1][1]


def test_connect_blank_sectors_reads_an_uninitialised_local() -> None:
    platform = Platform(backend_config=BackendConfig(overrides={"sectors": ""}))
    with pytest.raises(UndefinedBehaviour, match="`sectors`"):
        platform.boot()


def test_connect_huge_sector_size_divides_by_zero() -> None:
    platform = Platform(backend_config=BackendConfig(sector_size=2 * 1048576))
    with pytest.raises(UndefinedBehaviour, match="1048576 / sector_size"):
        platform.boot()


def test_connect_publishes_the_disk() -> None:
    platform = boot(BackendConfig(sectors=4096, sector_size=512, physical_sector_size=4096))
    disk = platform.softc().xbd_disk
    assert disk is not None and disk.created
    assert disk.d_mediasize == 4096 * 512 and disk.d_sectorsize == 512
    assert disk.d_stripesize == 4096 and disk.d_maxsize == 10 * 4096
    assert platform.softc().xbd_state == XbdState.CONNECTED
    platform2 = boot(BackendConfig(physical_sector_size=512))
    assert platform2.softc().xbd_disk.d_stripesize == 0  # type: ignore[union-attr]


def test_shadow_allocation_failing_part_way_leaves_fewer_commands() -> None:
    platform = Platform()
    platform.malloc_failures["sg_refs"] = 5
    platform.boot()
    sc = platform.softc()
    assert sc.xbd_cm_q[XBD_Q_FREE].q_length == 5
    assert sc.xbd_shadow is not None and sc.xbd_shadow[5].cm_sc is None
    bios = [submit(platform, make_bio(platform, BIO_READ, 8 * i, 4096)) for i in range(7)]
    assert sc.xbd_flags & XBDF_CM_SHORTAGE and len(sc.xbd_bioq) == 2
    serve(platform)
    serve(platform)
    assert all(b.done_count == 1 for b in bios)


def test_shadow_allocation_failing_entirely_is_fatal() -> None:
    platform = Platform()
    platform.malloc_failures["shadow"] = 0
    platform.boot()
    assert platform.dev is not None
    assert platform.dev.state in (XenbusState.Closing, XenbusState.Closed)


def test_indirect_pages_failing_part_way_leaves_commands_without_pages() -> None:
    platform = Platform(backend_config=BackendConfig(max_indirect_segments=64))
    platform.malloc_failures["contigmalloc"] = 2
    platform.boot()
    sc = platform.softc()
    assert sc.xbd_max_request_indirectpages == 0 and sc.xbd_max_request_segments == 64
    assert sc.xbd_shadow is not None and sc.xbd_shadow[2].cm_indirectionpages is None
    # the first free command is one without pages: a 12-segment I/O writes through NULL
    for cm in list(sc.xbd_cm_q[XBD_Q_FREE].q_tailq)[:2]:
        sc.xbd_cm_q[XBD_Q_FREE].q_tailq.remove(cm)
        sc.xbd_cm_q[XBD_Q_FREE].q_tailq.append(cm)
    with pytest.raises(UndefinedBehaviour, match="cm_indirectionpages"):
        submit(platform, make_bio(platform, BIO_READ, 0, 12 * 4096))


def test_connect_when_connected_resizes() -> None:
    platform = boot()
    sc = platform.softc()
    platform.xenstore.write(f"{platform.back_path}/sectors", "32768")
    connect(sc)
    assert sc.xbd_disk is not None and sc.xbd_disk.d_mediasize == 32768 * 512
    assert any("changed capacity" in line for line in platform.log)
    platform.disk_resize_error = 12
    platform.xenstore.write(f"{platform.back_path}/sectors", "1")
    connect(sc)
    assert platform.dev is not None and "unable to resize" in platform.dev.errors[-1][1]
    platform.xenstore.write(f"{platform.back_path}/sectors", "junk")
    connect(sc)
    assert "reading sectors" in platform.dev.errors[-1][1]


def test_connect_when_suspended_returns_early() -> None:
    platform = boot()
    sc = platform.softc()
    sc.xbd_state = XbdState.SUSPENDED
    writes = len(platform.xenstore.writes)
    connect(sc)
    assert len(platform.xenstore.writes) == writes


# ---------------------------------------------------------------- probe and attach
def test_probe_rules() -> None:
    platform = Platform()
    dev = platform.plug()
    assert probe(dev) == 0 and dev.desc == "Virtual Block Device" and dev.quiet
    dev.devtype = "vif"
    assert probe(dev) == ENXIO
    dev.devtype = "vbd"
    for tunables, device_type, expected in [
        (Tunables(pv_disks_disabled=True), "disk", ENXIO),
        (Tunables(hvm_domain=True), "cdrom", ENXIO),
        (Tunables(hvm_domain=True), "cdrom-ish", ENXIO),
        (Tunables(hvm_domain=True), "disk", 0),
        (Tunables(hvm_domain=True), None, ENXIO),
    ]:
        platform.tunables = tunables
        if device_type is None:
            platform.xenstore.remove(f"{FRONT}/device-type")
        else:
            platform.xenstore.write(f"{FRONT}/device-type", device_type)
        assert probe(dev) == expected


@pytest.mark.parametrize(
    ("virtual_device", "ext", "unit", "result"),
    [
        ("51712", None, 0, 0),
        ("abc", str((1 << 28) | (5 << 8)), 5, 0),
        (None, str((1 << 28) | (300 << 8)), 300, 0),
        (None, None, -1, 2),
        ("abc", "def", -1, ERANGE),
    ],
)
def test_attach_reads_virtual_device_then_ext(
    virtual_device: str | None, ext: str | None, unit: int, result: int
) -> None:
    platform = Platform()
    dev = platform.plug()
    xs = platform.xenstore
    for key, value in (("virtual-device", virtual_device), ("virtual-device-ext", ext)):
        if value is None:
            xs.remove(f"{FRONT}/{key}")
        else:
            xs.write(f"{FRONT}/{key}", value)
    assert attach(dev) == result
    assert dev.unit == unit
    if result:
        assert dev.state == XenbusState.Closing and "reading virtual-device" in dev.errors[0][1]


def test_attach_with_blank_virtual_device_reads_garbage() -> None:
    platform = Platform(vdevice="")
    with pytest.raises(UndefinedBehaviour, match="vdevice"):
        platform.boot()


def test_boot_reports_a_declined_device() -> None:
    with pytest.raises(KernelHang):
        Platform(tunables=Tunables(pv_disks_disabled=True)).boot()


def test_vdevice_to_unit_whole_table() -> None:
    assert len(VDEV_INFO) == 27
    for major, shift, base, name in VDEV_INFO:
        for minor in (0, 1, 17, 64, 255):
            assert vdevice_to_unit((major << 8) | minor) == (base + (minor >> shift), name)
    assert vdevice_to_unit((3 << 8) | 64) == (1, "ada")
    assert vdevice_to_unit((8 << 8) | 16) == (1, "da")
    assert vdevice_to_unit((1 << 28) | (1234 << 8) | 7) == (1234, "xbd")
    # the fallback for unknown majors collides with xvd names
    assert vdevice_to_unit((1 << 8) | 0x10) == vdevice_to_unit((202 << 8) | 0x10) == (1, "xbd")


def test_unit_collision_is_ignored_by_attach() -> None:
    platform = Platform(vdevice=(1 << 8) | 0x10)
    platform.units["xbd"] = {1}
    platform.boot()
    assert any("already in use" in line for line in platform.log)
    assert platform.softc().xbd_state == XbdState.CONNECTED
