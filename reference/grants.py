"""The grant table (FreeBSD ``sys/dev/xen/grant_table/grant_table.c`` semantics).

A finite pool of grant references (the table does not grow in the simulation: it is
``boot_max_nr_grant_frames`` already).  A private list from
``gnttab_alloc_grant_references`` is a Python list (empty = ``GNTTAB_LIST_END``).  Free
callbacks run synchronously from whichever call returns references, as in FreeBSD: from
``gnttab_free_grant_references``, ``gnttab_end_foreign_access_references`` and
``put_free_entry`` -- so inside the driver's I/O lock when the driver itself frees them.

Each entry records the frame, the domain and the ``GTF_*`` flags, so the back end can map a
reference only if it was granted to it, and only for reading if it is read-only.

``gnttab_list_lock`` is modelled (:attr:`GrantTable.lock`): FreeBSD initialises it
``MTX_DEF | MTX_RECURSE`` (``MTX_SYSINIT(gnttab, ...)`` at the end of ``grant_table.c``)
and takes it where the C does -- ``get_free_entries``, the returns of references, the
callback registration and cancellation.  Free callbacks run with it held
(``check_free_callbacks`` is called inside the lock), so the seed's
``xbd_restart_queue_callback`` reaches ``gnttab_alloc_grant_references`` and
``gnttab_request_free_callback`` (through ``xbd_startio``) and
``gnttab_free_grant_references`` (through ``xbd_queue_cb``) with the grant lock already
held: legal because the lock is recursive, and counted in ``lock.recursions``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from .constants import ENOSPC, GNTTAB_LIST_END, NR_RESERVED_ENTRIES
from .faults import KernelHang, UndefinedBehaviour
from .locks import mtx_lock, mtx_unlock
from .memory import PhysMem
from .softc import Mutex

GTF_permit_access: Final = 1
GTF_readonly: Final = 1 << 2
GTF_reading: Final = 1 << 3
GTF_writing: Final = 1 << 4


@dataclass(slots=True, eq=False)
class GnttabFreeCallback:
    """``struct gnttab_free_callback``: a function to call when ``count`` refs are free."""

    fn: Callable[[Any], None] | None = None
    arg: Any = None
    count: int = 0


@dataclass(slots=True, eq=False)
class GrantTable:
    """The guest's grant table and its free list.

    Attributes:
        free: the free references (a stack; the C free list is LIFO too).
        callbacks: ``gnttab_free_callback_list``, head first.
        callbacks_fired: how many free callbacks ran (for tests and reports).
        lock: ``gnttab_list_lock`` (``MTX_DEF | MTX_RECURSE``).
    """

    nr_entries: int
    frame: list[int] = field(default_factory=list)
    domid: list[int] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    free: list[int] = field(default_factory=list)
    callbacks: list[GnttabFreeCallback] = field(default_factory=list)
    callbacks_fired: int = 0
    lock: Mutex = field(
        default_factory=lambda: Mutex("GNTTAB LOCK", initialised=True, recursive=True)
    )

    def __post_init__(self) -> None:
        n = self.nr_entries
        self.frame = [0] * n
        self.domid = [0] * n
        self.flags = [0] * n
        self.free = list(range(n - 1, NR_RESERVED_ENTRIES - 1, -1))

    @property
    def free_count(self) -> int:
        """``gnttab_free_count``."""
        return len(self.free)

    # ------------------------------------------------------------------ internals
    def _check(self, ref: int, where: str) -> None:
        if not 0 <= ref < self.nr_entries:
            raise UndefinedBehaviour(where, f"shared[{ref}] outside the grant table")

    def _check_free_callbacks(self) -> None:
        """``check_free_callbacks``/``do_free_callbacks``; the caller holds the lock."""
        if not self.callbacks:
            return
        pending = self.callbacks
        self.callbacks = []
        for callback in pending:
            if self.free_count >= callback.count:
                self.callbacks_fired += 1
                if callback.fn is not None:
                    callback.fn(callback.arg)
            else:
                self.callbacks.insert(0, callback)

    def get_free_entries(self, count: int) -> list[int] | None:
        """``get_free_entries``: ``count`` references, or ``None`` (``ENOSPC``)."""
        mtx_lock(self.lock)
        try:
            if self.free_count < count:
                return None
            if count == 0:
                return []
            taken = self.free[-count:]
            del self.free[-count:]
            taken.reverse()
            return taken
        finally:
            mtx_unlock(self.lock)

    def _put_free_entries(self, refs: list[int]) -> None:
        """Link ``refs`` onto the free list and run the callbacks, under the lock (the
        common tail of ``put_free_entry``, ``gnttab_free_grant_references`` and
        ``gnttab_end_foreign_access_references``)."""
        mtx_lock(self.lock)
        try:
            self.free.extend(refs)
            self._check_free_callbacks()
        finally:
            mtx_unlock(self.lock)

    # ------------------------------------------------------------------ public API
    def gnttab_alloc_grant_references(self, count: int) -> tuple[int, list[int]]:
        """``gnttab_alloc_grant_references(uint16_t count, &head)`` -> (error, head)."""
        refs = self.get_free_entries(count & 0xFFFF)
        if refs is None:
            return ENOSPC, []
        return 0, refs

    def gnttab_claim_grant_reference(self, head: list[int]) -> int:
        """Take one reference from a private list; ``GNTTAB_LIST_END`` when empty."""
        if not head:
            return GNTTAB_LIST_END
        return head.pop(0)

    def gnttab_free_grant_references(self, head: list[int]) -> None:
        """Return a whole private list to the pool, then run the free callbacks."""
        if not head:
            return
        refs = list(reversed(head))
        head.clear()
        self._put_free_entries(refs)

    def gnttab_free_grant_reference(self, ref: int) -> None:
        """``gnttab_free_grant_reference`` (``put_free_entry``): return one reference."""
        self._check(ref, "gnttab_free_grant_reference")
        self._put_free_entries([ref])

    def gnttab_grant_foreign_access(self, domid: int, frame: int, readonly: int) -> tuple[int, int]:
        """Allocate one reference and grant ``frame`` to ``domid`` -> (error, ref)."""
        refs = self.get_free_entries(1)
        if refs is None:
            return ENOSPC, 0
        ref = refs[0]
        self.gnttab_grant_foreign_access_ref(ref, domid, frame, readonly)
        return 0, ref

    def gnttab_grant_foreign_access_ref(
        self, ref: int, domid: int, frame: int, readonly: int
    ) -> None:
        """Fill in entry ``ref``: frame, domain, ``GTF_permit_access`` (+ read-only)."""
        self._check(ref, "gnttab_grant_foreign_access_ref")
        self.frame[ref] = frame
        self.domid[ref] = domid
        self.flags[ref] = GTF_permit_access | (GTF_readonly if readonly else 0)

    def gnttab_end_foreign_access_ref(self, ref: int) -> int:
        """Revoke access: 1 on success, 0 while the other end still maps it."""
        self._check(ref, "gnttab_end_foreign_access_ref")
        if self.flags[ref] & (GTF_reading | GTF_writing):
            return 0
        self.flags[ref] = 0
        return 1

    def gnttab_end_foreign_access_references(self, count: int, refs: list[int]) -> None:
        """Revoke ``refs[:count]`` and return them to the pool, then run the callbacks."""
        if count > len(refs):
            raise UndefinedBehaviour(
                "gnttab_end_foreign_access_references",
                f"reads refs[{len(refs)}..{count - 1}] past the end of the array",
            )
        returned = [ref for ref in refs[:count] if self.gnttab_end_foreign_access_ref(ref)]
        if returned:
            self._put_free_entries(returned)

    def gnttab_request_free_callback(
        self, callback: GnttabFreeCallback, fn: Callable[[Any], None], arg: Any, count: int
    ) -> None:
        """Register ``callback`` (unless it looks registered: ``callback->next != NULL``)."""
        mtx_lock(self.lock)
        try:
            callbacks = self.callbacks
            if callback in callbacks:
                if callbacks.index(callback) < len(callbacks) - 1:
                    return  # callback->next != NULL: already registered
                # The C code tests callback->next, which is NULL for the last entry of
                # the list: registering it again links it to itself and
                # do_free_callbacks loops.
                raise KernelHang(
                    "gnttab_request_free_callback",
                    "callback registered twice as the list's last entry: the list becomes "
                    "circular and do_free_callbacks never ends",
                )
            callback.fn = fn
            callback.arg = arg
            callback.count = count & 0xFFFF
            callbacks.insert(0, callback)
            self._check_free_callbacks()
        finally:
            mtx_unlock(self.lock)

    def gnttab_cancel_free_callback(self, callback: GnttabFreeCallback) -> None:
        """Unlink ``callback`` if registered."""
        mtx_lock(self.lock)
        try:
            if callback in self.callbacks:
                self.callbacks.remove(callback)
        finally:
            mtx_unlock(self.lock)

    # ------------------------------------------------------------------ the other end
    def map_grant(
        self, mem: PhysMem, ref: int, domid: int, write: bool
    ) -> tuple[bytearray, int] | None:
        """What ``GNTTABOP_map_grant_ref`` / ``copy`` gives the back end, or ``None``.

        Fails unless ``ref`` is in the table, granted to ``domid``, writable if ``write``,
        and backed by a live frame.
        """
        if not 0 <= ref < self.nr_entries:
            return None
        flags = self.flags[ref]
        if not flags & GTF_permit_access or self.domid[ref] != domid:
            return None
        if write and flags & GTF_readonly:
            return None
        return mem.frame(self.frame[ref])
