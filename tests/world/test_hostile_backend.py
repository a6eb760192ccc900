"""A hostile or broken back end (what XSA-376 guards against): a response naming no
request, a request answered twice, one answered with another operation, ``rsp_prod``
past every request.  blkif.h does not rule it out, so a front end must stay safe: the
harness checks that it completes no bio the back end did not answer, nothing twice, and
does not crash; it may give the device up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from xbdspec.world.backend import BackendConfig
from xbdspec.world.campaign import START, load_tutorial
from xbdspec.world.harness import HOSTILE, Violation, run_program
from xbdspec.world.registry import load

TUTORIAL = load_tutorial()
Program = list[tuple[str, Mapping[str, Any]]]


def _write(bio: int, sector: int) -> tuple[str, dict[str, Any]]:
    data = ("cd" * 512) * 8
    return ("submit", {"id": bio, "op": "write", "sector": sector, "sectors": 8, "data": data})


def program(kind: str) -> Program:
    return [
        *START,
        _write(1, 3),
        _write(4, 120),  # two answered ids: one is reused by bio 2, one is free to repeat
        ("deliver_back_watch", {}),
        ("serve", {}),
        ("interrupt", {}),
        _write(2, 40),
        ("deliver_back_watch", {}),
        ("backend_hostile", {"kind": kind}),
        ("interrupt", {}),
        _write(3, 80),
        ("settle", {}),
    ]


@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.parametrize("name", ["tutorial", "c-frontend"])
def test_a_careful_front_end_stays_safe(name: str, kind: str) -> None:
    target = load(name, {}, 24)
    try:
        world = run_program(target.maker, program(kind), BackendConfig(sectors=2048))  # type: ignore[arg-type]
    finally:
        target.close()
    assert world.completed.get(1) == 1
    assert world.compared["hostile responses"] == 1


class Trusting(TUTORIAL.LinuxStyleFrontend):  # type: ignore[misc, name-defined]
    """Takes every slot up to ``rsp_prod`` as a response (no XSA-376 check)."""

    rsp_cons: int

    def interrupt(self) -> None:
        assert self.ring is not None
        rsp_prod = self.ring.indexes()[2]
        while self.rsp_cons != rsp_prod:
            rid, _op, status = self.ring.read_response(self.rsp_cons)
            self.rsp_cons = (self.rsp_cons + 1) & 0xFFFF_FFFF
            shadow = self.shadows.pop(rid % 64, None) or self.shadows.pop(0, None)
            if shadow is not None:
                self._complete(shadow, status == 0)
        self.ring.set_index("rsp_event", self.rsp_cons + 1)
        self._kick()


def test_a_front_end_that_trusts_an_overrun_is_caught() -> None:
    prog = [*START, ("backend_hostile", {"kind": "overrun"}), _write(1, 8), ("settle", {})]
    with pytest.raises(Violation, match="never answered request"):
        run_program(Trusting, prog, BackendConfig(sectors=2048))
    # and the tutorial, which checks, is safe on the same program
    run_program(TUTORIAL.LinuxStyleFrontend, prog, BackendConfig(sectors=2048))


def test_the_seed_trusts_the_response_id_a_documented_finding() -> None:
    # response-id-trusted (docs/findings/response-id-trusted.md): xbd_int indexes its
    # shadow array with the back end's id unchecked; the fix checks it
    target = load("reference", {}, 24)
    with pytest.raises(Violation, match="outside the 32-entry shadow array"):
        run_program(target.maker, program("unknown-id"), BackendConfig(sectors=2048))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", HOSTILE)
def test_linux_disables_the_device_and_stays_safe(kind: str) -> None:
    from xbdspec.linux import source

    if not source.available():
        pytest.skip("linux-source-6.1 is not installed")
    from xbdspec.linux.adapter import make

    world = run_program(make({}), program(kind), BackendConfig(sectors=2048))
    assert world.completed.get(1) == 1
    if kind != "wrong-op":
        assert any("disabled for further use" in line for line in world.frontend.log)  # type: ignore[attr-defined]


def test_a_forged_response_the_front_end_overwrote_is_not_its_fault() -> None:
    """A response naming no request, written into the slot of the front end's next
    request before the front end looked: the request then overwrites it (ring.h's slots
    are a union of request and response), and Linux reads that request's bytes as the
    response, here naming request 5, a read in flight, with BLKIF_RSP_OKAY (a discard's
    first bytes: operation 5, flag 0, padding 0; its own id 0 is the operation and the
    status). Linux cannot tell it from an answer, so the completion is not checked; found
    by ``xbdspec difftest --impl linux --examples 1000 --seed 21``, program 914."""
    from xbdspec.linux import source

    if not source.available():
        pytest.skip("linux-source-6.1 is not installed")
    from xbdspec.linux.adapter import make

    options = {
        "feature_persistent": 0,
        "max_indirect_segments": 32,
        "max_queues": 4,
        "max_ring_page_order": 4,
    }
    config = BackendConfig(
        sectors=2048,
        feature_discard=True,
        feature_flush=True,
        feature_persistent=True,
        max_indirect_segments=32,
        max_queues=4,
        max_ring_page_order=4,
    )
    prog: Program = [
        ("attach", {}),
        ("backend_probe", {}),
        ("settle", {}),
        ("backend_hostile", {"kind": "unknown-id"}),
        ("submit", {"id": 1, "op": "discard", "sector": 1688, "sectors": 63}),
        ("submit_many", {"count": 28, "first_id": 3, "op": "read"}),
    ]
    world = run_program(make(options), prog, config)
    assert world.compared["completions by a forged response overwritten, unchecked"] == 1
    assert not any("disabled for further use" in line for line in world.frontend.log)  # type: ignore[attr-defined]


def test_a_front_end_trusting_a_forged_response_that_names_nothing_is_still_caught() -> None:
    """The same forged response ahead of the requests, but the front end completes a
    request the overwritten slot does not name: still a bio the back end never
    answered."""
    prog = [*START, ("backend_hostile", {"kind": "unknown-id"}), _write(1, 8), ("settle", {})]
    with pytest.raises(Violation, match="never answered request"):
        run_program(Trusting, prog, BackendConfig(sectors=2048))
