"""Shared helpers for the reference driver's tests (plain functions, no state)."""

from __future__ import annotations

from xbdspec.reference import BackendConfig, Bio, Platform, Tunables, strategy
from xbdspec.reference.constants import BIO_READ, BIO_WRITE
from xbdspec.reference.softc import Softc


def boot(config: BackendConfig | None = None, **kwargs: object) -> Platform:
    """A platform whose disk went through the whole handshake."""
    platform = Platform(backend_config=config, **kwargs)  # type: ignore[arg-type]
    platform.boot()
    return platform


def make_bio(
    platform: Platform,
    cmd: int,
    sector: int = 0,
    nbytes: int = 4096,
    flags: int = 0,
    offset: int = 0,
    fill: int | None = None,
) -> Bio:
    """A bio on the booted disk with a fresh page-backed buffer (filled for writes)."""
    sc = platform.softc()
    buffer = platform.mem.alloc(nbytes, offset) if nbytes else None
    if buffer is not None and fill is not None:
        buffer.view()[:] = bytes([fill]) * nbytes
    return Bio(cmd, sector, nbytes, flags, buffer, bio_disk=sc.xbd_disk)


def submit(platform: Platform, bio: Bio) -> Bio:
    """``xbd_strategy(bio)``."""
    strategy(bio)
    return bio


def serve(platform: Platform) -> int:
    """Back end answers everything in FIFO order, then the interrupt is delivered."""
    platform.backend.fetch()
    count = platform.backend.respond_all()
    platform.deliver_interrupt()
    return count


def queue_lengths(sc: Softc) -> list[int]:
    """``q_length`` of FREE, READY, BUSY, COMPLETE, BIO."""
    return [q.q_length for q in sc.xbd_cm_q]


def write_then_read(platform: Platform, sector: int, nbytes: int, fill: int) -> Bio:
    """Write ``fill`` bytes at ``sector``, then read them back; returns the read bio."""
    submit(platform, make_bio(platform, BIO_WRITE, sector, nbytes, fill=fill))
    serve(platform)
    read = submit(platform, make_bio(platform, BIO_READ, sector, nbytes))
    serve(platform)
    return read


PRODUCTION = Tunables(mutex_recursion_fatal=False)
