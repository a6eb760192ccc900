"""The simulated Xen platform and FreeBSD kernel the reference driver runs on.

Everything that happens is an explicit call: there are no threads, no timers and no real
time.  A test (or :mod:`~xbdspec.reference.simulate`, from a seeded RNG) decides when
xenstore watches fire, when the back end consumes and answers requests and in which order,
when deferred DMA mappings complete, when interrupts are delivered, when a sleeping
``xbd_suspend`` wakes up or times out.

:meth:`Platform.boot` runs the whole start-up handshake (tool stack creates the nodes,
probe, attach, back end ``InitWait``, watch delivery, ``initialize``, back end ``Connected``,
``connect``).  The platform also provides the kernel services the driver calls
(``printf``, ``biodone``, ``disk_*``, ``malloc`` failure injection, ``msleep``/``wakeup``,
``HYPERVISOR_yield``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .backend import Backend, BackendConfig
from .busdma import BusDma
from .constants import (
    BIO_DONE,
    BIO_ERROR,
    EEXIST,
    GREFS_PER_GRANT_FRAME,
    MAXPHYS_DEFAULT,
    XenbusState,
)
from .evtchn import EventChannels
from .faults import KernelHang
from .grants import GrantTable
from .memory import PhysMem
from .softc import Bio, Disk, Softc
from .xenbus import XenbusDevice, xenbus_read_driver_state
from .xenstore import XenStore


@dataclass(frozen=True, slots=True)
class DriverMethods:
    """A driver's device methods, the seed's ``xbd_methods[]`` (``device_method_t``):
    what newbus and xenbusb call.  The driver registers them (``DRIVER_MODULE``) when
    it is loaded, so that the platform sits below the driver and imports nothing of it.

    Attributes:
        probe, attach, detach, suspend, resume: ``device_probe`` .. ``device_resume``.
        otherend_changed: ``xenbus_otherend_changed`` (``xbd_backend_changed``).
    """

    probe: Callable[[XenbusDevice], int]
    attach: Callable[[XenbusDevice], int]
    detach: Callable[[XenbusDevice], int]
    suspend: Callable[[XenbusDevice], object]
    resume: Callable[[XenbusDevice], int]
    otherend_changed: Callable[[XenbusDevice, int], None]


#: The drivers loaded, by name (``DRIVER_MODULE(xbd, xenbusb_front, ...)``).
DRIVERS: dict[str, DriverMethods] = {}


def DRIVER_MODULE(name: str, methods: DriverMethods) -> None:
    """Register a driver's methods with the bus (``DRIVER_MODULE``)."""
    DRIVERS[name] = methods


def xbd_methods() -> DriverMethods:
    """The ``xbd`` driver's methods.  ``xbdspec.reference`` loads the driver (its
    ``lifecycle`` module registers them) before anything can reach the platform."""
    methods = DRIVERS.get("xbd")
    if methods is None:
        raise KernelHang("newbus", "no driver xbd is loaded (import xbdspec.reference)")
    return methods


FRONT_WATCH = "frontend:otherend-state"
BACK_WATCH = "backend:frontend-state"


@dataclass(frozen=True, slots=True)
class Tunables:
    """Kernel and driver tunables (globals in the C code).

    Attributes:
        xbd_enable_indirect: ``hw.xbd.xbd_enable_indirect`` (default 1).
        maxphys: the kernel's ``maxphys`` (``MAXPHYS`` = 1 MiB on LP64 by default).
        hvm_domain: ``xen_hvm_domain()``.
        pv_disks_disabled: ``xen_pv_disks_disabled()``.
        mutex_recursion_fatal: an ``INVARIANTS`` kernel stops when a non-recursive mutex
            is taken twice (the seed's grant-restart callback can do that); ``False``
            models a production kernel, which recurses.
        max_yields: how many ``HYPERVISOR_yield`` calls without progress count as a hang.
    """

    xbd_enable_indirect: int = 1
    maxphys: int = MAXPHYS_DEFAULT
    hvm_domain: bool = False
    pv_disks_disabled: bool = False
    mutex_recursion_fatal: bool = True
    max_yields: int = 10_000


