"""Reference-level replays of the negotiation findings: what the back end advertises, how
the front end names and sizes the disk, and what it allocates to talk to it.

Each scenario is the finding's minimal counterexample on the simulated platform: the
hostile or failing input, the boot (or the resume) that meets it, and, where the fix lets
the disk connect, one I/O to show it works.  With the seed's behaviour (``Fixes()``) the
run ends in a driver fault or an unmet requirement; with the finding's own fix it is
clean.  Where the fix refuses a value, the requirement is the protocol's answer to a bad
back end: an error through xenbus (``error/<node>/error``), the front end ``Closing``,
and no disk published.
"""

from __future__ import annotations

from xbdspec.reference import BackendConfig, Bio, Platform, XbdState, XenbusState, strategy
from xbdspec.reference.constants import BIO_READ, BIO_WRITE, EEXIST, EINVAL, ENOMEM, PAGE_SIZE
from xbdspec.reference.lifecycle import attach, probe, suspend
from xbdspec.reference.xenbus import XenbusDevice

from .scenario import Run, scenario

# ------------------------------------------------------------------------------ helpers


def _serve(platform: Platform) -> None:
    """The back end answers every published request; the interrupt is delivered."""
    platform.backend.fetch()
    platform.backend.respond_all()
    platform.deliver_interrupt()


def _submit(platform: Platform, cmd: int, sector: int, nbytes: int, fill: int = 0) -> Bio:
    """``xbd_strategy`` of a fresh bio with a page-aligned buffer (filled for a write)."""
    disk = platform.softc().xbd_disk
    buffer = platform.mem.alloc(nbytes)
    if cmd == BIO_WRITE:
        buffer.view()[:] = bytes([fill]) * nbytes
    bio = Bio(cmd, sector, nbytes, 0, buffer, bio_disk=disk)
    strategy(bio)
    return bio


def _completed(bio: Bio) -> bool:
    """Completed once, without error."""
    return bio.done_count == 1 and bio.bio_error == 0


def _write_then_read(run: Run, platform: Platform, nbytes: int = PAGE_SIZE) -> None:
    """One write at sector 0, served, then a read of it, served; both must succeed."""
    run.step(f"the file system writes {nbytes} bytes at sector 0 and reads them back")
    write = _submit(platform, BIO_WRITE, 0, nbytes, fill=0x5A)
    _serve(platform)
    read = _submit(platform, BIO_READ, 0, nbytes)
    _serve(platform)
    data = read.bio_data.read() if read.bio_data is not None else b""
    run.expect(
        _completed(write) and _completed(read) and data == b"\x5a" * nbytes,
        "the connected disk writes data and reads the same data back",
    )


def _refused(run: Run, platform: Platform, errno: int, what: str) -> None:
    """The front end reported ``errno`` through xenbus, left Connected alone, and
    published no disk."""
    dev = platform.dev
    reported = dev is not None and any(err == errno for err, _ in dev.errors)
    closing = dev is not None and dev.state in (XenbusState.Closing, XenbusState.Closed)
    run.expect(
        reported and closing and not platform.disks,
        f"{what} is refused: the front end reports error {errno} through xenbus, goes to "
        "Closing and publishes no disk",
    )


def _plug_and_attach(platform: Platform) -> XenbusDevice | None:
    """The tool stack plugs the device and newbus probes and attaches it; on success the
    handshake runs to its end (``Platform.boot`` without its fault on a failed attach)."""
    dev = platform.plug()
    if probe(dev) != 0 or attach(dev) != 0:
        return None
    platform.register_watches()
    platform.backend.start()
    platform.settle()
    return dev


# ---------------------------------------------------- found by the proofs (arithmetic)


@scenario("ring-page-order-shift")
def ring_page_order_shift(run: Run) -> None:
    """``max-ring-page-order = 31`` (the proof's smallest counterexample): the seed
    evaluates ``1 << 31`` in ``int`` before any clamp."""
    platform = run.platform(backend_config=BackendConfig(max_ring_page_order=31))
    run.step("the back end writes max-ring-page-order = 31, then goes to InitWait")
    run.step("the front end negotiates its ring (xbd_initialize) and connects")
    platform.boot()
    sc = platform.softc()
    pages = sc.xbd_ring_pages
    run.expect(
        1 <= pages <= 32 and pages & (pages - 1) == 0 and sc.xbd_state == XbdState.CONNECTED,
        "the ring is a power of two of at most 32 pages and the disk connects",
    )
    _write_then_read(run, platform)


