"""Differential campaigns: many random programs against one implementation.

Example ``i`` of a campaign with seed ``S`` draws its program from
``random.Random(f"{S}:{i}")`` and runs under configuration ``i mod n`` of the campaign's
sweep (:mod:`.sweep`), so campaigns shard across processes or machines by seed (or by
example range) without code changes, and every program can be replayed.  Each new kind
of divergence (a new :class:`~xbdspec.conformance.signatures.Signature`) is shrunk and
written as a replay file that names its configuration.

A campaign also says how fast it found something (the seconds and events to the first
new divergence; ``first=True`` stops there) and what it reached: every model transition
counted, the declared :class:`~xbdspec.conformance.targets.Targets` and which of them it
missed, and, when coverage.py is there and asked for, the reference's branches.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbdspec.errors import XbdspecError
from xbdspec.gcpolicy import old_objects_spared
from xbdspec.model.state import Sizes

from . import replay
from .contract import Implementation, Step
from .findings import classify
from .harness import Coverage, Divergence, LockStep, ModelSide
from .program import Profile, random_walk, shrink
from .signatures import signature_of
from .sweep import PROGRAM_DIMENSIONS, Configuration, dimensions_varied
from .targets import BranchCoverage, Targets, default_targets


@dataclass
class ConfigurationTally:
    """What one configuration of a sweep ran."""

    examples: int = 0
    steps: int = 0
    divergences: int = 0


@dataclass
class Campaign:
    """The settings and the results of one campaign.

    Attributes:
        factory / sizes / profile: what is tested, at which sizes, with which choices.
        seed: the campaign's seed.
        length: events per program at most.
        replay_dir: where shrunk failing programs are written (``None``: not written).
        configurations: the sweep (``None``: one configuration at ``sizes``).
        first: stop at the first new divergence (after shrinking it).
        targets: what the campaign must reach (``None``: :func:`default_targets`).
        branches: measure the reference's branches with coverage.py (when installed).
    """

    factory: Callable[[], Implementation]
    sizes: Sizes
    profile: Profile
    seed: int
    length: int = 60
    replay_dir: Path | None = None
    configurations: Sequence[Configuration] | None = None
    first: bool = False
    targets: Targets | None = None
    branches: bool = False
    examples: int = 0
    steps: int = 0
    seconds: float = 0.0
    coverage: Coverage = field(default_factory=Coverage)
    divergences: dict[str, tuple[Divergence, list[Step], Path | None, int]] = field(
        default_factory=dict
    )
    name: str = ""
    compared: collections.Counter[str] = field(default_factory=collections.Counter)
    #: seconds, events and example number to the first new divergence (``None``: none)
    first_new: dict[str, Any] | None = None
    per_configuration: dict[str, ConfigurationTally] = field(default_factory=dict)
    branch_coverage: BranchCoverage | None = None
    refused: frozenset[str] = frozenset()
    #: new-divergence keys not to count as new for ``first`` and ``first_new`` (what the
    #: unmutated implementation already shows: mutation testing's baseline)
    expected: frozenset[str] = frozenset()
    #: Ctrl-C stopped the campaign: its figures and divergences are those found by then
    interrupted: bool = False
    #: what stopped the campaign early (the implementation crashed or could not be
    #: driven); the divergences found before it are kept
    error: str = ""

    @property
    def sweep(self) -> list[Configuration]:
        """The configurations examples cycle through."""
        if self.configurations:
            return list(self.configurations)
        return [Configuration("default", self.sizes)]

    @old_objects_spared()  # the memo tables and lock steps are long-lived
    def run(
        self,
        *,
        examples: int | None = None,
        minutes: float | None = None,
        progress: Callable[[Campaign], None] | None = None,
    ) -> None:
        """Run ``examples`` programs, or as many as fit in ``minutes`` (or until the
        first new divergence, with :attr:`first`); ``progress`` sees the campaign after
        every program.

        Nothing found is lost when the run stops early: Ctrl-C sets :attr:`interrupted`
        (a divergence being shrunk is kept unshrunk) and an error of the implementation
        (``XbdspecError``: it crashed, hung, answered nonsense) sets :attr:`error`; the
        divergences found before are kept and written, the figures are filled in, and
        the exception goes on to the caller (``xbdspec difftest`` then reports them)."""
        start = time.perf_counter()
        impl = self.factory()
        caps = impl.capabilities()
        self.name = caps.name
        self.refused = frozenset(caps.refuses)
        sweep = self.sweep
        locks: dict[str, LockStep] = {}
        models: dict[Sizes, ModelSide] = {}
        profiles: dict[str, Profile] = {}
        deadline = start + 60 * minutes if minutes is not None else None
        meter = BranchCoverage.start() if self.branches else None
        try:
            while True:
                if examples is not None and self.examples >= examples:
                    break
                if deadline is not None and time.perf_counter() >= deadline:
                    break
                config = sweep[self.examples % len(sweep)]
                lock = locks.get(config.name)
                if lock is None:
                    lock = locks[config.name] = _lock(impl, config, models)
                _configure(impl, config)
                rng = random.Random(f"{self.seed}:{self.examples}")
                profile = profiles.get(config.name)
                if profile is None:
                    profile = profiles[config.name] = _profile(self.profile, config)
                result = random_walk(impl, lock, rng, self.length, profile)
                self.examples += 1
                self.steps += len(result.steps)
                tally = self.per_configuration.setdefault(config.name, ConfigurationTally())
                tally.examples += 1
                tally.steps += len(result.steps)
                if result.divergence is not None:
                    tally.divergences += 1
                    result.divergence.configuration = config.name
                    new = self._record(result.divergence, result.steps, config, start)
                    if new and self.first:
                        break
                if progress is not None:
                    self.seconds = time.perf_counter() - start
                    progress(self)
        except KeyboardInterrupt:
            self.interrupted = True
            raise
        except XbdspecError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if meter is not None:
                self.branch_coverage = meter.stop()
            self.seconds = time.perf_counter() - start
            for lock in locks.values():
                self.coverage.merge(lock.coverage)
                self.compared.update(lock.compared)
            impl.close()

    def _record(
        self, divergence: Divergence, steps: list[Step], config: Configuration, start: float
    ) -> bool:
        """Count ``divergence``; shrink and write it when it is a new kind.  Whether it is
        the campaign's first new divergence."""
        key = self._key(divergence)
        if key in self.divergences:
            d, s, path, count = self.divergences[key]
            self.divergences[key] = (d, s, path, count + 1)
            return False
        first = divergence.finding is None and key not in self.expected and self.first_new is None
        if first:
            self.first_new = {
                "seconds": round(time.perf_counter() - start, 3),
                "events": self.steps,
                "example": self.examples - 1,
                "configuration": config.name,
                "signature": key,
            }

        def make_lock() -> LockStep:
            impl = self.factory()
            _configure(impl, config)
            return LockStep(impl, config.sizes)

        interrupted = False
        try:
            small, shrunk = shrink(make_lock, steps, lambda d: self._key(d) == key)
        except KeyboardInterrupt:  # kept unshrunk: the whole program shows it
            small, shrunk, interrupted = steps, None, True
        best = shrunk or divergence
        best.configuration = config.name
        self._key(best)  # classify the shrunk one too (sets its finding)
        path = None
        if self.replay_dir is not None:
            self.replay_dir.mkdir(parents=True, exist_ok=True)
            path = self.replay_dir / f"{key}.jsonl"
            replay.write(path, config.sizes, best.steps, config)
        self.divergences[key] = (best, small, path, 1)
        if interrupted:
            raise KeyboardInterrupt
        return first

    def _key(self, divergence: Divergence) -> str:
        """The finding's name, or the new divergence's signature key."""
        finding = classify(divergence, self.name)
        return finding.name if finding else signature_of(divergence).key()

    @property
    def new_divergences(self) -> list[Divergence]:
        """Divergences no known finding explains."""
        return [d for d, _, _, _ in self.divergences.values() if d.finding is None]

    def target_report(self) -> dict[str, Any]:
        """The declared targets, what was reached and what was not."""
        spec = ModelSide(self.sweep[0].sizes).spec
        targets = self.targets or default_targets(spec, self.refused)
        return targets.check(self.coverage, self.branch_coverage)

    def summary(self) -> dict[str, Any]:
        """The ``--json`` report."""
        spec = ModelSide(self.sweep[0].sizes).spec
        sweep = self.sweep
        report: dict[str, Any] = {
            "implementation": self.name,
            "profile": self.profile.name,
            "seed": self.seed,
            "examples": self.examples,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "steps_per_second": round(self.steps / self.seconds, 1) if self.seconds else 0.0,
            "first_new_divergence": self.first_new,
            "interrupted": self.interrupted,
            "stopped_at_first": bool(self.first and self.first_new is not None),
            "divergences": [
                {**d.as_json(), "occurrences": count, "replay": str(path) if path else None}
                for d, _, path, count in self.divergences.values()
            ],
            "sweep": {
                "configurations": [
                    {
                        **c.dimensions(),
                        **vars(self.per_configuration.get(c.name, ConfigurationTally())),
                    }
                    for c in sweep
                ],
                "dimensions_varied": dimensions_varied(sweep),
                "varied_within_programs": list(PROGRAM_DIMENSIONS),
            },
            "coverage": self.coverage.report(spec),
            "targets": self.target_report(),
            "reference_branches": (
                self.branch_coverage.as_json()
                if self.branch_coverage is not None
                else BranchCoverage.unavailable(self.branches)
            ),
            "fields_compared": dict(sorted(self.compared.items())),
        }
        return report


def _profile(profile: Profile, config: Configuration) -> Profile:
    """``profile`` with the configuration's event and DMA weights (only for the DMA
    answers the profile draws at all)."""
    if not config.weights and not config.dma_weights and config.dma_chance is None:
        return profile
    wanted = dict(config.dma_weights)
    dma = tuple((mode, wanted.get(mode.name, weight)) for mode, weight in profile.dma)
    chance = profile.dma_chance if config.dma_chance is None else config.dma_chance
    return dataclasses.replace(
        profile, weights=(*config.weights, *profile.weights), dma=dma, dma_chance=chance
    )


def _configure(impl: Implementation, config: Configuration) -> None:
    """Hand the configuration's back-end setup to an implementation that takes one."""
    configure = getattr(impl, "configure", None)
    if callable(configure):
        configure(config.setup)


def _lock(impl: Implementation, config: Configuration, models: dict[Sizes, ModelSide]) -> LockStep:
    """A lock step for ``config``, sharing the model side of equal sizes."""
    lock = LockStep(impl, config.sizes, model=models.get(config.sizes))
    models[config.sizes] = lock.model
    return lock
