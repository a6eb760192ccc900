"""Simulated I/Os per second through the reference driver (handshake excluded).

The workload: a booted disk (one-page ring, 32 requests, barrier and flush), bios of 4 KiB
(reads and writes alternating, in-page offsets cycling), submitted through ``xbd_strategy``
in batches of 32; the back end consumes and answers each batch in FIFO order against its
RAM disk and the interrupt is delivered.  Every bio goes the whole way: grants, DMA
segments, ring request, back-end copy through the grant table, response, ``xbd_int``,
``biodone``.  Run: ``python -m benchmarks --only reference``.
"""

from __future__ import annotations

import time

from xbdspec.reference import Bio, Platform, strategy
from xbdspec.reference.constants import BIO_READ, BIO_WRITE

IOS = 50_000
BATCH = 32


def measure(ios: int = IOS) -> tuple[float, int]:
    """Run ``ios`` I/Os after the handshake; (seconds, completed)."""
    platform = Platform()
    platform.boot()
    disk = platform.softc().xbd_disk
    buffers = [platform.mem.alloc(4096, (i % 8) * 512) for i in range(BATCH)]
    backend = platform.backend
    nsectors = platform.backend.config.sectors - 16
    start = time.perf_counter()
    submitted = 0
    while submitted < ios:
        for i in range(BATCH):
            cmd = BIO_WRITE if (submitted + i) & 1 else BIO_READ
            sector = ((submitted + i) * 8) % nsectors
            strategy(Bio(cmd, sector, 4096, 0, buffers[i], bio_disk=disk))
        submitted += BATCH
        backend.fetch()
        backend.respond_all()
        platform.deliver_interrupt()
    elapsed = time.perf_counter() - start
    return elapsed, len(platform.completed)


def run() -> dict[str, float | int | str]:
    """The benchmark's figures for ``python -m benchmarks``."""
    elapsed, completed = measure()
    return {
        "ios": completed,
        "seconds": round(elapsed, 3),
        "ios_per_second": round(completed / elapsed),
        "workload": "4 KiB reads/writes, batches of 32, FIFO responses, handshake excluded",
    }


if __name__ == "__main__":
    print(run())
