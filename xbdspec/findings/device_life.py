"""Reference-level replays of the findings on the device's life beyond one attach: a bus
suspend rolled back (``bus_generic_suspend``), a back end that goes to Closed directly or
whose node disappears, the tool stack's forced removal (``xenbusb_delete_child``), and the
``info`` bits (a read-only disk).

The layers above the driver (newbus, GEOM) are :mod:`xbdspec.reference.newbus` and
:mod:`xbdspec.reference.geom`, which cite the FreeBSD 14 code they follow.
"""

from __future__ import annotations

from xbdspec.reference import BackendConfig, BackendProfile, Bio, Platform, SuspendSleep, strategy
from xbdspec.reference.constants import (
    BIO_READ,
    BIO_WRITE,
    EBUSY,
    EROFS,
    VDISK_READONLY,
    XBD_Q_BUSY,
    XbdState,
    XenbusState,
)
from xbdspec.reference.geom import g_disk_access, g_disk_start
from xbdspec.reference.lifecycle import suspend_continue
from xbdspec.reference.newbus import bus_generic_suspend, xenbusb_verify_device
from xbdspec.reference.xenbus import XenbusDevice

from .scenario import Run, scenario


def _bio(platform: Platform, cmd: int, sector: int) -> Bio:
    """A one-page bio on the booted disk."""
    sc = platform.softc()
    return Bio(cmd, sector, 4096, 0, platform.mem.alloc(4096, 0), bio_disk=sc.xbd_disk)


def _serve(platform: Platform) -> None:
    """The back end answers everything published; the interrupt runs."""
    platform.backend.fetch()
    platform.backend.respond_all()
    platform.deliver_interrupt()


@scenario("suspend-rollback-frees-ring")
def suspend_rollback_frees_ring(run: Run) -> None:
    """Two disks on one xenbus; the guest suspends; ``bus_generic_suspend`` suspends the
    last child first, the first one's ``xbd_suspend`` times out (EBUSY), and the bus
    rolls the suspend back by calling ``xbd_resume`` on the one it had suspended, with no
    hypervisor suspend in between: that disk must carry on with its ring."""
    first, second = run.platform(devid=51712), run.platform(devid=51728, vdevice=51728)
    run.step("xbd0 and xbd1 connect (the bus's children, in that order)")
    dev0, dev1 = first.boot(), second.boot()
    run.step("bio 0 (read) to xbd0 is sent; its back end does not answer")
    strategy(_bio(first, BIO_READ, 0))
    first.backend.fetch()

    def sleeping(dev: XenbusDevice, sleeper: object) -> int:
        """xbd0's suspend sleeps on its busy request: the 30 s time-out expires."""
        if not isinstance(sleeper, SuspendSleep):
            raise TypeError(f"DEVICE_SUSPEND returned {sleeper!r}")
        result = suspend_continue(dev, sleeper, timed_out=True)
        return result if isinstance(result, int) else 0

    run.step("xctrl_suspend: bus_generic_suspend suspends xbd1 (idle: 0), then xbd0")
    run.step("xbd0's xbd_suspend sleeps on its busy request; 30 s pass: EBUSY")
    run.step("the bus rolls back: xbd_resume(xbd1), xen_suspend_cancelled = 0 (no suspend ran)")
    error = bus_generic_suspend([dev0, dev1], sleeping)
    run.expect(error == EBUSY, "the suspend fails with xbd0's EBUSY")
    sc1 = second.softc()
    run.expect(
        sc1.xbd_ring.sring is not None or second.backend.ring is None,
        "xbd1's ring is not freed while its back end still has it mapped (Connected)",
    )
    run.step("bio 1 (read) to xbd1; its back end answers what it is given; interrupt")
    read = _bio(second, BIO_READ, 8)
    strategy(read)
    _serve(second)
    run.expect(
        read.done_count == 1 and read.bio_error == 0,
        "xbd1 serves I/O after the rolled-back suspend "
        f"(state {sc1.xbd_state.name}, {len(sc1.xbd_bioq)} bios queued)",
    )
    run.step("xbd0's back end answers bio 0; interrupt")
    _serve(first)
    run.expect(first.softc().xbd_state == XbdState.CONNECTED, "xbd0 is connected again")


