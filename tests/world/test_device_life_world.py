"""The device's life beyond one attach at the protocol level, and the two back-end profiles.

Every front end of the registry meets a back end that goes to Closed directly, one whose
directory disappears and the tool stack's forced removal, against Linux's blkback and
QEMU's qdisk: the seed's behaviour (the reference and the compiled seed) breaks the
protocol only where a documented finding says so, by its exact signature; every other
front end conforms.  The profiles answer the same request differently, and what they
advertise changes the seed's verdict.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import pytest
from xbdspec.model.protocol import ProtocolSizes
from xbdspec.model.protocol.ring import RING_PEER_STATES
from xbdspec.model.protocol.vocabulary import Operation
from xbdspec.model.vocabulary import XenbusState

from xbdspec.errors import XbdspecError
from xbdspec.traces.protocol import Commit, ProtocolChecker, Verdict
from xbdspec.world.backend import BLKBACK, PROFILES, QDISK, VDISK_READONLY, BackendConfig
from xbdspec.world.campaign import Program, Shape, campaign, generate
from xbdspec.world.harness import BACK, GONE, Violation, World, run_program
from xbdspec.world.registry import Target, UnknownFrontend, load

START: Program = [("attach", {}), ("backend_probe", {}), ("settle", {})]
WRITE = "5a" * 512
FRONT_ENDS = ("tutorial", "reference", "reference-fixed", "c-frontend", "seed", "linux")

#: Where the seed's behaviour departs, and the finding that documents it.
DEPARTS = {
    ("reference", "backend_close"): "backend-closed-ignored",
    ("seed", "backend_close"): "backend-closed-ignored",
    ("reference", "toolstack_remove"): "detach-leaves-disk",
}


@pytest.fixture(scope="module")
def targets() -> Iterator[dict[str, Target]]:
    loaded: dict[str, Target] = {}
    for name in FRONT_ENDS:
        try:
            loaded[name] = load(name)
        except UnknownFrontend:
            continue  # the compiled front ends need a C compiler / Linux's source
    yield loaded
    for target in loaded.values():
        target.close()


def _target(targets: Mapping[str, Target], name: str) -> Target:
    if name not in targets:
        pytest.skip(f"{name} cannot run here")
    return targets[name]


def _maker(target: Target) -> Any:
    """The target's front-end maker (one drawn with ``Random(0)`` when it draws its own
    parameters per program)."""
    if target.per_program:
        return cast(Callable[[random.Random], Any], target.maker)(random.Random(0))
    return target.maker


def gone_program(kind: str) -> Program:
    """A read answered, a read in flight, the back end's end going away, then a write."""
    return [
        *START,
        ("submit", {"id": 1, "op": "read", "sector": 0, "sectors": 8}),
        ("serve", {}),
        ("submit", {"id": 2, "op": "read", "sector": 8, "sectors": 8}),
        (kind, {}),
        ("submit", {"id": 3, "op": "write", "sector": 16, "sectors": 1, "data": WRITE}),
        ("settle", {}),
    ]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("kind", GONE)
@pytest.mark.parametrize("name", FRONT_ENDS)
def test_each_front_end_when_its_back_end_goes(
    targets: dict[str, Target], name: str, kind: str, profile: str
) -> None:
    target = _target(targets, name)
    config = BackendConfig(sectors=2048, profile=profile)
    expected = DEPARTS.get((name, kind))
    try:
        world = run_program(_maker(target), gone_program(kind), config)
    except Violation as v:
        assert expected is not None, f"{name} is rejected: {v.rule}"
        assert target.known is not None and target.known(v.rule, config) == expected
        return
    assert expected is None, f"{name} was expected to show {expected}"
    assert world.checker.report.verdict == Verdict.CONFORMS
    steps = [s.split("(", 1)[0] for s in world.checker.report.steps]
    removal = {"backend_close": "backend_closed", "backend_gone": "toolstack_remove_back"}
    assert removal.get(kind, "toolstack_remove_front") in steps


