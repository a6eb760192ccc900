"""One exploration of the model end to end: search, progress checks, counterexamples.

:func:`check_model` is what ``xbdspec explore`` runs and what the tests call with a
hand-built (deliberately broken) :class:`~xbdspec.model.declaration.Spec`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbdspec.model.declaration import Spec
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes

from .counterexample import Counterexample, build
from .progress import ProgressRecorder, check_progress
from .replay import write_replay
from .search import Exploration, Progress, explore
from .target import ModelTarget


@dataclass
class Violation:
    """A violated property with its counterexample and where its replay was written."""

    counterexample: Counterexample
    replay: Path | None = None

    def as_json(self) -> dict[str, Any]:
        """The violation as the ``--json`` output lists it."""
        cx = self.counterexample
        return {
            "property": cx.property,
            "kind": cx.kind,
            "trace_length": len(cx.steps),
            "cycle_start": cx.cycle_start,
            "replay": None if self.replay is None else str(self.replay),
        }


@dataclass
class Report:
    """The outcome of one exploration.

    Attributes:
        sizes: the sizes explored; symmetry: whether commands were identified.
        exploration: the raw search result.
        violations: one per violated property.
        progress_checked: False when the search was cut by ``max_states``.
        unknown_fairness: fairness names of the declaration that are no event.
        bytes_per_state: memory of the visited set and the graph per state.
        never_taken: the transitions no explored step took (dead code at these
            sizes, or a sign the sizes are too small to reach it).
    """

    sizes: Sizes
    symmetry: bool
    exploration: Exploration
    violations: list[Violation]
    progress_checked: bool
    unknown_fairness: dict[str, tuple[str, ...]] = field(default_factory=dict)
    bytes_per_state: float = 0.0
    never_taken: tuple[str, ...] = ()

    @property
    def collision_probability(self) -> float:
        """Birthday bound on a fingerprint collision among the states found:
        ``n (n - 1) / 2**65`` for ``n`` states and 64-bit fingerprints."""
        n = self.exploration.states
        return n * (n - 1) / 2.0**65

    def as_json(self) -> dict[str, Any]:
        """The summary object of ``xbdspec explore --json``."""
        ex = self.exploration
        return {
            "target": "model",
            "sizes": dataclasses.asdict(self.sizes),
            "symmetry": self.symmetry,
            "complete": ex.complete,
            "interrupted": ex.interrupted,
            "states": ex.states,
            "transitions": ex.transitions,
            "depth": ex.depth,
            "seconds": round(ex.seconds, 3),
            "cpu_seconds": round(ex.cpu_seconds, 3),
            "states_per_second": round(ex.states / ex.cpu_seconds) if ex.cpu_seconds else None,
            "bytes_per_state": round(self.bytes_per_state, 1),
            "fingerprint_collision_probability": self.collision_probability,
            "progress_checked": self.progress_checked,
            "unknown_fairness": {k: list(v) for k, v in self.unknown_fairness.items()},
            "never_taken": list(self.never_taken),
            "violations": [v.as_json() for v in self.violations],
        }


def _measure_bytes(exploration: Exploration, recorder: ProgressRecorder) -> float:
    """Bytes kept per state: the visited set's keys and table, the BFS tree, the edges
    and the per-state progress data (the frontier's full states are transient)."""
    g = exploration.graph
    n = max(exploration.states, 1)
    total = sys.getsizeof(g.keys) + sum(sys.getsizeof(k) for k in g.keys)
    # the visited dict: about 3 words per entry at its usual load (CPython's compact dict)
    total += int(exploration.states * 8 * 3 * 1.5)
    arrays = (g.parent, g.label, g.depth, g.offsets, g.targets, g.labels)
    for arr in (*arrays, recorder.enabled, recorder.verdicts):
        total += arr.buffer_info()[1] * arr.itemsize
    return total / n


def _replay_name(index: int, cx: Counterexample) -> str:
    return f"{index:02d}-{cx.kind}-{re.sub(r'[^A-Za-z0-9_.-]', '_', cx.property)}.jsonl"


def check_model(
    sizes: Sizes | None = None,
    *,
    spec: Spec | None = None,
    symmetry: bool = True,
    exact: bool = False,
    max_states: int | None = None,
    replay_dir: Path | None = None,
    progress: Progress | None = None,
    progress_every: float = 2.0,
) -> Report:
    """Explore the model (``build_spec(sizes)`` unless ``spec`` is given) and check
    every invariant, step property, deadlock and progress property (``progress`` is
    called with the search's counters every ``progress_every`` seconds)."""
    spec = spec or build_spec(sizes or Sizes())
    target = ModelTarget(spec, symmetry=symmetry, exact=exact)
    recorder = ProgressRecorder(spec, target.stepper.field_index)
    exploration = explore(
        target,
        max_states=max_states,
        per_state=recorder,
        progress=progress,
        progress_every=progress_every,
    )
    findings = list(exploration.findings)
    if exploration.complete:
        findings += check_progress(exploration.graph, recorder)
    else:
        findings = [f for f in findings if f.kind != "deadlock"]
    violations = []
    for index, finding in enumerate(findings, 1):
        cx = build(target, exploration.graph, finding)
        path = None
        if replay_dir is not None:
            path = write_replay(replay_dir / _replay_name(index, cx), cx, spec.sizes)
        violations.append(Violation(cx, path))
    taken = {spec.instances[i].transition.name for i in set(exploration.graph.labels)}
    unknown = {
        p.name: recorder.fairness(p).unknown for p in spec.progress if recorder.fairness(p).unknown
    }
    return Report(
        sizes=spec.sizes,
        symmetry=symmetry,
        exploration=exploration,
        violations=violations,
        progress_checked=exploration.complete,
        unknown_fairness=unknown,
        bytes_per_state=_measure_bytes(exploration, recorder),
        never_taken=tuple(t.name for t in spec.transitions if t.name not in taken),
    )


def permutations_bound(sizes: Sizes) -> int:
    """How many command permutations one symmetric class stands for, at most."""
    return math.factorial(sizes.commands)
