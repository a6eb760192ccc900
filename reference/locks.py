"""``mtx_lock`` / ``mtx_unlock`` / ``mtx_assert`` on the simulated single CPU.

There are no threads, so a mutex never blocks; what can go wrong is recursion: locking a
non-recursive ``MTX_DEF`` mutex that the caller already holds.  An ``INVARIANTS`` kernel
stops on it (``_mtx_lock_sleep: recursed on non-recursive mutex``); a production kernel
silently recurses.  ``Mutex.recursion_fatal`` (from ``Tunables``) chooses; either way the
event is counted in ``Mutex.recursions``.  A mutex initialised with ``MTX_RECURSE``
(``Mutex.recursive``, the grant table's lock) may be taken again by its owner: counted,
never fatal.
"""

from __future__ import annotations

from .faults import KernelAssertion
from .softc import Mutex


def mtx_init(mtx: Mutex, recursion_fatal: bool, recursive: bool = False) -> None:
    """``mtx_init(..., MTX_DEF)`` (``recursive``: ``MTX_DEF | MTX_RECURSE``)."""
    mtx.depth = 0
    mtx.initialised = True
    mtx.recursion_fatal = recursion_fatal
    mtx.recursive = recursive


def mtx_lock(mtx: Mutex) -> None:
    """Take the mutex; recursion is counted and, on an INVARIANTS kernel, fatal unless
    the mutex is ``MTX_RECURSE``."""
    if mtx.depth > 0:
        mtx.recursions += 1
        if mtx.recursion_fatal and not mtx.recursive:
            raise KernelAssertion(
                "mtx_lock",
                f"_mtx_lock_sleep: recursed on non-recursive mutex {mtx.name}",
            )
    mtx.depth += 1


def mtx_unlock(mtx: Mutex) -> None:
    """Release the mutex (one level of recursion)."""
    if mtx.depth <= 0:
        raise KernelAssertion("mtx_unlock", f"mutex {mtx.name} not owned")
    mtx.depth -= 1


def mtx_assert_owned(mtx: Mutex) -> None:
    """``mtx_assert(m, MA_OWNED)``."""
    if mtx.depth <= 0:
        raise KernelAssertion("mtx_assert", f"mutex {mtx.name} not owned")


def mtx_owned(mtx: Mutex) -> bool:
    """``mtx_owned(m)``."""
    return mtx.depth > 0
