"""Simulated guest-physical memory: page frames that carry real bytes.

Each allocation is a :class:`KernelBuffer` spanning whole pages; its frames are registered
in :class:`PhysMem` so a grant (which names a frame) resolves to the bytes behind it.  The
back end reads and writes request data only through this table, so a wrong grant or a wrong
segment offset shows up as wrong data, as it would on Xen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .constants import PAGE_SHIFT, PAGE_SIZE


@dataclass(slots=True, eq=False)
class KernelBuffer:
    """A page-backed kernel buffer.

    Attributes:
        mem: the bytes of every page of the allocation.
        pfn: the first page frame number.
        offset: where the buffer's data begins inside the first page.
        length: the data length in bytes.
    """

    mem: bytearray
    pfn: int
    offset: int
    length: int

    def physaddr(self, index: int = 0) -> int:
        """``vtophys`` of byte ``index`` of the data."""
        return (self.pfn << PAGE_SHIFT) + self.offset + index

    def view(self) -> memoryview:
        """The data bytes, as a writable view."""
        return memoryview(self.mem)[self.offset : self.offset + self.length]

    def read(self) -> bytes:
        """A copy of the data bytes."""
        return bytes(self.mem[self.offset : self.offset + self.length])


@dataclass(slots=True, eq=False)
class PhysMem:
    """Frame table: ``pfn -> (bytes of the allocation, offset of that page in them)``.

    Attributes:
        next_pfn: the next frame number to hand out (frames are never reused, so a stale
            grant to a freed buffer resolves to nothing instead of to someone else's data).
    """

    frames: dict[int, tuple[bytearray, int]] = field(default_factory=dict)
    next_pfn: int = 0x1000

    def alloc(self, length: int, offset: int = 0) -> KernelBuffer:
        """Allocate ``length`` bytes starting ``offset`` bytes into a fresh page."""
        npages = max(1, (offset + length + PAGE_SIZE - 1) >> PAGE_SHIFT)
        mem = bytearray(npages << PAGE_SHIFT)
        pfn = self.next_pfn
        self.next_pfn += npages
        frames = self.frames
        for page in range(npages):
            frames[pfn + page] = (mem, page << PAGE_SHIFT)
        return KernelBuffer(mem, pfn, offset, length)

    def free(self, buffer: KernelBuffer) -> None:
        """Forget the frames of ``buffer`` (a later access through a stale grant fails)."""
        npages = len(buffer.mem) >> PAGE_SHIFT
        frames = self.frames
        for page in range(npages):
            frames.pop(buffer.pfn + page, None)

    def frame(self, pfn: int) -> tuple[bytearray, int] | None:
        """The bytes behind frame ``pfn`` and the page's offset in them, or ``None``."""
        return self.frames.get(pfn)