@scenario("backend-closed-ignored")
def backend_closed_ignored(run: Run) -> None:
    """The disk is open and has a read in flight; the back end's node disappears (a
    back end torn down, or gone straight to Closed): the front end must give the device
    up and fail what it holds, since nothing will answer it."""
    platform = run.platform()
    run.step("the disk connects; a user opens it (g_disk_access: d_open)")
    dev = platform.boot()
    disk = platform.softc().xbd_disk
    if disk is None:
        run.expect(False, "the disk exists after connecting")
        return
    g_disk_access(disk, 1, 0, 0)
    run.step("bio 0 (read) is sent; the back end takes it")
    read = _bio(platform, BIO_READ, 0)
    strategy(read)
    platform.backend.fetch()
    run.step("the back end's directory is removed (its state watch fires)")
    platform.toolstack_remove(front=False, back=True)
    run.step("xenbus reads the back end's state: Closed (xbd_backend_changed(Closed))")
    platform.settle()
    run.expect(
        read.done_count == 1 and read.bio_error != 0,
        "the read the Closed back end will never answer completes with an error",
    )
    run.expect(disk.gone or disk.destroyed, "the disk is gone once its back end is Closed")
    run.step("the user closes the disk (g_disk_access: d_close)")
    g_disk_access(disk, -1, 0, 0)
    run.expect(
        dev.state == XenbusState.Closed,
        f"the front end is Closed after the last close (it is {XenbusState(dev.state).name})",
    )


@scenario("detach-leaves-disk")
def detach_leaves_disk(run: Run) -> None:
    """The tool stack removes the device by force (both directories, no Closing) while
    the disk is open with a read in flight; xenbusb deletes the child (``xbd_detach``):
    the read must complete and GEOM must not reach the freed softc afterwards."""
    platform = run.platform()
    run.step("the disk connects; a user opens it (g_disk_access: d_open)")
    platform.boot()
    sc = platform.softc()
    disk = sc.xbd_disk
    if disk is None:
        run.expect(False, "the disk exists after connecting")
        return
    g_disk_access(disk, 1, 0, 0)
    run.step("bio 0 (read) is sent; the back end takes it")
    read = _bio(platform, BIO_READ, 0)
    strategy(read)
    platform.backend.fetch()
    run.expect(sc.xbd_cm_q[XBD_Q_BUSY].q_length == 1, "bio 0 is in flight")
    run.step("xl block-detach --force: the back end's and the front end's nodes go")
    dev = platform.dev
    platform.toolstack_remove(front=True, back=True)
    run.step("xenbusb_verify_device: the front node is gone, xenbusb_delete_child")
    deleted = dev is not None and xenbusb_verify_device(dev)
    run.expect(deleted, "xbd_detach succeeds and newbus frees the softc")
    run.expect(
        read.done_count == 1 and read.bio_error != 0,
        "the read in flight at detach completes with an error",
    )
    run.expect(disk.destroyed, "the detached device's disk is destroyed")
    run.step("the user reads again, then closes the disk")
    again = Bio(BIO_READ, 8, 4096, 0, platform.mem.alloc(4096, 0), bio_disk=disk)
    g_disk_start(again)
    g_disk_access(disk, -1, 0, 0)
    run.expect(again.done_count == 1 and again.bio_error != 0, "the new read fails (ENXIO)")


@scenario("read-only-disk-writable")
def read_only_disk_writable(run: Run) -> None:
    """A back end advertising ``info`` = ``VDISK_READONLY`` (Linux's blkback refuses
    every write to it): the disk must be write-protected, so that a write open fails
    with EROFS instead of every write failing with EIO at the back end."""
    platform = run.platform(
        backend_config=BackendConfig(info=VDISK_READONLY, profile=BackendProfile.LINUX_BLKBACK)
    )
    run.step("the disk connects to a back end whose info is VDISK_READONLY")
    platform.boot()
    disk = platform.softc().xbd_disk
    if disk is None:
        run.expect(False, "the disk exists after connecting")
        return
    run.step("a file system opens the disk for writing (g_disk_access(pp, 1, 1, 0))")
    error = g_disk_access(disk, 1, 1, 0)
    run.expect(error == EROFS, f"the write open of a read-only disk fails with EROFS ({error})")
    if error == 0:
        run.step("bio 0 (write) is sent; the back end refuses it; interrupt")
        write = _bio(platform, BIO_WRITE, 0)
        g_disk_start(write)
        _serve(platform)
        run.step(
            f"the write completes with error {write.bio_error} "
            f"(the back end: {'; '.join(platform.backend.refused) or 'nothing refused'})"
        )


__all__ = [
    "backend_closed_ignored",
    "detach_leaves_disk",
    "read_only_disk_writable",
    "suspend_rollback_frees_ring",
]