@dataclass(frozen=True, slots=True)
class Fixes:
    """Opt-in departures from the seed, one per finding of ``docs/findings/``.

    Every field is named after the finding it fixes (``ring-page-order-shift`` ->
    ``ring_page_order_shift``) and is off by default: the port then behaves as the seed
    does, defects included.  :meth:`all` turns every fix on (the ``reference-fixed``
    profile); :meth:`only` turns on the named ones.  The catalogue
    (:mod:`xbdspec.findings.catalogue`) explains each finding and its fix.
    """

    # found by the differential test against the model
    flush_without_support_panics: bool = False
    stale_features_after_resume: bool = False
    resume_loses_ready_write: bool = False
    suspend_ignores_deferred_mappings: bool = False
    deferred_single_step_unpublished: bool = False
    failed_mapping_leaks: bool = False
    mapping_failure_stops_loop: bool = False
    unsupported_bio_leaks_grants: bool = False
    unsupported_bio_waits_for_a_command: bool = False
    rejected_bio_stops_loop: bool = False
    resume_cancelled_does_not_restart: bool = False
    resume_cancelled_connects_unconnected: bool = False
    stranded_bios_on_disk_gone: bool = False
    # found by the proofs of the negotiation and naming arithmetic
    ring_page_order_shift: bool = False
    sector_size_division_by_zero: bool = False
    sector_size_unchecked: bool = False
    media_size_overflow: bool = False
    indirect_pages_before_clamp: bool = False
    vdevice_name_collision: bool = False
    # found on the reference with hostile or failing platform inputs
    blank_xenstore_value_uninitialised: bool = False
    response_id_trusted: bool = False
    io_lock_recursion: bool = False
    ring_grant_references_leak: bool = False
    indirect_pages_partial_allocation: bool = False
    no_commands_after_shadow_failure: bool = False
    close_clears_open_flag: bool = False
    barrier_data_granted_writable: bool = False
    ordered_write_indirect_barrier: bool = False
    barrier_write_not_synced: bool = False
    request_sectors_in_device_units: bool = False
    media_size_in_sector_units: bool = False
    dump_ebusy_strands_ready: bool = False
    # found with the device's life beyond one attach (newbus, GEOM, the tool stack)
    suspend_rollback_frees_ring: bool = False
    backend_closed_ignored: bool = False
    detach_leaves_disk: bool = False
    read_only_disk_writable: bool = False

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every fix, as the finding it is named after (kebab-case)."""
        return tuple(f.replace("_", "-") for f in cls.__dataclass_fields__)

    @classmethod
    def all(cls) -> Fixes:
        """Every fix on: the ``reference-fixed`` profile."""
        return cls(**{f: True for f in cls.__dataclass_fields__})

    @classmethod
    def only(cls, *findings: str) -> Fixes:
        """The fixes of the named findings (kebab- or snake-case) on, the others off.

        Raises:
            ValueError: a name that is no finding's fix.
        """
        fields = {}
        for name in findings:
            field_name = name.replace("-", "_")
            if field_name not in cls.__dataclass_fields__:
                raise ValueError(f"no fix is named {name!r}; fixes: {', '.join(cls.names())}")
            fields[field_name] = True
        return cls(**fields)

    def enabled(self) -> tuple[str, ...]:
        """The findings whose fix is on (kebab-case)."""
        return tuple(f.replace("_", "-") for f in self.__dataclass_fields__ if getattr(self, f))


def toolstack_nodes(
    front: str, back: str, vdevice: int | str, guest_domid: int, backend_domid: int
) -> dict[str, str]:
    """The xenstore nodes the tool stack creates for a new disk (both ends
    ``Initialising``), by path: what every simulated platform, the reference's and the
    compiled seed's, writes at plug time."""
    initialising = str(int(XenbusState.Initialising))
    return {
        f"{front}/virtual-device": str(vdevice),
        f"{front}/backend": back,
        f"{front}/backend-id": str(backend_domid),
        f"{front}/device-type": "disk",
        f"{front}/state": initialising,
        f"{back}/frontend": front,
        f"{back}/frontend-id": str(guest_domid),
        f"{back}/online": "1",
        f"{back}/state": initialising,
    }


class YieldPolicy(Enum):
    """What the back end does when the front end calls ``HYPERVISOR_yield`` (dump path)."""

    RESPOND_ALL = "respond-all"
    NOTHING = "nothing"


