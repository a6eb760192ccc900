"""ring.h macros across 2^32 wrap-around; block.h queue helpers; freeze/thaw accounting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from xbdspec.reference import (
    KernelAssertion,
    KernelPanic,
    Platform,
    cm_freeze,
    cm_thaw,
    freeze,
    thaw,
)
from xbdspec.reference.constants import (
    XBD_Q_BIO,
    XBD_Q_BUSY,
    XBD_Q_FREE,
    XBD_Q_NONE,
    XBD_Q_READY,
    XBDCF_FROZEN,
    XBDCF_INITIALIZER,
    XBDCF_Q_FREEZE,
    XBDF_CM_SHORTAGE,
    XBDF_NONE,
    XBDF_WAIT_IDLE,
    blkif_max_ring_requests,
)
from xbdspec.reference.memory import PhysMem
from xbdspec.reference.queues import (
    xbd_dequeue_bio,
    xbd_dequeue_cm,
    xbd_enqueue_bio,
    xbd_enqueue_cm,
    xbd_initqs,
    xbd_queue_length,
    xbd_remove_cm,
    xbd_requeue_bio,
    xbd_requeue_cm,
)
from xbdspec.reference.ring import (
    BACK_RING_ATTACH,
    FRONT_RING_INIT,
    RING_FINAL_CHECK_FOR_RESPONSES,
    RING_FREE_REQUESTS,
    RING_FULL,
    RING_HAS_UNCONSUMED_RESPONSES,
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY,
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY,
    RSP_EVENT,
    SHARED_RING_INIT,
    BackRing,
    FrontRing,
    SharedRing,
)
from xbdspec.reference.softc import Bio, Command, Softc

U32 = 2**32


def test_ring_sizes_use_the_real_entry_size() -> None:
    assert blkif_max_ring_requests(4096) == 32  # (4096 - 64) / 112 = 36 -> 32
    assert blkif_max_ring_requests(2 * 4096) == 64
    assert blkif_max_ring_requests(32 * 4096) == 1024


def _rings(start: int) -> tuple[FrontRing, BackRing, SharedRing]:
    sring = SharedRing(PhysMem().alloc(4096))
    SHARED_RING_INIT(sring, start)
    front = FrontRing()
    FRONT_RING_INIT(front, sring, 4096, start)
    back = BackRing()
    BACK_RING_ATTACH(back, sring, 4096)
    return front, back, sring


@given(st.integers(0, U32 - 1), st.integers(0, 200))
def test_ring_macros_across_wraparound(start: int, rounds: int) -> None:
    front, back, sring = _rings(start)
    produced = 0
    for _ in range(rounds % 70):
        # fill the ring completely, then answer everything
        while not RING_FULL(front):
            front.req_prod_pvt = (front.req_prod_pvt + 1) % U32
            produced += 1
        assert RING_FREE_REQUESTS(front) == 0
        RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(front)
        back.rsp_prod_pvt = sring.req_prod
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(back)
        assert RING_HAS_UNCONSUMED_RESPONSES(front) == 32
        front.rsp_cons = sring.rsp_prod
        assert RING_FREE_REQUESTS(front) == 32
        assert not RING_FINAL_CHECK_FOR_RESPONSES(front)
        assert sring.rsp_event == (front.rsp_cons + 1) % U32
    assert front.req_prod_pvt == (start + produced) % U32


def test_push_notifies_only_when_crossing_req_event_at_the_wrap() -> None:
    front, _back, sring = _rings(U32 - 2)
    assert sring.req_event == U32 - 1
    front.req_prod_pvt = (U32 - 2 + 3) % U32  # 2^32-2 -> 1, crossing req_event
    assert RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(front)
    sring.set(0x4, 10)  # back end asks to be told at 10
    front.req_prod_pvt = 5
    assert not RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(front)
    front.req_prod_pvt = 10
    assert RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(front)


def test_final_check_sets_rsp_event_and_sees_late_responses() -> None:
    front, back, sring = _rings(U32 - 1)
    assert not RING_FINAL_CHECK_FOR_RESPONSES(front)
    assert sring.get(RSP_EVENT) == 0  # rsp_cons + 1 wrapped
    back.rsp_prod_pvt = 0  # one response published across the wrap
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(back)
    assert RING_FINAL_CHECK_FOR_RESPONSES(front)


# ----------------------------------------------------------------------- queues
def _softc_with_commands(n: int = 3) -> tuple[Softc, list[Command]]:
    sc = Softc(Platform())
    xbd_initqs(sc)
    cms = [Command(cm_sc=sc, cm_id=i, cm_flags=XBDCF_INITIALIZER) for i in range(n)]
    return sc, cms


def test_enqueue_requeue_dequeue_order_and_counters() -> None:
    sc, (a, b, c) = _softc_with_commands()
    xbd_enqueue_cm(a, XBD_Q_FREE)
    xbd_enqueue_cm(b, XBD_Q_FREE)
    xbd_requeue_cm(c, XBD_Q_FREE)
    assert xbd_queue_length(sc, XBD_Q_FREE) == 3
    assert sc.xbd_cm_q[XBD_Q_FREE].q_max == 3
    assert [xbd_dequeue_cm(sc, XBD_Q_FREE) for _ in range(3)] == [c, a, b]
    assert xbd_dequeue_cm(sc, XBD_Q_FREE) is None
    assert a.cm_flags & 0xFF == XBD_Q_NONE
    assert sc.xbd_cm_q[XBD_Q_FREE].q_max == 3 and xbd_queue_length(sc, XBD_Q_FREE) == 0


def test_enqueue_twice_panics() -> None:
    _sc, (a, *_rest) = _softc_with_commands()
    xbd_enqueue_cm(a, XBD_Q_FREE)
    with pytest.raises(KernelPanic, match="already on queue 0"):
        xbd_enqueue_cm(a, XBD_Q_READY)
    with pytest.raises(KernelPanic, match="already on queue 0"):
        xbd_requeue_cm(a, XBD_Q_READY)


def test_bio_queue_with_command_helpers_is_an_assertion() -> None:
    sc, (a, *_rest) = _softc_with_commands()
    with pytest.raises(KernelAssertion, match="cannot access the bio queue"):
        xbd_enqueue_cm(a, XBD_Q_BIO)
    with pytest.raises(KernelAssertion):
        xbd_dequeue_cm(sc, XBD_Q_BIO)


def test_remove_and_dequeue_check_the_queue() -> None:
    sc, (a, b, _c) = _softc_with_commands()
    xbd_enqueue_cm(a, XBD_Q_BUSY)
    with pytest.raises(KernelPanic, match="on queue 2, not specified queue 1"):
        xbd_remove_cm(a, XBD_Q_READY)
    xbd_remove_cm(a, XBD_Q_BUSY)
    assert xbd_queue_length(sc, XBD_Q_BUSY) == 0
    xbd_enqueue_cm(b, XBD_Q_READY)
    b.cm_flags = (b.cm_flags & ~0xFF) | XBD_Q_BUSY  # corrupt: flags name another queue
    with pytest.raises(KernelPanic, match="not specified queue 1"):
        xbd_dequeue_cm(sc, XBD_Q_READY)


def test_bio_queue_counted_separately() -> None:
    sc, _ = _softc_with_commands()
    first, second = Bio(1), Bio(2)
    xbd_enqueue_bio(sc, first)
    xbd_requeue_bio(sc, second)
    assert xbd_queue_length(sc, XBD_Q_BIO) == 2
    assert xbd_dequeue_bio(sc) is second
    assert xbd_dequeue_bio(sc) is first
    assert xbd_dequeue_bio(sc) is None
    assert xbd_queue_length(sc, XBD_Q_BIO) == 0


# ----------------------------------------------------------------------- freeze/thaw
def test_freeze_counts_each_flag_once_and_none_always() -> None:
    sc, _ = _softc_with_commands()
    freeze(sc, XBDF_CM_SHORTAGE)
    freeze(sc, XBDF_CM_SHORTAGE)
    freeze(sc, XBDF_NONE)
    freeze(sc, XBDF_NONE)
    assert sc.xbd_qfrozen_cnt == 3
    thaw(sc, XBDF_WAIT_IDLE)  # not set: no effect
    assert sc.xbd_qfrozen_cnt == 3
    thaw(sc, XBDF_CM_SHORTAGE)
    assert sc.xbd_qfrozen_cnt == 2 and not sc.xbd_flags & XBDF_CM_SHORTAGE


def test_thaw_while_not_frozen_panics() -> None:
    sc, _ = _softc_with_commands()
    with pytest.raises(KernelPanic, match="Thaw with flag 0x0 while not frozen"):
        thaw(sc, XBDF_NONE)
    sc.xbd_flags |= XBDF_WAIT_IDLE  # a flag set without a count: the accounting is broken
    with pytest.raises(KernelPanic, match="0x40"):
        thaw(sc, XBDF_WAIT_IDLE)


def test_command_freezes_at_most_once() -> None:
    sc, (a, *_rest) = _softc_with_commands()
    cm_freeze(sc, a, XBDCF_Q_FREEZE)
    cm_freeze(sc, a, 0)
    assert sc.xbd_qfrozen_cnt == 1 and a.cm_flags & XBDCF_FROZEN
    cm_thaw(sc, a)
    cm_thaw(sc, a)
    assert sc.xbd_qfrozen_cnt == 0 and not a.cm_flags & XBDCF_FROZEN
    assert a.cm_flags & XBDCF_Q_FREEZE  # the single-step flag stays
