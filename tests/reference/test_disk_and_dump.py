"""Disk entry points (open, close, ioctl, strategy) and the dump path (dump, quiesce)."""

from __future__ import annotations

import pytest
from reference_helpers import boot, make_bio, serve, submit
from xbdspec.reference import (
    KernelHang,
    Platform,
    XenbusState,
    YieldPolicy,
    close,
    dump,
    ioctl,
    open_,
    quiesce,
    strategy,
)
from xbdspec.reference.constants import (
    BIO_ERROR,
    BIO_READ,
    BLKIF_RSP_ERROR,
    EBUSY,
    EINVAL,
    EIO,
    ENOTTY,
    ENXIO,
    XBD_Q_BUSY,
    XBD_Q_COMPLETE,
    XBD_Q_FREE,
    XBDF_OPEN,
)
from xbdspec.reference.softc import Bio, Disk


def test_open_and_close_count_users() -> None:
    platform = boot()
    sc = platform.softc()
    disk = sc.xbd_disk
    assert disk is not None
    assert open_(disk) == 0 and open_(disk) == 0
    assert sc.xbd_users == 2 and sc.xbd_flags & XBDF_OPEN
    assert close(disk) == 0
    # seed defect: OPEN is cleared although a user remains
    assert sc.xbd_users == 1 and not sc.xbd_flags & XBDF_OPEN
    assert close(disk) == 0 and sc.xbd_users == 0


def test_last_close_honours_a_pending_closing() -> None:
    platform = boot()
    sc = platform.softc()
    disk = sc.xbd_disk
    assert disk is not None and platform.dev is not None
    open_(disk)
    platform.backend.unplug()
    platform.settle()
    assert disk.gone and platform.dev.state == XenbusState.Connected
    close(disk)
    assert disk.destroyed and sc.xbd_disk is None
    platform.settle()
    assert platform.dev.state == XenbusState.Closed
    assert platform.backend.state == XenbusState.Closed


def test_entry_points_on_a_bogus_disk() -> None:
    platform = Platform()
    bogus = Disk(0x1000, platform, d_unit=7)
    assert open_(bogus) == ENXIO and "xbd7: not found" in platform.log
    assert close(bogus) == ENXIO
    assert ioctl(bogus) == ENXIO
    bio = Bio(BIO_READ, 0, 512, bio_disk=bogus)
    strategy(bio)
    assert bio.bio_error == EINVAL and bio.bio_flags & BIO_ERROR and bio.bio_resid == 512
    assert bio.done_count == 1


def test_ioctl_is_not_supported() -> None:
    platform = boot()
    assert platform.softc().xbd_disk is not None
    assert ioctl(platform.softc().xbd_disk) == ENOTTY  # type: ignore[arg-type]


def test_dump_writes_through_polling() -> None:
    platform = boot()
    sc = platform.softc()
    disk = sc.xbd_disk
    assert disk is not None
    nbytes = 3 * sc.xbd_max_request_size + 4096  # split into 4 commands
    buffer = platform.mem.alloc(nbytes)
    buffer.view()[:] = bytes(range(256)) * (nbytes // 256)
    assert dump(disk, buffer, 1024 * 512, nbytes) == 0
    assert platform.backend.disk[1024 * 512 : 1024 * 512 + nbytes] == buffer.read()
    assert sc.xbd_cm_q[XBD_Q_FREE].q_length == sc.xbd_max_requests
    assert sc.xbd_cm_q[XBD_Q_COMPLETE].q_length == 0
    assert platform.yields >= 1


def test_dump_of_nothing_does_nothing() -> None:
    platform = boot()
    disk = platform.softc().xbd_disk
    assert disk is not None
    assert dump(disk, platform.mem.alloc(512), 0, 0) == 0 and platform.yields == 0


def test_dump_with_a_silent_back_end_polls_forever() -> None:
    platform = boot()
    disk = platform.softc().xbd_disk
    assert disk is not None
    platform.yield_policy = YieldPolicy.NOTHING
    with pytest.raises(KernelHang, match="HYPERVISOR_yield"):
        dump(disk, platform.mem.alloc(4096), 0, 4096)


def test_dump_reports_failed_writes() -> None:
    platform = boot()
    disk = platform.softc().xbd_disk
    assert disk is not None
    platform.yield_policy = YieldPolicy.NOTHING
    original = platform.hypervisor_yield

    def answer_with_error() -> None:
        platform.backend.fetch()
        for request in list(platform.backend.pending):
            platform.backend.respond(request, BLKIF_RSP_ERROR)
        original()

    platform.hypervisor_yield = answer_with_error  # type: ignore[method-assign]
    assert dump(disk, platform.mem.alloc(4096), 0, 4096) == EIO
    assert any("Dump I/O failed at sector 0" in line for line in platform.log)


def test_dump_without_free_commands_is_ebusy() -> None:
    platform = boot()
    sc = platform.softc()
    disk = sc.xbd_disk
    assert disk is not None
    sc.xbd_cm_q[XBD_Q_FREE].q_tailq.clear()
    assert dump(disk, platform.mem.alloc(4096), 0, 4096) == EBUSY


def test_quiesce_drains_busy_requests() -> None:
    platform = boot()
    sc = platform.softc()
    bios = [submit(platform, make_bio(platform, BIO_READ, 8 * i, 4096)) for i in range(3)]
    assert sc.xbd_cm_q[XBD_Q_BUSY].q_length == 3
    quiesce(sc)
    assert sc.xbd_cm_q[XBD_Q_BUSY].q_length == 0
    assert all(b.done_count == 1 for b in bios)
    serve(platform)
