"""Exhaustive bounded exploration of the model: invariants, step properties,
deadlocks and progress under weak fairness, with symmetry reduction over commands
and shortest, replayable counterexamples (docs/explorer.md).

Public names: :func:`check_model` (one exploration end to end), :class:`Report`,
:class:`ExplorationTarget` (what an implementation's adapter provides),
:class:`ModelTarget`, :func:`load_replay`, :func:`replay_on_model`,
:func:`format_counterexample`, :data:`DEFAULT_SIZES`.
"""

from __future__ import annotations

from .checker import Report, Violation, check_model
from .counterexample import Counterexample, format_counterexample
from .defaults import DEFAULT_SIZES
from .replay import Replay, ReplayOutcome, load_replay, replay_on_model, write_replay
from .target import ExplorationTarget, ModelTarget

__all__ = [
    "DEFAULT_SIZES",
    "Counterexample",
    "ExplorationTarget",
    "ModelTarget",
    "Replay",
    "ReplayOutcome",
    "Report",
    "Violation",
    "check_model",
    "format_counterexample",
    "load_replay",
    "replay_on_model",
    "write_replay",
]
