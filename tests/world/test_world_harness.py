"""The protocol-level harness: the tutorial front end conforms; each of its broken
variants is caught, with a replay of fewer than 10 events that shows it again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from xbdspec.traces.protocol import Verdict
from xbdspec.world.campaign import load_tutorial
from xbdspec.world.harness import Violation, run_program, shrink
from xbdspec.world.ring import SharedRing, ring_size

TUTORIAL = load_tutorial()
BROKEN: tuple[str, ...] = TUTORIAL.BROKEN
Program = list[tuple[str, Mapping[str, Any]]]

START: Program = [("attach", {}), ("backend_probe", {}), ("settle", {})]
IO: Program = [
    ("submit", {"id": 1, "op": "write", "sector": 0, "sectors": 2, "data": "ab" * 1024}),
    ("submit", {"id": 2, "op": "read", "sector": 0, "sectors": 2}),
    ("submit", {"id": 3, "op": "flush"}),
    ("settle", {}),
]
DETACH: Program = [("detach", {}), ("settle", {})]
PROGRAMS: dict[str, Program] = {
    "start-up, I/O, detach": START + IO + DETACH,
    "responses in reverse order": START
    + IO[:3]
    + [("deliver_back_watch", {}), ("serve", {"reverse": True}), ("interrupt", {}), ("settle", {})],
    "a resume with requests in flight": START
    + IO[:3]
    + [("deliver_back_watch", {}), ("serve", {}), ("resume", {}), ("settle", {})]
    + [("submit", {"id": 4, "op": "read", "sector": 0, "sectors": 2}), ("settle", {})],
    "a full ring, then more": [
        *START,
        ("submit_many", {"count": 40}),
        ("settle", {}),
        ("settle", {}),
    ],
}
#: a program each broken variant fails on
FAILING: Program = START + IO + [("submit_many", {"count": 33})] + [("settle", {})] * 2 + DETACH


def front(broken: str = "") -> Any:
    return lambda env: TUTORIAL.LinuxStyleFrontend(env, broken=broken)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_the_tutorial_front_end_conforms(name: str) -> None:
    world = run_program(front(), PROGRAMS[name])
    report = world.checker.finish()
    assert report.verdict == Verdict.CONFORMS
    # the harness compared what it claims: every bio completed, requests stepped
    assert set(world.completed) == set(world.bios) and world.bios
    assert sum(s.startswith("frontend_write_request") for s in report.steps) >= len(world.bios)
    assert any(s.startswith("frontend_service_ring") for s in report.steps)


RULES = {
    "never-publishes": "was never completed",
    "completes-twice": "twice",
    "connected-too-early": "the back end is Connected",
    "overfills-ring": "RING_FULL",
    "reuses-id": "reused while it is in flight",
    "never-ends-grants": "was never ended",
    "misses-notification": "a push notifies the other end",
    "read-page-read-only": "is read-only; the back end must write the page",
}


@pytest.mark.parametrize("broken", BROKEN)
def test_each_broken_variant_is_caught_with_a_short_replay(broken: str) -> None:
    with pytest.raises(Violation) as caught:
        run_program(front(broken), FAILING)
    assert RULES[broken] in caught.value.rule
    replay = shrink(front(broken), FAILING, same=lambda v: RULES[broken] in v.rule)
    assert len(replay) < 10, replay
    with pytest.raises(Violation) as again:
        run_program(front(broken), replay)
    assert RULES[broken] in again.value.rule


def test_the_correct_front_end_passes_the_failing_program() -> None:
    assert run_program(front(), FAILING).checker.finish().verdict == Verdict.CONFORMS


def test_the_ring_layout_is_blkifs() -> None:
    assert ring_size(0) == 32 and ring_size(2) == 128
    ring = SharedRing.init(bytearray(4096))
    assert ring.indexes() == (0, 1, 0, 1)


def test_a_small_random_campaign_conforms() -> None:
    from xbdspec.world.campaign import campaign

    report = campaign(TUTORIAL.LinuxStyleFrontend, seed=3, programs=50)
    assert report.programs == 50
    assert not report.findings, report.render()
    assert report.ios > 50
    assert report.coverage["frontend_write_request"] > 0


def test_a_front_end_that_drops_its_requests_at_a_resume_is_caught() -> None:
    class Forgetful(TUTORIAL.LinuxStyleFrontend):  # type: ignore[misc, name-defined]
        def resume(self) -> None:
            self.shadows.clear()  # neither re-issued nor failed: lost
            self.ring = None
            self.req_prod_pvt = self.rsp_cons = 0
            self.state = 1
            self._talk_to_blkback()

    program = PROGRAMS["a resume with requests in flight"]
    with pytest.raises(Violation) as caught:
        run_program(Forgetful, program)
    assert "was never completed" in caught.value.rule
    # and the correct one completes every bio, the carried ones issued again
    world = run_program(front(), program)
    assert set(world.completed) == set(world.bios)
    assert world.compared["requests read from the ring"] > len(world.bios)


def test_a_carried_bio_completed_without_being_issued_again_is_caught() -> None:
    class Liar(TUTORIAL.LinuxStyleFrontend):  # type: ignore[misc, name-defined]
        def resume(self) -> None:
            for shadow in list(self.shadows.values()):
                self.env.complete(shadow.bio.id, True, b"")  # "done", with no response
            super().resume()

    with pytest.raises(Violation) as caught:
        run_program(Liar, PROGRAMS["a resume with requests in flight"])
    assert "carried across the resume and never issued again" in caught.value.rule


def test_a_carried_bio_may_be_failed() -> None:
    class GivesUp(TUTORIAL.LinuxStyleFrontend):  # type: ignore[misc, name-defined]
        def resume(self) -> None:
            for shadow in list(self.shadows.values()):
                for ref in shadow.grefs:
                    self.env.end_grant(ref)
                self.env.complete(shadow.bio.id, False, b"")  # an error to the block layer
            self.shadows.clear()
            self.ring = None
            self.req_prod_pvt = self.rsp_cons = 0
            self.state = 1
            self._talk_to_blkback()

    world = run_program(GivesUp, PROGRAMS["a resume with requests in flight"])
    assert 0 in world.completed.values()
    assert any(s.startswith("frontend_fail_carried") for s in world.checker.report.steps)


def test_a_request_is_matched_to_the_bio_of_its_length() -> None:
    # two reads at the same sector, one of 8 sectors and one of 1 (as in a replay Linux's
    # campaign found): the request of one sector is the one-sector bio's, whatever the
    # order they were submitted in; the data of each is compared with the disk
    program: Program = [
        *START,
        ("submit", {"id": 4, "op": "read", "sector": 21, "sectors": 8}),
        ("submit", {"id": 5, "op": "read", "sector": 21, "sectors": 1}),
        ("settle", {}),
    ]

    class OneFirst(TUTORIAL.LinuxStyleFrontend):  # type: ignore[misc, name-defined]
        def submit(self, bio: Any) -> None:  # the block layer's order is not the ring's
            if bio.id == 4:
                self.held = bio
                return
            super().submit(bio)
            super().submit(self.held)

    world = run_program(OneFirst, program)
    assert world.completed == {4: 1, 5: 1}
    assert world.compared["read data compared"] == 2
