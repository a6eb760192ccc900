"""The kernel dumper's ``dump`` event on the compiled seed (``CDriverImplementation``):
the seed's own ``xbd_dump`` through the shim's ``xbd_h_dump_polled``, in lock-step with
the reference adapter's ``_on_dump`` (the back end answers OKAY at each
``HYPERVISOR_yield``; ready grant free callbacks run after each ``xbd_int``)."""

from __future__ import annotations

import dataclasses

from xbdspec.model.vocabulary import BioKind, DumpResult

from xbdspec.cdriver import BuildResult, CDriverImplementation
from xbdspec.conformance import LockStep, run_program
from xbdspec.conformance.contract import Step
from xbdspec.conformance.reference_adapter import dump_layout, dump_pattern, reference_sizes

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
    offset, length = dump_layout(1, size, 512, len(impl.ref._p.backend.disk))
    assert c.disk(offset, length) == dump_pattern(length)  # the dumper's bytes, in place
    assert c.counter("yields") >= 1 and c.softc()["q_free"] == 2 and not c.pending()


def test_dump_out_of_grants_returns_ebusy_as_the_reference(seed_build: BuildResult) -> None:
    """Three chunks, 12 grant references: the second chunk finds no references,
    ``xbd_dump`` returns ``EBUSY`` on both sides with the first chunk left on READY (the
    finding dump-ebusy-strands-ready, on the compiled seed)."""
    impl = _run(seed_build, "command-shortage", [*CONNECT, Step("dump", {"chunks": 3})])
    assert impl.dump_rc == 16 and impl.ref.dump_result == DumpResult.EBUSY  # EBUSY
    assert impl._c.softc()["q_ready"] == 1


def test_a_grant_callback_inside_the_dump_sends_the_waiting_bio(seed_build: BuildResult) -> None:
    """One request's worth of grant references: a single-stepped write is in flight and
    two writes wait when the dump begins.  ``xbd_quiesce`` takes the write's response,
    ``xbd_int``'s ``xbd_startio`` sends the next bio and meets a grant shortage for the
    third; when the second's references come back the grant table runs the seed's
    ``xbd_restart_queue_callback`` inside the dump (the shim's ``xbd_h_dump_polled``,
    the model's ``dump_grant_callback``) and the third bio is sent and answered before
    the dump's chunk; C, reference and model agree at every step."""
    steps = [
        *CONNECT,
        Step("open", {}),
        Step("strategy", {"bio": 0, "kind": BioKind.ORDERED_WRITE}),
        Step("strategy", {"bio": 1, "kind": BioKind.WRITE}),
        Step("strategy", {"bio": 2, "kind": BioKind.WRITE}),
        Step("dump", {"chunks": 1}),
    ]
    sizes = dataclasses.replace(reference_sizes("grant-shortage"), dumps=1)
    impl = CDriverImplementation(seed_build)
    lock = LockStep(impl, sizes)
    assert run_program(lock.impl, lock, steps) is None
    assert len(lock.steps) == len(steps)  # every event applied
    assert "dump_grant_callback" in lock.coverage.transitions
    assert impl.dump_rc == 0 and impl.ref.dump_result == DumpResult.OK
    # every bio answered, the waiting ones through the callback; nothing left in flight
    assert [impl._c.bio(b).done_count for b in range(3)] == [1, 1, 1]
    assert impl._c.softc()["q_free"] == 2 and not impl._c.pending()
