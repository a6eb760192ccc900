"""What the C driver's twin compares beyond the queues: a spurious interrupt while the
compiled seed is disconnected with its channel bound (the model's ``interrupt_ignored``)
runs ``xbd_int`` as the reference adapter does, and an early return that keeps the i/o
lock is seen; a suspend whose sleeper nobody wakes is seen."""

from __future__ import annotations

from pathlib import Path

from xbdspec.model.vocabulary import BioKind, BlkifStatus

from xbdspec.cdriver import BuildResult, CDriverImplementation, build, default_source
from xbdspec.conformance.contract import Step
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import run_program
from xbdspec.conformance.reference_adapter import REFERENCE_SIZES

SIZES = REFERENCE_SIZES["command-shortage"]
#: the back end offers InitWait, the front end initialises (the channel is bound)
INITIALISED = [
    Step("backend_publish", {"barrier": False, "flush": False}),
    Step("backend_watch", {}),
]
CONNECTED = [*INITIALISED, Step("frontend_watch", {}), Step("backend_watch", {}), Step("open", {})]
#: a suspend with a request in flight, the interrupt that drains it, then the drain
SUSPEND_DRAINED = [
    *CONNECTED,
    Step("strategy", {"bio": 0, "kind": BioKind.WRITE}),
    Step("backend_consume", {"cmd": 0}),
    Step("suspend", {}),
    Step("backend_respond", {"cmd": 0, "status": BlkifStatus.OKAY}),
    Step("interrupt", {}),
    Step("suspend_drained", {}),
]
#: xbd_int's early return while disconnected, as the seed has it
EARLY_RETURN = """\tif (__predict_false(sc->xbd_state == XBD_STATE_DISCONNECTED)) {
\t\tmtx_unlock(&sc->xbd_io_lock);
\t\treturn;"""


def test_a_spurious_interrupt_while_disconnected_runs_xbd_int(seed_build: BuildResult) -> None:
    impl = CDriverImplementation(seed_build)
    lock = LockStep(impl, SIZES)
    assert run_program(impl, lock, INITIALISED) is None
    assert lock.enabled("interrupt") == [{}]
    delivered = impl._c.counter("delivered")
    assert lock.step("interrupt", {}) is None
    assert impl._c.counter("delivered") == delivered + 1  # xbd_int ran, and returned
    assert impl._c.softc()["io_lock_depth"] == 0
    assert lock.coverage.transitions["interrupt_ignored"] == 1


def _mutant(tmp_path: Path, old: str, new: str) -> CDriverImplementation:
    """The C driver built from the seed with ``old`` (once in it) made ``new``."""
    source = default_source()
    assert source is not None
    text = source.read_text()
    assert text.count(old) == 1
    mutant = tmp_path / "blkfront.c"
    mutant.write_text(text.replace(old, new))
    return CDriverImplementation(build(mutant, out_dir=tmp_path / "build"))


def test_an_early_return_that_keeps_the_lock_differs_from_the_reference(
    seed_build: BuildResult, tmp_path: Path
) -> None:
    impl = _mutant(tmp_path, EARLY_RETURN, EARLY_RETURN.replace("mtx_unlock", ";//"))
    lock = LockStep(impl, SIZES)
    divergence = run_program(impl, lock, [*INITIALISED, Step("interrupt", {})])
    assert divergence is not None and divergence.fault is not None
    assert "io_lock_depth: reference=0 C=1" in divergence.fault


def test_a_drained_suspend_wakes_the_sleeper(seed_build: BuildResult, tmp_path: Path) -> None:
    impl = CDriverImplementation(seed_build)
    assert run_program(impl, LockStep(impl, SIZES), SUSPEND_DRAINED) is None
    assert not impl._c.sleeping
    # xbd_int without its wakeup of the suspend's sleeper: xbd_suspend sleeps on in C
    wakeup = "\t\twakeup(&sc->xbd_cm_q[XBD_Q_BUSY]);"
    impl = _mutant(tmp_path, wakeup, "\t\t;")
    divergence = run_program(impl, LockStep(impl, SIZES), SUSPEND_DRAINED)
    assert divergence is not None and divergence.fault is not None
    assert "suspend_drained" in divergence.fault
    assert "suspend_sleeping: reference=False C=True" in divergence.fault
