"""Programs of environment events: choosing them, running them, shrinking them.

The command line's campaigns use a seeded random walk (:func:`random_program`, fast and
shardable by seed); the pytest suite uses hypothesis (:mod:`.stateful`).  Both choose
among the events the model enables, with weights that favour the rare paths, and both
can hand a failing program to :func:`shrink`.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xbdspec.errors import InputError
from xbdspec.gcpolicy import old_objects_spared
from xbdspec.model.vocabulary import BioKind, BioStage, Dma, DriverState, Place, XenbusState

from .contract import EnvChoices, Implementation, Step
from .harness import MEMO_LIMIT, Coverage, Divergence, LockStep

#: Relative weights of the environment events: the request path and the responses
#: dominate; the handshake, suspend and unplug happen now and then.
EVENT_WEIGHTS: dict[str, float] = {
    "strategy": 6.0,
    "backend_consume": 5.0,
    "backend_respond": 5.0,
    "interrupt": 5.0,
    "dma_callback": 4.0,
    "dma_callback_error": 1.0,
    "grants_returned": 4.0,
    "backend_watch": 4.0,
    "frontend_watch": 4.0,
    "backend_publish": 3.0,
    "backend_skip_initwait": 1.0,
    "open": 3.0,
    "close": 1.0,
    "suspend": 0.7,
    "suspend_drained": 2.0,
    "suspend_timeout": 0.7,
    "resume": 2.0,
    "unplug": 0.15,
    "shutdown": 0.15,
    "frontend_initialise": 0.5,
    "backend_offline": 2.0,
    "dump": 0.3,
}

#: Environment events whose bus_dma loads all answer at once: the kernel dumper's call
#: (the model leaves out a dump's deferred or failed loads, ``loads_at_once_in_dump``).
IMMEDIATE_LOADS = frozenset({"dump"})


@dataclass(frozen=True)
class Profile:
    """Which environment choices a campaign makes.

    A profile that avoids a known finding's trigger lets the lock step go on past it
    (the seed reference then runs clean where the model and the seed agree).

    Attributes:
        name: how reports name it.
        dma: the DMA answers drawn, with weights.
        kinds: the bio kinds drawn.
        responses_ok_only: every response OKAY.
        avoid: findings whose triggers are not drawn (names, for the report).
        weights: event weights replacing :data:`EVENT_WEIGHTS` for the events named
            (a sweep's configuration may favour the life cycle, say).
        dma_chance: how often an event is given DMA answers at all (else every load of
            the event is IMMEDIATE).
    """

    name: str
    dma: tuple[tuple[Dma, float], ...] = (
        (Dma.IMMEDIATE, 6.0),
        (Dma.DEFERRED, 2.0),
        (Dma.FAILED, 1.0),
    )
    kinds: tuple[BioKind, ...] = tuple(BioKind)
    events: frozenset[str] | None = None
    avoid: tuple[str, ...] = ()
    allows: Callable[[LockStep, Step], bool] | None = None
    weights: tuple[tuple[str, float], ...] = ()
    dma_chance: float = 0.5

    def weight(self, event: str) -> float:
        """The weight ``event`` is drawn with."""
        for name, value in self.weights:
            if name == event:
                return value
        return EVENT_WEIGHTS.get(event, 1.0)


def _seed_safe_allows(lock: LockStep, step: Step) -> bool:
    """Skip the triggers of the findings the seed-safe profile avoids.

    A deferred mapping when a single-stepped write may be sent (finding 9); a suspend
    while a command waits for its mapping or on READY (7, 8); a cancelled resume with
    work waiting (the seed does not restart the queue); a new back end offering fewer
    features than the old one (5); the back end's Closing delivered while the driver is
    disconnected with bios queued (they are stranded); a dump that runs out of commands
    or grant references (its chunks are left on READY: dump-ebusy-strands-ready).
    """
    k = lock.model.sizes
    if step.event == "dump":
        chunks = int(step.params.get("chunks", 0))
        if chunks > k.commands or chunks * k.grants_per_request > k.grants:
            return False
    for s in lock.candidates:
        waiting = Place.READY in s.cmd_place or Place.NONE in s.cmd_place
        queued = any(st == BioStage.QUEUED for st in s.bio_stage)
        if (
            step.event == "backend_watch"
            and s.be_state == XenbusState.Closing
            and s.drv_state != DriverState.CONNECTED
            and queued
        ):
            return False
        if step.event == "suspend" and waiting:
            return False
        if step.event == "resume" and step.params.get("cancelled") and (waiting or queued):
            return False
        if step.event in ("backend_publish", "backend_skip_initwait") and (
            (s.fe_barrier and not step.params.get("barrier"))
            or (s.fe_flush and not step.params.get("flush"))
        ):
            return False
        if Dma.DEFERRED in step.env.dma and not s.fe_barrier:
            ordered = any(
                k == BioKind.ORDERED_WRITE and st == BioStage.QUEUED
                for k, st in zip(s.bio_kind, s.bio_stage, strict=True)
            )
            submits = step.event == "strategy" and step.params.get("kind") == BioKind.ORDERED_WRITE
            if ordered or submits or Place.READY in s.cmd_place:
                return False
    return True


#: Everything the model allows.
FULL = Profile("full")

#: The profile ``make test`` runs the seed reference under: the triggers of the known
#: findings are not drawn (failed mappings, bios the back end cannot serve, suspend),
#: so the test checks everything else and stays green until the seed regresses.
SEED_SAFE = Profile(
    "seed-safe",
    dma=((Dma.IMMEDIATE, 6.0), (Dma.DEFERRED, 2.0)),
    kinds=(BioKind.READ, BioKind.WRITE, BioKind.ORDERED_WRITE),
    events=frozenset(EVENT_WEIGHTS) - {"dma_callback_error"},
    avoid=(
        "failed-mapping-leaks",
        "deferred-single-step-unpublished",
        "flush-without-support-panics",
        "unsupported-bio-leaks-grants",
        "resume-cancelled-does-not-restart",
        "suspend-ignores-deferred-mappings",
        "resume-loses-ready-write",
        "stale-features-after-resume",
        "stranded-bios-on-disk-gone",
        "dump-ebusy-strands-ready",
    ),
    allows=_seed_safe_allows,
)

PROFILES = {p.name: p for p in (FULL, SEED_SAFE)}


def draw_env(rng: random.Random, profile: Profile) -> EnvChoices:
    """DMA answers for one event: mostly none given (all IMMEDIATE)."""
    if rng.random() < 1.0 - profile.dma_chance:  # (0.5: the stream of earlier versions)
        return EnvChoices()
    modes, cum_weights = _dma_table(profile)
    return EnvChoices(tuple(rng.choices(modes, cum_weights=cum_weights, k=rng.randint(1, 2))))


@functools.cache
def _dma_table(profile: Profile) -> tuple[list[Dma], list[float]]:
    """The DMA answers ``profile`` draws and their cumulative weights (what
    ``rng.choices`` computes from the weights on each call: the same draws)."""
    return [m for m, _ in profile.dma], list(itertools.accumulate(w for _, w in profile.dma))


@dataclass(frozen=True)
class _Options:
    """What :func:`random_step` draws from in one set of candidate states under one
    profile: the events with their parameter sets, and the events' cumulative weights."""

    events: list[tuple[str, list[dict[str, object]]]]
    cum_weights: list[float]


def _options(lock: LockStep, profile: Profile) -> _Options:
    """The events ``lock`` offers under ``profile`` now, with their parameter sets
    (memoised in ``lock.draws`` on the candidates: programs revisit states)."""
    key = (profile, *lock.candidates)
    found = lock.draws.get(key)
    if found is None:
        if len(lock.draws) > MEMO_LIMIT:
            lock.draws.clear()
        events: list[tuple[str, list[dict[str, object]]]] = []
        table = lock.options()
        for event in lock.model.environment_events:
            if profile.events is not None and event not in profile.events:
                continue
            params = table.get(event, [])
            if event == "strategy":
                params = [p for p in params if p["kind"] in profile.kinds]
            if params:
                events.append((event, params))
        weights = itertools.accumulate(profile.weight(e) for e, _ in events)
        found = lock.draws[key] = _Options(events, list(weights))
    return found


def random_step(rng: random.Random, lock: LockStep, profile: Profile) -> Step | None:
    """One enabled environment event with parameters and choices, or ``None``."""
    options = _options(lock, profile)
    if not options.events:
        return None
    for _ in range(4):
        # (the cumulative weights given: the draw ``rng.choices(events, weights)`` makes)
        event, params = rng.choices(options.events, cum_weights=options.cum_weights)[0]
        env = EnvChoices() if event in IMMEDIATE_LOADS else draw_env(rng, profile)
        step = Step(event, dict(rng.choice(params)), env)
        if profile.allows is None or profile.allows(lock, step):
            return step
    return None


class ReplayNotFollowed(InputError):
    """A replay reaches an event the model does not enable after the events before it:
    it cannot be followed to its end, so it shows nothing (a line deleted or changed, a
    replay of other sizes), and is an error, never a pass."""


def run_program(
    impl: Implementation,
    lock: LockStep,
    steps: Sequence[Step],
    *,
    skip_disabled: bool = False,
    source: str | None = None,
) -> Divergence | None:
    """Replay ``steps`` from the start; the first divergence, or ``None``.

    A step the model does not enable ends the replay without a divergence, or, with
    ``skip_disabled`` (shrinking), is left out; the divergence's program then lists
    only the events applied.  Given the ``source`` of a replay file, such a step is a
    :class:`ReplayNotFollowed` error naming it instead.
    """
    divergence = lock.start()
    if divergence:
        return divergence
    for number, step in enumerate(steps, start=1):
        if step.params not in lock.enabled(step.event):
            if skip_disabled:
                continue
            if source is not None:
                raise ReplayNotFollowed(
                    f"{source}: event {number} of {len(steps)}",
                    f"{step.label()} is not enabled in the model after the events before it: "
                    "the replay cannot be followed to its end (a line deleted or changed, or "
                    "the replay of other sizes), so it shows nothing",
                )
            return None
        divergence = lock.step(step.event, step.params, step.env)
        if divergence:
            return divergence
    return None


def shrink(
    make_lock: Callable[[], LockStep], steps: list[Step], same: Callable[[Divergence], bool]
) -> tuple[list[Step], Divergence | None]:
    """The shortest sub-program found (by deleting chunks, then single events, then
    DMA choices) that still ends in a divergence ``same`` accepts."""
    best = list(steps)
    best_div: Divergence | None = None
    lock = make_lock()

    def fails(candidate: list[Step]) -> Divergence | None:
        d = run_program(lock.impl, lock, candidate, skip_disabled=True)
        return d if d is not None and same(d) else None

    best_div = fails(best)
    if best_div is None:
        return best, None
    best = list(best_div.steps)
    chunk = max(1, len(best) // 2)
    while chunk >= 1:
        i = 0
        while i < len(best):
            candidate = best[:i] + best[i + chunk :]
            d = fails(candidate)
            if d is not None:
                best, best_div = list(d.steps), d
            else:
                i += 1
        chunk //= 2
    for i, step in enumerate(best):
        if step.env.dma:
            candidate = [*best[:i], Step(step.event, step.params), *best[i + 1 :]]
            d = fails(candidate)
            if d is not None:
                best, best_div = list(d.steps), d
    return best, best_div


@dataclass
class WalkResult:
    """The outcome of one random program."""

    steps: list[Step]
    divergence: Divergence | None
    coverage: Coverage


def random_walk(
    impl: Implementation, lock: LockStep, rng: random.Random, length: int, profile: Profile
) -> WalkResult:
    """One random program of at most ``length`` events, checked as it runs (the model
    side's memo tables are long-lived: full collections are rare meanwhile, and
    between programs, :func:`~xbdspec.gcpolicy.old_objects_spared`)."""
    with old_objects_spared(settle=True):
        return _walk(impl, lock, rng, length, profile)


def _walk(
    impl: Implementation, lock: LockStep, rng: random.Random, length: int, profile: Profile
) -> WalkResult:
    divergence = lock.start()
    if divergence:
        return WalkResult([], divergence, lock.coverage)
    steps: list[Step] = []
    for _ in range(length):
        step = random_step(rng, lock, profile)
        if step is None:
            break
        steps.append(step)
        divergence = lock.step(step.event, step.params, step.env)
        if divergence:
            break
    return WalkResult(steps, divergence, lock.coverage)
