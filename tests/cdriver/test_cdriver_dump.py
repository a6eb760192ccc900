"""The kernel dumper's ``dump`` event on the compiled seed (``CDriverImplementation``):
the seed's own ``xbd_dump`` through the shim's ``xbd_h_dump_polled``, in lock-step with
the reference adapter's ``_on_dump`` (the back end answers OKAY at each
``HYPERVISOR_yield``; ready grant free callbacks run after each ``xbd_int``)."""

from __future__ import annotations

import dataclasses

from xbdspec.model.vocabulary import DumpResult

from xbdspec.cdriver import BuildResult, CDriverImplementation
from xbdspec.conformance import LockStep, run_program
from xbdspec.conformance.contract import Step
from xbdspec.conformance.reference_adapter import reference_sizes

#: the handshake to Connected (the finding replays' prefix)
CONNECT = [
    Step("backend_publish", {"barrier": False, "flush": False}),
    Step("backend_watch", {}),
    Step("frontend_watch", {}),
    Step("backend_watch", {}),
]


def _run(built: BuildResult, variant: str, steps: list[Step]) -> CDriverImplementation:
    """Run ``steps`` on the C driver and its reference twin at ``variant``'s sizes with a
    dump allowed; the twin must never differ."""
    sizes = dataclasses.replace(reference_sizes(variant), dumps=1)
    impl = CDriverImplementation(built)
    lock = LockStep(impl, sizes)
    divergence = run_program(lock.impl, lock, steps)
    assert divergence is None or "differs from the reference" not in (divergence.fault or "")
    assert impl.fault is None
    return impl


def test_dump_writes_the_dumpers_bytes_and_agrees_with_the_reference(
    seed_build: BuildResult,
) -> None:
    impl = _run(seed_build, "command-shortage", [*CONNECT, Step("dump", {"chunks": 1})])
    c = impl._c
    size = c.softc()["xbd_max_request_size"]
    assert impl.dump_rc == 0 and impl.ref.dump_result == DumpResult.OK
    assert c.disk(0, size) == b"\xd0" * size  # the back end wrote the dumper's chunk
    assert c.counter("yields") >= 1 and c.softc()["q_free"] == 2 and not c.pending()


def test_dump_out_of_grants_returns_ebusy_as_the_reference(seed_build: BuildResult) -> None:
    """Three chunks, 12 grant references: the second chunk finds no references,
    ``xbd_dump`` returns ``EBUSY`` on both sides with the first chunk left on READY (the
    finding dump-ebusy-strands-ready, on the compiled seed)."""
    impl = _run(seed_build, "command-shortage", [*CONNECT, Step("dump", {"chunks": 3})])
    assert impl.dump_rc == 16 and impl.ref.dump_result == DumpResult.EBUSY  # EBUSY
    assert impl._c.softc()["q_ready"] == 1