def test_the_fixed_reference_gives_the_ring_up_and_closes(targets: dict[str, Target]) -> None:
    """With the fix the reference fails what it held (the model's
    ``frontend_abandon_ring``, then ``frontend_fail_carried``) and closes."""
    target = _target(targets, "reference-fixed")
    world = run_program(target.maker, gone_program("backend_close"), BackendConfig(sectors=2048))  # type: ignore[arg-type]
    steps = [s.split("(", 1)[0] for s in world.checker.report.steps]
    assert steps.index("backend_closed") < steps.index("frontend_abandon_ring")
    assert steps.count("frontend_fail_carried") >= 1
    assert steps[-1] == "frontend_closed" or "frontend_closed" in steps
    assert world.completed[2] == 0  # the read in flight failed, never answered
    assert 3 not in world.completed or world.completed[3] == 0  # the write: refused


def test_the_seed_writes_to_a_removed_back_end_without_breaking_the_protocol(
    targets: dict[str, Target],
) -> None:
    """A back end whose directory is gone: the seed reads Closed and ignores it, and its
    next request goes on the ring; the headers say nothing of a removed node (Linux
    ignores the Unknown it reads), so that is the driver's hang, not a violation."""
    target = _target(targets, "reference")
    world = run_program(target.maker, gone_program("backend_gone"), BackendConfig(sectors=2048))  # type: ignore[arg-type]
    steps = [s.split("(", 1)[0] for s in world.checker.report.steps]
    after = steps[steps.index("toolstack_remove_back") :]
    assert "frontend_write_request" in after  # the write went to the ring nobody serves
    assert 3 not in world.completed  # and never completes: owed nothing by the harness


# --------------------------------------------------------------------------- the profiles


def _statuses(target: Target, program: Program, config: BackendConfig) -> tuple[World, list[int]]:
    """Run ``program``; the world and the statuses the back end answered with."""
    world = World(_maker(target), config)
    statuses: list[int] = []
    inner = world.backend.on_event
    assert inner is not None

    def spy(name: str, params: dict[str, object]) -> None:
        if name == "backend_respond":
            statuses.append(int(params["status"]))  # type: ignore[call-overload]
        inner(name, params)

    world.backend.on_event = spy
    for name, params in program:
        world.run(name, params)
    world.finish()
    return world, statuses


FLUSH: Program = [*START, ("submit", {"id": 1, "op": "flush"}), ("settle", {})]


@pytest.mark.parametrize("name", FRONT_ENDS)
def test_a_refused_flush_is_answered_differently_by_each_profile(
    targets: dict[str, Target], name: str
) -> None:
    """The device refuses a flush: blkback answers BLKIF_RSP_EOPNOTSUPP and rewrites
    ``feature-flush-cache`` to 0 (``end_block_io_op``), qdisk answers BLKIF_RSP_ERROR
    and rewrites nothing.  blkif.h allows both.  Every front end conforms under each,
    except Linux under qdisk: it reports the failed empty flush as done, its documented
    finding ``failed-empty-flush-reported-done`` (claimed by its exact signature)."""
    target = _target(targets, name)
    answers: dict[str, tuple[list[int], str | None]] = {}
    for profile in PROFILES:
        config = BackendConfig(sectors=2048, profile=profile, eopnotsupp_flush=True)
        expected = FLUSH_DEPARTS.get((name, profile))
        try:
            world, statuses = _statuses(target, FLUSH, config)
        except Violation as v:
            assert expected is not None, f"{name} under {profile}: {v.rule}"
            assert target.known is not None and target.known(v.rule, config) == expected
            continue
        assert expected is None and world.checker.report.verdict == Verdict.CONFORMS
        answers[profile] = (statuses, world.store.get(f"{BACK}/feature-flush-cache"))
    if BLKBACK in answers:
        assert answers[BLKBACK] == ([-2], "0")
    if QDISK in answers:
        assert answers[QDISK] == ([-1], "1")


#: Where a front end's answer to a refused flush departs, and its documented finding.
FLUSH_DEPARTS = {("linux", QDISK): "linux: failed-empty-flush-reported-done"}


ORDERED_16_PAGES: Program = [
    *START,
    ("submit", {"id": 1, "op": "fua", "sector": 0, "sectors": 128, "data": "3c" * 512 * 128}),
    ("settle", {}),
]


