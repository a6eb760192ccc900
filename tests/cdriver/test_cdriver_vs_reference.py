"""The compiled seed and the Python reference, on the same scripted events, agree.

Observed after every step: the front end's xenstore writes, the requests the back end holds
(id, operation, sector, segment count, grant references), the bios completed (order, error,
flags, resid), the freeze flags and counter, the queue lengths, free grant references, and
the fault kind.  Not checked: the request's ``handle`` (the low bits of a pointer, seed-notes
#19) and message texts (``%p`` prints differ).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from xbdspec.reference import BackendConfig

from xbdspec.cdriver import BuildResult, Script, build, compare_with_reference

BIO_READ, BIO_WRITE, BIO_FLUSH, BIO_ORDERED = 1, 2, 5, 0x08


def _io(
    cmd: int, sector: int, nbytes: int = 4096, **extra: object
) -> tuple[str, dict[str, object]]:
    return ("strategy", {"cmd": cmd, "sector": sector, "nbytes": nbytes, **extra})


SERVE: Script = [("fetch", {}), ("respond_all", {}), ("interrupt", {})]

SCRIPTS: dict[str, tuple[Script, BackendConfig]] = {
    "io": (
        [("boot", {}), _io(BIO_WRITE, 0, 12288, fill=3), *SERVE, _io(BIO_READ, 0, 12288), *SERVE],
        BackendConfig(),
    ),
    "reordered-responses": (
        [
            ("boot", {}),
            *(_io(BIO_READ, 8 * i) for i in range(5)),
            ("fetch", {}),
            ("respond_all", {"order": [4, 2, 0, 1, 3]}),
            ("interrupt", {}),
        ],
        BackendConfig(),
    ),
    "error-status": (
        [
            ("boot", {}),
            _io(BIO_READ, 0),
            ("fetch", {}),
            ("respond", {"index": 0, "status": -1}),
            ("interrupt", {}),
        ],
        BackendConfig(),
    ),
    "ring-full": (
        [("boot", {}), *(_io(BIO_READ, 8 * i) for i in range(40)), *SERVE, *SERVE],
        BackendConfig(),
    ),
    "grant-shortage": (
        [
            ("boot", {}),
            ("grants_take", {"count": 2030}),
            _io(BIO_READ, 0),
            ("grants_give_back", {}),
            *SERVE,
        ],
        BackendConfig(),
    ),
    "deferred-mapping": (
        [
            ("boot", {}),
            ("dma", {"modes": ["DEFERRED"]}),
            _io(BIO_READ, 0),
            _io(BIO_READ, 8),
            ("run_deferred", {}),
            *SERVE,
            *SERVE,
        ],
        BackendConfig(),
    ),
    "failed-mapping": (
        [
            ("boot", {}),
            ("dma", {"modes": ["FAIL"]}),
            _io(BIO_WRITE, 0, fill=1),
            _io(BIO_READ, 8),
            *SERVE,
        ],
        BackendConfig(),
    ),
    "single-step-ordered-write": (
        [
            ("boot", {}),
            _io(BIO_READ, 0),
            _io(BIO_WRITE, 8, flags=BIO_ORDERED, fill=2),
            _io(BIO_READ, 16),
            *SERVE,
            *SERVE,
            *SERVE,
        ],
        BackendConfig(barrier=False),
    ),
    "barrier-and-flush": (
        [("boot", {}), _io(BIO_WRITE, 8, flags=BIO_ORDERED, fill=2), _io(BIO_FLUSH, 0, 0), *SERVE],
        BackendConfig(),
    ),
    "multi-page-ring": (
        [("boot", {}), *(_io(BIO_READ, 8 * i) for i in range(3)), *SERVE],
        BackendConfig(max_ring_page_order=2),
    ),
    "indirect-segments": (
        [("boot", {}), _io(BIO_WRITE, 0, 65536, fill=9), *SERVE, _io(BIO_READ, 0, 65536), *SERVE],
        BackendConfig(max_indirect_segments=32),
    ),
    # findings shown on both: #9, #10, #4, #18 (the fault kinds must agree too)
    "finding-9-deferred-single-step": (
        [
            ("boot", {}),
            ("dma", {"modes": ["DEFERRED"]}),
            _io(BIO_WRITE, 0, flags=BIO_ORDERED, fill=1),
            ("run_deferred", {}),
            ("fetch", {}),
            _io(BIO_READ, 8),
            ("fetch", {}),
        ],
        BackendConfig(barrier=False),
    ),
    "finding-10-late-mapping-failure": (
        [
            ("boot", {}),
            ("dma", {"modes": ["DEFERRED"]}),
            _io(BIO_WRITE, 0, fill=1),
            ("run_deferred", {"index": 0, "error": 27}),
            _io(BIO_READ, 8),
            ("fetch", {}),
        ],
        BackendConfig(),
    ),
    "finding-4-flush-panics": (
        [("boot", {}), _io(BIO_FLUSH, 0, 0)],
        BackendConfig(barrier=False, flush=False),
    ),
    "finding-12-callback-recursion": (
        [
            ("boot", {}),
            _io(BIO_READ, 0),
            ("grants_take", {"count": 2028}),
            _io(BIO_READ, 8),
            *SERVE,
        ],
        BackendConfig(),
    ),
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_c_driver_agrees_with_the_reference(seed_build: BuildResult, name: str) -> None:
    script, config = SCRIPTS[name]
    trail, difference = compare_with_reference(seed_build, script, backend_config=config)
    assert difference is None, str(difference)
    assert len(trail) >= 2
    final_ref, final_c = trail[-1]
    assert final_ref.softc == final_c.softc and final_c.softc  # something was compared


def test_findings_show_the_same_violation(seed_build: BuildResult) -> None:
    """The scripts above do reach the findings' states (not vacuous agreement)."""
    script, config = SCRIPTS["finding-10-late-mapping-failure"]
    trail, _ = compare_with_reference(seed_build, script, backend_config=config)
    assert trail[-1][1].softc["xbd_qfrozen_cnt"] == 1 and trail[-1][1].requests == []
    script, config = SCRIPTS["finding-4-flush-panics"]
    trail, _ = compare_with_reference(seed_build, script, backend_config=config)
    assert trail[-1][0].fault == trail[-1][1].fault == "KernelPanic"
    script, config = SCRIPTS["finding-12-callback-recursion"]
    trail, _ = compare_with_reference(seed_build, script, backend_config=config)
    assert trail[-1][1].fault == "KernelAssertion"


def test_a_deliberately_broken_driver_is_caught(seed_build: BuildResult, tmp_path: Path) -> None:
    """A user-named blkfront.c builds too; a one-token change to xbd_freeze is detected."""
    text = seed_build.source.read_text()
    broken = text.replace("sc->xbd_qfrozen_cnt++;", "sc->xbd_qfrozen_cnt += 2;", 1)
    assert broken != text
    source = tmp_path / "blkfront.c"
    source.write_text(broken)
    built = build(source, out_dir=tmp_path / "build")
    script, config = SCRIPTS["grant-shortage"]
    _, difference = compare_with_reference(built, script, backend_config=config)
    assert difference is not None and difference.field == "softc"
    assert (
        difference.reference["xbd_qfrozen_cnt"] == 1 and difference.c_driver["xbd_qfrozen_cnt"] == 2
    )
