"""Obligations over C integer arithmetic: ``ring.h``'s indices, the seed's negotiation
of ring and segment limits, and its virtual-device naming.

These are stated over 32- and 64-bit bit-vectors, for every value the back end (or
the index arithmetic) can produce, with C's semantics: unsigned arithmetic wraps,
and an operation C leaves undefined (a shift of ``1`` in ``int`` by 31 or more, a
division by zero) is an obligation of its own that the seed must meet.  Every
comparison of indices is unsigned (``z3.ULT``/``z3.ULE``), as ``ring.h`` requires;
a test refutes the same obligations written with signed comparisons.

The seed expressions are restated here over bit-vectors; a test evaluates each
restatement on concrete values and compares it with the reference's port of the same
seed function, so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from .encoding import Check, Prover, Verdict

U32 = 32
U64 = 64
PAGE_SIZE = 4096
RING_HEADER = 64  # sring header: req_prod, req_event, rsp_prod, rsp_event, padding
BLKIF_RING_ENTRY = 112  # sizeof(union blkif_sring_entry) on x86-64
XBD_MAX_RING_PAGES = 32
#: the largest ring-page order the fixed front end uses (fix ``ring-page-order-shift``)
XBD_MAX_RING_PAGE_ORDER = 5
#: ``OFF_MAX``: the largest ``off_t`` (``d_mediasize``)
OFF_MAX = (1 << 63) - 1
BLKIF_MAX_SEGMENTS_PER_REQUEST = 11
BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST = 8
SEGMENTS_PER_PAGE = PAGE_SIZE // 8
XBD_MAX_INDIRECT_SEGMENTS = BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * SEGMENTS_PER_PAGE
MAXPHYS = 1 << 20
XBD_SIZE_TO_SEGS_MAXPHYS = MAXPHYS // PAGE_SIZE + 1


def rd32(x: int) -> int:
    """``__RD32``: round down to a power of two (``ring.h``)."""
    return 1 << (x.bit_length() - 1) if x > 0 else 0


def blkif_max_ring_requests(pages: int) -> int:
    """``BLKIF_MAX_RING_REQUESTS(pages * PAGE_SIZE)``: entries after the header, rounded down."""
    return rd32((pages * PAGE_SIZE - RING_HEADER) // BLKIF_RING_ENTRY)


XBD_MAX_REQUESTS = blkif_max_ring_requests(XBD_MAX_RING_PAGES)


# --------------------------------------------------------------------------- ring.h


def ring_free_requests(size: Any, req_prod_pvt: Any, rsp_cons: Any) -> Any:
    """``RING_FREE_REQUESTS``: ``size - (req_prod_pvt - rsp_cons)``, modulo 2**32."""
    return size - (req_prod_pvt - rsp_cons)


def ring_full(size: Any, req_prod_pvt: Any, rsp_cons: Any) -> Any:
    """``RING_FULL``: no free request."""
    return ring_free_requests(size, req_prod_pvt, rsp_cons) == 0


def push_notify(old: Any, new: Any, event: Any, lt: Callable[[Any, Any], Any] = z3.ULT) -> Any:
    """``RING_PUSH_*_AND_CHECK_NOTIFY``: notify when ``new - event < new - old``."""
    return lt(new - event, new - old)


def _power_of_two_size() -> tuple[Any, Any]:
    size = z3.BitVec("size", U32)
    constraint = z3.Or(*(size == (1 << i) for i in range(11)))  # 1 .. 1024 entries
    return size, constraint


# --------------------------------------------------------------------------- obligations


@dataclass(frozen=True)
class ArithmeticObligation:
    """A validity claim over bit-vectors.

    Attributes:
        name: what it proves.
        claim: builds ``(hypotheses, conclusion, inputs)`` over fresh bit-vectors;
            ``inputs`` names the variables a counterexample shows.
        bound: the values it covers, in words.
        doc: the statement in a sentence, and its source.
        finding: for a claim the seed fails, the finding it documents.
        fixes: for a claim restated with a finding's opt-in fix, that finding (the claim
            is then expected to hold).
        equivalent: a cheaper conclusion, equivalent to the claim's under its hypotheses
            (a test proves the equivalence), used only to make a counterexample small.
    """

    name: str
    claim: Callable[[], tuple[list[Any], Any, dict[str, Any]]]
    bound: str
    doc: str
    finding: str | None = None
    equivalent: Callable[[dict[str, Any]], Any] | None = None
    fixes: str | None = None

    def check(self, prover: Prover | None = None) -> tuple[Check, dict[str, int]]:
        """Prove or refute; a refutation comes with the inputs that break the claim."""
        p = prover or Prover()
        hypotheses, conclusion, inputs = self.claim()
        p.push()
        try:
            p.assume(*hypotheses)
            result = p.valid(conclusion)
        finally:
            p.pop()
        shown: dict[str, int] = {}
        if result.verdict is Verdict.REFUTED and result.model is not None:
            cheap = self.equivalent(inputs) if self.equivalent is not None else conclusion
            model = _smallest_counterexample(hypotheses, cheap, inputs) or result.model
            for label, term in inputs.items():
                value = model.eval(term, model_completion=True)
                shown[label] = (
                    int(value.as_long()) if z3.is_bv_value(value) else int(z3.is_true(value))
                )
        return result, shown


#: checks spent making one input of a counterexample small
MINIMISE_CHECKS = 40
#: z3 work allowed per check while minimising (deterministic, unlike a timeout)
MINIMISE_RLIMIT = 4_000_000


def _smallest_counterexample(hypotheses: list[Any], conclusion: Any, inputs: dict[str, Any]) -> Any:
    """A refuting model whose inputs are made small one after the other (unsigned binary
    search, each check bounded by z3's deterministic resource limit), so a
    counterexample reads ``max-ring-page-order = 31`` rather than a random word and is
    the same on every machine."""
    prover = Prover(timeout_ms=60_000, rlimit=MINIMISE_RLIMIT)
    prover.assume(*hypotheses, z3.Not(conclusion))
    first = prover.satisfiable()
    if first.model is None:
        return None
    model = first.model
    for term in inputs.values():
        if not z3.is_bv(term):
            value = z3.is_true(model.eval(term, model_completion=True))
            if value and prover.satisfiable(z3.Not(term)).model is not None:
                value = False
            prover.assume(term == z3.BoolVal(value))
            model = prover.satisfiable().model or model
            continue
        hi = model.eval(term, model_completion=True).as_long()
        # gallop up from 0 through powers of two, then bisect inside the bracket
        lo, bound, checks = 0, 0, 0
        while bound < hi and checks < MINIMISE_CHECKS:
            checks += 1
            found = prover.satisfiable(z3.ULE(term, bound))
            if found.model is not None:
                hi = found.model.eval(term, model_completion=True).as_long()
                break
            if found.verdict is not Verdict.REFUTED:
                break
            lo, bound = bound + 1, max(1, bound * 2)
        while lo < hi and checks < MINIMISE_CHECKS:
            checks += 1
            mid = (lo + hi) // 2
            found = prover.satisfiable(z3.ULE(term, mid))
            if found.model is not None:
                hi = found.model.eval(term, model_completion=True).as_long()
            elif found.verdict is Verdict.REFUTED:
                lo = mid + 1
            else:
                break
        prover.assume(term == hi)
        refreshed = prover.satisfiable().model
        if refreshed is None:
            return None
        model = refreshed
    return model


def _ring_free_in_range() -> tuple[list[Any], Any, dict[str, Any]]:
    size, is_pow2 = _power_of_two_size()
    pvt, cons = z3.BitVecs("req_prod_pvt rsp_cons", U32)
    free = ring_free_requests(size, pvt, cons)
    return (
        [is_pow2, z3.ULE(pvt - cons, size)],
        z3.And(z3.ULE(free, size), ring_full(size, pvt, cons) == (pvt - cons == size)),
        {"size": size, "req_prod_pvt": pvt, "rsp_cons": cons},
    )


def _ring_full_prevents_overrun() -> tuple[list[Any], Any, dict[str, Any]]:
    size, is_pow2 = _power_of_two_size()
    pvt, cons = z3.BitVecs("req_prod_pvt rsp_cons", U32)
    return (
        [is_pow2, z3.ULE(pvt - cons, size), z3.Not(ring_full(size, pvt, cons))],
        z3.ULE((pvt + 1) - cons, size),
        {"size": size, "req_prod_pvt": pvt, "rsp_cons": cons},
    )


def _push_notifies_sleeper() -> tuple[list[Any], Any, dict[str, Any]]:
    # The consumer consumed up to `cons`, set event = cons + 1, re-read prod and saw
    # no work (prod == cons), so it sleeps.  The producer then pushes old -> new.
    size, is_pow2 = _power_of_two_size()
    cons, new = z3.BitVecs("cons new", U32)
    old = cons
    event = cons + 1
    return (
        [is_pow2, new != old, z3.ULE(new - cons, size)],
        push_notify(old, new, event),
        {"size": size, "cons": cons, "new": new},
    )


def _final_check_never_loses_a_response() -> tuple[list[Any], Any, dict[str, Any]]:
    # RING_FINAL_CHECK_FOR_RESPONSES: with no work, rsp_event = rsp_cons + 1, then
    # rsp_prod is read again.  Either that read sees the producer's push (work), or
    # the producer, pushing after it, sees rsp_event and notifies.  Both sides write
    # before they read with a barrier between (ring.h), so one of the two holds; what
    # must be proved is that the notification fires for every push from rsp_cons.
    size, is_pow2 = _power_of_two_size()
    cons, new, reread = z3.BitVecs("rsp_cons new reread", U32)
    event = cons + 1
    producer_first = reread == new
    consumer_first = reread == cons
    consumer_sees_work = reread - cons != 0
    producer_notifies = push_notify(cons, new, event)
    return (
        [is_pow2, new != cons, z3.ULE(new - cons, size), z3.Or(producer_first, consumer_first)],
        z3.Or(consumer_sees_work, producer_notifies),
        {"size": size, "rsp_cons": cons, "new": new, "reread": reread},
    )


def _response_loop_bounded() -> tuple[list[Any], Any, dict[str, Any]]:
    # xbd_int consumes i = rsp_cons .. rp with `i != rp`: it visits rp - rsp_cons
    # slots, which must not exceed what was requested (no slot read twice).
    size, is_pow2 = _power_of_two_size()
    pvt, cons, rp = z3.BitVecs("req_prod_pvt rsp_cons rsp_prod", U32)
    return (
        [is_pow2, z3.ULE(pvt - cons, size), z3.ULE(rp - cons, pvt - cons)],
        z3.ULE(rp - cons, size),
        {"size": size, "req_prod_pvt": pvt, "rsp_cons": cons, "rsp_prod": rp},
    )


# ---- negotiation (xbd_initialize, xbd_connect)


def fls32(x: Any) -> Any:
    """``fls``: the 1-based index of the most significant set bit, 0 for 0."""
    result: Any = z3.BitVecVal(0, U32)
    for i in range(U32):
        result = z3.If(z3.Extract(i, i, x) == 1, z3.BitVecVal(i + 1, U32), result)
    return result


def negotiated_ring_pages(order_present: Any, order: Any, pages_present: Any, pages: Any) -> Any:
    """``xbd_initialize``'s ring-page count, for an order and a page count the back end
    may or may not have written (``xs_scanf`` leaves the variable untouched on a
    missing or unparsable key).  Assumes ``1 << order`` is defined."""
    max_order = z3.If(order_present, order, z3.BitVecVal(0, U32))
    ring_pages = z3.BitVecVal(1, U32) << max_order
    ring_pages = z3.If(pages_present, pages, ring_pages)
    ring_pages = z3.If(z3.ULT(ring_pages, 1), z3.BitVecVal(1, U32), ring_pages)
    ring_pages = z3.If(
        z3.UGT(ring_pages, XBD_MAX_RING_PAGES), z3.BitVecVal(XBD_MAX_RING_PAGES, U32), ring_pages
    )
    is_pow2 = (ring_pages & (ring_pages - 1)) == 0
    rounded = z3.BitVecVal(1, U32) << (fls32(ring_pages) - 1)
    return z3.If(is_pow2, ring_pages, rounded)


def _negotiation_inputs() -> tuple[Any, Any, Any, Any]:
    return (
        z3.Bool("max-ring-page-order.present"),
        z3.BitVec("max-ring-page-order", U32),
        z3.Bool("max-ring-pages.present"),
        z3.BitVec("max-ring-pages", U32),
    )


def _ring_order_shift_defined() -> tuple[list[Any], Any, dict[str, Any]]:
    present, order, _, _ = _negotiation_inputs()
    # `1 << max_ring_page_order` in C int: defined only for a count below 31
    return ([present], z3.ULT(order, 31), {"max-ring-page-order": order})


def _ring_pages_power_of_two() -> tuple[list[Any], Any, dict[str, Any]]:
    op, order, pp, pages = _negotiation_inputs()
    result = negotiated_ring_pages(op, order, pp, pages)
    defined = z3.Implies(op, z3.ULT(order, 31))
    return (
        [defined],
        z3.And((result & (result - 1)) == 0, z3.UGE(result, 1), z3.ULE(result, XBD_MAX_RING_PAGES)),
        {
            "order.present": op,
            "max-ring-page-order": order,
            "pages.present": pp,
            "max-ring-pages": pages,
        },
    )


def _max_requests_within_limit() -> tuple[list[Any], Any, dict[str, Any]]:
    op, order, pp, pages = _negotiation_inputs()
    result = negotiated_ring_pages(op, order, pp, pages)
    table = z3.BitVecVal(0, U32)
    for n in range(1, XBD_MAX_RING_PAGES + 1):
        table = z3.If(result == n, z3.BitVecVal(blkif_max_ring_requests(n), U32), table)
    return (
        [z3.Implies(op, z3.ULT(order, 31))],
        z3.And(z3.UGE(table, 1), z3.ULE(table, XBD_MAX_REQUESTS)),
        {"max-ring-page-order": order, "max-ring-pages": pages},
    )


def negotiated_segments(
    present: Any, advertised: Any, enable_indirect: Any
) -> tuple[Any, Any, Any]:
    """``xbd_connect``'s segment limits: (max_request_segments, indirect pages, size)."""
    segs = z3.If(z3.And(present, enable_indirect), advertised, z3.BitVecVal(0, U32))
    segs = z3.If(
        z3.UGT(segs, XBD_MAX_INDIRECT_SEGMENTS), z3.BitVecVal(XBD_MAX_INDIRECT_SEGMENTS, U32), segs
    )
    segs = z3.If(
        z3.UGT(segs, XBD_SIZE_TO_SEGS_MAXPHYS), z3.BitVecVal(XBD_SIZE_TO_SEGS_MAXPHYS, U32), segs
    )
    pages = z3.UDiv(segs + (SEGMENTS_PER_PAGE - 1), z3.BitVecVal(SEGMENTS_PER_PAGE, U32))
    segs = z3.If(
        z3.ULT(segs, BLKIF_MAX_SEGMENTS_PER_REQUEST),
        z3.BitVecVal(BLKIF_MAX_SEGMENTS_PER_REQUEST, U32),
        segs,
    )
    size = (segs - 1) * PAGE_SIZE
    return segs, pages, size


def _segment_inputs() -> tuple[Any, Any, Any]:
    return (
        z3.Bool("feature-max-indirect-segments.present"),
        z3.BitVec("feature-max-indirect-segments", U32),
        z3.Bool("xbd_enable_indirect"),
    )


def _segment_bounds(segs: Any, pages: Any, size: Any) -> Any:
    """The segment limit is between 11 and maxphys's, its indirect pages at most 8 and
    enough for it, the request size within maxphys."""
    return z3.And(
        z3.UGE(segs, BLKIF_MAX_SEGMENTS_PER_REQUEST),
        z3.ULE(segs, XBD_SIZE_TO_SEGS_MAXPHYS),
        z3.ULE(pages, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST),
        z3.Implies(
            z3.UGT(segs, BLKIF_MAX_SEGMENTS_PER_REQUEST),
            z3.UGE(pages * SEGMENTS_PER_PAGE, segs),
        ),
        z3.ULE(size, MAXPHYS),
    )


def _segments_within_bounds() -> tuple[list[Any], Any, dict[str, Any]]:
    present, advertised, enabled = _segment_inputs()
    segs, pages, size = negotiated_segments(present, advertised, enabled)
    return (
        [],
        _segment_bounds(segs, pages, size),
        {"present": present, "feature-max-indirect-segments": advertised, "enabled": enabled},
    )


def _no_unused_indirect_pages() -> tuple[list[Any], Any, dict[str, Any]]:
    present, advertised, enabled = _segment_inputs()
    segs, pages, _ = negotiated_segments(present, advertised, enabled)
    # a limit that only allows direct requests should not allocate indirect pages
    return (
        [],
        z3.Implies(z3.ULE(segs, BLKIF_MAX_SEGMENTS_PER_REQUEST), pages == 0),
        {"present": present, "feature-max-indirect-segments": advertised, "enabled": enabled},
    )


def _capacity_division_defined() -> tuple[list[Any], Any, dict[str, Any]]:
    sector_size = z3.BitVec("sector-size", U64)
    # xbd_connect rejects 0, then prints sectors / (1048576 / sector_size)
    return (
        [sector_size != 0],
        z3.UDiv(z3.BitVecVal(1 << 20, U64), sector_size) != 0,
        {"sector-size": sector_size},
    )


def _media_size_fits() -> tuple[list[Any], Any, dict[str, Any]]:
    sectors = z3.BitVec("sectors", U64)
    sector_size = z3.BitVec("sector-size", U64)
    product = sectors * sector_size
    # d_mediasize (off_t) = sectors * sector_size must be the true product, and non-negative
    return (
        [sectors != 0, sector_size != 0],
        z3.And(z3.BVMulNoOverflow(sectors, sector_size, False), z3.Extract(63, 63, product) == 0),
        {"sector-size": sector_size, "sectors": sectors},
    )


def _sector_size_power_of_two() -> tuple[list[Any], Any, dict[str, Any]]:
    sector_size = z3.BitVec("sector-size", U64)
    # blkif.h: sector-size is a power of two, at least 512; xbd_connect rejects only 0
    return (
        [sector_size != 0],
        z3.And((sector_size & (sector_size - 1)) == 0, z3.UGE(sector_size, 512)),
        {"sector-size": sector_size},
    )


# ---- device naming (xbd_vdevice_to_unit; xen-vbd-interface.7)

VDEV_TABLE: tuple[tuple[int, int, int, str], ...] = (
    (3, 6, 0, "ada"),
    (22, 6, 2, "ada"),
    (33, 6, 4, "ada"),
    (34, 6, 6, "ada"),
    (56, 6, 8, "ada"),
    (57, 6, 10, "ada"),
    (88, 6, 12, "ada"),
    (89, 6, 14, "ada"),
    (90, 6, 16, "ada"),
    (91, 6, 18, "ada"),
    (8, 4, 0, "da"),
    (65, 4, 16, "da"),
    (66, 4, 32, "da"),
    (67, 4, 48, "da"),
    (68, 4, 64, "da"),
    (69, 4, 80, "da"),
    (70, 4, 96, "da"),
    (71, 4, 112, "da"),
    (128, 4, 128, "da"),
    (129, 4, 144, "da"),
    (130, 4, 160, "da"),
    (131, 4, 176, "da"),
    (132, 4, 192, "da"),
    (133, 4, 208, "da"),
    (134, 4, 224, "da"),
    (135, 4, 240, "da"),
    (202, 4, 0, "xbd"),
)
NAMES = {"xbd": 0, "ada": 1, "da": 2}


def vdevice_to_unit(vdevice: Any) -> tuple[Any, Any]:
    """``xbd_vdevice_to_unit`` over a 32-bit vdevice: (unit, name code)."""
    major = z3.LShR(vdevice, 8)
    minor = vdevice & 0xFF
    unit: Any = z3.LShR(minor, 4)
    name: Any = z3.BitVecVal(NAMES["xbd"], U32)
    for tmajor, shift, base, tname in reversed(VDEV_TABLE):
        unit = z3.If(major == tmajor, base + z3.LShR(minor, shift), unit)
        name = z3.If(major == tmajor, z3.BitVecVal(NAMES[tname], U32), name)
    extended = z3.Extract(28, 28, vdevice) == 1
    unit = z3.If(extended, z3.LShR(vdevice & ((1 << 28) - 1), 8), unit)
    name = z3.If(extended, z3.BitVecVal(NAMES["xbd"], U32), name)
    return unit, name


def documented_disk(vdevice: Any) -> tuple[Any, Any]:
    """(is a documented whole-disk or partition number, the disk it names) per
    xen-vbd-interface.7: xvd (major 202), extended (bit 28), hd and sd styles."""
    major = z3.LShR(vdevice, 8)
    minor = vdevice & 0xFF
    high_clear = z3.LShR(vdevice, 16) == 0
    xvd = z3.And(high_clear, major == 202)
    ext = z3.And(z3.Extract(28, 28, vdevice) == 1, z3.Extract(31, 29, vdevice) == 0)
    hd_majors = [m for m, shift, _, _ in VDEV_TABLE if shift == 6]
    sd_majors = [m for m, shift, _, n in VDEV_TABLE if shift == 4 and n == "da"]
    hd = z3.And(high_clear, z3.Or(*(major == m for m in hd_majors)), z3.ULT(minor, 128))
    sd = z3.And(high_clear, z3.Or(*(major == m for m in sd_majors)))
    # the disk identity: style tag and disk number within the style's namespace
    disk: Any = z3.BitVecVal(0, U32)
    for index, (m, shift, base, _) in enumerate(VDEV_TABLE):
        disk = z3.If(
            z3.And(high_clear, major == m), (index << 16) | (base + z3.LShR(minor, shift)), disk
        )
    xvd_disk = z3.LShR(minor, 4)
    ext_disk = z3.LShR(vdevice & ((1 << 28) - 1), 8)
    # xvd disk d and extended disk d < 16 are the same disk (xen-vbd-interface.7)
    disk = z3.If(xvd, (0xFFFF << 16) | xvd_disk, disk)
    disk = z3.If(
        ext,
        z3.If(
            z3.ULT(ext_disk, 16), (0xFFFF << 16) | ext_disk, (0xFFFE << 16) | (ext_disk & 0xFFFF)
        ),
        disk,
    )
    return z3.Or(xvd, ext, hd, sd), disk


def _names_distinct(documented_only: bool) -> Callable[[], tuple[list[Any], Any, dict[str, Any]]]:
    def claim() -> tuple[list[Any], Any, dict[str, Any]]:
        a, b = z3.BitVecs("vdevice_a vdevice_b", U32)
        ok_a, disk_a = documented_disk(a)
        ok_b, disk_b = documented_disk(b)
        unit_a, name_a = vdevice_to_unit(a)
        unit_b, name_b = vdevice_to_unit(b)
        hyps = [disk_a != disk_b]
        if documented_only:
            hyps += [ok_a, ok_b]
        else:
            hyps += [ok_b]
        return hyps, z3.Or(unit_a != unit_b, name_a != name_b), {"vdevice_a": a, "vdevice_b": b}

    return claim


RING_OBLIGATIONS = (
    ArithmeticObligation(
        "ring_free_count_in_range",
        _ring_free_in_range,
        "all 32-bit indices, ring sizes 1..1024",
        "RING_FREE_REQUESTS is between 0 and the size, and RING_FULL means exactly a ring's worth"
        " outstanding (ring.h).",
    ),
    ArithmeticObligation(
        "ring_full_prevents_overrun",
        _ring_full_prevents_overrun,
        "all 32-bit indices, ring sizes 1..1024",
        "A request written when the ring is not full keeps the outstanding count within the ring "
        "(ring.h, xbd_startio).",
    ),
    ArithmeticObligation(
        "push_notifies_sleeping_consumer",
        _push_notifies_sleeper,
        "all 32-bit indices, ring sizes 1..1024",
        "RING_PUSH_*_AND_CHECK_NOTIFY notifies a consumer that asked for the next entry (event = "
        "cons + 1), across wrap-around (ring.h).",
    ),
    ArithmeticObligation(
        "final_check_never_loses_a_response",
        _final_check_never_loses_a_response,
        "all 32-bit indices, ring sizes 1..1024",
        "RING_FINAL_CHECK_FOR_RESPONSES: a response pushed around the consumer's last check is "
        "either seen or notified (ring.h, xbd_int).",
    ),
    ArithmeticObligation(
        "response_loop_bounded",
        _response_loop_bounded,
        "all 32-bit indices, ring sizes 1..1024",
        "xbd_int's `i != rp` loop visits at most a ring's worth of responses, across wrap-around.",
    ),
)

# ---- the same claims once the findings' fixes are on (xbdspec.reference.Fixes)
#
# Each function below restates the arithmetic of one opt-in fix of the reference;
# ``tests/findings/test_fixes_match_proofs.py`` evaluates it on concrete values and compares
# it with the reference running with that fix.


def fixed_ring_page_order(present: Any, order: Any) -> Any:
    """The order ``xbd_initialize`` shifts by with fix ``ring-page-order-shift``: the
    advertised one (0 when absent) clamped to :data:`XBD_MAX_RING_PAGE_ORDER`."""
    max_order = z3.If(present, order, z3.BitVecVal(0, U32))
    limit = z3.BitVecVal(XBD_MAX_RING_PAGE_ORDER, U32)
    return z3.If(z3.UGT(max_order, limit), limit, max_order)


def fixed_sector_size_accepted(sector_size: Any) -> Any:
    """Whether ``xbd_connect`` accepts ``sector-size`` with fixes
    ``sector-size-division-by-zero`` and ``sector-size-unchecked``."""
    return z3.And(
        sector_size != 0,
        z3.ULE(sector_size, 1 << 20),
        (sector_size & (sector_size - 1)) == 0,
        z3.UGE(sector_size, 512),
    )


def fixed_media_size_accepted(sectors: Any, unit: Any) -> Any:
    """Whether ``xbd_connect`` accepts ``sectors`` of ``unit`` bytes with fix
    ``media-size-overflow``: C's ``sectors <= OFF_MAX / unit``."""
    return z3.ULE(sectors, z3.UDiv(z3.BitVecVal(OFF_MAX, U64), unit))


def fixed_negotiated_segments(present: Any, advertised: Any, enable_indirect: Any) -> Any:
    """``xbd_connect``'s segment limits with fix ``indirect-pages-before-clamp``: the page
    count is taken from the clamped limit, and is 0 when it allows direct requests only."""
    segs, _, size = negotiated_segments(present, advertised, enable_indirect)
    pages = z3.If(
        z3.ULE(segs, BLKIF_MAX_SEGMENTS_PER_REQUEST),
        z3.BitVecVal(0, U32),
        z3.UDiv(segs + (SEGMENTS_PER_PAGE - 1), z3.BitVecVal(SEGMENTS_PER_PAGE, U32)),
    )
    return segs, pages, size


def _ring_order_shift_defined_fixed() -> tuple[list[Any], Any, dict[str, Any]]:
    present, order, _, _ = _negotiation_inputs()
    return (
        [present],
        z3.ULT(fixed_ring_page_order(present, order), 31),
        {"max-ring-page-order": order},
    )


def _capacity_division_defined_fixed() -> tuple[list[Any], Any, dict[str, Any]]:
    sector_size = z3.BitVec("sector-size", U64)
    return (
        [fixed_sector_size_accepted(sector_size)],
        z3.UDiv(z3.BitVecVal(1 << 20, U64), sector_size) != 0,
        {"sector-size": sector_size},
    )


def _media_size_fits_fixed() -> tuple[list[Any], Any, dict[str, Any]]:
    # With the sector-size fixes on, sector-size is a power of two 2**k, 9 <= k <= 20: the
    # product sectors * 2**k is a shift and OFF_MAX / 2**k a right shift (the plain 64-bit
    # multiplication against a division is out of z3's reach).
    sectors = z3.BitVec("sectors", U64)
    shift = z3.BitVec("log2(sector-size)", U64)
    product = sectors << shift
    accepted = z3.ULE(sectors, z3.LShR(z3.BitVecVal(OFF_MAX, U64), shift))
    return (
        [sectors != 0, z3.UGE(shift, 9), z3.ULE(shift, 20), accepted],
        z3.And(z3.LShR(product, shift) == sectors, z3.Extract(63, 63, product) == 0),
        {"log2(sector-size)": shift, "sectors": sectors},
    )


def _sector_size_checked_fixed() -> tuple[list[Any], Any, dict[str, Any]]:
    sector_size = z3.BitVec("sector-size", U64)
    return (
        [fixed_sector_size_accepted(sector_size)],
        z3.And((sector_size & (sector_size - 1)) == 0, z3.UGE(sector_size, 512)),
        {"sector-size": sector_size},
    )


def _segments_fixed() -> tuple[list[Any], Any, dict[str, Any]]:
    present, advertised, enabled = _segment_inputs()
    segs, pages, size = fixed_negotiated_segments(present, advertised, enabled)
    return (
        [],
        z3.And(
            z3.Implies(z3.ULE(segs, BLKIF_MAX_SEGMENTS_PER_REQUEST), pages == 0),
            _segment_bounds(segs, pages, size),
        ),
        {"present": present, "feature-max-indirect-segments": advertised, "enabled": enabled},
    )


#: the refuted claims again, with the fixes on: all proved.  ``fixes`` names the finding.
FIXED_NEGOTIATION_OBLIGATIONS = (
    ArithmeticObligation(
        "ring_page_order_shift_defined_with_fix",
        _ring_order_shift_defined_fixed,
        "every 32-bit max-ring-page-order",
        "With the fix, the order shifted is at most 5: `1 << order` is defined for every "
        "value the back end may write (xbd_initialize).",
        fixes="ring-page-order-shift",
    ),
    ArithmeticObligation(
        "no_unused_indirect_pages_with_fix",
        _segments_fixed,
        "every 32-bit feature-max-indirect-segments, present or not, indirect on or off",
        "With the fix, a direct-only limit allocates no indirect pages, and the segment "
        "limits stay within their bounds (xbd_connect).",
        fixes="indirect-pages-before-clamp",
    ),
    ArithmeticObligation(
        "capacity_message_divides_safely_with_fix",
        _capacity_division_defined_fixed,
        "every 64-bit sector-size",
        "With the fix, every accepted sector-size leaves `1048576 / sector_size` non-zero "
        "(xbd_connect).",
        fixes="sector-size-division-by-zero",
    ),
    ArithmeticObligation(
        "media_size_fits_with_fix",
        _media_size_fits_fixed,
        "every 64-bit sectors, every sector-size the fixed front end accepts (2**9..2**20)",
        "With the fix, an accepted disk's d_mediasize is the true, non-negative product "
        "(xbd_connect, xbd_instance_create).",
        fixes="media-size-overflow",
    ),
    ArithmeticObligation(
        "sector_size_checked_with_fix",
        _sector_size_checked_fixed,
        "every 64-bit sector-size",
        "With the fix, the front end accepts only the sector sizes blkif.h allows (xbd_connect).",
        fixes="sector-size-unchecked",
    ),
)


NEGOTIATION_OBLIGATIONS = (
    ArithmeticObligation(
        "ring_page_order_shift_defined",
        _ring_order_shift_defined,
        "every 32-bit max-ring-page-order",
        "`1 << max_ring_page_order` (C int) is defined for every value the back end may write "
        "(xbd_initialize).",
        finding="ring-page-order-shift",
    ),
    ArithmeticObligation(
        "ring_pages_power_of_two_within_limit",
        _ring_pages_power_of_two,
        "every 32-bit max-ring-page-order and max-ring-pages, each present or not",
        "The negotiated ring-page count is a power of two between 1 and 32 (xbd_initialize; "
        "blkif.h).",
    ),
    ArithmeticObligation(
        "max_requests_within_limit",
        _max_requests_within_limit,
        "every 32-bit max-ring-page-order and max-ring-pages, each present or not",
        "The request limit is between 1 and XBD_MAX_REQUESTS (xbd_initialize).",
    ),
    ArithmeticObligation(
        "segments_within_bounds",
        _segments_within_bounds,
        "every 32-bit feature-max-indirect-segments, present or not, indirect on or off",
        "The segment limit is between 11 and maxphys's, its indirect pages at most 8 and enough "
        "for it, the request size within maxphys (xbd_connect).",
    ),
    ArithmeticObligation(
        "no_unused_indirect_pages",
        _no_unused_indirect_pages,
        "every 32-bit feature-max-indirect-segments, present or not, indirect on or off",
        "A limit that allows only direct requests allocates no indirect pages (xbd_connect).",
        finding="indirect-pages-before-clamp",
    ),
    ArithmeticObligation(
        "capacity_message_divides_safely",
        _capacity_division_defined,
        "every 64-bit sector-size",
        "`sectors / (1048576 / sector_size)` never divides by zero (xbd_connect).",
        finding="sector-size-division-by-zero",
        # 1048576 / s != 0 exactly when s <= 1048576 (unsigned): a test proves it
        equivalent=lambda i: z3.ULE(i["sector-size"], 1 << 20),
    ),
    ArithmeticObligation(
        "media_size_fits",
        _media_size_fits,
        "every 64-bit sectors and sector-size",
        "d_mediasize = sectors * sector_size is the true, non-negative product "
        "(xbd_instance_create).",
        finding="media-size-overflow",
    ),
    ArithmeticObligation(
        "sector_size_checked",
        _sector_size_power_of_two,
        "every 64-bit sector-size",
        "The front end accepts only the sector sizes blkif.h allows: a power of two, at least 512"
        " (xbd_connect).",
        finding="sector-size-unchecked",
    ),
)

NAMING_OBLIGATIONS = (
    ArithmeticObligation(
        "documented_devices_named_distinctly",
        _names_distinct(True),
        "every pair of documented 32-bit virtual-device numbers",
        "Two documented virtual-device numbers naming different disks get different names or "
        "units (xbd_vdevice_to_unit; xen-vbd-interface.7).",
    ),
    ArithmeticObligation(
        "any_device_named_apart_from_documented_ones",
        _names_distinct(False),
        "every 32-bit virtual-device number against every documented one",
        "No virtual-device number takes the name and unit of a different documented disk "
        "(xbd_vdevice_to_unit).",
        finding="vdevice-name-collision",
    ),
)

ARITHMETIC_OBLIGATIONS = (
    RING_OBLIGATIONS + NEGOTIATION_OBLIGATIONS + FIXED_NEGOTIATION_OBLIGATIONS + NAMING_OBLIGATIONS
)


def collisions(limit: int = 5) -> list[tuple[int, int]]:
    """Concrete pairs (undocumented or out-of-range number, documented number) that
    ``xbd_vdevice_to_unit`` maps to the same name and unit though they name
    different disks."""
    hyps, conclusion, inputs = _names_distinct(False)()
    solver = z3.Solver()
    solver.set("timeout", 5000)
    solver.add(*hyps, z3.Not(conclusion))
    found: list[tuple[int, int]] = []
    a, b = inputs["vdevice_a"], inputs["vdevice_b"]
    while len(found) < limit and solver.check() == z3.sat:
        m = solver.model()
        pair = (m.eval(a).as_long(), m.eval(b).as_long())
        found.append(pair)
        solver.add(a != pair[0])
    return found
