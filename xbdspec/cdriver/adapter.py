"""The compiled seed behind ``xbdspec.conformance``'s :class:`Implementation` contract
(:class:`CDriverImplementation`; ``xbdspec difftest --impl xbdspec.cdriver:implementation``),
run in lock-step with the reference driver as its twin."""

from __future__ import annotations

from typing import Any

from xbdspec.errors import XbdspecError
from xbdspec.reference import BackendConfig
from xbdspec.reference.constants import XbdState

from .binding import CDriverFault
from .build import BuildResult, build
from .platform import BACK_WATCH, FRONT_WATCH, CPlatform

#: Model events the C adapter does not offer: none (the kernel dumper's ``dump`` runs the
#: seed's ``xbd_dump`` through the shim's ``xbd_h_dump_polled``; ``xbd_suspend`` sleeps on
#: its own stack).  Kept so that a new model event can be declared unsupported here.
C_UNSUPPORTED_EVENTS: frozenset[str] = frozenset()
_EVENTS: frozenset[str] = frozenset(
    {
        "unplug",
        "backend_publish",
        "backend_skip_initwait",
        "frontend_watch",
        "backend_offline",
        "backend_consume",
        "backend_respond",
        "backend_watch",
        "open",
        "close",
        "strategy",
        "interrupt",
        "dma_callback",
        "dma_callback_error",
        "grants_returned",
        "suspend",
        "suspend_drained",
        "suspend_timeout",
        "resume",
        "dump",
    }
)