@pytest.mark.parametrize(
    ("name", "blkback"),
    [("reference", "ordered-write-indirect-barrier"), ("seed", None), ("reference-fixed", None)],
)
def test_what_each_profile_advertises_changes_the_seeds_verdict(
    targets: dict[str, Target], name: str, blkback: str | None
) -> None:
    """An ordered write of 16 pages against a back end configured with barrier and
    indirect segments: blkback offers both, and the seed sends an indirect
    WRITE_BARRIER (blkif.h: indirect_op is READ or WRITE); qdisk offers neither, so the
    seed single-steps a plain write and conforms.  (The compiled seed draws
    ``enable_indirect`` per program; with ``Random(0)`` it has it off.)"""
    target = _target(targets, name)
    for profile in PROFILES:
        config = BackendConfig(
            sectors=2048, profile=profile, feature_barrier=True, max_indirect_segments=32
        )
        try:
            world = run_program(_maker(target), ORDERED_16_PAGES, config)
        except Violation as v:
            assert profile == BLKBACK and blkback is not None, v.rule
            assert target.known is not None and target.known(v.rule, config) == blkback
            continue
        assert profile == QDISK or blkback is None
        assert world.completed == {1: 1}


def test_qdisk_publishes_the_disk_before_initwait_and_blkback_at_connect() -> None:
    for profile, early in ((QDISK, True), (BLKBACK, False)):
        world = World(load("tutorial").maker, BackendConfig(profile=profile))  # type: ignore[arg-type]
        world.run("attach")
        world.run("backend_probe")
        assert world.store.get(f"{BACK}/state") == "2"
        assert (world.store.get(f"{BACK}/sectors") is not None) is early
        assert (world.store.get(f"{BACK}/feature-flush-cache") is not None) is early


def test_qdisk_advertises_what_qemu_does_whatever_is_configured() -> None:
    config = BackendConfig(
        profile=QDISK, feature_flush=False, feature_barrier=True, max_indirect_segments=32
    )
    assert (config.feature_flush, config.feature_barrier, config.max_indirect_segments) == (
        True,
        False,
        0,
    )
    with pytest.raises(ValueError, match="profile"):
        BackendConfig(profile="xen-blkback")


@pytest.mark.parametrize("profile", PROFILES)
def test_a_write_to_a_read_only_disk_is_an_error_not_a_violation(
    targets: dict[str, Target], profile: str
) -> None:
    """``read-only-disk-writable`` is FreeBSD-internal: the seed's write to a
    ``VDISK_READONLY`` disk is answered BLKIF_RSP_ERROR by either profile, its bio fails,
    and the protocol holds."""
    target = _target(targets, "reference")
    program: Program = [
        *START,
        ("submit", {"id": 1, "op": "write", "sector": 0, "sectors": 1, "data": WRITE}),
        ("submit", {"id": 2, "op": "read", "sector": 0, "sectors": 1}),
        ("settle", {}),
    ]
    config = BackendConfig(sectors=2048, profile=profile, info=VDISK_READONLY)
    world, statuses = _statuses(target, program, config)
    assert world.store.get(f"{BACK}/info") == str(VDISK_READONLY)
    assert world.checker.report.verdict == Verdict.CONFORMS
    assert world.completed == {1: 0, 2: 1} and sorted(statuses) == [-1, 0]


# --------------------------------------------------------------------------- campaigns


def test_programs_reach_the_back_ends_going_after_any_resume() -> None:
    rng = random.Random(11)
    shape = Shape(events=12, resume=0.5, gone=1.0)
    for _ in range(40):
        program = generate(rng, shape)
        names = [n for n, _ in program]
        gone = [i for i, n in enumerate(names) if n in GONE]
        assert len(gone) == 1 and "detach" not in names
        if "resume" in names:
            assert names.index("resume") < gone[0]


def test_a_campaign_reaches_the_removal_rules_and_claims_the_seeds_findings(
    targets: dict[str, Target],
) -> None:
    target = _target(targets, "reference")
    shape = Shape(events=16, max_sectors=16, sectors=2048, gone=0.6)
    report = campaign(target.maker, 4, 60, shape, BackendConfig(sectors=2048), vary=target.vary)
    for rule in ("backend_closed", "toolstack_remove_back", "toolstack_remove_front"):
        assert report.coverage[rule] > 0, rule
    assert target.known is not None
    claimed = {target.known(f.rule, f.config or target.config) for f in report.findings}
    assert "backend-closed-ignored" in claimed and None not in claimed
    fixed = _target(targets, "reference-fixed")
    report = campaign(fixed.maker, 4, 60, shape, BackendConfig(sectors=2048), vary=fixed.vary)
    assert report.findings == [] and report.coverage["frontend_abandon_ring"] > 0


