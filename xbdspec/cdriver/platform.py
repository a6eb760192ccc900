"""The harness-driven platform of the compiled seed (:class:`CPlatform`).

It owns xenstore and the back end's handshake (the key lists come from
:class:`xbdspec.reference.BackendConfig`), and the test decides every event: watch
deliveries, the interrupt, each bus_dma load, grant shortages, the back end's responses
(order and status), ``msleep`` time-outs.  A ``panic``, a ``KASSERT`` failure, a recursion
on the I/O mutex, a detected undefined behaviour (SIGFPE, ``TAILQ_REMOVE`` of an unlinked
element) or a hang comes back as :class:`~.binding.CDriverFault` with the reference's
fault names (``KernelPanic``, ``KernelAssertion``, ``UndefinedBehaviour``, ``KernelHang``).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xbdspec.errors import XbdspecError
from xbdspec.reference import BackendConfig
from xbdspec.reference.backend import BACKEND_KEYS
from xbdspec.reference.platform import toolstack_nodes

from .binding import (
    _LOG,
    _MSLEEP,
    _XS_READ,
    _XS_WRITE,
    _YIELD,
    DMA_MODES,
    EWOULDBLOCK,
    FAULT_KINDS,
    SOFTC_FIELDS,
    CDriverFault,
    _load,
)
from .build import BuildResult

FRONT_WATCH = "front"  # xenbus's watch on the back end's state -> xbd_backend_changed
BACK_WATCH = "back"  # the back end's watch on the front end's state

#: the live platform of each library (the shim has one driver instance per library)
_OWNER: dict[Path, CPlatform] = {}


@dataclass(frozen=True)
class BioStatus:
    """A bio as ``biodone`` left it."""

    done_count: int
    bio_error: int
    bio_flags: int
    bio_resid: int


@dataclass(frozen=True)
class BackendRequest:
    """A request the back end took off the ring (``blkif_request`` as published)."""

    id: int
    operation: int
    io_op: int
    sector_number: int
    nr_segments: int
    handle: int
    grefs: tuple[int, ...]
    malformed: bool


@dataclass
class XenStoreLog:
    """The harness's xenstore: values, successful writes in order, pending watch tokens."""

    values: dict[str, str] = field(default_factory=dict)
    writes: list[tuple[str, str]] = field(default_factory=list)
    watches: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    write_errors: dict[str, int] = field(default_factory=dict)

    def write(self, path: str, value: str) -> int:
        """Write; fire watches (coalesced per token, as the reference does)."""
        error = self.write_errors.pop(path, 0)
        if error:
            return error
        self.values[path] = value
        self.writes.append((path, value))
        for token, watched in self.watches.items():
            if (path == watched or path.startswith(watched + "/")) and token not in self.pending:
                self.pending.append(token)
        return 0

    def register_watch(self, path: str, token: str) -> None:
        """Register; one initial event, as xenstored sends."""
        self.watches[token] = path
        if token not in self.pending:
            self.pending.append(token)