class CDriverImplementation:
    """The compiled seed behind ``xbdspec.conformance``'s :class:`Implementation` contract.

    The C driver runs in lock-step with the reference driver under the same environment
    (the same size restrictions as ``ReferenceImplementation``: commands cut by
    ``bus_dmamap_create`` failing, the ring's entries set to the model's slots, a grant
    pool of the model's size with the ring granted from a reserve, free callbacks deferred
    to the ``grants_returned`` event, one page a bio).  After every event the two must show
    the same concrete observations (:func:`concrete_view`); the model's abstract state is
    then the reference's refinement mapping.  A difference is reported as a fault naming
    the first differing field, so the harness stops on it.
    """

    def __init__(self, built: BuildResult | None = None) -> None:
        from xbdspec.conformance.reference_adapter import ReferenceImplementation

        self.built = built if built is not None else build()
        self.ref = ReferenceImplementation(name="reference (twin of the C driver)")
        self.c: CPlatform | None = None
        self.sizes: Any = None
        self.taken: set[int] = set()
        self.ring_token = 0
        self.bio_ids: dict[int, int] = {}
        self.fault: str | None = None
        self.steps = 0
        #: ``xbd_dump``'s last result on the C driver (``None``: no dump yet)
        self.dump_rc: int | None = None

    def capabilities(self) -> Any:
        import dataclasses as dc

        caps = self.ref.capabilities()
        return dc.replace(caps, name="c-driver", events=_EVENTS - caps.refuses)

    def preferred_sizes(self) -> Any:
        """The reference's sizes (the C driver runs under the same restrictions)."""
        return self.ref.preferred_sizes()

    def reset(self, sizes: Any) -> Any:
        from xbdspec.reference.constants import NR_RESERVED_ENTRIES

        self.ref.reset(sizes)
        self.sizes = sizes
        config = BackendConfig(barrier=False, flush=False)
        c = CPlatform(self.built, backend_config=config)
        reserve = 1 + sizes.suspends
        c.lib.xbd_h_gnttab_configure(NR_RESERVED_ENTRIES + sizes.grants + reserve, reserve, 1)
        c.lib.xbd_h_dma_fail_create(0, sizes.commands)
        c.lib.xbd_h_set_ring_index_start(sizes.ring_base & 0xFFFF_FFFF)
        self.c = c
        self.taken = set()
        self.ring_token = 0
        self.bio_ids = {}
        self.fault = None
        self.steps = 0
        self.dump_rc = None
        c.plug()
        if c.probe() != 0 or c.attach() != 0:
            raise XbdspecError("the C driver did not attach: " + "; ".join(c.log))
        c.register_watches()
        self._front_watch()
        self._back_watch()
        return self._compare("reset")

    def apply(self, event: str, params: Any, env: Any) -> Any:
        from xbdspec.conformance.contract import UnsupportedEvent

        if self.c is None:
            raise XbdspecError("apply before reset")
        if event not in _EVENTS:
            raise UnsupportedEvent(f"the C driver adapter does not offer event {event!r}")
        if self.fault is not None:
            return self.observe()
        self.ref.apply(event, params, env)
        c = self.c
        c.lib.xbd_h_dma_clear_modes()
        c.dma_next(*(m.name if m.name != "FAILED" else "FAIL" for m in env.dma))
        c_fault = None
        try:
            getattr(self, f"_on_{event}")(**params)
        except CDriverFault as fault:
            c_fault = fault
        finally:
            c.lib.xbd_h_dma_clear_modes()
        self._after_event()
        self.steps += 1
        return self._compare(f"{event}({params})", c_fault)

    def observe(self) -> Any:
        from xbdspec.conformance.contract import Observation

        base = self.ref.observe()
        return Observation(
            fields=base.fields, fault=self.fault or base.fault, complete=base.complete
        )

    def close(self) -> None:
        self.c = None
        self.ref.close()

    # ------------------------------------------------------------------ the comparison
    def _compare(self, where: str, c_fault: CDriverFault | None = None) -> Any:
        ref_fault = self.ref.fault
        c_kind = c_fault.kind if c_fault is not None else None
        ref_kind = ref_fault.split(":", 1)[0] if ref_fault else None
        if c_kind != ref_kind:
            self.fault = (
                f"C driver differs from the reference at {where}: fault "
                f"reference={ref_kind} C={c_kind} ({c_fault.message if c_fault else ''})"
            )
        elif ref_fault is None:
            ref_view = concrete_view_reference(self.ref)
            c_view = concrete_view_c(self)
            for key in ref_view:
                if ref_view[key] != c_view.get(key):
                    self.fault = (
                        f"C driver differs from the reference at {where}: {key}: "
                        f"reference={ref_view[key]!r} C={c_view.get(key)!r}"
                    )
                    break
        return self.observe()

    # ------------------------------------------------------------------ restrictions
    def _after_event(self) -> None:
        c = self._c
        token = int(c.lib.xbd_h_ring_token() or 0)
        sc = c.softc()
        if token and token != self.ring_token:
            self.ring_token = token
            if sc["req_prod_pvt"] == self.sizes.ring_base & 0xFFFF_FFFF:
                c.lib.xbd_h_set_ring_entries(self.sizes.ring_slots, 0)
        if not sc["has_shadow"]:
            c.lib.xbd_h_dma_fail_create(0, self.sizes.commands)

    @property
    def _c(self) -> CPlatform:
        if self.c is None:
            raise XbdspecError("the C driver adapter was used before reset")
        return self.c

    def _take_watch(self, token: str) -> bool:
        pending = self._c.xenstore.pending
        if token not in pending:
            return False
        pending.remove(token)
        return True

    def _front_watch(self) -> None:
        c = self._c
        if self._take_watch(FRONT_WATCH):
            c.backend_changed(c._read_state(c.back_path))

    def _back_watch(self) -> None:
        c = self._c
        if not self._take_watch(BACK_WATCH):
            return
        values = c.xenstore.values
        front = int(values.get(f"{c.front_path}/state") or 6)
        back = c.backend_state
        online = values.get(f"{c.back_path}/online") == "1"
        if back in (2, 3) and front in (3, 4) and online:
            c.backend_connect_ring()
            c.lib.xbd_h_set_ring_entries(0, self.sizes.ring_slots)
        elif back in (1, 2, 3, 4) and front == 5:
            c.backend_set_state(5)
        elif back != 6 and front == 6:
            c.lib.xbd_h_be_disconnect()
            c.backend_set_state(6)

    # ------------------------------------------------------------------ events
    def _on_unplug(self) -> None:
        self._c.xenstore.write(f"{self._c.back_path}/online", "0")

    def _publish_features(self, barrier: bool, flush: bool) -> None:
        import dataclasses as dc

        c = self._c
        c.config = dc.replace(c.config, barrier=barrier, flush=flush)
        c.lib.xbd_h_be_features(int(barrier), int(flush))
        for key, value in c.config.initwait_keys().items():
            c._back_write(key, value)
        if BACK_WATCH not in c.xenstore.pending:
            c.xenstore.pending.append(BACK_WATCH)

    def _on_backend_publish(self, barrier: bool, flush: bool) -> None:
        self._publish_features(barrier, flush)
        self._c.backend_set_state(2)

    def _on_backend_skip_initwait(self, barrier: bool, flush: bool) -> None:
        self._publish_features(barrier, flush)
        self._c.backend_set_state(3)

    def _on_frontend_watch(self) -> None:
        self._back_watch()

    def _on_backend_offline(self) -> None:
        self._c.backend_set_state(5)

    def _on_backend_consume(self, cmd: int) -> None:
        c = self._c
        c.backend_fetch()
        if any(r.id == cmd for r in c.pending()):
            self.taken.add(cmd)

    def _on_backend_respond(self, cmd: int, status: Any) -> None:
        c = self._c
        for index, request in enumerate(c.pending()):
            if request.id == cmd and cmd in self.taken:
                c.respond(index, status=int(status))
                self.taken.discard(cmd)
                return

    def _on_backend_watch(self) -> None:
        self._front_watch()

    def _on_open(self) -> None:
        if self._c.softc()["has_disk"]:
            self._c.open()

    def _on_close(self) -> None:
        if self._c.softc()["has_disk"]:
            self._c.close()

    def _on_strategy(self, bio: int, kind: Any) -> None:
        from xbdspec.conformance.reference_adapter import _BIO_COMMAND
        from xbdspec.model.vocabulary import BioKind

        command, flags = _BIO_COMMAND[kind]
        setup = getattr(self.ref, "setup", None)
        if setup is None:  # the twin puts bio N at sector 8 N, one page each
            sector, nbytes, offset = bio * 8, 4096, 0
        else:  # the twin's back-end setup: its bio sizes, offsets and placement
            data = BioKind(kind) in (BioKind.READ, BioKind.WRITE, BioKind.ORDERED_WRITE)
            nbytes = setup.bio_bytes(bio) if data else 4096
            offset = setup.bio_offset if data else 0
            sector = bio * 256 * 512 // setup.sector_size
        self.bio_ids[bio] = self._c.strategy(
            command, sector, nbytes, flags=flags, page_offset=offset
        )

    def _on_interrupt(self) -> None:
        c = self._c
        if c.deliver_interrupt():
            return
        c.lib.xbd_h_evtchn_clear()
        # nothing pending: the spurious upcall the reference adapter delivers while the
        # driver is disconnected (the model's interrupt_ignored); the shim runs xbd_int
        # only while a handler is bound
        try:
            disconnected = c.softc()["xbd_state"] == int(XbdState.DISCONNECTED)
        except XbdspecError:  # no device plugged
            return
        if disconnected:
            c.deliver_interrupt(force=True)

    def _deferred(self, cmd: int) -> int:
        index = int(self._c.lib.xbd_h_dma_find_command(cmd))
        if index < 0:
            raise XbdspecError(f"command {cmd} has no deferred mapping to complete")
        return index

    def _on_dma_callback(self, cmd: int) -> None:
        self._c.run_deferred(self._deferred(cmd))

    def _on_dma_callback_error(self, cmd: int) -> None:
        self._c.run_deferred(self._deferred(cmd), error=27)  # EFBIG

    def _on_suspend(self) -> None:
        self._c.suspend_start()

    def _on_suspend_drained(self) -> None:
        c = self._c
        if c.sleeping and c.sleeper_woken:
            c.suspend_continue(timed_out=False)

    def _on_suspend_timeout(self) -> None:
        c = self._c
        if c.sleeping:
            c.suspend_continue(timed_out=True)

    def _on_resume(self, cancelled: bool) -> None:
        c = self._c
        c.lib.xbd_h_set_suspend_cancelled(int(cancelled))
        if not cancelled:
            c.config = BackendConfig(barrier=False, flush=False)
            c.lib.xbd_h_be_features(0, 0)
            c.backend_reset()
            self.taken = set()
            # xenbusb_resume: the watch goes, the front end is Initialising, xbd_resume,
            # the watch comes back (and fires its initial event)
            c.xenstore.watches.pop(FRONT_WATCH, None)
            if FRONT_WATCH in c.xenstore.pending:
                c.xenstore.pending.remove(FRONT_WATCH)
            if c._read_state(c.front_path) != 1:
                c.xenstore.write(f"{c.front_path}/state", "1")
            c.resume()
            c.xenstore.register_watch(f"{c.back_path}/state", FRONT_WATCH)
            self._front_watch()
        else:
            c.resume()

    def _on_dump(self, chunks: int) -> None:
        """The kernel dumper writes ``chunks`` requests' worth through the seed's own
        ``xbd_dump``, as the reference adapter's ``_on_dump`` does (the same
        :func:`dump_layout` and :func:`dump_pattern`, and a 0 result checked with
        :func:`check_dump_written`); at each ``HYPERVISOR_yield`` the
        back end takes and answers OKAY every request (:attr:`CPlatform.respond_on_yield`;
        past ``max_yields`` with nothing to answer: ``KernelHang``, as the reference's);
        every ready grant free callback runs after each ``xbd_int`` (the shim's
        ``xbd_h_dump_polled``).  The result is compared as ``dump_result``."""
        c = self._c
        sc = c.softc()
        if not sc["has_disk"]:
            raise XbdspecError("dump without a disk: the model's guard requires one")
        from xbdspec.conformance.reference_adapter import (
            DumpFailed,
            check_dump_written,
            dump_layout,
            dump_pattern,
        )

        twin = self.ref._p
        twin_disk = twin.softc().xbd_disk
        offset, length = dump_layout(
            chunks,
            sc["xbd_max_request_size"],
            twin_disk.d_sectorsize if twin_disk is not None else 512,
            len(twin.backend.disk),
        )
        data = dump_pattern(length)
        c.respond_on_yield = True
        try:
            self.dump_rc = c.dump(length, offset, data)
        finally:
            # the back end answered everything it held at each yield
            self.taken &= {r.id for r in c.pending()}
        if self.dump_rc == 0 and (twin_disk is None or twin_disk.d_sectorsize == 512):
            disk = bytearray(c.disk(0, offset + length))
            try:
                check_dump_written(disk, offset, memoryview(data))
            except DumpFailed as failed:
                raise CDriverFault("DumpFailed", failed.message, "xbd_dump") from None

    def _on_grants_returned(self) -> None:
        c = self._c
        kind = c.lib.xbd_h_gnttab_fire_ready_callback()
        if kind > 0:
            c._call("gnttab free callback", kind)


