"""The reference driver (:mod:`xbdspec.reference`, the port of FreeBSD's seed blkfront)
as a front end of the protocol-level harness (:class:`xbdspec.world.harness.World`).

The driver runs unmodified: only the platform under it changes.  The reference's
simulated :class:`~xbdspec.reference.platform.Platform` is kept for the kernel services
that are FreeBSD's own refinement (bus_dma, the queues, the freeze count, the locks, the
grant reference pool and its free callbacks, the page frames of
:class:`~xbdspec.reference.memory.PhysMem`), and every service the other end can see goes
to the world through :class:`~xbdspec.world.harness.FrontendEnv`:

* xenstore (:class:`WorldXenStore`): every ``xs_read``/``xs_printf``/``xs_scanf``/
  ``xs_gather`` and ``xenbus_set_state`` reads and writes the world's store.  The device's
  node is relative (``device/vbd/768``, FreeBSD's ``xd_node``) and resolves against the
  guest's home directory as xenstored resolves it; the other end's path is the absolute
  one the ``backend`` key names.  The seed uses no transactions.
* the watch on the other end's ``state`` (``xd_otherend_watch``): the world's
  ``otherend_changed`` is ``xenbusb_otherend_watch_cb``, which reads the state
  (``xenbus_read_driver_state``) and calls ``xbd_backend_changed`` with it -- what the
  simulated platform does for its ``FRONT_WATCH`` token.  The first call also adds the
  device (``xenbusb_add_device``: ``xbd_probe``, ``xbd_attach``), the moment FreeBSD's
  bus finds the tool stack's nodes; the watch's initial event is that same call.
* the grant table (:class:`WorldGrantTable`): the reference keeps its own reference
  allocation, private lists and free callbacks; every entry it fills in
  (``gnttab_grant_foreign_access(_ref)``: ring pages, data pages, indirect pages) also
  grants the page frame of the reference's memory in the world, read-only or not as the
  entry says, and every entry it revokes (``gnttab_end_foreign_access_ref``, directly or
  from ``gnttab_end_foreign_access_references``) ends the world's grant -- or fails, as
  FreeBSD's does (``GTF_reading``/``GTF_writing``), while the back end has it mapped.
* the event channel (:class:`WorldEventChannels`): ``xen_intr_signal`` (the seed's
  ``xbd_flush_requests``) is ``FrontendEnv.notify`` on the bound port; the world's
  ``interrupt`` runs the bound handler, ``xbd_int``.
* the block layer: the world's ``submit`` is a ``struct bio`` (:class:`~xbdspec.reference.
  softc.Bio`) given to GEOM's ``g_disk_start`` (``reference/geom.py``), which hands reads,
  writes and the flushes the disk can do to its ``d_strategy`` (``xbd_strategy``), with
  its data in pages of the reference's memory; ``biodone`` is ``FrontendEnv.complete``,
  with a read's data taken from the bio's buffer.

The ring and data pages are the reference's own, granted to the world's back end: the
reference's byte layout (``reference/ring.py``: ``blkif_x86_64_request`` and
``blkif_request_indirect`` field offsets, 64-byte header, 112-byte slots, 16-byte
responses) is the world's (``xbdspec/world/ring.py``) byte for byte.

The reference's own back end (``reference/backend.py``) and ``simulate.py`` are not used:
``Platform`` builds a back end object, which here is a one-sector stand-in nobody calls
(``HYPERVISOR_yield``, the dump path's way to let it run, is refused).

What the harness cannot express is decided here, as GEOM would:

* a bio submitted before the disk exists waits (no provider exists yet; a mount waits for
  its device) and goes down once ``xbd_connect`` has created the disk;
* the disk is opened (``d_open``: ``xbd_open``) before its first bio, as GEOM's access
  does for a consumer (bios flow only on an open provider); after ``disk_gone`` (the back
  end's Closing while the disk is open: the seed's "detaching with pending users") the
  consumer, orphaned, closes it (``d_close``: ``xbd_close``, which then closes the device)
  once its last bio has completed, as ``g_vfs_orphan`` does.  Option ``open`` False sends
  bios without opening the disk (as ``reference/simulate.py`` does): Closing then closes
  the device at once;
* a bio to a disk that was destroyed or is gone fails with ``ENXIO`` (``g_disk_start``)
  without reaching the driver;
* a flush the disk cannot do (the back end offers neither ``feature-flush-cache`` nor
  ``feature-barrier``: no ``DISKFLAG_CANFLUSHCACHE``) fails with ``EOPNOTSUPP`` in
  ``g_disk_start`` without reaching the driver; option ``geom`` False hands every bio to
  ``d_strategy`` directly, where the seed panics on such a flush
  (``flush-without-support-panics``);
* GEOM splits a bio longer than ``d_maxsize``; the harness follows one request per bio,
  so such a bio is refused (:class:`~xbdspec.errors.XbdspecError`): keep the campaign's
  ``max_sectors`` within ``d_maxsize`` (80 sectors without indirect segments).

The guest's shutdown does nothing: the seed's ``device_shutdown`` is
``bus_generic_shutdown``, which leaves xenbus alone (as the conformance adapter's
``REFUSED`` says).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from xbdspec.reference.backend import BackendConfig as SimulatedBackendConfig
from xbdspec.reference.constants import (
    BIO_ERROR,
    BIO_FLUSH,
    BIO_ORDERED,
    BIO_READ,
    BIO_WRITE,
    GREFS_PER_GRANT_FRAME,
    PAGE_SIZE,
)
from xbdspec.reference.evtchn import EventChannels
from xbdspec.reference.faults import KernelHang, UndefinedBehaviour
from xbdspec.reference.geom import g_disk_start
from xbdspec.reference.grants import GrantTable, GTF_permit_access
from xbdspec.reference.lifecycle import attach, backend_changed, probe
from xbdspec.reference.memory import KernelBuffer, PhysMem
from xbdspec.reference.newbus import xenbusb_verify_device
from xbdspec.reference.platform import Fixes, Platform, Tunables
from xbdspec.reference.softc import Bio as KernelBio
from xbdspec.reference.softc import Disk, Softc
from xbdspec.reference.xenbus import XenbusDevice, xenbus_read_driver_state
from xbdspec.reference.xenstore import XenStore

from xbdspec.errors import XbdspecError
from xbdspec.world.harness import Bio, Frontend, FrontendEnv

SECTOR = 512
#: a world bio is split into at most this many pieces (kernel bio ids are bio * this + i)
MAX_PIECES = 1024
#: The options :func:`make` takes, with their defaults.
DEFAULT_OPTIONS: dict[str, Any] = {
    "fixes": None,
    "grant_frames": 4,
    "buffer_offsets": True,
    "invariants": True,
    "open": True,
    "geom": True,
}


def _require(env: FrontendEnv | None) -> FrontendEnv:
    if env is None:
        raise XbdspecError("the reference's platform is not bound to a world")
    return env


@dataclass(slots=True, eq=False)
class WorldXenStore(XenStore):
    """The reference's xenstore calls, on the world's store.

    ``values``, ``watches`` and ``pending`` stay empty: the nodes are the world's, and the
    world delivers the watch (``otherend_changed``).  ``write_errors`` (the reference's
    fault injection) and ``writes`` (its record) keep their meaning.

    Attributes:
        env: the world the driver runs in.
        home: the guest's home directory (``/local/domain/<domid>/``), against which a
            relative path resolves.
    """

    env: FrontendEnv | None = None
    home: str = "/"

    def resolve(self, path: str) -> str:
        """The absolute path of ``path`` (xenstored resolves a relative one in the
        caller's home)."""
        return path if path.startswith("/") else self.home + path

    def read(self, path: str) -> str | None:
        """``xs_read``: the world's value, or ``None``."""
        return _require(self.env).read(self.resolve(path))

    def write(self, path: str, value: str) -> int:
        """``xs_write`` outside a transaction: one commit in the world; an errno."""
        error = self.write_errors.pop(path, 0)
        if error:
            return error
        _require(self.env).write(self.resolve(path), value)
        self.writes.append((path, value))
        return 0

    def remove(self, path: str) -> None:
        """``xs_rm``."""
        _require(self.env).remove(self.resolve(path))

    def exists(self, path: str) -> bool:
        """``xs_exists``: a node at ``path`` or below it, in the world's store."""
        return _require(self.env).exists(self.resolve(path))


@dataclass(slots=True, eq=False)
class WorldGrantTable(GrantTable):
    """FreeBSD's grant table (the reference's pool, lists and callbacks) whose entries
    are the world's grants.

    Attributes:
        env: the world the driver runs in.
        mem: the reference's memory, where a granted frame's bytes are.
    """

    env: FrontendEnv | None = None
    mem: PhysMem | None = None

    def gnttab_grant_foreign_access_ref(
        self, ref: int, domid: int, frame: int, readonly: int
    ) -> None:
        """Fill in entry ``ref`` and grant the frame's page in the world."""
        GrantTable.gnttab_grant_foreign_access_ref(self, ref, domid, frame, readonly)
        backing = self.mem.frame(frame) if self.mem is not None else None
        if backing is None:
            raise UndefinedBehaviour(
                "gnttab_grant_foreign_access_ref", f"frame {frame:#x} is no page of guest memory"
            )
        block, offset = backing
        page = memoryview(block)[offset : offset + PAGE_SIZE]
        _require(self.env).grant_ref(ref, page, bool(readonly))

    def gnttab_end_foreign_access_ref(self, ref: int) -> int:
        """Revoke entry ``ref``: 1 and the world's grant ended, or 0 while the back end
        maps it (``GTF_reading``/``GTF_writing``: FreeBSD's "g.e. still in use")."""
        self._check(ref, "gnttab_end_foreign_access_ref")
        env = _require(self.env)
        granted = bool(self.flags[ref] & GTF_permit_access)
        if granted and env.grant_mapped(ref):
            return 0
        ended = GrantTable.gnttab_end_foreign_access_ref(self, ref)
        if ended and granted:
            env.end_grant(ref)
        return ended


@dataclass(slots=True, eq=False)
class WorldEventChannels(EventChannels):
    """The front end's event channel, with the world at the other end.

    Attributes:
        env: the world the driver runs in.
    """

    env: FrontendEnv | None = None

    def signal_backend(self) -> None:
        """``xen_intr_signal``: notify the back end on the bound port."""
        EventChannels.signal_backend(self)
        _require(self.env).notify(self.port)

    def interrupt(self) -> bool:
        """The back end's notification arrives: run the bound handler (``xbd_int``);
        False if nothing is bound."""
        self.notify_frontend()
        return self.deliver()


def _home_and_node(front: str) -> tuple[str, str]:
    """``/local/domain/5/device/vbd/768`` -> (``/local/domain/5/``, ``device/vbd/768``)."""
    at = front.find("/device/")
    if at < 0:
        return "/", front
    return front[: at + 1], front[at + 1 :]


class WorldPlatform(Platform):
    """The reference's platform with the world in place of its simulated hypervisor,
    tool stack and back end (see the module docstring).

    Attributes:
        env: the world the driver runs in.
        on_biodone: called after every ``biodone`` (the block layer above).
        channel: the event channel (``evtchn``), typed as the world's.
    """

    def __init__(
        self,
        env: FrontendEnv,
        on_biodone: Callable[[KernelBio], None],
        *,
        fixes: Fixes | None = None,
        tunables: Tunables | None = None,
        grant_frames: int = 4,
    ) -> None:
        Platform.__init__(
            self,
            tunables=tunables,
            fixes=fixes,
            backend_config=SimulatedBackendConfig(sectors=1),
            grant_frames=grant_frames,
        )
        self.env = env
        self.on_biodone = on_biodone
        home, node = _home_and_node(env.front)
        self.front_path = node
        self.back_path = env.back
        self.xenstore = WorldXenStore(env=env, home=home)
        self.gnttab = WorldGrantTable(grant_frames * GREFS_PER_GRANT_FRAME, env=env, mem=self.mem)
        self.evtchn = self.channel = WorldEventChannels(env=env)

    def biodone(self, bp: KernelBio) -> None:
        """``biodone``: recorded as the platform does, then handed up."""
        Platform.biodone(self, bp)
        self.on_biodone(bp)

    def hypervisor_yield(self) -> None:
        """``HYPERVISOR_yield`` (the dump path's poll): the world's back end runs only
        when the harness says, so a poll would spin."""
        raise KernelHang(
            "HYPERVISOR_yield", "the world's back end runs only at the harness's events"
        )

    def plug(self) -> XenbusDevice:
        """The simulated tool stack: the world's plays that part."""
        raise XbdspecError("in the world, the harness's tool stack creates the device")


class ReferenceFrontend:
    """The reference driver, unmodified, as a :class:`~xbdspec.world.harness.Frontend`.

    Attributes:
        env: the world.
        platform: the reference's platform, bound to the world.
        dev: the xenbus device once added (after the first ``otherend_changed``).
        held: bios waiting for the disk to exist.
        opened: the disk the block layer holds open (``d_open`` called, no ``d_close``).
        outstanding: bios handed to ``d_strategy`` and not yet done.
        geom: whether bios go through GEOM's ``g_disk_start`` (``reference/geom.py``) or
            straight to ``d_strategy``.
        buffer_offsets: whether a bio's data starts inside its first page (at
            ``bio.id % 8`` sectors), as GEOM's unmapped bios may.
    """

    def __init__(
        self,
        env: FrontendEnv,
        fixes: Fixes | None = None,
        *,
        grant_frames: int = 4,
        buffer_offsets: bool = True,
        invariants: bool = True,
        open_disk: bool = True,
        geom: bool = True,
    ) -> None:
        self.env = env
        self.platform = WorldPlatform(
            env,
            self._biodone,
            fixes=fixes,
            tunables=Tunables(mutex_recursion_fatal=invariants),
            grant_frames=grant_frames,
        )
        self.dev: XenbusDevice | None = None
        self.held: list[Bio] = []
        self.buffer_offsets = buffer_offsets
        self.open_disk = open_disk
        self.geom = geom
        self.opened: Disk | None = None
        self.outstanding = 0
        self._bios: dict[int, Bio] = {}
        #: a split bio's pieces: kernel bio id -> (the world's bio id, byte offset)
        self._pieces: dict[int, tuple[int, int]] = {}
        #: a split bio: world bio id -> [pieces left, all ok, offset -> data read]
        self._split: dict[int, list[Any]] = {}

    # ---- what the tests look at
    @property
    def softc(self) -> Softc | None:
        """The driver instance (``None`` before the device is added)."""
        return self.dev.softc if self.dev is not None else None

    @property
    def state(self) -> int | None:
        """The front end's cached xenbus state (``xd_state``)."""
        return int(self.dev.state) if self.dev is not None else None

    @property
    def log(self) -> list[str]:
        """What the kernel printed."""
        return self.platform.log

    # ---- the bus
    def _add_device(self) -> XenbusDevice | None:
        """``xenbusb_add_device``: the device once the tool stack's nodes name its other
        end (``backend``, ``backend-id``), probed and attached."""
        if self.dev is not None:
            return self.dev
        env = self.env
        otherend = env.read(f"{env.front}/backend")
        otherend_id = env.read(f"{env.front}/backend-id")
        if otherend is None or otherend_id is None or not otherend_id.isdigit():
            return None
        platform = self.platform
        dev = XenbusDevice(platform, platform.front_path, otherend, int(otherend_id))
        dev.softc = Softc(platform)
        platform.dev = dev
        platform.back_path = otherend
        if probe(dev) != 0:
            raise XbdspecError("xbd_probe declined the device; log: " + "; ".join(platform.log))
        if attach(dev) != 0:
            raise XbdspecError("xbd_attach failed; log: " + "; ".join(platform.log))
        self.dev = dev
        return dev

    def otherend_changed(self) -> None:
        """``xenbusb_otherend_watch_cb``: read the back end's state and call
        ``xbd_backend_changed`` with it (adding the device first, once)."""
        if self.dev is None and self.platform.freed_softcs:
            return  # the device was deleted: its watch went with it
        dev = self._add_device()
        if dev is None:
            return
        backend_changed(dev, xenbus_read_driver_state(dev, dev.otherend_path))
        self._block_layer()

    def removed(self) -> None:
        """The tool stack removed the device's directory: ``xenbusb_verify_device``
        finds the node gone and ``xenbusb_delete_child`` deletes the child
        (``DEVICE_DETACH``: ``xbd_detach``; newbus frees the softc).  GEOM keeps the
        disk unless the driver destroyed it (``detach-leaves-disk``)."""
        dev = self.dev
        if dev is None:
            return
        if xenbusb_verify_device(dev):
            self.dev = None
        self._block_layer()

    def interrupt(self) -> None:
        """The event channel fires: ``xbd_int``, the bound handler."""
        self.platform.channel.interrupt()
        self._block_layer()

    def shutdown(self) -> None:
        """The guest shuts down: the seed's ``device_shutdown`` is
        ``bus_generic_shutdown``, which does nothing to the device."""

    # ---- the block layer
    def _live_disk(self) -> Disk | None:
        """GEOM's provider: the last disk the driver created (``disk_create``), while
        it is neither destroyed nor gone -- whether or not the softc behind it still
        exists (GEOM knows only the disk and its ``d_drv1``)."""
        disk = self.platform.disks[-1] if self.platform.disks else None
        if disk is None or not disk.created or disk.destroyed or disk.gone:
            return None
        return disk

    def submit(self, bio: Bio) -> None:
        """The block layer's bio: through ``g_disk_start`` to the disk's ``d_strategy``
        (``xbd_strategy``), held until the disk exists, failed once it is gone."""
        self._bios[bio.id] = bio
        disk = self._live_disk()
        if disk is not None:
            self._strategy(bio, disk)
        elif self.platform.disks:
            self.env.complete(bio.id, False)  # g_disk_start: the disk is gone, ENXIO
        else:
            self.held.append(bio)
        self._block_layer()

    def _block_layer(self) -> None:
        """What GEOM does between the driver's calls: send the bios that waited for the
        disk; close a gone disk once its last bio is done (the orphaned consumer)."""
        disk = self._live_disk()
        while disk is not None and self.held:
            self._strategy(self.held.pop(0), disk)
            disk = self._live_disk()
        opened = self.opened
        if opened is not None and opened.gone and self.outstanding == 0:
            self.opened = None
            if opened.d_close is None:
                raise UndefinedBehaviour("g_disk_access", "the disk has no d_close")
            opened.d_close(opened)

    def _strategy(self, bio: Bio, disk: Disk) -> None:
        if disk.d_strategy is None or disk.d_open is None:
            raise UndefinedBehaviour("g_disk_start", "the disk has no d_strategy or d_open")
        if self.open_disk and self.opened is not disk:
            error = disk.d_open(disk)  # g_disk_access: the consumer's first access
            if error:
                raise XbdspecError(f"d_open failed with {error}")
            self.opened = disk
        if bio.op == "flush":
            bp = KernelBio(BIO_FLUSH, bio_disk=disk, bio_id=bio.id)
        elif bio.op in ("read", "write", "fua"):
            # a FUA write is FreeBSD's BIO_ORDERED write (ordered, and durable when done);
            # a bio longer than d_maxsize is split by GEOM (g_disk_start) into pieces of
            # at most d_maxsize, each its own bio to d_strategy
            total = bio.sectors * SECTOR
            step = max(SECTOR, disk.d_maxsize - disk.d_maxsize % SECTOR)
            pieces = [(off, min(step, total - off)) for off in range(0, total, step)]
            self._split[bio.id] = [len(pieces), True, {}]
            for index, (off, nbytes) in enumerate(pieces):
                offset = (bio.id % (PAGE_SIZE // SECTOR)) * SECTOR if self.buffer_offsets else 0
                buffer = self.platform.mem.alloc(nbytes, offset)
                if bio.op in ("write", "fua"):
                    chunk = bio.data[off : off + nbytes]
                    buffer.view()[:] = chunk.ljust(nbytes, b"\0")
                cmd = BIO_READ if bio.op == "read" else BIO_WRITE
                flags = BIO_ORDERED if bio.op == "fua" else 0
                key = bio.id * MAX_PIECES + index
                self._pieces[key] = (bio.id, off)
                bp = KernelBio(
                    cmd,
                    bio.sector + off // SECTOR,
                    nbytes,
                    flags,
                    buffer,
                    bio_disk=disk,
                    bio_id=key,
                )
                self._start(bp, disk)
            return
        else:
            raise XbdspecError(f"bio {bio.id}: no operation {bio.op!r}")
        self._start(bp, disk)

    def _start(self, bp: KernelBio, disk: Disk) -> None:
        self.outstanding += 1
        if self.geom:
            g_disk_start(bp)
        elif disk.d_strategy is not None:
            disk.d_strategy(bp)
        else:
            raise UndefinedBehaviour("d_strategy", "the disk has no d_strategy")

    def _biodone(self, bp: KernelBio) -> None:
        """``biodone``: the completion to the world (a read with its buffer's data); a
        split bio completes once its last piece is done (``g_std_done``), with an error
        if any piece had one."""
        piece = self._pieces.pop(bp.bio_id, None)
        bio = self._bios.get(piece[0] if piece is not None else bp.bio_id)
        if bio is None:
            raise XbdspecError(f"biodone of bio {bp.bio_id}, which the block layer never sent")
        if bp.done_count == 1:
            self.outstanding -= 1
        ok = bp.bio_error == 0 and not bp.bio_flags & BIO_ERROR
        buffer: KernelBuffer | None = bp.bio_data
        data = buffer.read() if ok and bio.op == "read" and buffer is not None else b""
        if buffer is not None:
            self.platform.mem.free(buffer)
        if piece is None:
            self.env.complete(bio.id, ok, data)
            return
        state = self._split[bio.id]
        state[0] -= 1
        state[1] = state[1] and ok
        state[2][piece[1]] = data
        if state[0] == 0:
            del self._split[bio.id]
            whole = b"".join(state[2][k] for k in sorted(state[2])) if state[1] else b""
            self.env.complete(bio.id, bool(state[1]), whole)


def _fixes(value: Any) -> Fixes:
    """The ``fixes`` option: ``None``/``"none"`` (the seed), ``"all"`` (the
    reference-fixed profile), a :class:`Fixes`, or finding names."""
    if value is None or value == "none":
        return Fixes()
    if value == "all":
        return Fixes.all()
    if isinstance(value, Fixes):
        return value
    if isinstance(value, str):
        return Fixes.only(*(name for name in value.split(",") if name))
    if isinstance(value, Iterable):
        return Fixes.only(*value)
    raise ValueError(f"fixes: {value!r} is none of 'all', 'none', a Fixes or finding names")


def make(options: Mapping[str, Any] | None = None) -> ReferenceMaker:
    """A ``make_frontend`` of the reference driver for the harness (a
    ``Callable[[FrontendEnv], Frontend]``, with the ``options`` it was made with).

    Options (:data:`DEFAULT_OPTIONS`):

    * ``fixes``: ``"all"`` runs :meth:`Fixes.all` (the ``reference-fixed`` profile); a
      :class:`Fixes`, or finding names (a list, or comma-separated), runs those; the
      default is the seed's behaviour;
    * ``grant_frames``: the grant table's size in frames of 512 entries (4);
    * ``buffer_offsets``: bios' data starts inside its first page (True) or at its start;
    * ``invariants``: an ``INVARIANTS`` kernel, which stops on a mutex recursion (True);
    * ``geom``: bios go through ``g_disk_start`` (True), which fails a flush the disk
      cannot do (no ``DISKFLAG_CANFLUSHCACHE``) with ``EOPNOTSUPP`` itself, or straight to
      ``d_strategy`` (where the seed panics on such a flush: ``flush-without-support-panics``);
    * ``open``: the block layer opens the disk before its first bio and closes it once
      the disk is gone and idle (True), or sends bios to a disk nobody opened.

    Raises:
        ValueError: an unknown option or fix.
    """
    opts = dict(DEFAULT_OPTIONS)
    for key, value in (options or {}).items():
        if key not in DEFAULT_OPTIONS:
            raise ValueError(f"no option {key!r}; options: {', '.join(DEFAULT_OPTIONS)}")
        opts[key] = value
    return ReferenceMaker(opts)


class ReferenceMaker:
    """The ``make_frontend`` :func:`make` returns: called with a world's
    :class:`FrontendEnv`, a :class:`ReferenceFrontend`.

    Attributes:
        options: every option it was made with, defaults included, ``fixes`` as
            ``None``, ``"all"`` or the finding names (a campaign's findings record them).
    """

    def __init__(self, options: Mapping[str, Any]) -> None:
        self._fixes = _fixes(options["fixes"])
        enabled = self._fixes.enabled()
        named: Any = None if not enabled else "all" if self._fixes == Fixes.all() else enabled
        self.options = {**options, "fixes": named}

    def __call__(self, env: FrontendEnv) -> Frontend:
        o = self.options
        return ReferenceFrontend(
            env,
            self._fixes,
            grant_frames=int(o["grant_frames"]),
            buffer_offsets=bool(o["buffer_offsets"]),
            invariants=bool(o["invariants"]),
            open_disk=bool(o["open"]),
            geom=bool(o["geom"]),
        )
