"""The device's life beyond one attach, on the reference: newbus's suspend of several
devices and its rollback, xenbusb's deletion of a removed child, GEOM's access to a disk
(``d_open``/``d_close``, ``DISKFLAG_WRITE_PROTECT``), a back end that goes to Closed
directly or disappears, the ``info`` bits, and a resume onto a back end with another
geometry.  Every interleaving is the test's."""

from __future__ import annotations

from xbdspec.reference import BackendConfig, BackendProfile, Bio, Fixes, Platform, strategy
from xbdspec.reference.constants import (
    BIO_READ,
    BIO_WRITE,
    EIO,
    ENXIO,
    EROFS,
    VDISK_CDROM,
    VDISK_READONLY,
    VDISK_REMOVABLE,
    XbdState,
    XenbusState,
)
from xbdspec.reference.geom import g_disk_access, g_disk_start
from xbdspec.reference.lifecycle import suspend
from xbdspec.reference.newbus import bus_generic_suspend, xenbusb_verify_device
from xbdspec.reference.xenbus import XenbusDevice


def _bio(platform: Platform, cmd: int, sector: int, nbytes: int = 4096) -> Bio:
    sc = platform.softc()
    return Bio(cmd, sector, nbytes, 0, platform.mem.alloc(nbytes, 0), bio_disk=sc.xbd_disk)


def _serve(platform: Platform) -> None:
    platform.backend.fetch()
    platform.backend.respond_all()
    platform.deliver_interrupt()


def _never_sleeps(dev: XenbusDevice, sleeper: object) -> int:
    raise AssertionError(f"{dev.node}: DEVICE_SUSPEND slept ({sleeper!r})")


# ------------------------------------------------------------------ newbus


def test_bus_generic_suspend_goes_last_first_and_resumes_only_the_suspended() -> None:
    """FreeBSD 14's order: children suspended from the last; on a failure, those after
    the failing one (already suspended) are resumed, the ones before it never touched."""
    platforms = [Platform(devid=d, vdevice=d) for d in (51712, 51728, 51744)]
    devs = [p.boot() for p in platforms]
    strategy(_bio(platforms[1], BIO_READ, 0))  # xbd1 busy: its suspend will time out
    platforms[1].backend.fetch()
    order: list[str] = []

    def timed_out(dev: XenbusDevice, sleeper: object) -> int:
        from xbdspec.reference.lifecycle import SuspendSleep, suspend_continue

        order.append(dev.node)
        assert isinstance(sleeper, SuspendSleep)
        result = suspend_continue(dev, sleeper, timed_out=True)
        assert isinstance(result, int)
        return result

    assert bus_generic_suspend(devs, timed_out) != 0
    assert order == [devs[1].node]
    states = [p.softc().xbd_state for p in platforms]
    # xbd0 was never suspended; xbd1 restored its state; xbd2 was rolled back by
    # xbd_resume with no hypervisor suspend: the seed disconnects it for good
    assert states == [XbdState.CONNECTED, XbdState.CONNECTED, XbdState.DISCONNECTED]
    assert [d.df_suspended for d in devs] == [False, False, False]


def test_a_rolled_back_suspend_keeps_the_ring_with_its_fix() -> None:
    fixes = Fixes.only("suspend-rollback-frees-ring")
    first, second = Platform(fixes=fixes), Platform(fixes=fixes, devid=51728, vdevice=51728)
    dev0, dev1 = first.boot(), second.boot()
    strategy(_bio(first, BIO_READ, 0))
    first.backend.fetch()

    def timed_out(dev: XenbusDevice, sleeper: object) -> int:
        from xbdspec.reference.lifecycle import SuspendSleep, suspend_continue

        assert isinstance(sleeper, SuspendSleep)
        result = suspend_continue(dev, sleeper, timed_out=True)
        assert isinstance(result, int)
        return result

    assert bus_generic_suspend([dev0, dev1], timed_out) != 0
    ring = second.softc().xbd_ring.sring
    assert ring is not None and second.backend.ring is not None
    read = _bio(second, BIO_READ, 0)
    strategy(read)
    _serve(second)
    assert read.done_count == 1 and read.bio_error == 0