def concrete_view_reference(impl: Any) -> dict[str, Any]:
    """What the twin compares, read off the reference adapter's platform."""
    p = impl._p
    sc = p.softc()
    pending = [
        (
            r.id,
            r.operation,
            r.io_op,
            r.sector_number,
            r.nr_segments,
            tuple(g for g, _, _ in r.segments),
        )
        for r in p.backend.pending
    ]
    bios = {}
    for index, bio in enumerate(impl.bios):
        if bio is not None:
            bios[index] = (bio.done_count, bio.bio_error, bio.bio_flags, bio.bio_resid)
    writes = [(k, v) for k, v in p.xenstore.writes if not k.startswith(p.back_path)]
    return {
        "xbd_state": int(sc.xbd_state),
        "xbd_flags": int(sc.xbd_flags),
        "xbd_qfrozen_cnt": sc.xbd_qfrozen_cnt,
        "queues": (*tuple(q.q_length for q in sc.xbd_cm_q[:4]), len(sc.xbd_bioq)),
        "grants_free": p.gnttab.free_count,
        "backend_pending": pending,
        "bios": bios,
        "front_writes": writes,
        "xbd_users": sc.xbd_users,
        "commands": [cm.cm_flags for cm in sc.xbd_shadow] if sc.xbd_shadow is not None else [],
        "dump_result": int(impl.dump_result),
        "io_lock_depth": sc.xbd_io_lock.depth,
        "suspend_sleeping": impl.sleep is not None,
    }