@scenario("sector-size-division-by-zero")
def sector_size_division_by_zero(run: Run) -> None:
    """``sector-size = 1048577``: ``1048576 / sector_size`` is 0 and the capacity message
    divides by it."""
    platform = run.platform(backend_config=BackendConfig(sector_size=1048577))
    run.step("the back end writes sector-size = 1048577 (more than 1 MiB), then Connected")
    run.step("the front end reads the disk's properties (xbd_connect)")
    platform.boot()
    _refused(run, platform, EINVAL, "a sector-size above 1 MiB")


@scenario("sector-size-unchecked")
def sector_size_unchecked(run: Run) -> None:
    """``sector-size = 1``: blkif.h allows only powers of two of at least 512; the seed
    rejects only 0 and publishes a disk of 1-byte sectors."""
    platform = run.platform(backend_config=BackendConfig(sector_size=1))
    run.step("the back end writes sector-size = 1, then Connected")
    run.step("the front end reads the disk's properties (xbd_connect)")
    platform.boot()
    _refused(run, platform, EINVAL, "sector-size = 1 (blkif.h: a power of two, at least 512)")


@scenario("media-size-overflow")
def media_size_overflow(run: Run) -> None:
    """``sectors = 2**63``, ``sector-size = 1`` (the proof's counterexample): the byte size
    ``sectors * sector_size`` does not fit in ``off_t``; the seed publishes it negative."""
    sectors = 1 << 63
    platform = run.platform(
        backend_config=BackendConfig(overrides={"sectors": str(sectors), "sector-size": "1"})
    )
    run.step(f"the back end writes sectors = {sectors} and sector-size = 1, then Connected")
    run.step("the front end reads the disk's properties and creates the disk (xbd_connect)")
    platform.boot()
    for disk in platform.disks:
        run.expect(
            disk.d_mediasize >= 0,
            f"a published disk's d_mediasize is its true size in bytes, not {disk.d_mediasize}",
        )
    _refused(run, platform, EINVAL, "a disk whose size in bytes does not fit in off_t")


@scenario("indirect-pages-before-clamp")
def indirect_pages_before_clamp(run: Run) -> None:
    """``feature-max-indirect-segments = 1``: the limit is raised to the 11 direct segments,
    but the page count was computed from 1 first, so every command gets an indirection
    page (allocated and granted to the back end) that no request can use."""
    platform = run.platform(backend_config=BackendConfig(max_indirect_segments=1))
    run.step("the back end writes feature-max-indirect-segments = 1")
    run.step("the front end connects and builds its commands (xbd_connect)")
    platform.boot()
    sc = platform.softc()
    holding = [cm for cm in sc.xbd_shadow or [] if cm.cm_indirectionpages is not None]
    run.expect(
        sc.xbd_max_request_segments == 11 and not holding,
        "with an 11-segment limit (direct requests only) no command holds an indirection "
        f"page or its grant ({len(holding)} do)",
    )
    _write_then_read(run, platform)


@scenario("vdevice-name-collision")
def vdevice_name_collision(run: Run) -> None:
    """``virtual-device = 0`` against xvda (``51712``), the proof's pair: both are named
    ``xbd0`` by ``xbd_vdevice_to_unit``, and ``xbd_attach`` ignores ``device_set_unit``'s
    ``EEXIST``."""
    platform = run.platform(vdevice=0)
    run.step("a disk with virtual-device 51712 (xvda) is attached as xbd0")
    platform.units["xbd"] = {0}
    run.step("the tool stack plugs a second disk with virtual-device = 0; xbd_attach runs")
    dev = _plug_and_attach(platform)
    named_xbd0 = [d for d in platform.disks if (d.d_name, d.d_unit) == ("xbd", 0)]
    run.expect(
        not named_xbd0,
        "no second disk is published under the name xbd0, which is already in use",
    )
    if dev is None:
        _refused(run, platform, EEXIST, "a virtual-device whose name is taken")