def test_a_real_resume_still_rebuilds_the_ring_with_the_rollback_fix() -> None:
    """The fix tells a rollback from a resume by the xenbus state xenbusb_resume resets:
    after a real suspend the seed's rebuild runs as before."""
    platform = Platform(fixes=Fixes.only("suspend-rollback-frees-ring"))
    dev = platform.boot()
    old_ring = platform.softc().xbd_ring.sring
    assert suspend(dev) == 0
    platform.backend.reset(BackendConfig())
    platform.resume_device()
    platform.backend.start()
    platform.settle()
    sc = platform.softc()
    assert sc.xbd_state == XbdState.CONNECTED and sc.xbd_ring.sring is not old_ring


def test_a_child_whose_node_exists_is_not_deleted() -> None:
    platform = Platform()
    dev = platform.boot()
    assert not xenbusb_verify_device(dev)
    assert platform.dev is dev and dev.softc is not None


def test_removing_a_directory_fires_the_watches_below_it() -> None:
    platform = Platform()
    platform.boot()
    assert platform.xenstore.pending == []
    platform.toolstack_remove(front=False, back=True)
    assert platform.xenstore.pending == ["frontend:otherend-state"]
    assert not platform.xenstore.exists(platform.back_path)


# ------------------------------------------------------------------ GEOM and d_close


def test_geom_opens_once_per_provider_and_closes_on_the_last_access() -> None:
    """``g_disk_access`` calls ``d_open`` on the first access and ``d_close`` on the last:
    two consumers open the disk once (``xbd_users`` 1)."""
    platform = Platform()
    platform.boot()
    sc = platform.softc()
    disk = sc.xbd_disk
    assert disk is not None
    assert g_disk_access(disk, 1, 0, 0) == 0 and g_disk_access(disk, 1, 1, 0) == 0
    assert sc.xbd_users == 1
    assert g_disk_access(disk, -1, 0, 0) == 0 and sc.xbd_users == 1
    assert g_disk_access(disk, -1, -1, 0) == 0 and sc.xbd_users == 0


def test_closing_with_the_disk_open_closes_the_device_at_the_last_close() -> None:
    """The back end's Closing while a user has the disk open: ``disk_gone`` (new bios
    fail with ENXIO in GEOM); the user's last close (``d_close``: ``xbd_close``) sees the
    other end Closing and closes the device.  The seed handles this path."""
    platform = Platform()
    dev = platform.boot()
    disk = platform.softc().xbd_disk
    assert disk is not None and g_disk_access(disk, 1, 0, 0) == 0
    platform.backend.unplug()
    platform.settle()
    assert disk.gone and not disk.destroyed and dev.state == XenbusState.Connected
    late = _bio(platform, BIO_READ, 0)
    assert not g_disk_start(late) and late.bio_error == ENXIO
    assert g_disk_access(disk, -1, 0, 0) == 0
    assert (disk.destroyed, dev.state) == (True, XenbusState.Closed)


def test_a_destroyed_disk_allows_only_decreasing_access_without_d_close() -> None:
    platform = Platform(fixes=Fixes.only("detach-leaves-disk"))
    platform.boot()
    disk = platform.softc().xbd_disk
    assert disk is not None and g_disk_access(disk, 1, 0, 0) == 0
    dev = platform.dev
    assert dev is not None
    platform.toolstack_remove()
    assert xenbusb_verify_device(dev)
    assert disk.destroyed
    assert g_disk_access(disk, 1, 0, 0) == ENXIO
    assert g_disk_access(disk, -1, 0, 0) == 0  # no d_close on the freed softc


# ------------------------------------------------------------------ a back end Closed


def test_a_back_end_gone_straight_to_closed_is_ignored_by_the_seed() -> None:
    """The back end leaves Connected for Closed without Closing (xenbus.h allows any
    state to go to Closed): the seed's ``xbd_backend_changed`` ignores it."""
    platform = Platform()
    dev = platform.boot()
    read = _bio(platform, BIO_READ, 0)
    strategy(read)
    platform.backend.fetch()
    platform.backend.set_state(XenbusState.Closed)
    platform.settle()
    sc = platform.softc()
    assert dev.state == XenbusState.Connected and sc.xbd_disk is not None
    assert read.done_count == 0


def test_a_back_end_gone_straight_to_closed_closes_the_device_with_the_fix() -> None:
    platform = Platform(fixes=Fixes.only("backend-closed-ignored"))
    dev = platform.boot()
    disk = platform.softc().xbd_disk
    read = _bio(platform, BIO_READ, 0)
    strategy(read)
    platform.backend.fetch()
    busy = [cm for cm in platform.softc().xbd_shadow or [] if cm.cm_bp is read]
    data_refs = [ref for cm in busy for ref in (cm.cm_sg_refs or [])[: cm.cm_nseg]]
    assert data_refs
    platform.backend.set_state(XenbusState.Closed)
    platform.settle()
    assert read.done_count == 1 and read.bio_error == ENXIO
    assert dev.state == XenbusState.Closed and disk is not None and disk.destroyed
    assert all(platform.gnttab.flags[ref] == 0 for ref in data_refs)  # its grants ended