# --------------------------------------------------------------------------- the protocol model


def _connected() -> ProtocolChecker:
    """A checker past a start-up: both ends Connected, one page, no request yet."""
    checker = ProtocolChecker(ProtocolSizes(ids=3, ring_slots=4, ring_base=0))
    for by, writes in (
        ("toolstack", {"back/online": "1", "back/state": "1", "front/state": "1"}),
        ("backend", {"back/max-ring-page-order": "0"}),
        ("backend", {"back/state": "2"}),
        (
            "frontend",
            {
                "front/ring-ref": "8",
                "front/event-channel": "17",
                "front/protocol": "x86_64-abi",
                "front/state": "3",
            },
        ),
        ("backend", {"back/sectors": "2048", "back/info": "0", "back/sector-size": "512"}),
        ("backend", {"back/state": "4"}),
        ("frontend", {"front/state": "4"}),
    ):
        assert checker.check(Commit(by, writes, (), "start-up")), checker.report.violation
    return checker


def _request(checker: ProtocolChecker, rid: int) -> bool:
    return checker.take(
        [
            (
                "frontend_write_request",
                {"id": rid, "op": Operation.READ, "push": True, "notify": True},
            )
        ],
        "test",
        "a read",
    )


def test_a_request_to_a_closed_back_end_is_refused_and_nothing_else_is() -> None:
    """The rules the headers give a back end's Closed and a removed directory: no
    request after Closed (the back end has left the ring); any answer to it, including
    none (Mini-OS and OpenBSD have no handler) or Closed (Linux, NetBSD); a request to a
    back end whose directory is gone is allowed (the headers say nothing of it)."""
    assert XenbusState.Closed not in RING_PEER_STATES
    # Linux, NetBSD: Closed in answer
    checker = _connected()
    assert checker.check(Commit("backend", {"back/state": "6"}, (), "closed"))
    assert checker.check(Commit("frontend", {"front/state": "6"}, (), "answer"))
    assert checker.report.verdict == Verdict.CONFORMS
    # Mini-OS, OpenBSD: no answer, no request: conforms
    checker = _connected()
    assert checker.check(Commit("backend", {"back/state": "6"}, (), "closed"))
    assert checker.report.verdict == Verdict.CONFORMS
    # the seed: a request after it
    assert not _request(checker, 0)
    assert "not Closed" in checker.report.violation
    # the directory removed: a request is unanswered, not refused
    checker = _connected()
    assert checker.check(Commit("toolstack", {}, ("back",), "removed"))
    assert _request(checker, 0) and checker.report.verdict == Verdict.CONFORMS
    # both removed (the forced removal): what the front end had queued may still go
    # out before its bus removes the device (Linux's blk-mq)
    checker = _connected()
    assert checker.check(Commit("toolstack", {}, ("back", "front"), "removed"))
    assert _request(checker, 0) and checker.report.verdict == Verdict.CONFORMS


def test_a_front_end_may_give_up_the_ring_its_back_end_left_only() -> None:
    checker = _connected()
    assert _request(checker, 0)
    abandon: list[tuple[str, dict[str, Any]]] = [("frontend_abandon_ring", {})]
    assert not _connected().take(abandon, "test", "give up while Connected")
    assert checker.check(Commit("backend", {"back/state": "6"}, (), "closed"))
    assert checker.take(abandon, "test", "give up")
    assert checker.take([("frontend_fail_carried", {"id": 0})], "test", "fail the read")
    assert checker.take([("frontend_end_grant", {"id": 0})], "test", "end its grant")
    assert checker.report.verdict == Verdict.CONFORMS


def test_a_replay_names_a_known_profile() -> None:
    from xbdspec.world import replay

    base = {"kind": replay.KIND, "xbdspec_trace": replay.VERSION, "implementation": "tutorial"}
    header = replay._header({**base, "config": {"profile": QDISK}}, "replay.jsonl:1")
    assert header["config"].profile == QDISK
    with pytest.raises(XbdspecError, match="profile must be one of"):
        replay._header({**base, "config": {"profile": "blkfront"}}, "replay.jsonl:1")
