"""Differential campaigns: many random programs against one implementation.

Example ``i`` of a campaign with seed ``S`` draws its program from
``random.Random(f"{S}:{i}")``, so campaigns shard across processes or machines by
seed (or by example range) without code changes, and every program can be replayed.
Each new kind of divergence is shrunk and written as a replay file.
"""

from __future__ import annotations

import collections
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbdspec.model.state import Sizes

from . import replay
from .contract import Implementation, Step
from .findings import classify
from .harness import Coverage, Divergence, LockStep
from .program import Profile, random_walk, shrink


@dataclass
class Campaign:
    """The settings and the results of one campaign.

    Attributes:
        factory / sizes / profile: what is tested, at which sizes, with which choices.
        seed: the campaign's seed.
        length: events per program at most.
        replay_dir: where shrunk failing programs are written (``None``: not written).
    """

    factory: Callable[[], Implementation]
    sizes: Sizes
    profile: Profile
    seed: int
    length: int = 60
    replay_dir: Path | None = None
    examples: int = 0
    steps: int = 0
    seconds: float = 0.0
    coverage: Coverage = field(default_factory=Coverage)
    divergences: dict[str, tuple[Divergence, list[Step], Path | None, int]] = field(
        default_factory=dict
    )
    name: str = ""
    compared: collections.Counter[str] = field(default_factory=collections.Counter)

    def run(self, *, examples: int | None = None, minutes: float | None = None) -> None:
        """Run ``examples`` programs, or as many as fit in ``minutes``."""
        impl = self.factory()
        self.name = impl.capabilities().name
        lock = LockStep(impl, self.sizes)
        start = time.perf_counter()
        deadline = start + 60 * minutes if minutes is not None else None
        try:
            while True:
                if examples is not None and self.examples >= examples:
                    break
                if deadline is not None and time.perf_counter() >= deadline:
                    break
                rng = random.Random(f"{self.seed}:{self.examples}")
                result = random_walk(impl, lock, rng, self.length, self.profile)
                self.examples += 1
                self.steps += len(result.steps)
                if result.divergence is not None:
                    self._record(result.divergence, result.steps)
        finally:
            self.seconds = time.perf_counter() - start
            self.coverage.merge(lock.coverage)
            self.compared.update(lock.compared)
            impl.close()

    def _record(self, divergence: Divergence, steps: list[Step]) -> None:
        finding = classify(divergence, self.name)
        key = finding.name if finding else _signature(divergence)
        if key in self.divergences:
            d, s, path, count = self.divergences[key]
            self.divergences[key] = (d, s, path, count + 1)
            return

        def same(d: Divergence) -> bool:
            f = classify(d, self.name)
            return (f.name if f else _signature(d)) == key

        small, shrunk = shrink(lambda: LockStep(self.factory(), self.sizes), steps, same)
        best = shrunk or divergence
        path = None
        if self.replay_dir is not None:
            self.replay_dir.mkdir(parents=True, exist_ok=True)
            path = self.replay_dir / f"{key}.jsonl"
            replay.write(path, self.sizes, best.steps)
        self.divergences[key] = (best, small, path, 1)

    @property
    def new_divergences(self) -> list[Divergence]:
        """Divergences no known finding explains."""
        return [d for d, _, _, _ in self.divergences.values() if d.finding is None]

    def summary(self) -> dict[str, Any]:
        """The ``--json`` report."""
        from .harness import ModelSide

        spec = ModelSide(self.sizes).spec
        return {
            "implementation": self.name,
            "profile": self.profile.name,
            "seed": self.seed,
            "examples": self.examples,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "steps_per_second": round(self.steps / self.seconds, 1) if self.seconds else 0.0,
            "divergences": [
                {**d.as_json(), "occurrences": count, "replay": str(path) if path else None}
                for d, _, path, count in self.divergences.values()
            ],
            "coverage": self.coverage.report(spec),
            "fields_compared": dict(sorted(self.compared.items())),
        }


def _signature(d: Divergence) -> str:
    """A name for a new divergence: its kind, event and the fields that differ."""
    fields = "-".join(sorted(d.differences)[:3]) or "invariant"
    return f"new-{d.kind}-{d.last.event}-{fields}"
