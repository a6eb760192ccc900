"""The grant table (FreeBSD ``sys/dev/xen/grant_table/grant_table.c`` semantics).

A finite pool of grant references (the table does not grow in the simulation: it is
``boot_max_nr_grant_frames`` already).  A private list from
``gnttab_alloc_grant_references`` is a Python list (empty = ``GNTTAB_LIST_END``).  Free
callbacks run synchronously from whichever call returns references, as in FreeBSD: from
``gnttab_free_grant_references``, ``gnttab_end_foreign_access_references`` and
``put_free_entry`` -- so inside the driver's I/O lock when the driver itself frees them.

Each entry records the frame, the domain and the ``GTF_*`` flags, so the back end can map a
reference only if it was granted to it, and only for reading if it is read-only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from .constants import ENOSPC, GNTTAB_LIST_END, NR_RESERVED_ENTRIES
from .faults import KernelHang, UndefinedBehaviour
from .memory import PhysMem

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
    """

    nr_entries: int
    frame: list[int] = field(default_factory=list)
    domid: list[int] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    free: list[int] = field(default_factory=list)
    callbacks: list[GnttabFreeCallback] = field(default_factory=list)
    callbacks_fired: int = 0

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
        if self.free_count < count:
            return None
        if count == 0:
            return []
        taken = self.free[-count:]
        del self.free[-count:]
        taken.reverse()
        return taken

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
        self.free.extend(reversed(head))
        head.clear()
        self._check_free_callbacks()

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
            self.free.extend(returned)
            self._check_free_callbacks()

    def gnttab_request_free_callback(
        self, callback: GnttabFreeCallback, fn: Callable[[Any], None], arg: Any, count: int
    ) -> None:
        """Register ``callback`` (unless it looks registered: ``callback->next != NULL``)."""
        callbacks = self.callbacks
        if callback in callbacks:
            if callbacks.index(callback) < len(callbacks) - 1:
                return  # callback->next != NULL: already registered
            # The C code tests callback->next, which is NULL for the last entry of the
            # list: registering it again links it to itself and do_free_callbacks loops.
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

    def gnttab_cancel_free_callback(self, callback: GnttabFreeCallback) -> None:
        """Unlink ``callback`` if registered."""
        if callback in self.callbacks:
            self.callbacks.remove(callback)

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