# ------------------------------------------------------------------ info bits


def test_writes_to_a_read_only_back_end_fail_with_eio_on_the_seed() -> None:
    """The seed ignores VDISK_READONLY: the disk opens for writing and the write reaches
    a strict back end, which refuses it (blkback's "write to a read-only disk")."""
    platform = Platform(
        backend_config=BackendConfig(info=VDISK_READONLY, profile=BackendProfile.LINUX_BLKBACK)
    )
    platform.boot()
    disk = platform.softc().xbd_disk
    assert disk is not None and g_disk_access(disk, 1, 1, 0) == 0
    write = _bio(platform, BIO_WRITE, 0)
    assert g_disk_start(write)
    _serve(platform)
    assert write.done_count == 1 and write.bio_error == EIO
    assert platform.backend.refused == ["write to a read-only disk"]


def test_a_read_only_disk_is_write_protected_with_the_fix() -> None:
    platform = Platform(
        fixes=Fixes.only("read-only-disk-writable"),
        backend_config=BackendConfig(info=VDISK_READONLY),
    )
    platform.boot()
    disk = platform.softc().xbd_disk
    assert disk is not None
    assert g_disk_access(disk, 1, 1, 0) == EROFS
    assert g_disk_access(disk, 1, 0, 0) == 0  # reading is fine
    read = _bio(platform, BIO_READ, 0)
    assert g_disk_start(read)
    _serve(platform)
    assert read.done_count == 1 and read.bio_error == 0


def test_cdrom_and_removable_bits_change_nothing() -> None:
    """Rejected candidate ``info-cdrom-removable-ignored``: the same disk, flags and all."""
    plain, other = (
        Platform(),
        Platform(backend_config=BackendConfig(info=VDISK_CDROM | VDISK_REMOVABLE)),
    )
    plain.boot()
    other.boot()
    a, b = plain.softc().xbd_disk, other.softc().xbd_disk
    assert a is not None and b is not None
    assert (a.d_flags, a.d_name, a.d_mediasize) == (b.d_flags, b.d_name, b.d_mediasize)


# ------------------------------------------------------------------ resume, other geometry


def _resume_onto(platform: Platform, config: BackendConfig) -> None:
    dev = platform.dev
    assert dev is not None and suspend(dev) == 0
    platform.backend.reset(config)
    platform.backend.disk = bytearray(config.sectors * 512)
    platform.resume_device()
    platform.backend.start()
    platform.settle()


def test_resume_onto_a_smaller_disk_keeps_the_old_size() -> None:
    """Rejected candidate ``resume-keeps-disk-geometry``: after a resume onto a back end
    with half the sectors the disk keeps its size; a read past the new end reaches the
    strict back end, which refuses it (EIO), rather than being served."""
    platform = Platform(backend_config=BackendConfig(profile=BackendProfile.LINUX_BLKBACK))
    platform.boot()
    _resume_onto(platform, BackendConfig(sectors=8192, profile=BackendProfile.LINUX_BLKBACK))
    sc = platform.softc()
    assert sc.xbd_state == XbdState.CONNECTED
    disk = sc.xbd_disk
    assert disk is not None and disk.d_mediasize == 16384 * 512
    past = _bio(platform, BIO_READ, 12000)
    strategy(past)
    _serve(platform)
    assert past.bio_error == EIO
    assert platform.backend.refused == ["access beyond the disk: [12000, 12008)"]


def test_resume_onto_another_sector_size_keeps_the_old_one() -> None:
    """After a resume onto a back end with sector-size 4096 the disk keeps 512: GEOM's
    512-byte I/O is misaligned for the new device and a strict back end refuses it."""
    strict = BackendProfile.LINUX_BLKBACK
    platform = Platform(backend_config=BackendConfig(profile=strict))
    platform.boot()
    _resume_onto(platform, BackendConfig(sector_size=4096, profile=strict))
    disk = platform.softc().xbd_disk
    assert disk is not None and disk.d_sectorsize == 512
    small = _bio(platform, BIO_READ, 1, nbytes=512)
    strategy(small)
    _serve(platform)
    assert small.bio_error == EIO and platform.backend.refused == ["misaligned I/O request"]
