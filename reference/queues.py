"""FreeBSD ``block.h``'s command and bio queue helpers, with their panics and assertions.

A command records the queue it is on in the low byte of ``cm_flags`` (``XBDCF_Q_MASK``);
``XBD_Q_NONE`` (0xFF) means "on no queue".  Each queue keeps a ``uint32_t`` length and
high-water mark.  The bio queue is a separate ``bioq`` whose counters live in slot
``XBD_Q_BIO`` of the same array; using it with a command helper is an assertion failure.

``%p`` in the kernel's messages is rendered as ``cm<id>`` (the command's ``cm_id``).
"""

from __future__ import annotations

from collections import deque

from .constants import XBD_Q_BIO, XBD_Q_COUNT, XBD_Q_NONE, XBDCF_Q_MASK
from .faults import KernelAssertion, KernelPanic, UndefinedBehaviour
from .softc import Bio, CmQueue, Command, Softc


def _name(cm: Command) -> str:
    return f"cm{cm.cm_id}"


def _softc_of(cm: Command, where: str) -> Softc:
    sc = cm.cm_sc
    if sc is None:
        raise UndefinedBehaviour(where, f"NULL dereference of {_name(cm)}->cm_sc")
    return sc


def xbd_added_qentry(sc: Softc, index: int) -> None:
    """Count one more entry on queue ``index`` and raise its high-water mark."""
    cmq = sc.xbd_cm_q[index]
    cmq.q_length = (cmq.q_length + 1) & 0xFFFF_FFFF
    if cmq.q_length > cmq.q_max:
        cmq.q_max = cmq.q_length


def xbd_removed_qentry(sc: Softc, index: int) -> None:
    """Count one entry fewer on queue ``index`` (a ``uint32_t``: 0 - 1 wraps)."""
    cmq = sc.xbd_cm_q[index]
    cmq.q_length = (cmq.q_length - 1) & 0xFFFF_FFFF


def xbd_queue_length(sc: Softc, index: int) -> int:
    """``xbd_queue_length``: the queue's ``q_length`` counter."""
    return sc.xbd_cm_q[index].q_length


def xbd_initq_cm(sc: Softc, index: int) -> None:
    """``xbd_initq_cm``: empty the tail queue and zero its counters."""
    sc.xbd_cm_q[index] = CmQueue()


def _check_not_bio(index: int, where: str) -> None:
    if index == XBD_Q_BIO:
        raise KernelAssertion(where, f"{where}: Commands cannot access the bio queue.")


def _insert(cm: Command, index: int, where: str, at_head: bool) -> None:
    if index == XBD_Q_BIO:
        raise KernelAssertion(where, f"{where}: Commands cannot access the bio queue.")
    flags = cm.cm_flags
    current = flags & XBDCF_Q_MASK
    if current != XBD_Q_NONE:
        raise KernelPanic(where, f"{where}: command {_name(cm)} is already on queue {current}.")
    sc = cm.cm_sc
    if sc is None:
        raise UndefinedBehaviour(where, f"NULL dereference of {_name(cm)}->cm_sc")
    if not 0 <= index < XBD_Q_COUNT:
        raise UndefinedBehaviour(where, f"sc->xbd_cm_q[{index}] out of bounds")
    cmq = sc.xbd_cm_q[index]
    if at_head:
        cmq.q_tailq.appendleft(cm)
    else:
        cmq.q_tailq.append(cm)
    cm.cm_flags = (flags & ~XBDCF_Q_MASK) | index
    length = (cmq.q_length + 1) & 0xFFFF_FFFF
    cmq.q_length = length
    if length > cmq.q_max:
        cmq.q_max = length


def xbd_enqueue_cm(cm: Command, index: int) -> None:
    """``xbd_enqueue_cm``: put ``cm`` at the tail of queue ``index``."""
    _insert(cm, index, "xbd_enqueue_cm", at_head=False)


