"""The reference driver behind the adapter contract, and its refinement mapping.

:class:`ReferenceImplementation` plays the model's environment on the simulated
platform (the tool stack, the back end, watch deliveries, bios, DMA and grant
callbacks) and calls the seed's entry points for everything the driver does.
:func:`abstract_state` maps the platform's concrete state to the model's ``State``
record field by field; ``docs/conformance.md`` tabulates the mapping.

Sizes.  The seed's shadow array has as many commands as ring slots (32 a page) and a
command allocates ``xbd_max_request_segments`` (at least 11) grant references.  The
adapter restricts the reference to the model's sizes without touching the driver:

* commands: ``bus_dmamap_create`` fails after ``sizes.commands`` maps, so
  ``xbd_connect``'s loop stops there (the path of seed note 16) and exactly that many
  commands reach FREE;
* ring slots: the ring's ``nr_ents`` (both ends) is set to ``sizes.ring_slots`` right
  after the ring is allocated, before any request is written;
* grants: the grant table's request pool holds ``sizes.grants`` references; ring pages
  are granted from a separate reserve (the model does not count the ring's grant);
  ``sizes.grants_per_request`` must equal the seed's 11 segments;
* the model's request has one segment; a bio's data may span several pages
  (:class:`~xbdspec.conformance.sweep.BackendSetup`): a BUSY command's segments count as
  the one reference the model keeps, the others as free (``cmd_grants`` and
  ``grants_free`` below), so every reference is accounted for exactly once either way;
  flushes and unsupported bios carry one page.

Back-end setups.  :meth:`ReferenceImplementation.configure` chooses what the back end
offers beyond the model's features (ring pages, indirect segments, the sector size) and
each bio's size; ``sizes.grants_per_request`` must be the segments the seed negotiates
(11, or the indirect segments offered).  Ring pages and indirection pages are granted
from a reserve outside the model's pool.

Grant free callbacks.  FreeBSD runs them synchronously from whatever returns grant
references, inside the driver's I/O lock (seed note 12: a lock recursion).  The model
makes the callback an environment event (``grants_returned``); the adapter's grant
table keeps callbacks registered until that event fires them, outside the lock.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections import deque
from collections.abc import Mapping
from operator import itemgetter
from typing import Any

from xbdspec.model.state import Sizes
from xbdspec.model.vocabulary import (
    BioKind,
    BioResult,
    BioStage,
    BlkifOp,
    BlkifStatus,
    DiskState,
    Dma,
    DumpPc,
    DumpResult,
    FrontPc,
    IoPc,
    Place,
    RingStage,
    SuspendPc,
)
from xbdspec.reference import driver, lifecycle
from xbdspec.reference.backend import BackendConfig, BackendRequest
from xbdspec.reference.busdma import MapMode
from xbdspec.reference.constants import (
    BIO_DELETE,
    BIO_FLUSH,
    BIO_ORDERED,
    BIO_READ,
    BIO_WRITE,
    BLKIF_MAX_SEGMENTS_PER_REQUEST,
    BLKIF_OP_INDIRECT,
    BLKIF_OP_WRITE,
    BLKIF_OP_WRITE_BARRIER,
    EBUSY,
    EFBIG,
    EIO,
    EOPNOTSUPP,
    GRANT_REF_INVALID,
    NR_RESERVED_ENTRIES,
    PAGE_SHIFT,
    XBD_Q_BUSY,
    XBD_Q_COMPLETE,
    XBD_Q_FREE,
    XBD_Q_NONE,
    XBD_Q_READY,
    XBDCF_ASYNC_MAPPING,
    XBDCF_FROZEN,
    XBDCF_Q_FREEZE,
    XBDCF_Q_MASK,
    XBDF_BARRIER,
    XBDF_CM_SHORTAGE,
    XBDF_FLUSH,
    XBDF_GNT_SHORTAGE,
    XBDF_WAIT_IDLE,
    XbdState,
    XenbusState,
)
from xbdspec.reference.evtchn import EventChannels, IntrHandle
from xbdspec.reference.faults import DriverFault, KernelHang
from xbdspec.reference.grants import GrantTable, GTF_permit_access, GTF_readonly
from xbdspec.reference.lifecycle import SuspendSleep
from xbdspec.reference.platform import BACK_WATCH, FRONT_WATCH, Fixes, Platform
from xbdspec.reference.ring import REQUEST_HEADER, RESPONSE, slot_offset
from xbdspec.reference.softc import Bio, Command, Softc
from xbdspec.reference.xenbus import xenbus_read_driver_state

from .contract import Capabilities, EnvChoices, ImplementationError, Observation, UnsupportedEvent
from .sweep import (
    DEFAULT_SETUP,
    REFERENCE_SWEEP,
    SECTOR,
    SIZE_VARIANTS,
    BackendSetup,
    Configuration,
    negotiated_ring_pages,
)

#: Model events the seed never performs on its own: the "front end Initialised before
#: the back end's InitWait" shortcut (the seed takes it only inside ``xbd_resume``,
#: which the resume event covers) and closing first at guest shutdown (the seed's
#: ``device_shutdown`` is ``bus_generic_shutdown``, which leaves xenbus alone).
REFUSED: frozenset[str] = frozenset({"frontend_initialise", "shutdown"})

#: Fields with no concrete counterpart in the reference: never compared.
NOT_CHECKED: frozenset[str] = frozenset({"fe_seen_be"})

#: The seed's minimum ``xbd_max_request_segments``: the grants a command allocates.
SEED_GRANTS_PER_REQUEST = 11

_PAGE = 4096
_BIO_COMMAND = {
    BioKind.READ: (BIO_READ, 0),
    BioKind.WRITE: (BIO_WRITE, 0),
    BioKind.ORDERED_WRITE: (BIO_WRITE, BIO_ORDERED),
    BioKind.FLUSH: (BIO_FLUSH, 0),
    BioKind.UNSUPPORTED: (BIO_DELETE, 0),
}
_MAP_MODE = {
    Dma.IMMEDIATE: MapMode.IMMEDIATE,
    Dma.DEFERRED: MapMode.DEFERRED,
    Dma.FAILED: MapMode.FAIL,
}
#: a completed bio's ``bio_error`` -> the model's ``bio_result`` (any other: EIO)
_BIO_RESULT = {0: BioResult.OK, EIO: BioResult.EIO, EOPNOTSUPP: BioResult.EOPNOTSUPP}
#: every ``blkif`` operation and response status by its value, as the integer the
#: refinement mapping shows (``int(BlkifOp(value))``, without the enum's call for each
#: command of each observation; a value not here still goes through the enum, which
#: refuses it as before)
_OP_INT: dict[int, int] = {member.value: int(member) for member in BlkifOp}
_STATUS_INT: dict[int, int] = {member.value: int(member) for member in BlkifStatus}
_PLACE = {
    XBD_Q_FREE: Place.FREE,
    XBD_Q_READY: Place.READY,
    XBD_Q_BUSY: Place.BUSY,
    XBD_Q_NONE: Place.NONE,
    XBD_Q_COMPLETE: Place.COMPLETE,
}


#: Sizes the reference is tested at.  With 11 grant references a command, no one size
#: reaches every path: a command shortage needs more ring slots than commands and
#: grants for two commands; a grant shortage needs fewer grants than that; RING_FULL
#: needs as many commands as slots (the seed's own case).
#: They are the sweep's configurations that differ in sizes alone (:data:`.sweep.SIZE_VARIANTS`).
REFERENCE_SIZES: dict[str, Sizes] = {c.name: c.sizes for c in SIZE_VARIANTS}


def reference_sizes(variant: str = "command-shortage") -> Sizes:
    """The sizes the reference runs at (see :data:`REFERENCE_SIZES`)."""
    return REFERENCE_SIZES[variant]


@dataclasses.dataclass(slots=True, eq=False)
class DeferredCallbackGrantTable(GrantTable):
    """The grant table with the free callbacks left to the environment.

    Attributes:
        ring_reserve: references set aside for the ring pages and the indirection pages
            (``xenbus_grant_ring`` and ``xbd_connect`` take from here first), so the
            request pool is exactly the model's.
        ring_refs: the reserve's references now granted.
    """

    ring_reserve: list[int] = dataclasses.field(default_factory=list)
    ring_refs: set[int] = dataclasses.field(default_factory=set)

    def _check_free_callbacks(self) -> None:
        """Callbacks wait for the ``grants_returned`` event (see the module docstring)."""

    def gnttab_grant_foreign_access(self, domid: int, frame: int, readonly: int) -> tuple[int, int]:
        if self.ring_reserve:
            ref = self.ring_reserve.pop()
            self.ring_refs.add(ref)
            self.gnttab_grant_foreign_access_ref(ref, domid, frame, readonly)
            return 0, ref
        return GrantTable.gnttab_grant_foreign_access(self, domid, frame, readonly)

    def gnttab_end_foreign_access_references(self, count: int, refs: list[int]) -> None:
        """A ring or indirection reference given back (the ``ring-grant-references-leak``
        fix, ``xbd_free``) returns to the reserve, not to the request pool the model
        counts."""
        ring = [r for r in refs[:count] if r in self.ring_refs]
        if not ring:
            GrantTable.gnttab_end_foreign_access_references(self, count, refs)
            return
        for ref in ring:
            if self.gnttab_end_foreign_access_ref(ref):
                self.ring_refs.discard(ref)
                self.ring_reserve.append(ref)
        rest = [r for r in refs[:count] if r not in ring]
        if rest:
            GrantTable.gnttab_end_foreign_access_references(self, len(rest), rest)

    def fire_ready_callback(self) -> bool:
        """Run the first registered callback whose count is free; False if none is."""
        for callback in list(self.callbacks):
            if self.free_count >= callback.count:
                self.callbacks.remove(callback)
                self.callbacks_fired += 1
                if callback.fn is not None:
                    callback.fn(callback.arg)
                return True
        return False


@dataclasses.dataclass(slots=True, eq=False)
class CountingEventChannels(EventChannels):
    """The event channels with the bindings counted (the resource audit's third count).

    ``xen_intr_alloc_and_bind_local_port`` allocates a port each time; the simulated
    table keeps only the latest, so a port bound again without ``xen_intr_unbind`` would
    vanish unseen.  ``bound`` counts the ports bound and not yet unbound.

    Attributes:
        bound: ports the driver bound and has not unbound.
    """

    bound: int = 0

    def bind(self, handler: Any, arg: Any) -> tuple[int, IntrHandle | None]:
        error, handle = EventChannels.bind(self, handler, arg)
        if error == 0:
            self.bound += 1
        return error, handle

    def unbind(self) -> None:
        if self.port is not None:
            self.bound -= 1
        EventChannels.unbind(self)


class ReferenceImplementation:
    """The reference driver (``xbdspec.reference``) as an :class:`Implementation`.

    Attributes:
        fixes: the opt-in fixes to run with (none: the seed's behaviour).
        name: how reports name it.
        platform: the simulated machine of the current run (after :meth:`reset`).
    """

    def __init__(self, fixes: Fixes | None = None, name: str = "reference") -> None:
        self.fixes = fixes if fixes is not None else Fixes()
        self.name = name
        self.sizes = reference_sizes()
        self.platform: Platform | None = None
        self.bios: list[Bio | None] = []
        self.kinds: list[BioKind] = []
        self.taken: set[int] = set()
        self.susp_pc = SuspendPc.RUNNING
        self.sleep: SuspendSleep | None = None
        self.suspends_left = 0
        self.unplugs_left = 0
        self.fault: str | None = None
        self.ring_seen: object | None = None
        self.setup: BackendSetup = DEFAULT_SETUP
        self.bio_frames: set[int] = set()
        self.ring_offer: tuple[int | None, int | None] = (None, None)
        self.epoch_seen = 0
        self.dumps_left = 0
        self.dump_result = DumpResult.NONE

    # ------------------------------------------------------------------ the contract
    def capabilities(self) -> Capabilities:
        return Capabilities(name=self.name, refuses=REFUSED)

    def configure(self, setup: BackendSetup) -> None:
        """Run the next :meth:`reset` with ``setup`` (optional hook of the sweep)."""
        self.setup = setup

    def configurations(self) -> tuple[Configuration, ...]:
        """The configurations a campaign sweeps by default (optional hook)."""
        return REFERENCE_SWEEP

    def _backend_config(self) -> BackendConfig:
        """A fresh back end's offer: no feature yet (backend_publish chooses them), the
        setup's limits and sector size."""
        setup = self.setup
        return BackendConfig(
            barrier=False,
            flush=False,
            max_indirect_segments=setup.indirect_segments,
            max_ring_page_order=setup.ring_page_order,
            max_ring_pages=setup.max_ring_pages,
            sector_size=setup.sector_size,
        )

    def snapshot(self) -> object:
        """A complete copy of the run (platform, bios, environment bookkeeping)."""
        return copy.deepcopy(self.__dict__)

    def restore(self, snapshot: object) -> None:
        """Return to a :meth:`snapshot` (the snapshot stays usable)."""
        assert isinstance(snapshot, dict)
        self.__dict__.update(copy.deepcopy(snapshot))

    def preferred_sizes(self) -> Sizes:
        """The sizes to test the reference at when none are given (optional hook)."""
        return reference_sizes()

    def reset(self, sizes: Sizes) -> Observation:
        segments = self.setup.request_segments
        if sizes.grants_per_request != segments:
            raise ImplementationError(
                f"the reference allocates {segments} grant references per command "
                f"(xbd_max_request_segments, {SEED_GRANTS_PER_REQUEST} unless the back end "
                f"offers indirect segments); sizes.grants_per_request is "
                f"{sizes.grants_per_request}: use Sizes(grants_per_request={segments})."
            )
        if sizes.ring_slots & (sizes.ring_slots - 1) or not 1 <= sizes.ring_slots <= 32:
            raise ImplementationError(
                f"sizes.ring_slots is {sizes.ring_slots}: "
                "a ring has a power of two of at most 32 slots"
            )
        self.sizes = sizes
        self._discard_run()
        platform = Platform(
            fixes=self.fixes,
            ring_index_start=sizes.ring_base,
            backend_config=self._backend_config(),
        )
        # every connection grants its ring pages and each command's indirection pages
        per_connect = self.setup.ring_pages + sizes.commands * self.setup.indirect_pages
        reserve = per_connect * (1 + sizes.suspends)
        table = DeferredCallbackGrantTable(NR_RESERVED_ENTRIES + sizes.grants + reserve)
        table.ring_reserve = [table.free.pop() for _ in range(reserve)]
        platform.gnttab = table
        platform.evtchn = CountingEventChannels()
        platform.busdma.fail_map_create_after = sizes.commands
        self.platform = platform
        self.bios = [None] * sizes.bios
        self.kinds = [BioKind.READ] * sizes.bios
        self.taken = set()
        self.susp_pc = SuspendPc.RUNNING
        self.sleep = None
        self.suspends_left = sizes.suspends
        self.unplugs_left = sizes.unplugs
        self.fault = None
        self.ring_seen = None
        self.bio_frames = set()
        self.ring_offer = (None, None)
        self.epoch_seen = 0
        self.dumps_left = sizes.dumps
        self.dump_result = DumpResult.NONE
        dev = platform.plug()
        if lifecycle.probe(dev) != 0 or lifecycle.attach(dev) != 0:
            raise ImplementationError("the reference did not attach: " + "; ".join(platform.log))
        platform.register_watches()
        # Registering a watch fires one initial event; at the start both ends are
        # Initialising and each handler finds nothing to do.
        self._front_watch()
        self._back_watch()
        return self.observe()

    def apply(self, event: str, params: Mapping[str, Any], env: EnvChoices) -> Observation:
        if self.platform is None:
            raise ImplementationError("apply before reset")
        if self.fault is not None:
            return self.observe()
        handler = getattr(self, f"_on_{event}", None)
        if handler is None:
            raise UnsupportedEvent(f"the reference adapter has no handler for event {event!r}")
        busdma = self.platform.busdma
        busdma.next_modes = deque(_MAP_MODE[m] for m in env.dma)
        try:
            handler(**params)
            check_resources(self)
        except DriverFault as fault:
            self.fault = f"{type(fault).__name__}: {fault}"
        finally:
            busdma.next_modes = deque()
        self._after_event()
        return self.observe()

    def observe(self) -> Observation:
        if self.platform is None:
            raise ImplementationError("observe before reset")
        fields = abstract_state(self)
        for name in NOT_CHECKED:
            fields.pop(name, None)
        return Observation(fields=fields, fault=self.fault, complete=True)

    def close(self) -> None:
        self._discard_run()
        self.platform = None

    def _discard_run(self) -> None:
        """Let the run being replaced give its RAM disk back at once.

        The platform's objects refer to one another (the back end to its platform, say),
        so a platform no longer used is freed only by the cycle collector's next full
        collection, and with it the back end's disk (``sectors`` 512-byte sectors, 8 MB
        by default): a long campaign held one such disk per program since the last full
        collection, and allocated fresh memory for each new one.  Only the binding of the
        discarded back end changes (a snapshot taken of the run restores it)."""
        if self.platform is not None:
            self.platform.backend.disk = bytearray()

    # ------------------------------------------------------------------ helpers
    @property
    def _p(self) -> Platform:
        assert self.platform is not None
        return self.platform

    def _sc(self) -> Softc:
        return self._p.softc()

    def _xs(self, key: str) -> str | None:
        return self._p.xenstore.read(key)

    def _after_event(self) -> None:
        """Keep the size restrictions: a fresh ring gets the model's slot count; a
        shadow about to be built stops at the model's command count."""
        p = self._p
        sc = self._sc()
        ring = sc.xbd_ring
        if ring.sring is not None and ring.sring is not self.ring_seen:
            self.ring_seen = ring.sring
            if ring.req_prod_pvt == (self.sizes.ring_base & 0xFFFF_FFFF):
                ring.nr_ents = self.sizes.ring_slots
        if sc.xbd_shadow is None:
            p.busdma.fail_map_create_after = self.sizes.commands

    def _take_watch(self, token: str) -> bool:
        pending = self._p.xenstore.pending
        if token not in pending:
            return False
        pending.remove(token)
        return True

    def _front_watch(self) -> None:
        """The front end's xenwatch handler: ``xbd_backend_changed`` with the back end's
        current state."""
        p = self._p
        if self._take_watch(FRONT_WATCH) and p.dev is not None:
            lifecycle.backend_changed(p.dev, xenbus_read_driver_state(p.dev, p.back_path))

    def _back_watch(self) -> None:
        """The back end's reaction to the front end's state, as ``blkif.h`` describes it
        (the model's back end, played by the environment)."""
        p = self._p
        if not self._take_watch(BACK_WATCH):
            return
        backend = p.backend
        front = int(self._xs(f"{p.front_path}/state") or XenbusState.Closed)
        back = backend.state
        online = self._xs(f"{p.back_path}/online") == "1"
        live = (
            XenbusState.Initialising,
            XenbusState.InitWait,
            XenbusState.Initialised,
            XenbusState.Connected,
        )
        if (
            back in (XenbusState.InitWait, XenbusState.Initialised)
            and front in (XenbusState.Initialised, XenbusState.Connected)
            and online
        ):
            backend.connect_ring()
            if backend.ring is not None:
                backend.ring.nr_ents = self.sizes.ring_slots
        elif back in live and front == XenbusState.Closing:
            backend.set_state(XenbusState.Closing)
        elif back != XenbusState.Closed and front == XenbusState.Closed:
            backend.ring = None
            backend.set_state(XenbusState.Closed)

    def _command(self, cmd: int) -> Command:
        shadow = self._sc().xbd_shadow
        if shadow is None or cmd >= len(shadow):
            raise ImplementationError(f"command {cmd} does not exist (no shadow array)")
        return shadow[cmd]

    # ------------------------------------------------------------------ the tool stack
    def _on_unplug(self) -> None:
        self._p.xenstore.write(f"{self._p.back_path}/online", "0")
        self.unplugs_left -= 1

    def _on_suspend(self) -> None:
        assert self._p.dev is not None
        self.suspends_left -= 1
        self.susp_pc = SuspendPc.DRAINING
        result = lifecycle.suspend(self._p.dev)
        self.sleep = result if isinstance(result, SuspendSleep) else None

    def _on_suspend_drained(self) -> None:
        assert self._p.dev is not None
        if self.sleep is not None and not self._p.sleep_woken:
            return  # nobody woke the sleeper: xbd_suspend sleeps on until its time-out
        if self.sleep is not None:
            result = lifecycle.suspend_continue(self._p.dev, self.sleep, timed_out=False)
            if isinstance(result, SuspendSleep):
                self.sleep = result
                return
            self.sleep = None
        self.susp_pc = SuspendPc.SUSPENDED

    def _on_suspend_timeout(self) -> None:
        """``msleep`` returns ``EWOULDBLOCK``: ``xbd_suspend`` gives up and returns, and
        the tool stack's suspend is over (``susp_pc`` RUNNING).  A suspend that sleeps
        again has not returned: the tool stack still waits in ``DEVICE_SUSPEND``
        (DRAINING), as after a wakeup that finds commands still busy."""
        assert self._p.dev is not None
        if self.sleep is not None:
            result = lifecycle.suspend_continue(self._p.dev, self.sleep, timed_out=True)
            self.sleep = result if isinstance(result, SuspendSleep) else None
            if self.sleep is not None:
                return
        self.susp_pc = SuspendPc.RUNNING

    def _on_resume(self, cancelled: bool) -> None:
        p = self._p
        p.xen_suspend_cancelled = cancelled
        if not cancelled:
            p.backend.reset(self._backend_config())
            self.taken = set()
            self._forget_ring_layout()
        _succeeds("xbd_resume", p.resume_device())
        self.susp_pc = SuspendPc.RUNNING
        if not cancelled:
            # xenbusb_resume registers the watch again, which fires its initial event;
            # the new back end is Initialising, so the front end has nothing to do.
            self._front_watch()

    def _forget_ring_layout(self) -> None:
        """The new host's tool stack builds the front end's node afresh: the keys of a
        multi-page ring (``ring-page-order``, ``num-ring-pages``, ``ring-ref<i>``) are
        not there for the new back end to misread when the seed, resuming before the new
        back end offers pages, writes a one-page ring's ``ring-ref``.  (A one-page ring's
        keys are rewritten by the resume itself and stay as they were.)"""
        p = self._p
        values = p.xenstore.values
        front = p.front_path
        stale = [f"{front}/ring-page-order", f"{front}/num-ring-pages"]
        stale += [f"{front}/ring-ref{i}" for i in range(32)]
        for key in stale:
            values.pop(key, None)

    # ------------------------------------------------------------------ the back end
    def _publish_features(self, barrier: bool, flush: bool) -> None:
        backend = self._p.backend
        backend.config = dataclasses.replace(backend.config, barrier=barrier, flush=flush)
        for key, value in backend.config.initwait_keys().items():
            backend._write(key, value)
        # On entering a state the back end does the work of any skipped one (blkif.h):
        # it looks at the front end's state again, as if its watch had fired.
        pending = self._p.xenstore.pending
        if BACK_WATCH not in pending:
            pending.append(BACK_WATCH)

    def _on_backend_publish(self, barrier: bool, flush: bool) -> None:
        self._publish_features(barrier, flush)
        self._p.backend.set_state(XenbusState.InitWait)

    def _on_backend_skip_initwait(self, barrier: bool, flush: bool) -> None:
        self._publish_features(barrier, flush)
        self._p.backend.set_state(XenbusState.Initialised)

    def _on_frontend_watch(self) -> None:
        self._back_watch()

    def _on_backend_offline(self) -> None:
        self._p.backend.set_state(XenbusState.Closing)

    def _on_backend_consume(self, cmd: int) -> None:
        backend = self._p.backend
        count = backend.fetch()
        for request in backend.pending[len(backend.pending) - count :]:
            check_request(self._p, request)
        if any(r.id == cmd for r in backend.pending):
            self.taken.add(cmd)

    def _on_backend_respond(self, cmd: int, status: BlkifStatus) -> None:
        backend = self._p.backend
        for request in backend.pending:
            if request.id == cmd and cmd in self.taken:
                backend.respond(request, status=int(status))
                self.taken.discard(cmd)
                return

    # ------------------------------------------------------------------ the front end
    def _on_backend_watch(self) -> None:
        self._front_watch()

    def _on_open(self) -> None:
        disk = self._sc().xbd_disk
        if disk is not None:
            _succeeds("xbd_open", driver.open_(disk))

    def _on_close(self) -> None:
        disk = self._sc().xbd_disk
        if disk is not None:
            _succeeds("xbd_close", driver.close(disk))

    # ------------------------------------------------------------------ I/O
    def _on_strategy(self, bio: int, kind: BioKind) -> None:
        sc = self._sc()
        command, flags = _BIO_COMMAND[BioKind(kind)]
        setup = self.setup
        data = kind in (BioKind.READ, BioKind.WRITE, BioKind.ORDERED_WRITE)
        length = setup.bio_bytes(bio) if data else _PAGE
        if kind == BioKind.ORDERED_WRITE:
            # an ordered write stays a direct request (at most ten pages: eleven segments at
            # an offset): an indirect WRITE_BARRIER is what blkback refuses, and the fixed
            # reference single-steps it instead, which the model (one segment) cannot say
            length = min(length, 10 * _PAGE)
        buffer = self._p.mem.alloc(length, setup.bio_offset if data else 0)
        self.bio_frames.update(range(buffer.pfn, buffer.pfn + (len(buffer.mem) >> PAGE_SHIFT)))
        # bios never overlap: 256 blkif sectors apart, in the disk's own sectors
        block = bio * 256 * SECTOR // setup.sector_size
        bp = Bio(command, block, length, flags, buffer, bio_disk=sc.xbd_disk, bio_id=bio)
        self.bios[bio] = bp
        self.kinds[bio] = BioKind(kind)
        driver.strategy(bp)

    def _on_interrupt(self) -> None:
        p = self._p
        if p.deliver_interrupt():
            return
        p.evtchn.pending = False
        channel = p.evtchn
        # nothing pending: a spurious upcall, which the model offers only while the
        # driver is disconnected (``interrupt_ignored``): xbd_int runs and returns at once
        if channel.handler is not None and self._sc().xbd_state == XbdState.DISCONNECTED:
            channel.delivered += 1
            channel.handler(channel.arg)

    def _on_dump(self, chunks: int) -> None:
        """The kernel dumper writes ``chunks`` requests' worth (``xbd_dump``): the last
        chunk a sector short of ``xbd_max_request_size`` where it can be, from a buffer
        whose every byte differs from its neighbours', one sector into the disk where
        it fits; while it polls, the back end consumes and performs every request
        (``HYPERVISOR_yield``; the model's ``DUMP_YIELD_EVENTS``, which answer OKAY).
        A dump that returns 0 must have covered exactly its bytes and, on a disk of
        512-byte sectors, put them on the disk at its offset (:func:`check_dump_written`;
        on another sector size the seed's chunks address the disk in its own sectors,
        the scenario finding *request-sectors-in-device-units*, which the catalogue
        replays on its own: there the bytes' count is checked, not their place)."""
        p = self._p
        sc = self._sc()
        disk = sc.xbd_disk
        if disk is None:
            raise ImplementationError("dump without a disk: the model's guard requires one")
        offset, length = dump_layout(
            chunks, sc.xbd_max_request_size, disk.d_sectorsize, len(p.backend.disk)
        )
        buffer = p.mem.alloc(length, 0)
        buffer.view()[:] = dump_pattern(length)
        # the dumper's memory, as a bio's buffer is the disk layer's: not the driver's
        # to hold or release (check_resources)
        self.bio_frames.update(range(buffer.pfn, buffer.pfn + (len(buffer.mem) >> PAGE_SHIFT)))
        backend = p.backend
        taken = self.taken

        sent = [0]  # bytes the dump's chunks' requests cover

        def serve() -> None:
            count = backend.fetch()
            for request in backend.pending[len(backend.pending) - count :]:
                check_request(p, request)
                if (sc.xbd_shadow or [])[request.id].cm_bp is None:  # a chunk, not a bio's
                    sent[0] += sum((b - a + 1) * SECTOR for _, a, b in request.segments)
            if not backend.pending:
                raise KernelHang("HYPERVISOR_yield", "the back end has nothing to answer")
            for request in list(backend.pending):
                backend.respond(request)  # performed: the dump's bytes reach the disk
                taken.discard(request.id)

        table = p.gnttab
        polled = driver.int_

        def int_then_callbacks(xsc: Any) -> None:
            # on a stopped system the grant table runs a free-callback where xbd_int
            # returned the references (the model's dump_grant_callback)
            polled(xsc)
            if isinstance(table, DeferredCallbackGrantTable):
                while table.fire_ready_callback():
                    pass

        p.hypervisor_yield = serve  # type: ignore[method-assign]
        driver.int_ = int_then_callbacks
        try:
            rc = driver.dump(disk, buffer, offset, length)
        finally:
            del p.hypervisor_yield
            driver.int_ = polled
        self.dumps_left -= 1
        result = {0: DumpResult.OK, EIO: DumpResult.EIO, EBUSY: DumpResult.EBUSY}.get(rc)
        if result is None:
            raise DumpFailed("xbd_dump", f"returned {rc}, not 0, EIO or EBUSY")
        if result == DumpResult.OK:
            if sent[0] != length:
                raise DumpFailed(
                    "xbd_dump", f"returned 0; its requests cover {sent[0]} bytes of {length}"
                )
            if disk.d_sectorsize == SECTOR:
                check_dump_written(p.backend.disk, offset, buffer.view())
        self.dump_result = result

    def _deferred_index(self, cmd: int) -> int:
        target = self._command(cmd)
        for index, load in enumerate(self._p.busdma.deferred):
            if load.arg is target:
                return index
        raise ImplementationError(f"command {cmd} has no deferred mapping to complete")

    def _on_dma_callback(self, cmd: int) -> None:
        self._p.busdma.run_deferred(self._deferred_index(cmd))

    def _on_dma_callback_error(self, cmd: int) -> None:
        self._p.busdma.run_deferred(self._deferred_index(cmd), error=EFBIG)

    def _on_grants_returned(self) -> None:
        table = self._p.gnttab
        assert isinstance(table, DeferredCallbackGrantTable)
        table.fire_ready_callback()


# --------------------------------------------------------------------------- the mapping


class EntryPointFailed(DriverFault):
    """A ``d_open``/``d_close`` or ``DEVICE_RESUME`` the model lets succeed returned an
    error (the disk layer would not count the open; newbus would report a failed
    resume)."""


def _succeeds(where: str, error: int) -> None:
    if error != 0:
        raise EntryPointFailed(where, f"returned {error}")


class DumpFailed(DriverFault):
    """``xbd_dump`` answered the kernel dumper other than its contract says: a value
    that is not 0, ``EIO`` or ``EBUSY``, or 0 with the dump's bytes not on the disk."""


def dump_layout(
    chunks: int, max_request: int, sector_size: int, disk_bytes: int
) -> tuple[int, int]:
    """Where the adapters' dumper writes ``chunks`` requests' worth: ``(offset, length)``,
    the last chunk a sector short of ``max_request`` where that leaves it non-empty, one
    sector into the disk where the dump fits behind it (both sector multiples, as the
    kernel dumper's are)."""
    unit = max(sector_size, SECTOR)
    length = chunks * max_request
    if max_request > unit:
        length -= unit
    offset = unit if unit + length <= disk_bytes else 0
    return offset, length


#: the dumper's 251-byte cycle (:func:`dump_pattern`)
_DUMP_CYCLE = bytes((i * 37 + 11) & 0xFF for i in range(251))


@functools.lru_cache(maxsize=16)
def dump_pattern(length: int) -> bytes:
    """The dumper's buffer: a 251-byte cycle (a prime, so no shift by a sector or a
    page, and no chunk taken from the wrong place, reads the same bytes).  Kept for
    the few lengths a run's dumps have (``bytes``: immutable)."""
    return (_DUMP_CYCLE * (length // 251 + 1))[:length]


def check_dump_written(disk: bytearray, offset: int, data: memoryview) -> None:
    """A dump that returned 0 wrote ``data`` at byte ``offset`` of the back end's disk
    (``dumper_t``'s contract: the kernel dumper goes on to the next block, and at the
    end declares the dump complete).  Raises :class:`DumpFailed` naming the first byte
    that differs."""
    written = disk[offset : offset + len(data)]
    if written != data:
        first = next(
            (i for i, (w, d) in enumerate(zip(written, data, strict=False)) if w != d),
            len(written),
        )
        raise DumpFailed(
            "xbd_dump",
            f"returned 0 but byte {offset + first} of the disk is not the dump's byte {first} "
            f"(of {len(data)} at offset {offset})",
        )


class MalformedRequest(DriverFault):
    """The request the back end read off the ring is not the one its command stands for
    (``where``: the seed function that writes requests, ``xbd_queue_cb``)."""


def check_request(p: Platform, request: BackendRequest) -> None:
    """What the back end reads must be the command's request (raises
    :class:`MalformedRequest`): its id names a command on the ring; the operation (an
    indirect request's ``indirect_op``), segment count, sector and handle are the
    command's; each segment is the grant the command took for the next sectors of its
    bio's buffer, granted to the back end, read-only exactly when the seed asks for it
    (a ``BLKIF_OP_WRITE``; with ``barrier-data-granted-writable`` fixed, a barrier write
    too); an indirect request's segments are read through the pages its ring slot names,
    so a wrong page shows as wrong segments.  The model's
    request has one segment and no content, so this is the adapter's check of the ring's
    bytes, which the abstraction does not read."""
    sc = p.softc()
    shadow = sc.xbd_shadow or []

    def bad(why: str) -> MalformedRequest:
        return MalformedRequest("xbd_queue_cb", f"request id {request.id}: {why}")

    if request.malformed:
        raise bad(request.malformed)
    if not 0 <= request.id < len(shadow):
        raise bad("names no command")
    cm = shadow[request.id]
    if cm.cm_flags & XBDCF_Q_MASK != XBD_Q_BUSY or cm.cm_id != request.id:
        raise bad("names a command that is not on the ring")
    indirect = cm.cm_nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST
    want = (BLKIF_OP_INDIRECT if indirect else cm.cm_operation, cm.cm_operation)
    if (request.operation, request.io_op) != want:
        raise bad(f"operation {request.operation}/{request.io_op}, the command's {want}")
    if request.nr_segments != cm.cm_nseg or len(request.segments) != cm.cm_nseg:
        raise bad(f"{request.nr_segments} segments, the command has {cm.cm_nseg}")
    if request.sector_number != cm.cm_sector_number:
        raise bad(f"sector {request.sector_number}, the command's {cm.cm_sector_number}")
    disk = sc.xbd_disk
    if disk is not None and request.handle != disk.address & 0xFFFF:
        raise bad(f"handle {request.handle}")
    gnttab = p.gnttab
    domid = p.backend.domid
    readonly = cm.cm_operation == BLKIF_OP_WRITE or (
        p.fixes.barrier_data_granted_writable and cm.cm_operation == BLKIF_OP_WRITE_BARRIER
    )
    bp = cm.cm_bp
    address = bp.bio_data.physaddr() if bp is not None and bp.bio_data is not None else None
    total = 0
    refs = cm.cm_sg_refs or []
    for index, (gref, first, last) in enumerate(request.segments):
        if index >= len(refs) or gref != refs[index]:
            raise bad(f"segment {index} names grant {gref}, not the command's")
        if not 0 <= gref < gnttab.nr_entries or not gnttab.flags[gref] & GTF_permit_access:
            raise bad(f"segment {index}: grant {gref} is not granted")
        if gnttab.domid[gref] != domid or bool(gnttab.flags[gref] & GTF_readonly) != readonly:
            raise bad(f"segment {index}: grant {gref} is granted to the wrong domain or access")
        if not first <= last <= 7:
            raise bad(f"segment {index}: sectors {first}..{last}")
        if address is not None:
            if gnttab.frame[gref] != address >> PAGE_SHIFT or first != (address & 0xFFF) >> 9:
                raise bad(f"segment {index} is not the next piece of the bio's buffer")
            address += (last - first + 1) * SECTOR
        total += (last - first + 1) * SECTOR
    if bp is not None and total != bp.bio_bcount:
        raise bad(f"segments cover {total} bytes of a {bp.bio_bcount}-byte bio")


class ResourceLeak(DriverFault):
    """The driver holds other resources than its abstract state says (``where``: the
    seed function that releases them, ``xbd_free``; see :func:`check_resources`)."""


def transport_held(fields: Mapping[str, Any]) -> bool:
    """Whether the model's state says the driver holds a transport (a ring, its grants
    and an event channel): once it has published one (``fe_published``: ``ring-ref``
    and ``event-channel`` written, by ``xbd_initialize``) it holds it, through a
    suspend and through closing; a resume that is not cancelled frees it
    (``xbd_free``) and at once builds and publishes the next one."""
    return bool(fields["fe_published"])


def _read_uint(p: Platform, key: str) -> int | None:
    """The back end's ``key`` as an unsigned number (``None``: absent or not a number)."""
    value = p.xenstore.read(f"{p.back_path}/{key}")
    return int(value) if value is not None and value.isdigit() else None


def check_resources(impl: ReferenceImplementation) -> None:
    """The resource audit (raises :class:`ResourceLeak`): what the driver holds of the
    platform's grant table, memory and event channels is what its current connection
    needs, as the abstract state says (:func:`transport_held`), and nothing of an
    earlier one.  The counts are the FreeBSD driver's own pools, which the model's
    fields abstract (``grants_free`` counts the request pool only):

    * grant references granted from the ring reserve (ring and indirection pages):
      exactly the live ring's ``xbd_ring_ref[0 .. xbd_ring_pages - 1]`` (one a page)
      while a transport is held, plus each live command's ``cm_indirectionrefs``;
      none otherwise.  A reference whose access was ended but not returned to the pool
      (the seed's ``ring-grant-references-leak``) is no longer granted;
    * pages of guest memory (the data buffers of the bios aside): the ring's pages and
      the live commands' indirection pages;
    * event channel ports bound: one while a transport is held, none otherwise.

    The seed's ``xbd_free`` (resume) releases all of it before ``xbd_initialize``
    takes the next."""
    p = impl._p
    sc = p.softc()
    held = transport_held({"fe_published": _fe_published(p)})
    table = p.gnttab
    want_refs: set[int] = set()
    want_frames: set[int] = set()
    sring = sc.xbd_ring.sring
    if held:
        if sring is None:
            raise ResourceLeak("xbd_alloc_ring", "a transport is held but no ring is allocated")
        pages = sc.xbd_ring_pages
        # the offer the last xbd_initialize read: the back end's keys when the transport
        # was published (the event that wrote event-channel)
        epoch = _transport_epoch(p)
        if epoch != impl.epoch_seen:
            impl.epoch_seen = epoch
            impl.ring_offer = (
                _read_uint(p, "max-ring-page-order"),
                _read_uint(p, "max-ring-pages"),
            )
        offered = negotiated_ring_pages(*impl.ring_offer)
        if offered is not None and pages != offered:
            raise ResourceLeak(
                "xbd_initialize", f"a ring of {pages} pages for an offer of {offered}"
            )
        ring_refs = [r for r in sc.xbd_ring_ref[:pages] if r != GRANT_REF_INVALID]
        if len(set(ring_refs)) != pages:
            raise ResourceLeak(
                "xbd_alloc_ring", f"{len(set(ring_refs))} ring grant references for {pages} pages"
            )
        want_refs.update(ring_refs)
        page = sring.page
        want_frames.update(range(page.pfn, page.pfn + (len(page.mem) >> PAGE_SHIFT)))
    for cm in sc.xbd_shadow or []:
        ind = cm.cm_indirectionpages
        if ind is not None:
            want_refs.update(cm.cm_indirectionrefs[: sc.xbd_max_request_indirectpages])
            want_frames.update(range(ind.pfn, ind.pfn + (len(ind.mem) >> PAGE_SHIFT)))
    if isinstance(table, DeferredCallbackGrantTable):
        granted = {r for r in table.ring_refs if table.flags[r] & GTF_permit_access}
        if granted != want_refs:
            raise ResourceLeak(
                "xbd_free",
                f"ring and indirection grants held {sorted(granted)}, "
                f"the connection's {sorted(want_refs)}",
            )
    frames = set(p.mem.frames) - impl.bio_frames
    if frames != want_frames:
        raise ResourceLeak(
            "xbd_free", f"{len(frames)} pages held, the connection's {len(want_frames)}"
        )
    channels = p.evtchn
    if isinstance(channels, CountingEventChannels) and channels.bound != int(held):
        raise ResourceLeak(
            "xbd_free", f"{channels.bound} event channel ports bound, the connection's {int(held)}"
        )


def _ring_positions(sc: Softc, sizes: Sizes) -> tuple[set[int], dict[int, int]]:
    """The ids of requests written but not published, and ``id -> status`` of the
    responses produced but not consumed."""
    ring = sc.xbd_ring
    sring = ring.sring
    private: set[int] = set()
    answered: dict[int, int] = {}
    if sring is None:
        return private, answered
    buf = sring.buf
    idx = sring.req_prod
    while idx != ring.req_prod_pvt:
        private.add(REQUEST_HEADER.unpack_from(buf, slot_offset(ring.nr_ents, idx))[3])
        idx = (idx + 1) & 0xFFFF_FFFF
    idx = ring.rsp_cons
    while idx != sring.rsp_prod:
        rsp_id, _op, status = RESPONSE.unpack_from(buf, slot_offset(ring.nr_ents, idx))
        answered[rsp_id] = status
        idx = (idx + 1) & 0xFFFF_FFFF
    return private, answered


def _disk_state(p: Platform) -> DiskState:
    """The model's ``disk`` as the disk layer sees it: the driver's last disk that GEOM
    still has (created and not destroyed), gone or present; none when ``disk_destroy``
    took it (``xbd_closing``).  Read off the platform's disk list, not the softc's
    pointer, so a disk the driver forgets without destroying it is still there."""
    live = [d for d in p.disks if d.created and not d.destroyed]
    if not live:
        return DiskState.NONE
    return DiskState.GONE if live[-1].gone else DiskState.PRESENT


def _transport_epoch(p: Platform) -> int:
    """The model's ``transport_epoch``: how many times the front end wrote its
    ``event-channel`` (once a transport it published).  The paths are picked out and
    counted in C (the write log grows with the run; this is read after every event)."""
    return list(map(itemgetter(0), p.xenstore.writes)).count(f"{p.front_path}/event-channel")


def _fe_published(p: Platform) -> bool:
    """The model's ``fe_published``: the front end's ``ring-ref`` and ``event-channel``.

    One ring page: ring-ref; several (ring-page-order): ring-ref0 .. ring-ref<N-1>
    (blkif.h); a key under the other name is not one the back end reads."""
    xs, front = p.xenstore, p.front_path
    multi = xs.read(f"{front}/ring-page-order") is not None
    ring_ref = xs.read(f"{front}/ring-ref0" if multi else f"{front}/ring-ref")
    return ring_ref is not None and xs.read(f"{front}/event-channel") is not None


def abstract_state(impl: ReferenceImplementation) -> dict[str, Any]:
    """The refinement mapping: the model's state (plain values) read off the reference.

    One line per field group below; ``docs/conformance.md`` has the full table.
    """
    p = impl._p
    k = impl.sizes
    sc = p.softc()
    xs = p.xenstore
    front, back = p.front_path, p.back_path
    flags = sc.xbd_flags
    fields: dict[str, Any] = {}
    # ---- xenbus and xenstore: the `state` nodes, pending watch events, the keys
    fields["fe_state"] = int(xs.read(f"{front}/state") or 0)
    fields["be_state"] = int(xs.read(f"{back}/state") or 0)
    fields["fe_watch_pending"] = BACK_WATCH in xs.pending
    fields["be_watch_pending"] = FRONT_WATCH in xs.pending
    fields["fe_seen_be"] = None  # not kept by the seed (xbd_close reads the node afresh)
    fields["fe_pc"] = int(FrontPc.IDLE)  # the seed's handlers run to completion
    fields["be_online"] = xs.read(f"{back}/online") == "1"
    fields["be_published"] = xs.read(f"{back}/feature-barrier") is not None
    fields["be_barrier"] = xs.read(f"{back}/feature-barrier") == "1"
    fields["be_flush"] = xs.read(f"{back}/feature-flush-cache") == "1"
    # one ring page: ring-ref; several (ring-page-order): ring-ref0 .. ring-ref<N-1>
    # (blkif.h); a key under the other name is not one the back end reads
    fields["fe_published"] = _fe_published(p)
    fields["transport_epoch"] = _transport_epoch(p)
    # ---- the tool stack (the environment, played by the adapter)
    fields["susp_pc"] = int(impl.susp_pc)
    fields["suspends_left"] = impl.suspends_left
    fields["unplugs_left"] = impl.unplugs_left
    # ---- the softc
    fields["drv_state"] = int(sc.xbd_state)
    fields["users"] = sc.xbd_users
    fields["disk"] = int(_disk_state(p))
    fields["fe_barrier"] = bool(flags & XBDF_BARRIER)
    fields["fe_flush"] = bool(flags & XBDF_FLUSH)
    fields["io_pc"] = int(IoPc.STARTIO if sc.xbd_io_lock.depth > 0 else IoPc.IDLE)
    fields["frozen"] = sc.xbd_qfrozen_cnt
    fields["flag_cm_shortage"] = bool(flags & XBDF_CM_SHORTAGE)
    fields["flag_gnt_shortage"] = bool(flags & XBDF_GNT_SHORTAGE)
    fields["flag_wait_idle"] = bool(flags & XBDF_WAIT_IDLE)
    fields["gnt_callback_pending"] = (
        sc.xbd_callback is not None and sc.xbd_callback in p.gnttab.callbacks
    )
    fields["panicked"] = impl.fault is not None and "xbd_thaw" in impl.fault
    # ---- commands: shadow[0 .. commands-1]
    private, answered = _ring_positions(sc, k)
    shadow = sc.xbd_shadow or []
    bio_number = {id(bp): n for n, bp in enumerate(impl.bios) if bp is not None}
    places, stages, cbios, ops, frz, qfrz, asyn, grants, statuses = ([] for _ in range(9))
    extra_segments = 0
    op: int  # a BlkifOp, or its integer (_OP_INT)
    for c in range(k.commands):
        cm = shadow[c] if c < len(shadow) else None
        if cm is None:
            place, stage, carried, op = Place.FREE, RingStage.NONE, k.no_bio, BlkifOp.NONE
            cflags, held, status = 0, 0, 0
        else:
            place = _PLACE.get(cm.cm_flags & XBDCF_Q_MASK, Place.NONE)
            carried = bio_number.get(id(cm.cm_bp), k.no_bio) if cm.cm_bp is not None else k.no_bio
            if place == Place.FREE:
                op = BlkifOp.NONE
            else:
                value = cm.cm_operation
                op = _OP_INT[value] if value in _OP_INT else BlkifOp(value)
            cflags = cm.cm_flags
            # a BUSY command's segments are the model's one kept reference
            busy = place == Place.BUSY
            held = len(cm.cm_gref_head) + (min(cm.cm_nseg, 1) if busy else 0)
            extra_segments += max(cm.cm_nseg - 1, 0) if busy else 0
            # a parked dump chunk keeps its response's status (xbd_dump reads it)
            status = cm.cm_status if place == Place.COMPLETE else 0
            stage = RingStage.NONE
            if place == Place.BUSY:
                if cm.cm_id in answered:
                    stage, status = RingStage.ANSWERED, answered[cm.cm_id]
                elif cm.cm_id in impl.taken:
                    stage = RingStage.CONSUMED
                elif cm.cm_id in private:
                    stage = RingStage.PRIVATE
                else:
                    stage = RingStage.PUBLISHED
        places.append(int(place))
        stages.append(int(stage))
        cbios.append(carried)
        ops.append(int(op))
        frz.append(bool(cflags & XBDCF_FROZEN))
        qfrz.append(bool(cflags & XBDCF_Q_FREEZE))
        asyn.append(bool(cflags & XBDCF_ASYNC_MAPPING))
        grants.append(held)
        statuses.append(_STATUS_INT[status] if status in _STATUS_INT else int(BlkifStatus(status)))
    fields.update(
        cmd_place=places,
        cmd_stage=stages,
        cmd_bio=cbios,
        cmd_op=ops,
        cmd_frozen=frz,
        cmd_qfreeze=qfrz,
        cmd_async=asyn,
        cmd_grants=grants,
        cmd_status=statuses,
    )
    # ---- bios: the ones the adapter submitted, where they are now
    queued_ids = {id(bp) for bp in sc.xbd_bioq}
    kinds, bstages, results, dones = [], [], [], []
    for b in range(k.bios):
        bp = impl.bios[b]
        kinds.append(int(impl.kinds[b]))
        if bp is None:
            bstages.append(int(BioStage.UNSUBMITTED))
            results.append(int(BioResult.NONE))
            dones.append(0)
            continue
        if bp.done_count > 0:
            stage_b = BioStage.DONE
        elif id(bp) in queued_ids:
            stage_b = BioStage.QUEUED
        else:
            # carried by a command, or lost (then no command carries it: NoLostIO fails)
            stage_b = BioStage.HELD
        bstages.append(int(stage_b))
        if bp.done_count == 0:
            results.append(int(BioResult.NONE))
        else:
            results.append(int(_BIO_RESULT.get(bp.bio_error, BioResult.EIO)))
        dones.append(min(bp.done_count, 2))
    fields.update(bio_kind=kinds, bio_stage=bstages, bio_result=results, bio_completions=dones)
    # ---- the ring and the grant pool
    ring = sc.xbd_ring
    if ring.sring is None:
        base = k.ring_base
        fields.update(
            req_prod_pvt=base,
            req_prod=base,
            rsp_prod=base,
            rsp_cons=base,
            rsp_event=(base + 1) & 0xFFFF_FFFF,
        )
    else:
        fields.update(
            req_prod_pvt=ring.req_prod_pvt,
            req_prod=ring.sring.req_prod,
            rsp_prod=ring.sring.rsp_prod,
            rsp_cons=ring.rsp_cons,
            rsp_event=ring.sring.rsp_event,
        )
    fields["irq_pending"] = p.evtchn.pending
    fields["grants_free"] = p.gnttab.free_count + extra_segments
    # ---- the kernel dumper (the environment): xbd_dump has returned between events
    fields["dump_pc"] = int(DumpPc.IDLE)
    fields["dumps_left"] = impl.dumps_left
    fields["dump_chunks_left"] = 0
    fields["dump_result"] = int(impl.dump_result)
    return fields
