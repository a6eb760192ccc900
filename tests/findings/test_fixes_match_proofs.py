"""The proofs' restatements of the fixes (``xbdspec.proofs.arithmetic``: the
``*_with_fix`` obligations) compute what the reference computes with those fixes on, at
the boundary values: so the proofs speak about the code the fixed profile runs."""

from __future__ import annotations

import pytest
import z3
from xbdspec.proofs import arithmetic as A
from xbdspec.reference import BackendConfig, Fixes, Platform, Tunables
from xbdspec.reference.lifecycle import _media_size_fits


def _value(term: z3.ExprRef) -> int | bool:
    result = z3.simplify(term)
    return bool(z3.is_true(result)) if z3.is_bool(result) else int(result.as_long())


def _u32(n: int) -> z3.BitVecRef:
    return z3.BitVecVal(n, 32)


def _u64(n: int) -> z3.BitVecRef:
    return z3.BitVecVal(n, 64)


@pytest.mark.parametrize("order", [0, 1, 4, 5, 6, 30, 31, 32, 2**31, 2**32 - 1])
def test_the_clamped_ring_order_is_the_references(order: int) -> None:
    clamped = _value(A.fixed_ring_page_order(z3.BoolVal(True), _u32(order)))
    platform = Platform(
        fixes=Fixes.only("ring-page-order-shift"),
        backend_config=BackendConfig(max_ring_page_order=order),
    )
    platform.boot()
    assert platform.softc().xbd_ring_pages == 1 << int(clamped)


@pytest.mark.parametrize(
    "size", [1, 256, 511, 512, 513, 1536, 4096, 65536, 1 << 20, (1 << 20) + 1, 1 << 21]
)
def test_the_accepted_sector_sizes_are_the_references(size: int) -> None:
    accepted = _value(A.fixed_sector_size_accepted(_u64(size)))
    platform = Platform(
        fixes=Fixes.only("sector-size-division-by-zero", "sector-size-unchecked"),
        backend_config=BackendConfig(sector_size=size, sectors=16384),
    )
    platform.plug()
    from xbdspec.reference.lifecycle import attach, probe

    assert platform.dev is not None
    assert probe(platform.dev) == 0 and attach(platform.dev) == 0
    platform.register_watches()
    platform.backend.start()
    platform.settle()
    assert (platform.softc().xbd_disk is not None) == accepted


@pytest.mark.parametrize("unit", [512, 4096, 1 << 20])
@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_the_accepted_disk_sizes_are_the_references(unit: int, offset: int) -> None:
    platform = Platform(fixes=Fixes.only("media-size-overflow"))
    boundary = ((1 << 63) - 1) // unit + offset
    accepted = _value(A.fixed_media_size_accepted(_u64(boundary), _u64(unit)))
    platform.boot()
    sc = platform.softc()
    assert _media_size_fits(sc, boundary, unit) == accepted
    assert accepted == (offset <= 0)


@pytest.mark.parametrize("advertised", [None, 0, 1, 10, 11, 12, 255, 256, 257, 2**32 - 1])
@pytest.mark.parametrize("enabled", [False, True])
def test_the_fixed_segment_limits_are_the_references(advertised: int | None, enabled: bool) -> None:
    segs, pages, _ = A.fixed_negotiated_segments(
        z3.BoolVal(advertised is not None), _u32(advertised or 0), z3.BoolVal(enabled)
    )
    platform = Platform(
        fixes=Fixes.only("indirect-pages-before-clamp"),
        tunables=Tunables(xbd_enable_indirect=int(enabled)),
        backend_config=BackendConfig(max_indirect_segments=advertised),
    )
    platform.boot()
    sc = platform.softc()
    assert (sc.xbd_max_request_segments, sc.xbd_max_request_indirectpages) == (
        _value(segs),
        _value(pages),
    )
