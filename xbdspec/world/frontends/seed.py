"""The seed's ``blkfront.c``, compiled unmodified against the kernel shim
(:mod:`xbdspec.cdriver`), as a front end of the protocol-level harness
(:class:`xbdspec.world.harness.World`).

The shim keeps what is FreeBSD's own refinement (bus_dma and its loads, the command
queues and freezes, the locks, the grant reference pool with its private lists and free
callbacks, ``malloc``), and every service the other end can see goes to the world through
:class:`~xbdspec.world.harness.FrontendEnv`, by the shim's world hooks
(``xbd_h_set_world``, :class:`~xbdspec.cdriver.binding.WorldHooks`) and its xenstore
callbacks:

* xenstore: every ``xs_read``/``xs_printf``/``xs_scanf``/``xs_gather`` and
  ``xenbus_set_state`` reads and writes the world's store.  The device's node is relative
  (``device/vbd/768``, FreeBSD's ``xd_node``) and resolves against the guest's home
  directory as xenstored resolves it (``xenbus_dev_fatal``'s ``error/device/vbd/768``
  too); the other end's path is the absolute one the ``backend`` key names.  The seed
  uses no transactions.
* the watch on the other end's ``state``: the world's ``otherend_changed`` is
  ``xenbusb_otherend_watch_cb``, which reads the state (``xenbus_read_driver_state``:
  Closed when missing or unreadable) and calls ``xbd_backend_changed`` with it.  The
  first call also adds the device (``xenbusb_add_device``: ``xbd_probe``, ``xbd_attach``),
  the moment FreeBSD's bus finds the tool stack's nodes.
* page memory: every allocation of whole pages by the driver (``malloc`` of a multiple
  of the page size, ``contigmalloc``: the ring, the indirect pages) and every bio's
  buffer is a page-aligned slice of a ``bytearray`` of this adapter's (the seed computes
  frames with ``vtophys(va) >> PAGE_SHIFT``, so the pages must be aligned, which
  ``FrontendEnv.alloc_page``'s are not; the shadow array, not whole pages, is the shim's
  own, fenced: an index past it faults and is named).  A granted page is handed to the world as a
  ``memoryview`` of that memory: the back end reads the requests and the data as the
  seed wrote them, and writes a read's data where the seed reads it.  Memory the seed
  frees stays alive as long as the world still holds a grant of it.
* the grant table: each entry the shim fills in (``gnttab_grant_foreign_access(_ref)``:
  ring, data and indirect pages) grants that page in the world, read-only or not as the
  entry says; each entry revoked (``gnttab_end_foreign_access_ref``, directly or from
  ``gnttab_end_foreign_access_references``) ends the world's grant -- or fails, as
  FreeBSD's does (``GTF_reading``/``GTF_writing``), while the back end maps it.
* the event channel: ``xen_intr_signal`` (``xbd_flush_requests``) is
  ``FrontendEnv.notify`` on the bound port; the world's ``interrupt`` runs the bound
  handler, ``xbd_int``.
* the block layer: the world's ``submit`` is a ``struct bio`` handed to the disk's
  ``d_strategy`` (``xbd_strategy``) as ``g_disk_start`` hands it; ``biodone`` is
  ``FrontendEnv.complete``, a read's data taken from the bio's buffer.

What the harness cannot express is decided here, as GEOM would (the same choices as the
reference's front end, :mod:`xbdspec.world.frontends.reference`):

* a bio submitted before the disk exists waits and goes to ``d_strategy`` once
  ``xbd_connect`` has created the disk;
* a bio to a disk that was destroyed or is gone fails with ``ENXIO`` without reaching
  the driver;
* GEOM splits a bio longer than ``d_maxsize``; the harness follows one request per bio,
  so such a bio is refused (:class:`~xbdspec.errors.XbdspecError`): keep the campaign's
  ``max_sectors`` within ``d_maxsize`` (80 sectors without indirect segments);
* with ``open_disk``, GEOM opens the disk when it appears (a mounted file system:
  ``xbd_open``), and closes it (``xbd_close``) when the driver says it is gone
  (``disk_gone``), as an orphaned provider's consumers do.

The guest's shutdown runs the seed's ``device_shutdown``, ``bus_generic_shutdown``, which
leaves the device alone.  A ``panic``, ``KASSERT`` failure, mutex recursion (with
``invariants``), detected undefined behaviour (a division by zero, a segmentation fault
or bus error inside the driver) or hang in the driver comes back as
:class:`~xbdspec.cdriver.CDriverFault`.

One driver runs at a time per process: the shim's globals are one driver instance, so a
new :class:`SeedFrontend` resets the library (its own copy, not shared with
:class:`~xbdspec.cdriver.CPlatform`) and the previous one is dead.

``xbdspec difftest --impl seed --examples 1000`` runs a campaign.
"""