@scenario("media-size-in-sector-units")
def media_size_in_sector_units(run: Run) -> None:
    """``sector-size = 4096``, ``sectors = 16384``: blkif.h gives ``sectors`` in 512-byte
    units, so the disk holds 8 MiB; the seed reports 64 MiB."""
    config = BackendConfig(sectors=16384, sector_size=4096)
    platform = run.platform(backend_config=config)
    run.step("the back end writes sectors = 16384 (512-byte units) and sector-size = 4096")
    run.step("the front end creates the disk (xbd_connect, xbd_instance_create)")
    platform.boot()
    disk = platform.softc().xbd_disk
    size = config.sectors * 512
    run.expect(
        disk is not None and disk.d_mediasize == size,
        f"the disk's d_mediasize is sectors * 512 = {size} bytes (blkif.h), "
        f"not {disk.d_mediasize if disk is not None else None}",
    )


# --------------------------------------------- found with hostile or failing inputs


@scenario("blank-xenstore-value-uninitialised")
def blank_xenstore_value_uninitialised(run: Run) -> None:
    """``sectors`` blank: ``sscanf`` returns ``EOF``, which ``xs_gather`` takes for
    success without assigning, and ``xbd_connect`` reads the uninitialised local."""
    platform = run.platform(backend_config=BackendConfig(overrides={"sectors": ""}))
    run.step('the back end writes sectors = "" (blank), then Connected')
    run.step("the front end reads the disk's properties (xbd_connect)")
    platform.boot()
    _refused(run, platform, EINVAL, "a blank sectors value")


@scenario("ring-grant-references-leak")
def ring_grant_references_leak(run: Run) -> None:
    """One suspend and resume: ``xbd_free_ring`` ends the ring's grant but never returns
    the reference, so each resume loses ``xbd_ring_pages`` of them for good."""
    platform = run.platform()
    run.step("the disk boots (its ring holds one grant reference)")
    dev = platform.boot()
    free_before = platform.gnttab.free_count
    run.step("the guest suspends (xbd_suspend) and resumes on a fresh back end (xbd_resume)")
    suspend(dev)
    platform.backend.reset()
    platform.resume_device()
    run.step("the back end publishes its features again and the front end reconnects")
    platform.backend.start()
    platform.settle()
    free_after = platform.gnttab.free_count
    run.expect(
        free_after == free_before,
        "after a resume the front end holds no more grant references than before "
        f"(free references: {free_before} before, {free_after} after)",
    )
    _write_then_read(run, platform)


@scenario("indirect-pages-partial-allocation")
def indirect_pages_partial_allocation(run: Run) -> None:
    """``contigmalloc`` fails for the first command's indirection page: the seed zeroes
    the page count but keeps the 256-segment limit, so a request of more than 11
    segments is built through a NULL page."""
    platform = run.platform(backend_config=BackendConfig(max_indirect_segments=256))
    run.step("the back end writes feature-max-indirect-segments = 256")
    platform.malloc_failures["contigmalloc"] = 0
    run.step("the front end connects; allocating the first indirection page fails")
    platform.boot()
    disk = platform.softc().xbd_disk
    nbytes = disk.d_maxsize if disk is not None else 0
    run.step("the file system reads d_maxsize bytes (the disk's largest I/O) at sector 0")
    read = _submit(platform, BIO_READ, 0, nbytes)
    _serve(platform)
    run.expect(_completed(read), "a read of the disk's largest size completes without error")


@scenario("no-commands-after-shadow-failure")
def no_commands_after_shadow_failure(run: Run) -> None:
    """The first command's segment array cannot be allocated: the seed connects with no
    command at all, and the first bio waits for a free command for ever."""
    platform = run.platform()
    platform.malloc_failures["sg_refs"] = 0
    run.step("the front end connects; allocating the first command's segment array fails")
    platform.boot()
    if platform.disks:
        run.step("the file system reads 4096 bytes at sector 0; the back end serves all")
        read = _submit(platform, BIO_READ, 0, PAGE_SIZE)
        _serve(platform)
        run.expect(_completed(read), "a read submitted to the connected disk completes")
    else:
        _refused(run, platform, ENOMEM, "a connection without a single command")


__all__ = [
    "blank_xenstore_value_uninitialised",
    "indirect_pages_before_clamp",
    "indirect_pages_partial_allocation",
    "media_size_in_sector_units",
    "media_size_overflow",
    "no_commands_after_shadow_failure",
    "ring_grant_references_leak",
    "ring_page_order_shift",
    "sector_size_division_by_zero",
    "sector_size_unchecked",
    "vdevice_name_collision",
]
