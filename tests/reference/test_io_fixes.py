"""The I/O-path fixes beyond their findings' replays: the paths the replays do not reach
(an immediate ENOMEM, a long run of rejected bios, detach after a resume fix, a hostile
response reported outside the lock)."""

from __future__ import annotations

import pytest
from reference_helpers import boot, make_bio, serve
from xbdspec.reference import Fixes, MapMode, Platform
from xbdspec.reference.constants import BIO_DELETE, BIO_READ, EIO, EOPNOTSUPP
from xbdspec.reference.driver import startio
from xbdspec.reference.lifecycle import detach
from xbdspec.reference.locks import mtx_lock, mtx_owned, mtx_unlock
from xbdspec.reference.queues import xbd_enqueue_bio


def _queue_then_start(platform: Platform, *bios: object) -> None:
    """Put ``bios`` on the bio queue, then run ``xbd_startio`` once (as xbd_strategy
    would for the last of them)."""
    sc = platform.softc()
    mtx_lock(sc.xbd_io_lock)
    for bp in bios:
        xbd_enqueue_bio(sc, bp)  # type: ignore[arg-type]
    startio(sc)
    mtx_unlock(sc.xbd_io_lock)


@pytest.mark.parametrize("fix", [False, True])
def test_an_immediate_enomem_does_not_stop_the_loop_with_the_fix(fix: bool) -> None:
    """The defensive half of the fix: unreachable on FreeBSD (an immediate ENOMEM needs
    BUS_DMA_NOWAIT, which the seed does not pass), reached through busdma's test hook."""
    names = ("failed-mapping-leaks", "mapping-failure-stops-loop") if fix else ()
    platform = Platform(fixes=Fixes.only(*names))
    platform.boot()
    first, second = make_bio(platform, BIO_READ, 0), make_bio(platform, BIO_READ, 8)
    platform.busdma.assume_nowait = True  # the documented hook: as if BUS_DMA_NOWAIT
    platform.busdma.next_modes.append(MapMode.FAIL_ENOMEM)
    _queue_then_start(platform, first, second)
    assert first.done_count == 1 and first.bio_error == EIO
    sent = platform.backend.fetch()
    assert sent == (1 if fix else 0)  # the seed leaves the second read queued
    assert list(platform.softc().xbd_bioq) == ([] if fix else [second])


def test_a_long_run_of_rejected_bios_is_failed_without_recursion() -> None:
    platform = Platform(fixes=Fixes.all())
    platform.boot()
    rejected = [make_bio(platform, BIO_DELETE, 0, 0) for _ in range(3000)]
    last = make_bio(platform, BIO_READ, 0)
    _queue_then_start(platform, *rejected, last)
    assert all(b.done_count == 1 and b.bio_error == EOPNOTSUPP for b in rejected)
    serve(platform)
    assert last.done_count == 1 and last.bio_error == 0


def test_the_loop_fix_alone_also_goes_past_rejected_bios() -> None:
    platform = Platform(fixes=Fixes.only("rejected-bio-stops-loop"))
    platform.boot()
    odd, read = make_bio(platform, BIO_DELETE, 0, 0), make_bio(platform, BIO_READ, 0)
    _queue_then_start(platform, odd, read)
    assert odd.bio_error == EOPNOTSUPP and platform.backend.fetch() == 1


def test_detach_fails_the_bios_a_fixed_free_put_back() -> None:
    platform = boot()
    platform.fixes = Fixes.only("resume-loses-ready-write")
    sc = platform.softc()
    waiting = make_bio(platform, BIO_READ, 0)
    sc.xbd_bioq.append(waiting)
    assert platform.dev is not None
    detach(platform.dev)
    assert waiting.done_count == 1 and waiting.bio_error == EIO


def test_a_hostile_response_is_reported_after_the_lock_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform = Platform(fixes=Fixes.only("response-id-trusted"))
    platform.boot()
    sc = platform.softc()
    seen: list[bool] = []
    import xbdspec.reference.driver as driver
    from xbdspec.reference.xenbus import xenbus_dev_fatal as real

    def fatal(dev: object, err: int, message: str) -> None:
        seen.append(mtx_owned(sc.xbd_io_lock))
        real(dev, err, message)  # type: ignore[arg-type]  # the driver's own device

    monkeypatch.setattr(driver, "xenbus_dev_fatal", fatal)
    platform.backend.write_response(10_000, 0, 0)
    platform.backend.push()
    platform.deliver_interrupt()
    assert seen == [False]