from __future__ import annotations

import ctypes
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xbdspec.cdriver.binding import (
    _LOG,
    _MSLEEP,
    _XS_READ,
    _XS_WRITE,
    _YIELD,
    BIODONE,
    END_GRANT,
    EWOULDBLOCK,
    FAULT_KINDS,
    GRANT,
    NOTIFY,
    PAGES_ALLOC,
    PAGES_FREE,
    SOFTC_FIELDS,
    CDriverFault,
    WorldHooks,
    load_private,
)
from xbdspec.cdriver.build import build
from xbdspec.errors import XbdspecError
from xbdspec.world.harness import Bio, Frontend, FrontendEnv
from xbdspec.world.xenstore import XenstoreError

PAGE_SIZE = 4096
SECTOR = 512
EIO = 5
BIO_READ, BIO_WRITE, BIO_FLUSH = 1, 2, 5
#: struct bio's bio_flags (sys/bio.h): an ordered write
BIO_ORDERED = 0x08
BIO_ERROR = 0x01
DISKFLAG_CANFLUSHCACHE = 0x8
XENBUS_CLOSED = 6
#: The options :func:`make` takes, with their defaults.
DEFAULT_OPTIONS: dict[str, Any] = {
    "grant_frames": 4,
    "buffer_offsets": True,
    "invariants": True,
    "open_disk": False,
    "enable_indirect": True,
    "maxphys": 1024 * 1024,
    "source": None,
}


def _home_and_node(front: str) -> tuple[str, str]:
    """``/local/domain/5/device/vbd/768`` -> (``/local/domain/5/``, ``device/vbd/768``)."""
    at = front.find("/device/")
    if at < 0:
        return "/", front
    return front[: at + 1], front[at + 1 :]


@dataclass
class _Block:
    """Page-aligned memory lent to the C side: ``view`` is the aligned part of ``buffer``
    (``handle`` is the ctypes export that pins it)."""

    buffer: bytearray
    handle: Any
    view: memoryview


#: the live front end of each library copy (the shim is one driver instance)
_OWNER: dict[int, SeedFrontend] = {}


