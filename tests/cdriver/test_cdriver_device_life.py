"""The compiled seed beyond one attach: the same events as the reference scenarios of
``xbdspec.findings.device_life`` (a suspend rolled back, a back end gone, a forced
removal, a read-only disk), with the seed's own C showing each finding."""

from __future__ import annotations

from xbdspec.reference import BackendConfig

from xbdspec.cdriver import BuildResult, CPlatform

BIO_READ, BIO_WRITE = 1, 2
XBD_STATE_DISCONNECTED, XBD_STATE_CONNECTED = 0, 1
XENBUS_CONNECTED, XENBUS_CLOSED = 4, 6
DISKFLAG_WRITE_PROTECT = 0x0100  # sys/disk.h
VDISK_READONLY = 0x4
FRONT = "device/vbd/51712"


def booted(built: BuildResult, **kwargs: object) -> CPlatform:
    p = CPlatform(built, **kwargs)  # type: ignore[arg-type]
    p.boot()
    return p


def test_a_rolled_back_suspend_leaves_the_seed_disconnected(seed_build: BuildResult) -> None:
    """``suspend-rollback-frees-ring``: ``xbd_suspend`` succeeds (nothing busy), then the
    bus's rollback calls ``xbd_resume`` with ``xen_suspend_cancelled`` 0 and the device's
    xenbus state still Connected: the seed frees the ring and never reconnects."""
    p = booted(seed_build)
    assert p.suspend() == 0
    assert p.resume() == 0
    sc = p.softc()
    assert sc["xbd_state"] == XBD_STATE_DISCONNECTED and sc["has_shadow"] == 0
    # xbd_initialize returned at once: the front end still says Connected to its back end
    assert p.xenstore.values[f"{FRONT}/state"] == str(XENBUS_CONNECTED)
    bio = p.strategy(BIO_READ, 0)
    assert p.backend_fetch() == 0  # nothing reaches the ring the back end still maps
    assert p.softc()["q_bio"] == 1 and p.bio(bio).done_count == 0


def test_the_seed_ignores_a_back_end_gone_to_closed(seed_build: BuildResult) -> None:
    """``backend-closed-ignored``: the back end's node disappears (read as Closed) with a
    read in flight and the disk open; ``xbd_backend_changed(Closed)`` does nothing."""
    p = booted(seed_build)
    assert p.open() == 0
    bio = p.strategy(BIO_READ, 0)
    assert p.backend_fetch() == 1
    for key in [k for k in p.xenstore.values if k.startswith(p.back_path)]:
        del p.xenstore.values[key]
    p.backend_changed(XENBUS_CLOSED)
    sc = p.softc()
    assert sc["xbd_state"] == XBD_STATE_CONNECTED and sc["q_busy"] == 1
    assert sc["has_disk"] == 1 and sc["disk_gone"] == 0 and sc["disk_destroyed"] == 0
    assert p.bio(bio).done_count == 0
    assert p.close() == 0  # the last close: the other end reads Closed, not Closing
    assert p.xenstore.values[f"{FRONT}/state"] == str(XENBUS_CONNECTED)


def test_the_seeds_detach_leaves_the_disk_and_its_bios(seed_build: BuildResult) -> None:
    """``detach-leaves-disk``: ``xbd_detach`` with the disk open and a read in flight:
    the disk stays (neither destroyed nor gone) and the read never completes."""
    p = booted(seed_build)
    assert p.open() == 0
    bio = p.strategy(BIO_READ, 0)
    assert p.backend_fetch() == 1
    assert p.detach() == 0
    sc = p.softc()
    assert sc["has_shadow"] == 0 and sc["has_disk"] == 1
    assert sc["disk_destroyed"] == 0 and sc["disk_gone"] == 0
    assert p.bio(bio).done_count == 0


def test_the_seed_publishes_a_read_only_disk_writable(seed_build: BuildResult) -> None:
    """``read-only-disk-writable``: ``info`` = ``VDISK_READONLY`` is read by
    ``xbd_connect`` and ignored: no ``DISKFLAG_WRITE_PROTECT``, and a write goes to the
    back end."""
    p = booted(seed_build, backend_config=BackendConfig(info=VDISK_READONLY))
    assert p.xenstore.values[f"{p.back_path}/info"] == str(VDISK_READONLY)
    assert p.softc()["d_flags"] & DISKFLAG_WRITE_PROTECT == 0
    p.strategy(BIO_WRITE, 0, data=b"\x5a" * 4096)
    assert p.backend_fetch() == 1
    assert [r.operation for r in p.pending()] == [1]  # BLKIF_OP_WRITE reaches the back end