class Platform:
    """The simulated machine: xenstore, grants, event channels, DMA, memory, a back end.

    Attributes:
        dev: the front-end device (after :meth:`plug`).
        log: every line the kernel printed.
        completed: bios in the order ``biodone`` saw them.
        xen_suspend_cancelled: the kernel global ``xen_suspend_cancelled``.
        sleep_channel / sleep_woken: the channel a sleeper waits on, and whether a
            ``wakeup`` reached it.
        malloc_failures: allocation site -> countdown (0 = the next allocation fails);
            sites: ``sring``, ``shadow``, ``sg_refs``, ``contigmalloc``.
    """

    def __init__(
        self,
        *,
        tunables: Tunables | None = None,
        fixes: Fixes | None = None,
        backend_config: BackendConfig | None = None,
        grant_frames: int = 4,
        ring_index_start: int = 0,
        vdevice: int | str = 51712,
        devid: int = 51712,
        guest_domid: int = 1,
        backend_domid: int = 0,
    ) -> None:
        self.tunables = tunables if tunables is not None else Tunables()
        self.fixes = fixes if fixes is not None else Fixes()
        self.xenstore = XenStore()
        self.gnttab = GrantTable(grant_frames * GREFS_PER_GRANT_FRAME)
        self.mem = PhysMem()
        self.evtchn = EventChannels()
        self.busdma = BusDma()
        self.ring_index_start = ring_index_start
        self.vdevice = vdevice
        self.devid = devid
        self.guest_domid = guest_domid
        self.backend_domid = backend_domid
        self.front_path = f"device/vbd/{devid}"
        self.back_path = f"/local/domain/{backend_domid}/backend/vbd/{guest_domid}/{devid}"
        self.backend = Backend(
            self,
            self.back_path,
            self.front_path,
            backend_domid,
            guest_domid,
            backend_config if backend_config is not None else BackendConfig(),
        )
        self.dev: XenbusDevice | None = None
        self.log: list[str] = []
        self.completed: list[Bio] = []
        self.disks: list[Disk] = []
        self.units: dict[str, set[int]] = {}
        self.next_disk_address = 0xFFFF_F800_0A00_0000
        self.xen_suspend_cancelled = False
        self.sleep_channel: str | None = None
        self.sleep_woken = False
        self.wakeups = 0
        self.yields = 0
        self.yield_policy = YieldPolicy.RESPOND_ALL
        self.disk_resize_error = 0
        self.malloc_failures: dict[str, int] = {}
        #: softcs newbus freed after a successful ``DEVICE_DETACH``
        #: (:func:`~xbdspec.reference.newbus.xenbusb_delete_child`)
        self.freed_softcs: list[Softc] = []

    # ------------------------------------------------------------------ kernel services
    def printf(self, message: str) -> None:
        """Kernel ``printf``."""
        self.log.append(message)

    def device_printf(self, dev: XenbusDevice, message: str) -> None:
        """``device_printf``."""
        self.log.append(f"xbd{dev.unit}: {message}")

    def biodone(self, bp: Bio) -> None:
        """``biodone``: record the completion (twice is recorded too, never hidden)."""
        bp.done_count += 1
        bp.bio_flags |= BIO_DONE
        self.completed.append(bp)

    def biofinish(self, bp: Bio, error: int) -> None:
        """``biofinish(bp, NULL, error)``."""
        bp.bio_error = error
        bp.bio_flags |= BIO_ERROR
        bp.bio_resid = bp.bio_bcount
        self.biodone(bp)

    def disk_err(self, bp: Bio, message: str) -> None:
        """``disk_err``: log the failing bio."""
        self.log.append(f"{message} cmd={bp.bio_cmd} blkno={bp.bio_pblkno}")

    def disk_alloc(self) -> Disk:
        """``disk_alloc``: a zeroed ``struct disk`` at a deterministic address."""
        disk = Disk(self.next_disk_address, self)
        self.next_disk_address += 0x400
        return disk

    def disk_create(self, disk: Disk) -> None:
        """``disk_create``."""
        disk.created = True
        self.disks.append(disk)

    def disk_destroy(self, disk: Disk) -> None:
        """``disk_destroy``."""
        disk.destroyed = True

    def disk_gone(self, disk: Disk) -> None:
        """``disk_gone``."""
        disk.gone = True

    def disk_resize(self, disk: Disk) -> int:
        """``disk_resize(disk, M_NOWAIT)``: 0 or the injected error."""
        error, self.disk_resize_error = self.disk_resize_error, 0
        return error

    def malloc_fails(self, site: str) -> bool:
        """Does this ``malloc(..., M_NOWAIT)`` at ``site`` fail (fault injection)?"""
        countdown = self.malloc_failures.get(site)
        if countdown is None:
            return False
        if countdown == 0:
            del self.malloc_failures[site]
            return True
        self.malloc_failures[site] = countdown - 1
        return False

    def device_set_unit(self, dev: XenbusDevice, unit: int) -> int:
        """``device_set_unit``: ``EEXIST`` if another ``xbd`` already has that unit."""
        used = self.units.setdefault("xbd", set())
        if unit in used:
            self.log.append(f"device_set_unit: xbd{unit} already in use")
            return EEXIST
        used.add(unit)
        dev.unit = unit
        return 0

    def msleep(self, channel: str) -> None:
        """``msleep``: the caller now waits on ``channel``."""
        self.sleep_channel = channel
        self.sleep_woken = False

    def wakeup(self, channel: str) -> None:
        """``wakeup``: mark a sleeper on ``channel`` runnable."""
        self.wakeups += 1
        if self.sleep_channel == channel:
            self.sleep_woken = True

    def hypervisor_yield(self) -> None:
        """``HYPERVISOR_yield``: the back end gets to run, as ``yield_policy`` says."""
        self.yields += 1
        if self.yields > self.tunables.max_yields:
            raise KernelHang(
                "HYPERVISOR_yield",
                f"yielded {self.yields} times and the busy queue never drained",
            )
        if self.yield_policy is YieldPolicy.RESPOND_ALL:
            self.backend.fetch()
            self.backend.respond_all()

    # ------------------------------------------------------------------ tool stack
    def plug(self) -> XenbusDevice:
        """The tool stack creates the front and back nodes (both ``Initialising``)."""
        front, back = self.front_path, self.back_path
        for path, value in toolstack_nodes(
            front, back, self.vdevice, self.guest_domid, self.backend_domid
        ).items():
            self.xenstore.write(path, value)
        dev = XenbusDevice(self, front, back, self.backend_domid)
        dev.softc = Softc(self)
        self.dev = dev
        return dev

    def toolstack_remove(self, *, front: bool = True, back: bool = True) -> None:
        """The tool stack removes the device's nodes without waiting for Closed (``xl
        block-detach --force``, or a back end torn down under the guest): the back end's
        directory (its ``state`` watch fires; ``xenbus_read_driver_state`` then reads
        Closed) and the front end's (xenbusb deletes the child when the test runs
        :func:`~xbdspec.reference.newbus.xenbusb_verify_device`)."""
        if back:
            self.xenstore.unregister_watch(BACK_WATCH)  # the back end goes with its node
            self.xenstore.remove(self.back_path)
            self.backend.ring = None
            self.backend.pending = []
        if front:
            self.xenstore.remove(self.front_path)

    def register_watches(self) -> None:
        """Xenbus watches the back end's ``state``; the back end watches the front's."""
        self.xenstore.register_watch(f"{self.back_path}/state", FRONT_WATCH)
        self.xenstore.register_watch(f"{self.front_path}/state", BACK_WATCH)

    def deliver_watch(self) -> bool:
        """Deliver the oldest pending watch event; False if there was none."""
        backend_changed = xbd_methods().otherend_changed
        token = self.xenstore.next_event()
        if token is None:
            return False
        if token == FRONT_WATCH and self.dev is not None:
            state = xenbus_read_driver_state(self.dev, self.back_path)
            backend_changed(self.dev, state)
        elif token == BACK_WATCH:
            self.backend.on_frontend_changed()
        return True

    def settle(self, limit: int = 1000) -> int:
        """Deliver watch events until none is pending; returns how many ran."""
        count = 0
        while self.deliver_watch():
            count += 1
            if count > limit:
                raise KernelHang("xenwatch", f"more than {limit} watch events without rest")
        return count

    def boot(self) -> XenbusDevice:
        """Plug, probe, attach and run the handshake to ``Connected`` on both sides.

        Raises :class:`KernelHang` if the front end does not attach (probe or attach
        failed); inspect :attr:`log` for why.
        """
        methods = xbd_methods()
        dev = self.plug()
        if methods.probe(dev) != 0:
            raise KernelHang("boot", "xbd_probe declined the device")
        if methods.attach(dev) != 0:
            raise KernelHang("boot", "xbd_attach failed")
        self.register_watches()
        self.backend.start()
        self.settle()
        return dev

    def deliver_interrupt(self) -> bool:
        """Run the front end's interrupt handler if the back end notified it."""
        return self.evtchn.deliver()

    def resume_device(self) -> int:
        """``xenbusb_resume`` for our device: new back-end watch, ``Initialising``, resume."""
        from .xenbus import xenbus_set_state

        resume = xbd_methods().resume
        dev = self.dev
        if dev is None:
            return 0
        if self.xen_suspend_cancelled:
            return resume(dev)
        self.xenstore.unregister_watch(FRONT_WATCH)
        xenbus_set_state(dev, XenbusState.Initialising)
        result = resume(dev)
        self.xenstore.register_watch(f"{self.back_path}/state", FRONT_WATCH)
        return result

    def softc(self) -> Softc:
        """The driver instance of the plugged device."""
        if self.dev is None or self.dev.softc is None:
            raise KernelHang("softc", "no device plugged")
        return self.dev.softc