class SeedFrontend:
    """The compiled seed as a :class:`~xbdspec.world.harness.Frontend` (see the module
    docstring for what goes where).

    Attributes:
        env: the world.
        log: what the kernel printed (``printf``, ``device_printf``, the shim's notes).
        library: the shared library the driver was built into.
        held: bios waiting for the disk to exist.
    """

    def __init__(
        self,
        env: FrontendEnv,
        *,
        grant_frames: int = 4,
        buffer_offsets: bool = True,
        invariants: bool = True,
        open_disk: bool = False,
        enable_indirect: bool = True,
        maxphys: int = 1024 * 1024,
        source: str | Path | None = None,
    ) -> None:
        self.env = env
        self.log: list[str] = []
        self.held: list[Bio] = []
        self.buffer_offsets = buffer_offsets
        self.open_disk = open_disk
        built = build(source)
        self.library = built.library
        self._lib = load_private(built.library)
        self._home, self._node = _home_and_node(env.front)
        self._error: BaseException | None = None
        self._blocks: dict[int, _Block] = {}
        self._pages: dict[int, memoryview] = {}
        #: shim bio id -> the world's bio
        self._bios: dict[int, Bio] = {}
        #: a kernel bio's piece of the world's bio: shim id -> (byte offset, length)
        self._pieces: dict[int, tuple[int, int]] = {}
        #: a world bio in pieces: bio id -> [pieces left, all ok, offset -> data read]
        self._split: dict[int, list[Any]] = {}
        self._added = False
        self._otherend_id = 0
        self._disk_seen = False
        self._opened = False
        self._faulted = False
        lib = self._lib
        previous = _OWNER.get(id(lib))
        if previous is not None:
            previous._retire()
        _OWNER[id(lib)] = self
        lib.xbd_h_reset(grant_frames * 512)
        self._keep_callbacks = (
            _XS_READ(self._guard(self._xs_read, -1)),
            _XS_WRITE(self._guard(self._xs_write, EIO)),
            _LOG(self._guard(self._log, None)),
            _MSLEEP(self._guard(lambda: EWOULDBLOCK, EWOULDBLOCK)),
            _YIELD(self._guard(lambda: None, None)),
        )
        lib.xbd_h_set_callbacks(*self._keep_callbacks)
        lib.xbd_h_set_tunables(0, 0, int(invariants), maxphys, 10_000, 0)
        lib.xbd_h_tunable_enable_indirect()[0] = int(enable_indirect)
        self._hooks = WorldHooks(
            PAGES_ALLOC(self._guard(self._pages_alloc, None)),
            PAGES_FREE(self._guard(self._pages_free, 0)),
            GRANT(self._guard(self._grant, None)),
            END_GRANT(self._guard(self._end_grant, 1)),
            NOTIFY(self._guard(self._notify, None)),
            BIODONE(self._guard(self._biodone, None)),
        )
        lib.xbd_h_set_world(ctypes.byref(self._hooks))

    # ---- calling into C
    def _guard(self, fn: Callable[..., Any], default: Any) -> Callable[..., Any]:
        """``fn`` as a C callback: an exception is kept (the first one) and raised again
        once the C call returns; C gets ``default``."""

        def wrapped(*args: Any) -> Any:
            try:
                return fn(*args)
            except Exception as exc:
                if self._error is None:
                    self._error = exc
                return default

        return wrapped

    def _retire(self) -> None:
        """Before the library is reset for the next front end: run ``device_detach`` with
        the world cut off (no grant, xenstore or block-layer call reaches it), so that
        ``xbd_free`` returns the ring, the shadow, its maps and the indirect pages
        instead of leaking them (a campaign runs thousands of front ends).  Skipped after
        a driver fault: the softc may be half-updated."""
        if not self._added or self._faulted:
            return
        retired = WorldHooks(
            PAGES_ALLOC(lambda size: None),
            PAGES_FREE(self._guard(self._pages_free, 0)),
            GRANT(lambda ref, domid, address, readonly: None),
            END_GRANT(lambda ref: 1),
            NOTIFY(lambda port: None),
            BIODONE(lambda bio: None),
        )
        quiet = (
            _XS_READ(lambda path, buf, buflen: -1),
            _XS_WRITE(lambda path, value: 0),
            _LOG(lambda line: None),
            _MSLEEP(lambda: EWOULDBLOCK),
            _YIELD(lambda: None),
        )
        lib = self._lib
        self._hooks, self._keep_callbacks = retired, quiet  # alive while C may call them
        lib.xbd_h_set_world(ctypes.byref(retired))
        lib.xbd_h_set_callbacks(*quiet)
        lib.xbd_h_detach()
        lib.xbd_h_set_world(None)
        self._added = False

    def _live(self) -> ctypes.CDLL:
        if _OWNER.get(id(self._lib)) is not self:
            raise XbdspecError("this SeedFrontend was replaced by a newer one in this process")
        return self._lib

    def _call(self, where: str, fn: Callable[[], int]) -> int:
        """Run an entry point; raise a callback's exception, then a driver fault."""
        self._live()
        self._error = None
        kind = int(fn())
        error, self._error = self._error, None
        if error is not None:
            raise error
        if kind > 0:
            self._faulted = True
            message = (self._lib.xbd_h_fault_message() or b"").decode(errors="replace")
            raise CDriverFault(FAULT_KINDS.get(kind, f"fault{kind}"), message, where)
        return kind

    # ---- xenstore
    def _path(self, raw: bytes) -> str:
        path = raw.decode()
        return path if path.startswith("/") else self._home + path

    def _xs_read(self, path: bytes, buf: int, buflen: int) -> int:
        value = self.env.read(self._path(path))
        if value is None:
            return -1
        data = value.encode()[: buflen - 1]
        ctypes.memmove(buf, data, len(data))
        return len(data)

    def _xs_write(self, path: bytes, value: bytes) -> int:
        try:
            self.env.write(self._path(path), value.decode())
        except XenstoreError:
            return EIO
        return 0

    def _log(self, line: bytes) -> None:
        self.log.append(line.decode(errors="replace").rstrip("\n"))

    # ---- page memory and grants
    def _pages_alloc(self, size: int) -> int | None:
        buffer = bytearray(size + PAGE_SIZE)
        handle = (ctypes.c_char * len(buffer)).from_buffer(buffer)
        base = ctypes.addressof(handle)
        offset = -base % PAGE_SIZE
        view = memoryview(buffer)[offset : offset + size]
        address = base + offset
        self._blocks[address] = _Block(buffer, handle, view)
        for start in range(0, size - PAGE_SIZE + 1, PAGE_SIZE):
            self._pages[address + start] = view[start : start + PAGE_SIZE]
        return address

    def _pages_free(self, address: int) -> int:
        block = self._blocks.pop(address, None)
        if block is None:
            return 0
        for start in range(0, len(block.view) - PAGE_SIZE + 1, PAGE_SIZE):
            self._pages.pop(address + start, None)
        return 1

    def _grant(self, ref: int, domid: int, address: int, readonly: int) -> None:
        page = self._pages.get(address or 0)
        if page is None:
            raise CDriverFault(
                "UndefinedBehaviour",
                f"frame {(address or 0) >> 12:#x} is no page of guest memory",
                "gnttab_grant_foreign_access_ref",
            )
        if domid != self._otherend_id:
            raise XbdspecError(
                f"the seed grants reference {ref} to domain {domid}, not to its back end's "
                f"domain {self._otherend_id}"
            )
        self.env.grant_ref(ref, page, bool(readonly))

    def _end_grant(self, ref: int) -> int:
        if self.env.grant_mapped(ref):
            return 0
        self.env.end_grant(ref)
        return 1

    def _notify(self, port: int) -> None:
        self.env.notify(port)

    # ---- the block layer
    def _biodone(self, shim_id: int) -> None:
        """``biodone`` of a kernel bio: the world's bio completes once its last piece is
        done (``g_std_done``), with an error if any piece had one."""
        bio = self._bios.get(shim_id)
        if bio is None:
            raise XbdspecError(f"biodone of bio {shim_id}, which the block layer never sent")
        status = (ctypes.c_long * 4)()
        self._lib.xbd_h_bio_status(shim_id, status)
        ok = status[1] == 0 and not status[2] & BIO_ERROR
        off, nbytes = self._pieces.pop(shim_id, (0, bio.sectors * SECTOR))
        data = b""
        if ok and bio.op == "read":
            data = ctypes.string_at(self._lib.xbd_h_bio_data(shim_id), nbytes)
        state = self._split.get(bio.id)
        if state is None:
            self.env.complete(bio.id, ok, data)
            return
        state[0] -= 1
        state[1] = state[1] and ok
        state[2][off] = data
        if state[0] == 0:
            del self._split[bio.id]
            whole = b"".join(state[2][k] for k in sorted(state[2])) if state[1] else b""
            self.env.complete(bio.id, bool(state[1]), whole)

    # ---- what the tests look at
    def softc(self) -> dict[str, int] | None:
        """The softc's fields (:data:`~xbdspec.cdriver.SOFTC_FIELDS`), or None before the
        device is added."""
        out = (ctypes.c_long * len(SOFTC_FIELDS))()
        if not self._added or self._live().xbd_h_softc(out) != 0:
            return None
        return {name: int(out[i]) for i, name in enumerate(SOFTC_FIELDS)}

    @property
    def state(self) -> int | None:
        """The front end's xenbus state as its node says (None before it is added)."""
        if not self._added:
            return None
        text = self.env.read(f"{self.env.front}/state")
        return int(text) if text is not None and text.isdigit() else None

    def _field(self, name: str) -> int:
        sc = self.softc()
        return sc[name] if sc is not None else 0

    # ---- the bus
    def _add_device(self) -> bool:
        """``xenbusb_add_device``: once the tool stack's nodes name the other end
        (``backend``, ``backend-id``), plug, probe and attach."""
        if self._added:
            return True
        env = self.env
        otherend = env.read(f"{env.front}/backend")
        otherend_id = env.read(f"{env.front}/backend-id")
        if otherend is None or otherend_id is None or not otherend_id.isdigit():
            return False
        lib = self._live()
        self._otherend_id = int(otherend_id)
        lib.xbd_h_plug(self._node.encode(), otherend.encode(), self._otherend_id, b"vbd")
        self._added = True
        self._call("xbd_probe", lib.xbd_h_probe)
        if lib.xbd_h_last_result() != 0:
            raise XbdspecError("xbd_probe declined the device; log: " + "; ".join(self.log))
        self._call("xbd_attach", lib.xbd_h_attach)
        if lib.xbd_h_last_result() != 0:
            raise XbdspecError("xbd_attach failed; log: " + "; ".join(self.log))
        return True

    def _read_otherend_state(self) -> int:
        """``xenbus_read_driver_state`` of the other end: Closed when missing or not a
        number."""
        text = self.env.read(f"{self.env.read(f'{self.env.front}/backend')}/state")
        try:
            return int((text or "").strip())
        except ValueError:
            return XENBUS_CLOSED

    def otherend_changed(self) -> None:
        """``xenbusb_otherend_watch_cb``: read the back end's state and call
        ``xbd_backend_changed`` with it (adding the device first, once)."""
        if not self._add_device():
            return
        state = self._read_otherend_state()
        lib = self._lib
        self._call(f"xbd_backend_changed({state})", lambda: lib.xbd_h_backend_changed(state))
        self._geom()

    def interrupt(self) -> None:
        """The event channel fires: ``xbd_int``, the bound handler (nothing when unbound)."""
        lib = self._live()
        self._call("xbd_int", lambda: max(0, lib.xbd_h_deliver_interrupt(1)))
        self._geom()

    def shutdown(self) -> None:
        """The guest shuts down: the seed's ``device_shutdown`` (``bus_generic_shutdown``)."""
        if self._added:
            self._call("device_shutdown", self._live().xbd_h_shutdown)

    def detach(self) -> None:
        """The device is deleted (``device_detach``: ``xbd_detach``, which frees the ring,
        ends its grants and the indirect pages' and unbinds the event channel).  Not a
        harness event; for tests and scripts."""
        if self._added:
            self._call("xbd_detach", self._live().xbd_h_detach)

    # ---- GEOM
    def _disk(self) -> tuple[bool, int]:
        """Whether the disk exists and is not gone, and its ``d_flags``."""
        sc = self.softc()
        if sc is None or not sc["has_disk"]:
            return False, 0
        self._disk_seen = True
        return not sc["disk_gone"] and not sc["disk_destroyed"], sc["d_flags"]

    def _geom(self) -> None:
        """What GEOM does between the driver's calls: open a new disk (``open_disk``),
        close a gone one, send the bios held for a disk that now exists."""
        while True:
            sc = self.softc()
            if sc is None:
                return
            lib = self._lib
            if self.open_disk and sc["has_disk"] and not sc["disk_gone"] and not self._opened:
                self._opened = True
                self._call("xbd_open", lib.xbd_h_open)
                continue
            if self._opened and (not sc["has_disk"] or sc["disk_gone"]):
                self._opened = False
                if sc["has_disk"]:
                    self._call("xbd_close", lib.xbd_h_close)
                continue
            live, _flags = self._disk()
            if live and self.held:
                self._strategy(self.held.pop(0))
                continue
            return

    def submit(self, bio: Bio) -> None:
        """``g_disk_start``: the bio to the disk's ``d_strategy`` (``xbd_strategy``)."""
        self._add_device()
        live, _flags = self._disk()
        if live:
            self._strategy(bio)
            self._geom()
        elif self._disk_seen:
            self.env.complete(bio.id, False)  # g_disk_start: the disk is gone, ENXIO
        else:
            self.held.append(bio)

    def _strategy(self, bio: Bio) -> None:
        _live, flags = self._disk()
        if bio.op == "flush":
            if not flags & DISKFLAG_CANFLUSHCACHE:
                # g_disk_start refuses BIO_FLUSH of a disk that cannot flush (EOPNOTSUPP)
                self.env.complete(bio.id, False)
                return
            cmd, nbytes, offset = BIO_FLUSH, 0, 0
        elif bio.op in ("read", "write", "fua"):
            # a FUA write is FreeBSD's BIO_ORDERED write (ordered, and durable when done);
            # a bio longer than d_maxsize is split by GEOM (g_disk_start) into pieces of
            # at most d_maxsize, each its own bio to d_strategy
            total = bio.sectors * SECTOR
            maxsize = self._field("d_maxsize")
            step = max(SECTOR, maxsize - maxsize % SECTOR)
            pieces = [(off, min(step, total - off)) for off in range(0, total, step)]
            self._split[bio.id] = [len(pieces), True, {}]
            for off, nbytes in pieces:
                self._send(bio, BIO_READ if bio.op == "read" else BIO_WRITE, off, nbytes)
            return
        else:
            raise XbdspecError(f"bio {bio.id}: no operation {bio.op!r}")
        self._split[bio.id] = [1, True, {}]
        self._send(bio, cmd, 0, nbytes, offset)

    def _send(self, bio: Bio, cmd: int, off: int, nbytes: int, offset: int | None = None) -> None:
        """One kernel bio of the world's ``bio`` (bytes ``off`` to ``off + nbytes``) to
        ``xbd_strategy``."""
        lib = self._lib
        if offset is None:
            offset = (bio.id % (PAGE_SIZE // SECTOR)) * SECTOR if self.buffer_offsets else 0
        self._error = None
        flags = BIO_ORDERED if bio.op == "fua" else 0
        sector = bio.sector + off // SECTOR
        shim_id = int(lib.xbd_h_bio_new(cmd, flags, sector, nbytes, offset))
        error, self._error = self._error, None
        if error is not None:
            raise error
        if shim_id < 0:
            raise XbdspecError("the shim's bio table is full (65536 bios per front end)")
        if bio.op in ("write", "fua"):
            data = bio.data[off : off + nbytes].ljust(nbytes, b"\0")
            ctypes.memmove(lib.xbd_h_bio_data(shim_id), data, nbytes)
        self._bios[shim_id] = bio
        self._pieces[shim_id] = (off, nbytes)
        self._call(f"xbd_strategy(bio {bio.id})", lambda: lib.xbd_h_strategy(shim_id))


def make(options: Mapping[str, Any] | None = None) -> Callable[[FrontendEnv], Frontend]:
    """A ``make_frontend`` of the compiled seed for the harness.

    Options (:data:`DEFAULT_OPTIONS`):

    * ``grant_frames``: the grant table's size in frames of 512 entries (4);
    * ``buffer_offsets``: a bio's data starts inside its first page (at ``bio.id % 8``
      sectors), as GEOM's unmapped bios may (True), or at its start;
    * ``invariants``: an ``INVARIANTS`` kernel, which stops on a mutex recursion (True);
    * ``open_disk``: GEOM opens the disk when it appears and closes it when it is gone
      (False: nobody opens it, as in the reference's front end);
    * ``enable_indirect``: the ``hw.xbd.xbd_enable_indirect`` tunable (True);
    * ``maxphys``: the kernel's ``maxphys`` (1 MiB), which caps indirect segments;
    * ``source``: the ``blkfront.c`` to build (default
      :func:`~xbdspec.cdriver.default_source`).

    The driver is built (or found in the build cache) at once, so that a missing source
    or compiler shows here.

    Raises:
        ValueError: an unknown option.
        xbdspec.cdriver.BuildError: no source, or it does not compile.
    """
    opts = dict(DEFAULT_OPTIONS)
    for key, value in (options or {}).items():
        if key not in DEFAULT_OPTIONS:
            raise ValueError(f"no option {key!r}; options: {', '.join(DEFAULT_OPTIONS)}")
        opts[key] = value
    source = opts["source"]
    build(source)
    grant_frames = int(opts["grant_frames"])
    buffer_offsets = _flag("buffer_offsets", opts["buffer_offsets"])
    invariants = _flag("invariants", opts["invariants"])
    open_disk = _flag("open_disk", opts["open_disk"])
    enable_indirect = _flag("enable_indirect", opts["enable_indirect"])
    maxphys = int(opts["maxphys"])

    def make_frontend(env: FrontendEnv) -> Frontend:
        return SeedFrontend(
            env,
            grant_frames=grant_frames,
            buffer_offsets=buffer_offsets,
            invariants=invariants,
            open_disk=open_disk,
            enable_indirect=enable_indirect,
            maxphys=maxphys,
            source=source,
        )

    # what a campaign writes into a finding's replay (the lead's registry reads it back)
    make_frontend.options = {  # type: ignore[attr-defined]
        "grant_frames": grant_frames,
        "buffer_offsets": buffer_offsets,
        "invariants": invariants,
        "open_disk": open_disk,
        "enable_indirect": enable_indirect,
        "maxphys": maxphys,
        **({"source": str(source)} if source is not None else {}),
    }
    return make_frontend


def _flag(name: str, value: Any) -> bool:
    """A boolean option: a bool, 0/1, or its words (options may come as strings)."""
    if isinstance(value, str):
        words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
        if value.lower() not in words:
            raise ValueError(f"option {name}: {value!r} is not a boolean (0/1, true/false)")
        return words[value.lower()]
    return bool(value)


# ---------------------------------------------------------------------- a campaign
def dimensions(
    open_disk: tuple[bool, ...] = (False, True),
    buffer_offsets: tuple[bool, ...] = (False, True),
    enable_indirect: tuple[bool, ...] = (False, True),
) -> Callable[[random.Random], Callable[[FrontendEnv], Frontend]]:
    """The seed with its options drawn per program (``campaign(..., per_program=True)``)."""
    make(None)  # build once, before the first program

    def pick(rng: random.Random) -> Callable[[FrontendEnv], Frontend]:
        return make(
            {
                "open_disk": rng.choice(open_disk),
                "buffer_offsets": rng.choice(buffer_offsets),
                "enable_indirect": rng.choice(enable_indirect),
            }
        )

    return pick
