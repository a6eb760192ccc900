"""Bus DMA (``bus_dma(9)``) as the seed uses it, with the mapping outcome chosen by the test.

``bus_dmamap_load_bio`` splits a bio's buffer into page-bounded segments (the seed's tag has
``maxsegsz = boundary = PAGE_SIZE``) and then, according to the next :class:`MapMode`:

* ``IMMEDIATE``: calls the callback at once with the segments and returns 0;
* ``DEFERRED``: returns ``EINPROGRESS``; the callback runs later, when the test calls
  :meth:`BusDma.run_deferred`, under the tag's lock (``busdma_lock_mutex``);
* ``FAIL``: calls the callback with ``EFBIG`` and returns 0 (as ``bus_dmamap_load_bio``
  does for any error but ``ENOMEM``);
* ``FAIL_ENOMEM``: the load runs out of resources (bounce pages, IOMMU space).  What
  follows depends on the caller's ``flags``, as in FreeBSD: with ``BUS_DMA_NOWAIT`` the
  callback gets ``ENOMEM`` and the load returns ``ENOMEM``; without it the map waits for
  resources and the load returns ``EINPROGRESS``, exactly as ``DEFERRED`` (its callback
  runs at :meth:`BusDma.run_deferred`, as ``busdma_swi`` runs it when pages come back).

A buffer needing more segments than the tag allows fails with ``EFBIG`` whatever the mode.

FreeBSD's ``sys/kern/subr_bus_dma.c`` (``bus_dmamap_load``/``bus_dmamap_load_bio``;
checked in the FreeBSD 14 vendor tree sobomax/freebsd14_vendor at
0f7ff3427c99afe8b7a0ccf8638dc10aed02c3f8 and at freebsd/freebsd-src
05476d02394a648bb45a303b7cc373e5582f03d6) returns the callback's error to the caller only
for ``ENOMEM``, "This error only happens when NOWAIT is set, so deferral is disabled";
``sys/x86/x86/busdma_bounce.c`` (``_bus_dmamap_reserve_pages``, freebsd/freebsd-src at
01f79c9da806b7e64fc250c516b04e9e12a8d7bb) answers
``ENOMEM`` only with ``BUS_DMA_NOWAIT`` and otherwise queues the map and answers
``EINPROGRESS``; the IOMMU back end (``sys/dev/iommu/busdma_iommu.c``,
``iommu_bus_dmamap_load_something``) turns ``ENOMEM`` into ``EINPROGRESS`` the same way.
The seed passes ``flags`` 0 to both loads, so ``xbd_queue_request`` never sees an error
and the ``break`` in ``xbd_startio`` after a failed ``xbd_queue_request`` is dead code.
:attr:`BusDma.assume_nowait` is the one way to make a load answer ``ENOMEM`` at once: a
test hook for the defensive half of the ``mapping-failure-stops-loop`` fix.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .constants import BUS_DMA_NOWAIT, EFBIG, EINPROGRESS, ENOMEM, PAGE_MASK, PAGE_SIZE
from .locks import mtx_lock, mtx_unlock
from .memory import KernelBuffer
from .softc import Mutex

_XBDCF_Q_FREEZE = 1 << 9

#: ``bus_dma_segment_t``: (ds_addr, ds_len).
Segment = tuple[int, int]
DmaCallback = Callable[[Any, list[Segment], int, int], None]


class MapMode(Enum):
    """How the next ``bus_dmamap_load*`` call completes."""

    IMMEDIATE = "immediate"
    DEFERRED = "deferred"
    FAIL = "fail"
    FAIL_ENOMEM = "fail-enomem"


@dataclass(slots=True, eq=False)
class DmaTag:
    """``bus_dma_tag_t``: the limits the seed gives ``bus_dma_tag_create``."""

    alignment: int
    boundary: int
    maxsize: int
    nsegments: int
    maxsegsz: int
    lockarg: Mutex | None
    destroyed: bool = False


@dataclass(slots=True, eq=False)
class DmaMap:
    """``bus_dmamap_t``: whether it is loaded, and the last sync operation."""

    loaded: bool = False
    last_sync: int = 0
    destroyed: bool = False


@dataclass(slots=True, eq=False)
class DeferredLoad:
    """A load that returned ``EINPROGRESS``; its callback is still to run."""

    tag: DmaTag
    map: DmaMap
    callback: DmaCallback
    arg: Any
    segs: list[Segment]


def split_segments(buffer: KernelBuffer | None, length: int) -> list[Segment]:
    """Page-bounded segments covering ``length`` bytes of ``buffer``."""
    if buffer is None or length <= 0:
        return []
    segs: list[Segment] = []
    addr = buffer.physaddr()
    end = addr + length
    while addr < end:
        chunk = min(end - addr, PAGE_SIZE - (addr & PAGE_MASK))
        segs.append((addr, chunk))
        addr += chunk
    return segs


@dataclass(slots=True, eq=False)
class BusDma:
    """The simulated DMA engine and the test's choices for it.

    Attributes:
        default_mode: the mode used when ``next_modes`` is empty.
        next_modes: modes for the next loads, in order (the test pushes them).
        deferred: loads waiting for their callback.
        fail_tag_create / fail_map_create: errors the next creations return (0 = succeed).
        assume_nowait: a test hook: every load behaves as if its caller had passed
            ``BUS_DMA_NOWAIT``, so ``FAIL_ENOMEM`` answers ``ENOMEM`` at once.  The seed
            passes 0, so on FreeBSD its loads never do; only the reference unit test of
            the defensive half of ``Fixes.mapping_failure_stops_loop`` sets it.
        enomem_deferred: how many ``FAIL_ENOMEM`` loads were deferred for want of
            ``BUS_DMA_NOWAIT``.
    """

    default_mode: MapMode = MapMode.IMMEDIATE
    next_modes: deque[MapMode] = field(default_factory=deque)
    deferred: list[DeferredLoad] = field(default_factory=list)
    fail_tag_create: int = 0
    fail_map_create_after: int = -1
    loads: int = 0
    deferred_count: int = 0
    #: a simulation policy: when False, never defer a load whose argument is a command
    #: flagged ``XBDCF_Q_FREEZE`` (see docs/seed-notes.md, queue_request).
    defer_single_stepped: bool = True
    assume_nowait: bool = False
    enomem_deferred: int = 0

    def _mode(self, arg: Any) -> MapMode:
        mode = self.next_modes.popleft() if self.next_modes else self.default_mode
        if (
            mode is MapMode.DEFERRED
            and not self.defer_single_stepped
            and getattr(arg, "cm_flags", 0) & _XBDCF_Q_FREEZE
        ):
            return MapMode.IMMEDIATE
        return mode

    def bus_dma_tag_create(
        self,
        alignment: int,
        boundary: int,
        maxsize: int,
        nsegments: int,
        maxsegsz: int,
        lockarg: Mutex | None,
    ) -> tuple[int, DmaTag | None]:
        """``bus_dma_tag_create`` -> (error, tag)."""
        if self.fail_tag_create:
            error, self.fail_tag_create = self.fail_tag_create, 0
            return error, None
        return 0, DmaTag(alignment, boundary, maxsize, nsegments, maxsegsz, lockarg)

    def bus_dmamap_create(self, tag: DmaTag | None) -> tuple[int, DmaMap | None]:
        """``bus_dmamap_create`` -> (error, map); fails once the countdown reaches 0."""
        if self.fail_map_create_after == 0:
            self.fail_map_create_after = -1
            return ENOMEM, None
        if self.fail_map_create_after > 0:
            self.fail_map_create_after -= 1
        return 0, DmaMap()

    def load(
        self,
        tag: DmaTag,
        dmamap: DmaMap,
        buffer: KernelBuffer | None,
        length: int,
        callback: DmaCallback,
        arg: Any,
        flags: int = 0,
    ) -> int:
        """The common body of ``bus_dmamap_load`` and ``bus_dmamap_load_bio`` (``flags``
        as the caller passes them; the seed passes 0)."""
        self.loads += 1
        segs = split_segments(buffer, length)
        mode = self._mode(arg)
        if len(segs) > tag.nsegments:
            callback(arg, segs, 0, EFBIG)
            return 0
        if self.assume_nowait:
            flags |= BUS_DMA_NOWAIT
        if mode is MapMode.FAIL_ENOMEM and not flags & BUS_DMA_NOWAIT:
            # _bus_dmamap_reserve_pages without BUS_DMA_NOWAIT: queued for resources
            self.enomem_deferred += 1
            mode = MapMode.DEFERRED
        if mode is MapMode.DEFERRED:
            self.deferred.append(DeferredLoad(tag, dmamap, callback, arg, segs))
            self.deferred_count += 1
            return EINPROGRESS
        if mode is MapMode.FAIL:
            callback(arg, segs, 0, EFBIG)
            return 0
        if mode is MapMode.FAIL_ENOMEM:
            callback(arg, segs, 0, ENOMEM)
            return ENOMEM
        dmamap.loaded = True
        callback(arg, segs, len(segs), 0)
        return 0

    def run_deferred(self, index: int = 0, error: int = 0) -> bool:
        """Run the callback of deferred load ``index`` under the tag's lock; False if none.

        ``error`` makes the late mapping fail (the callback gets it and no segments).
        """
        if not 0 <= index < len(self.deferred):
            return False
        pending = self.deferred.pop(index)
        pending.map.loaded = True
        lock = pending.tag.lockarg
        if lock is not None:
            mtx_lock(lock)
        try:
            if error:
                pending.callback(pending.arg, pending.segs, 0, error)
            else:
                pending.callback(pending.arg, pending.segs, len(pending.segs), 0)
        finally:
            if lock is not None and lock.depth > 0:
                mtx_unlock(lock)
        return True
