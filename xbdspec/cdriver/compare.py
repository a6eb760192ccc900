"""The C driver against the Python reference: one script drives both, and after every
step their observations (faults, xenstore writes, requests on the ring, completions, the
softc) must agree (:func:`compare_with_reference`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xbdspec.errors import XbdspecError
from xbdspec.reference import BackendConfig

from .binding import CDriverFault
from .build import BuildResult
from .platform import CPlatform

#: a scripted step: (event, arguments); the same script drives both implementations
Script = list[tuple[str, dict[str, Any]]]


@dataclass
class Observed:
    """What one implementation showed after one step (``None`` fields: not checked)."""

    fault: str | None
    front_writes: list[tuple[str, str]]
    requests: list[tuple[int, int, int, int, int, tuple[int, ...]]]
    completions: list[tuple[int, int, int, int]]
    softc: dict[str, int]


def _ref_step(platform: Any, bios: list[Any], event: str, args: dict[str, Any]) -> None:
    from xbdspec.reference import Bio, strategy
    from xbdspec.reference.busdma import MapMode

    if event == "boot":
        platform.boot()
    elif event == "strategy":
        sc = platform.softc()
        nbytes = args.get("nbytes", 4096)
        buffer = platform.mem.alloc(nbytes, args.get("offset", 0)) if nbytes else None
        if buffer is not None and args.get("fill") is not None:
            buffer.view()[:] = bytes([args["fill"]]) * nbytes
        bio = Bio(
            args.get("cmd", 2),
            args.get("sector", 0),
            nbytes,
            args.get("flags", 0),
            buffer,
            bio_disk=sc.xbd_disk,
        )
        bios.append(bio)
        strategy(bio)
    elif event == "dma":
        platform.busdma.next_modes.extend(MapMode[m] for m in args["modes"])
    elif event == "run_deferred":
        platform.busdma.run_deferred(args.get("index", 0), error=args.get("error", 0))
    elif event == "fetch":
        platform.backend.fetch()
    elif event == "respond_all":
        platform.backend.respond_all(args.get("order"))
    elif event == "respond":
        req = platform.backend.pending[args.get("index", 0)]
        platform.backend.respond(req, args.get("status"), push=args.get("push", True))
    elif event == "interrupt":
        platform.deliver_interrupt()
    elif event == "grants_take":
        platform._xbd_stolen = platform.gnttab.get_free_entries(args["count"])
    elif event == "grants_give_back":
        platform.gnttab.gnttab_free_grant_references(platform._xbd_stolen)
    else:
        raise XbdspecError(f"unknown scripted event {event!r}")


def _c_step(p: CPlatform, event: str, args: dict[str, Any]) -> None:
    if event == "boot":
        p.boot()
    elif event == "strategy":
        nbytes = args.get("nbytes", 4096)
        fill = args.get("fill")
        p.strategy(
            args.get("cmd", 2),
            args.get("sector", 0),
            nbytes,
            flags=args.get("flags", 0),
            data=bytes([fill]) * nbytes if fill is not None else None,
            page_offset=args.get("offset", 0),
        )
    elif event == "dma":
        p.dma_next(*args["modes"])
    elif event == "run_deferred":
        p.run_deferred(args.get("index", 0), args.get("error", 0))
    elif event == "fetch":
        p.backend_fetch()
    elif event == "respond_all":
        p.respond_all(args.get("order"))
    elif event == "respond":
        p.respond(args.get("index", 0), args.get("status"), args.get("push", True))
    elif event == "interrupt":
        p.deliver_interrupt()
    elif event == "grants_take":
        p.grants_take(args["count"])
    elif event == "grants_give_back":
        p.grants_give_back()
    else:
        raise XbdspecError(f"unknown scripted event {event!r}")


def _ref_observe(
    platform: Any, bios: list[Any], fault: str | None, seen_writes: int, seen_reqs: int
) -> Observed:
    writes = [
        (p, v)
        for p, v in platform.xenstore.writes[seen_writes:]
        if not p.startswith(platform.back_path)
    ]
    reqs = [
        (
            r.id,
            r.operation,
            r.io_op,
            r.sector_number,
            r.nr_segments,
            tuple(g for g, _, _ in r.segments),
        )
        for r in platform.backend.pending[seen_reqs:]
    ]
    comps = [
        (bios.index(b), b.bio_error, b.bio_flags, b.bio_resid)
        for b in platform.completed
        if b in bios
    ]
    softc: dict[str, int] = {}
    if platform.dev is not None and platform.dev.softc is not None:
        sc = platform.dev.softc
        softc = {
            "xbd_state": int(sc.xbd_state),
            "xbd_flags": int(sc.xbd_flags),
            "xbd_qfrozen_cnt": sc.xbd_qfrozen_cnt,
            **{
                f"q_{n}": q.q_length
                for n, q in zip(("free", "ready", "busy", "complete"), sc.xbd_cm_q, strict=False)
            },
            "q_bio": len(sc.xbd_bioq),
            "grants_free": platform.gnttab.free_count,
        }
    return Observed(fault, writes, reqs, comps, softc)


def _c_observe(p: CPlatform, fault: str | None, seen_writes: int, seen_reqs: int) -> Observed:
    writes = [
        (path, v) for path, v in p.xenstore.writes[seen_writes:] if not path.startswith(p.back_path)
    ]
    reqs = [
        (r.id, r.operation, r.io_op, r.sector_number, r.nr_segments, r.grefs)
        for r in p.pending()[seen_reqs:]
    ]
    comps = []
    for bio in p.completed():
        status = p.bio(bio)
        comps.append((p.bios.index(bio), status.bio_error, status.bio_flags, status.bio_resid))
    softc: dict[str, int] = {}
    try:
        raw = p.softc()
        softc = {
            k: raw[k]
            for k in (
                "xbd_state",
                "xbd_flags",
                "xbd_qfrozen_cnt",
                "q_free",
                "q_ready",
                "q_busy",
                "q_complete",
                "q_bio",
            )
        }
        softc["grants_free"] = p.grant_free_count()
    except XbdspecError:
        pass
    return Observed(fault, writes, reqs, comps, softc)


@dataclass
class Difference:
    """The first step where the C driver and the reference disagree."""

    step: int
    event: str
    field: str
    reference: Any
    c_driver: Any

    def __str__(self) -> str:
        return (
            f"step {self.step} {self.event}: {self.field}: "
            f"reference={self.reference!r} C={self.c_driver!r}"
        )


def compare_with_reference(
    built: BuildResult,
    script: Script,
    *,
    backend_config: BackendConfig | None = None,
    mutex_recursion_fatal: bool = True,
) -> tuple[list[tuple[Observed, Observed]], Difference | None]:
    """Run ``script`` on the reference and on the C driver; every step's observations and
    the first difference (``None``: they agree on every observation)."""
    import copy

    from xbdspec.reference import DriverFault, Platform, Tunables

    config = backend_config if backend_config is not None else BackendConfig()
    ref = Platform(
        backend_config=copy.deepcopy(config),
        tunables=Tunables(mutex_recursion_fatal=mutex_recursion_fatal),
    )
    cp = CPlatform(
        built, backend_config=copy.deepcopy(config), mutex_recursion_fatal=mutex_recursion_fatal
    )
    ref_bios: list[Any] = []
    trail: list[tuple[Observed, Observed]] = []
    rw = cw = 0
    for index, (event, args) in enumerate(script):
        ref_fault = c_fault = None
        try:
            _ref_step(ref, ref_bios, event, args)
        except DriverFault as fault:
            ref_fault = type(fault).__name__
        try:
            _c_step(cp, event, args)
        except CDriverFault as fault:
            c_fault = fault.kind
        ro = _ref_observe(ref, ref_bios, ref_fault, rw, 0)
        co = _c_observe(cp, c_fault, cw, 0)
        rw, cw = len(ref.xenstore.writes), len(cp.xenstore.writes)
        trail.append((ro, co))
        for name in ("fault", "front_writes", "requests", "completions", "softc"):
            if getattr(ro, name) != getattr(co, name):
                return trail, Difference(index, event, name, getattr(ro, name), getattr(co, name))
        if ref_fault is not None:
            break
    return trail, None