def concrete_view_c(impl: CDriverImplementation) -> dict[str, Any]:
    """The same view, read off the compiled driver."""
    c = impl._c
    sc = c.softc()
    pending = [
        (r.id, r.operation, r.io_op, r.sector_number, r.nr_segments, r.grefs) for r in c.pending()
    ]
    bios = {}
    for index, bio in impl.bio_ids.items():
        s = c.bio(bio)
        bios[index] = (s.done_count, s.bio_error, s.bio_flags, s.bio_resid)
    flags = c.command_flags() if sc["has_shadow"] else []
    return {
        "xbd_state": sc["xbd_state"],
        "xbd_flags": sc["xbd_flags"],
        "xbd_qfrozen_cnt": sc["xbd_qfrozen_cnt"],
        "queues": (sc["q_free"], sc["q_ready"], sc["q_busy"], sc["q_complete"], sc["q_bio"]),
        "grants_free": c.grant_free_count(),
        "backend_pending": pending,
        "bios": bios,
        "front_writes": c.front_writes(),
        "xbd_users": sc["xbd_users"],
        "commands": flags,
        "dump_result": int(_dump_result(impl.dump_rc)),
        "io_lock_depth": sc["io_lock_depth"],
        "suspend_sleeping": c.sleeping,
    }


def _dump_result(rc: int | None) -> Any:
    """``xbd_dump``'s return value as the reference adapter records it (``DumpResult``)."""
    from xbdspec.model.vocabulary import DumpResult
    from xbdspec.reference.constants import EBUSY, EIO

    if rc is None:
        return DumpResult.NONE
    return {0: DumpResult.OK, EIO: DumpResult.EIO, EBUSY: DumpResult.EBUSY}[rc]


def implementation() -> CDriverImplementation:
    """``xbdspec difftest --impl xbdspec.cdriver:implementation``: the compiled seed."""
    return CDriverImplementation()