class CPlatform:
    """The compiled driver on a harness-driven platform (one live instance per library).

    The public methods are the environment's events; none runs anything the test did not ask
    for, except what the C driver itself calls synchronously.
    """

    def __init__(
        self,
        built: BuildResult,
        *,
        backend_config: BackendConfig | None = None,
        grant_frames: int = 4,
        vdevice: int | str = 51712,
        devid: int = 51712,
        guest_domid: int = 1,
        backend_domid: int = 0,
        hvm_domain: bool = False,
        pv_disks_disabled: bool = False,
        mutex_recursion_fatal: bool = True,
        maxphys: int = 1024 * 1024,
        max_yields: int = 10_000,
        xbd_enable_indirect: int = 1,
    ) -> None:
        self.built = built
        self.lib = _load(built.library)
        self.config = backend_config if backend_config is not None else BackendConfig()
        self.vdevice = vdevice
        self.devid = devid
        self.guest_domid = guest_domid
        self.backend_domid = backend_domid
        self.front_path = f"device/vbd/{devid}"
        self.back_path = f"/local/domain/{backend_domid}/backend/vbd/{guest_domid}/{devid}"
        self.xenstore = XenStoreLog()
        self.log: list[str] = []
        self.backend_state = 1
        self.backend_errors: list[str] = []
        self.callback_errors: list[BaseException] = []
        #: answers of msleep, in order (0 = woken, EWOULDBLOCK = timed out); default timeout
        self.msleep_answers: list[int] = []
        #: run before each msleep answer (e.g. let the back end answer and interrupt)
        self.on_msleep: Callable[[], None] | None = None
        self.respond_on_yield = True
        self.bios: list[int] = []
        #: the dumper's buffers (:meth:`dump`), kept as long as the driver may use them
        self.dump_buffers: list[ctypes.Array[ctypes.c_char]] = []
        _OWNER[built.library] = self
        self._keep = (
            _XS_READ(self._xs_read),
            _XS_WRITE(self._xs_write),
            _LOG(self._log),
            _MSLEEP(self._msleep),
            _YIELD(self._yield),
        )
        lib = self.lib
        lib.xbd_h_reset(grant_frames * 512)
        lib.xbd_h_set_callbacks(*self._keep)
        lib.xbd_h_set_tunables(
            int(hvm_domain),
            int(pv_disks_disabled),
            int(mutex_recursion_fatal),
            maxphys,
            max_yields,
            0,
        )
        lib.xbd_h_tunable_enable_indirect()[0] = xbd_enable_indirect
        lib.xbd_h_be_configure(
            self.config.sectors, backend_domid, int(self.config.barrier), int(self.config.flush)
        )

    # ------------------------------------------------------------------ callbacks from C
    def _guard(self) -> None:
        if _OWNER.get(self.built.library) is not self:
            raise XbdspecError("this CPlatform was replaced by a newer one on the same library")

    def _xs_read(self, path: bytes, buf: int, buflen: int) -> int:
        try:
            value = self.xenstore.values.get(path.decode())
            if value is None:
                return -1
            data = value.encode()[: buflen - 1]
            ctypes.memmove(buf, data, len(data))
            return len(data)
        except BaseException as exc:
            self.callback_errors.append(exc)
            return -1

    def _xs_write(self, path: bytes, value: bytes) -> int:
        try:
            return self.xenstore.write(path.decode(), value.decode())
        except BaseException as exc:
            self.callback_errors.append(exc)
            return 5

    def _log(self, line: bytes) -> None:
        self.log.append(line.decode(errors="replace"))

    def _msleep(self) -> int:
        try:
            if self.on_msleep is not None:
                self.on_msleep()
            return self.msleep_answers.pop(0) if self.msleep_answers else EWOULDBLOCK
        except BaseException as exc:
            self.callback_errors.append(exc)
            return EWOULDBLOCK

    def _yield(self) -> None:
        try:
            if self.respond_on_yield:
                self.backend_fetch()
                self.respond_all()
        except BaseException as exc:
            self.callback_errors.append(exc)

    # ------------------------------------------------------------------ calling the driver
    def _call(self, where: str, kind: int) -> None:
        if self.callback_errors:
            error = self.callback_errors.pop(0)
            raise XbdspecError(f"a harness callback failed during {where}: {error!r}") from error
        if kind > 0:
            message = (self.lib.xbd_h_fault_message() or b"").decode(errors="replace")
            raise CDriverFault(FAULT_KINDS.get(kind, f"fault{kind}"), message, where)

    @property
    def last_result(self) -> int:
        """The return value of the last driver method called (probe, attach, ...)."""
        return int(self.lib.xbd_h_last_result())

    # ------------------------------------------------------------------ tool stack
    def plug(self) -> None:
        """The tool stack creates both nodes (``Initialising``) and the device."""
        front, back = self.front_path, self.back_path
        for path, value in toolstack_nodes(
            front, back, self.vdevice, self.guest_domid, self.backend_domid
        ).items():
            self.xenstore.write(path, value)
        self.lib.xbd_h_plug(front.encode(), back.encode(), self.backend_domid, b"vbd")

    def probe(self) -> int:
        """``xbd_probe``; its return value."""
        self._call("xbd_probe", self.lib.xbd_h_probe())
        return self.last_result

    def attach(self) -> int:
        """``xbd_attach``; its return value."""
        self._call("xbd_attach", self.lib.xbd_h_attach())
        return self.last_result

    def register_watches(self) -> None:
        """Xenbus watches the back end's state; the back end watches the front end's."""
        self.xenstore.register_watch(f"{self.back_path}/state", FRONT_WATCH)
        self.xenstore.register_watch(f"{self.front_path}/state", BACK_WATCH)

    def deliver_watch(self) -> bool:
        """Deliver the oldest pending watch event; False if none."""
        if not self.xenstore.pending:
            return False
        token = self.xenstore.pending.pop(0)
        if token == FRONT_WATCH:
            self.backend_changed(self._read_state(self.back_path))
        elif token == BACK_WATCH:
            self.on_frontend_changed()
        return True

    def settle(self, limit: int = 1000) -> int:
        """Deliver watch events until none is pending."""
        count = 0
        while self.deliver_watch():
            count += 1
            if count > limit:
                raise CDriverFault("KernelHang", f"more than {limit} watch events", "xenwatch")
        return count

    def boot(self) -> None:
        """Plug, probe, attach, run the handshake to ``Connected`` on both sides."""
        self.plug()
        if self.probe() != 0:
            raise CDriverFault("KernelHang", "xbd_probe declined the device", "boot")
        if self.attach() != 0:
            raise CDriverFault("KernelHang", "xbd_attach failed", "boot")
        self.register_watches()
        self.backend_start()
        self.settle()

    def backend_changed(self, state: int) -> None:
        """``xbd_backend_changed(dev, state)`` (the watch on the back end's state fired)."""
        self._call(f"xbd_backend_changed({state})", self.lib.xbd_h_backend_changed(int(state)))

    def _read_state(self, node: str) -> int:
        text = self.xenstore.values.get(f"{node}/state")
        try:
            return int((text or "").strip())
        except ValueError:
            return 6

    # ------------------------------------------------------------------ the back end's handshake
    def _back_write(self, key: str, value: str | None) -> None:
        path = f"{self.back_path}/{key}"
        if value is None:
            self.xenstore.values.pop(path, None)
        else:
            self.xenstore.write(path, value)

    def backend_set_state(self, state: int) -> None:
        """The back end switches state (writes its ``state`` key)."""
        self.backend_state = int(state)
        self._back_write("state", str(int(state)))

    def backend_start(self) -> None:
        """Publish features and limits, then ``InitWait``."""
        for key, value in self.config.initwait_keys().items():
            self._back_write(key, value)
        self.backend_set_state(2)

    def on_frontend_changed(self) -> None:
        """The back end's watch on the front end's state fired."""
        front = self._read_state(self.front_path)
        if front in (3, 4) and self.backend_state in (1, 2):
            self.backend_connect_ring()
        elif front == 5 and self.backend_state not in (5, 6):
            self.backend_set_state(5)
        elif front == 6 and self.backend_state == 5:
            self.lib.xbd_h_be_disconnect()
            self.backend_set_state(6)

    def _front_uint(self, key: str) -> int | None:
        text = self.xenstore.values.get(f"{self.front_path}/{key}")
        try:
            return int(text) if text is not None else None
        except ValueError:
            return None

    def backend_connect_ring(self) -> None:
        """Read the transport keys, map the ring, publish the disk, ``Connected``."""
        order = self._front_uint("ring-page-order")
        pages = (
            1 << order
            if order is not None and order < 16
            else (self._front_uint("num-ring-pages") or 1)
        )
        ref = self._front_uint("ring-ref") if pages == 1 else self._front_uint("ring-ref0")
        if ref is None:
            ref = self._front_uint("ring-ref0")
        if ref is None or self._front_uint("event-channel") is None:
            self.backend_errors.append("reading ring-ref / event-channel")
            self.backend_set_state(5)
            return
        if self.lib.xbd_h_be_connect(ref, pages) != 0:
            self.backend_errors.append("mapping ring-ref")
            self.backend_set_state(5)
            return
        for key, value in self.config.connected_keys().items():
            self._back_write(key, value)
        self.backend_set_state(4)

    # ------------------------------------------------------------------ the data path
    def strategy(
        self,
        cmd: int = 1,
        pblkno: int = 0,
        nbytes: int = 4096,
        *,
        flags: int = 0,
        data: bytes | None = None,
        page_offset: int = 0,
    ) -> int:
        """A new bio handed to ``xbd_strategy`` (BIO_READ=1, BIO_WRITE=2, BIO_FLUSH=5); its id."""
        bio = self.lib.xbd_h_bio_new(cmd, flags, pblkno, nbytes, page_offset)
        if bio < 0:
            raise XbdspecError("the shim's bio table is full (65536 bios per platform)")
        if data is not None:
            ctypes.memmove(self.lib.xbd_h_bio_data(bio), data[:nbytes], min(len(data), nbytes))
        self.bios.append(bio)
        kind = self.lib.xbd_h_strategy(bio)
        if kind < 0:
            raise XbdspecError("xbd_strategy: the driver has no disk yet (boot first)")
        self._call(f"xbd_strategy(bio={bio})", kind)
        return int(bio)

    def bio_data(self, bio: int, nbytes: int) -> bytes:
        """The bio's buffer."""
        return ctypes.string_at(self.lib.xbd_h_bio_data(bio), nbytes)

    def bio(self, bio: int) -> BioStatus:
        """A bio's completion status."""
        out = (ctypes.c_long * 4)()
        self.lib.xbd_h_bio_status(bio, out)
        return BioStatus(*(int(v) for v in out))

    def completed(self) -> list[int]:
        """Bio ids in the order ``biodone`` saw them."""
        count = int(self.lib.xbd_h_completed(None, 0))
        out = (ctypes.c_int * max(count, 1))()
        self.lib.xbd_h_completed(out, count)
        return [int(out[i]) for i in range(count)]

    def deliver_interrupt(self, force: bool = False) -> bool:
        """Run ``xbd_int`` if the back end notified the front end (or ``force``)."""
        kind = self.lib.xbd_h_deliver_interrupt(int(force))
        if kind < 0:
            return False
        self._call("xbd_int", kind)
        return True

    def backend_fetch(self) -> int:
        """The back end takes every published request; how many."""
        return int(self.lib.xbd_h_be_fetch())

    def pending(self) -> list[BackendRequest]:
        """The requests the back end holds, oldest first."""
        out = (ctypes.c_uint64 * 8)()
        grefs = (ctypes.c_uint32 * 4096)()
        requests = []
        for i in range(self.lib.xbd_h_be_pending()):
            self.lib.xbd_h_be_describe(i, out, grefs, 4096)
            nseg = int(out[6])
            requests.append(
                BackendRequest(
                    int(out[0]),
                    int(out[1]),
                    int(out[2]),
                    int(out[3]),
                    int(out[4]),
                    int(out[5]),
                    tuple(int(grefs[k]) for k in range(min(nseg, 4096))),
                    bool(out[7]),
                )
            )
        return requests

    def respond(self, index: int = 0, status: int | None = None, push: bool = True) -> int:
        """Answer pending request ``index`` (performing it unless ``status`` is forced)."""
        result = self.lib.xbd_h_be_respond(index, int(status is not None), status or 0, int(push))
        if result == -100:
            raise XbdspecError(f"the back end has no pending request {index}")
        return int(result)

    def respond_all(self, order: list[int] | None = None) -> int:
        """Answer every pending request (in ``order`` of indices if given), one push."""
        count = self.lib.xbd_h_be_pending()
        indices = list(range(count)) if order is None else list(order)
        # respond() removes from the pending list: answer by shifting indices
        remaining = list(range(count))
        for index in indices:
            self.respond(remaining.index(index), push=False)
            remaining.remove(index)
        if count:
            self.lib.xbd_h_be_push()
        return int(count)

    def push(self) -> bool:
        """Publish written responses; True if the front end was notified."""
        return bool(self.lib.xbd_h_be_push())

    def raw_response(self, req_id: int, operation: int = 0, status: int = 0) -> None:
        """A hostile back end's response with any id, pushed."""
        self.lib.xbd_h_be_raw_response(req_id, operation, status)

    def disk(self, offset: int, nbytes: int) -> bytes:
        """The back end's RAM disk."""
        return ctypes.string_at(self.lib.xbd_h_be_disk() + offset, nbytes)

    # ------------------------------------------------------------------ environment choices
    def dma_next(self, *modes: str) -> None:
        """The outcomes of the next bus_dma loads, in order (then IMMEDIATE)."""
        for mode in modes:
            self.lib.xbd_h_dma_push_mode(DMA_MODES[mode])

    def run_deferred(self, index: int = 0, error: int = 0) -> bool:
        """Run deferred load ``index``'s callback (``error``: a late failure)."""
        kind = self.lib.xbd_h_run_deferred(index, error)
        if kind < 0:
            return False
        self._call(f"bus_dma callback (deferred load {index})", kind)
        return True

    def deferred_count(self) -> int:
        """Loads waiting for their callback."""
        return int(self.lib.xbd_h_dma_deferred_count())

    def grants_take(self, count: int) -> None:
        """Another user takes ``count`` grant references (a shortage for the driver)."""
        if self.lib.xbd_h_gnttab_take(count) != 0:
            raise XbdspecError(
                f"cannot take {count} grant references: only {self.grant_free_count()} free"
            )

    def grants_give_back(self) -> None:
        """...and returns them (the free callbacks run)."""
        self._call("gnttab_free_grant_references", self.lib.xbd_h_gnttab_give_back())

    def grant_free_count(self) -> int:
        """``gnttab_free_count``."""
        return int(self.lib.xbd_h_gnttab_free_count())

    def counter(self, name: str) -> int:
        """Event-channel and kernel counters."""
        names = [
            "to_backend",
            "to_frontend",
            "delivered",
            "pending",
            "port",
            "wakeups",
            "yields",
            "io_lock_recursions",
        ]
        return int(self.lib.xbd_h_evtchn_counter(names.index(name)))

    # ------------------------------------------------------------------ other entry points
    def open(self) -> int:
        """``xbd_open``."""
        self._call("xbd_open", self.lib.xbd_h_open())
        return self.last_result

    def close(self) -> int:
        """``xbd_close``."""
        self._call("xbd_close", self.lib.xbd_h_close())
        return self.last_result

    def dump(self, length: int, offset: int = 0, fill: bytes = b"\xd0") -> int:
        """The kernel dumper's ``d_dump`` (``xbd_dump``) of ``length`` bytes of ``fill``
        at byte ``offset``, on a stopped system: the back end answers at each
        ``HYPERVISOR_yield`` (:attr:`respond_on_yield`) and, with deferred free callbacks,
        each ready one runs after each ``xbd_int`` (the shim's ``xbd_h_dump_polled``).
        ``xbd_dump``'s result.  The dumper's page-aligned buffer stays alive with this
        platform: chunks the seed strands on READY are sent from it later."""
        raw = ctypes.create_string_buffer(length + 4096)
        address = (ctypes.addressof(raw) + 4095) & ~4095
        ctypes.memmove(address, (fill * (length // max(len(fill), 1) + 1))[:length], length)
        self.dump_buffers.append(raw)
        kind = self.lib.xbd_h_dump_polled(address, offset, length)
        if kind < 0:
            raise XbdspecError("xbd_dump: the driver has no disk yet (boot first)")
        self._call("xbd_dump", kind)
        return self.last_result

    def suspend(self) -> int:
        """``xbd_suspend`` (``msleep`` answers from :attr:`msleep_answers`)."""
        self._call("xbd_suspend", self.lib.xbd_h_suspend())
        return self.last_result

    def suspend_start(self) -> int | None:
        """``xbd_suspend`` on its own stack: its result, or ``None`` while it sleeps in
        ``msleep`` (continue it with :meth:`suspend_continue`)."""
        kind = self.lib.xbd_h_sleeper_start()
        if kind == -3:
            raise XbdspecError("xbd_suspend is already sleeping")
        if kind == -2:
            return None
        self._call("xbd_suspend", kind)
        return self.last_result

    def suspend_continue(self, timed_out: bool) -> int | None:
        """The sleeping ``xbd_suspend``'s ``msleep`` returns (woken, or ``EWOULDBLOCK``)."""
        kind = self.lib.xbd_h_sleeper_continue(EWOULDBLOCK if timed_out else 0)
        if kind == -3:
            raise XbdspecError("xbd_suspend is not sleeping")
        if kind == -2:
            return None
        self._call("xbd_suspend (after msleep)", kind)
        return self.last_result

    @property
    def sleeping(self) -> bool:
        """``xbd_suspend`` sleeps in ``msleep``."""
        return bool(self.lib.xbd_h_sleeper_state(0))

    @property
    def sleeper_woken(self) -> bool:
        """A ``wakeup`` reached the sleeper since it went to sleep."""
        return bool(self.lib.xbd_h_sleeper_state(1))

    def backend_reset(self) -> None:
        """A fresh back end (resume on another host): keys gone, ring gone, Initialising."""
        for key in BACKEND_KEYS:
            self.xenstore.values.pop(f"{self.back_path}/{key}", None)
        self.lib.xbd_h_be_disconnect()
        self.backend_set_state(1)

    def detach(self) -> int:
        """``xbd_detach`` (``DEVICE_DETACH``, as ``device_delete_child`` calls it when
        xenbusb finds the front-end node gone); its return value."""
        self._call("xbd_detach", self.lib.xbd_h_detach())
        return self.last_result

    def resume(self) -> int:
        """``xbd_resume`` (``DEVICE_RESUME`` called directly, as ``bus_generic_suspend``'s
        rollback calls it: the device's xenbus state is left as it is)."""
        self._call("xbd_resume", self.lib.xbd_h_resume())
        return self.last_result

    def sysctl_features(self) -> str:
        """``hw.xbd.N.features``."""
        buf = ctypes.create_string_buffer(80)
        self._call("xbd_sysctl_features", self.lib.xbd_h_sysctl_features(buf, 80))
        return buf.value.decode()

    # ------------------------------------------------------------------ observations
    def softc(self) -> dict[str, int]:
        """The softc's fields (:data:`SOFTC_FIELDS`)."""
        out = (ctypes.c_long * len(SOFTC_FIELDS))()
        if self.lib.xbd_h_softc(out) != 0:
            raise XbdspecError("no device plugged")
        return {name: int(out[i]) for i, name in enumerate(SOFTC_FIELDS)}

    def command_flags(self) -> list[int]:
        """Each command's ``cm_flags`` (its queue in the low byte)."""
        out = (ctypes.c_long * 2048)()
        n = self.lib.xbd_h_commands(out, 2048)
        return [int(out[i]) for i in range(min(n, 2048))]

    def front_writes(self) -> list[tuple[str, str]]:
        """The xenstore writes under the front end's node (and ``error/``)."""
        return [(p, v) for p, v in self.xenstore.writes if not p.startswith(self.back_path)]