def xbd_requeue_cm(cm: Command, index: int) -> None:
    """``xbd_requeue_cm``: put ``cm`` at the head of queue ``index``."""
    _insert(cm, index, "xbd_requeue_cm", at_head=True)


def xbd_dequeue_cm(sc: Softc, index: int) -> Command | None:
    """``xbd_dequeue_cm``: take the head of queue ``index`` (or ``None``)."""
    if index == XBD_Q_BIO:
        raise KernelAssertion(
            "xbd_dequeue_cm", "xbd_dequeue_cm: Commands cannot access the bio queue."
        )
    cmq = sc.xbd_cm_q[index]
    tailq = cmq.q_tailq
    if not tailq:
        return None
    cm = tailq[0]
    if (cm.cm_flags & XBDCF_Q_MASK) != index:
        raise KernelPanic(
            "xbd_dequeue_cm",
            f"xbd_dequeue_cm: command {_name(cm)} is on queue {cm.cm_flags & XBDCF_Q_MASK}, "
            f"not specified queue {index}",
        )
    tailq.popleft()
    cm.cm_flags = (cm.cm_flags & ~XBDCF_Q_MASK) | XBD_Q_NONE
    owner = cm.cm_sc
    if owner is None:
        raise UndefinedBehaviour("xbd_dequeue_cm", f"NULL dereference of {_name(cm)}->cm_sc")
    owner_q = owner.xbd_cm_q[index]
    owner_q.q_length = (owner_q.q_length - 1) & 0xFFFF_FFFF
    return cm


def xbd_remove_cm(cm: Command, expected_index: int) -> None:
    """``xbd_remove_cm``: take ``cm`` off the queue its flags name, which must be expected."""
    index = cm.cm_flags & XBDCF_Q_MASK
    _check_not_bio(index, "xbd_remove_cm")
    if index != expected_index:
        raise KernelPanic(
            "xbd_remove_cm",
            f"xbd_remove_cm: command {_name(cm)} is on queue {index}, "
            f"not specified queue {expected_index}",
        )
    sc = _softc_of(cm, "xbd_remove_cm")
    tailq = sc.xbd_cm_q[index].q_tailq
    try:
        tailq.remove(cm)
    except ValueError:
        raise UndefinedBehaviour(
            "xbd_remove_cm",
            f"TAILQ_REMOVE of {_name(cm)} that is not linked on queue {index}",
        ) from None
    cm.cm_flags = (cm.cm_flags & ~XBDCF_Q_MASK) | XBD_Q_NONE
    xbd_removed_qentry(sc, index)


def xbd_initq_bio(sc: Softc) -> None:
    """``xbd_initq_bio``: ``bioq_init`` only; the counters are left alone."""
    sc.xbd_bioq = deque()


def xbd_enqueue_bio(sc: Softc, bp: Bio) -> None:
    """``xbd_enqueue_bio``: ``bioq_insert_tail`` and count it."""
    sc.xbd_bioq.append(bp)
    xbd_added_qentry(sc, XBD_Q_BIO)


def xbd_requeue_bio(sc: Softc, bp: Bio) -> None:
    """``xbd_requeue_bio``: ``bioq_insert_head`` and count it."""
    sc.xbd_bioq.appendleft(bp)
    xbd_added_qentry(sc, XBD_Q_BIO)


def xbd_dequeue_bio(sc: Softc) -> Bio | None:
    """``xbd_dequeue_bio``: take the first bio, or ``None``."""
    if not sc.xbd_bioq:
        return None
    bp = sc.xbd_bioq.popleft()
    xbd_removed_qentry(sc, XBD_Q_BIO)
    return bp


def xbd_initqs(sc: Softc) -> None:
    """``xbd_initqs``: every command queue (the bio slot's counters too) and the bioq."""
    for index in range(XBD_Q_COUNT):
        xbd_initq_cm(sc, index)
    xbd_initq_bio(sc)
