"""Exhaustive bounded exploration of the model: invariants, step properties,
deadlocks and progress under weak fairness, with symmetry reduction over commands
and shortest, replayable counterexamples (docs/explorer.md).

Public names: :func:`check_model` (one exploration end to end), :class:`Report`,
:class:`ExplorationTarget` (what an implementation's adapter provides),
:class:`ModelTarget`, :func:`load_replay`, :func:`replay_on_model`,
:func:`format_counterexample`, :data:`DEFAULT_SIZES`; the SPIN engine
(:mod:`xbdspec.explore.spin`): :func:`check_spin`, :class:`SpinOptions`,
:class:`SpinReport`, :class:`SpinViolation`, :class:`PanRun`, :class:`SpinError`,
:func:`spin_available`; swarm shards and their merge (:mod:`xbdspec.explore.swarm`):
:class:`Shard`, :func:`shard_result`, :func:`load_shard`, :func:`merge_shards`,
:class:`MergeReport`.

Importing the SPIN names starts no process: SPIN and ``cc`` are looked for when a
check runs (:func:`spin_available` says whether they are on the PATH).
"""

from __future__ import annotations

from .checker import Report, Violation, check_model
from .counterexample import Counterexample, format_counterexample
from .defaults import DEFAULT_SIZES
from .replay import Replay, ReplayOutcome, load_replay, replay_on_model, write_replay
from .spin import (
    PanRun,
    SpinError,
    SpinNotInstalled,
    SpinOptions,
    SpinReport,
    SpinViolation,
    check_spin,
    spin_available,
)
from .swarm import MergeReport, Shard, load_shard, merge_shards, shard_result
from .target import ExplorationTarget, ModelTarget

__all__ = [
    "DEFAULT_SIZES",
    "Counterexample",
    "ExplorationTarget",
    "MergeReport",
    "ModelTarget",
    "PanRun",
    "Replay",
    "ReplayOutcome",
    "Report",
    "Shard",
    "SpinError",
    "SpinNotInstalled",
    "SpinOptions",
    "SpinReport",
    "SpinViolation",
    "Violation",
    "check_model",
    "check_spin",
    "format_counterexample",
    "load_replay",
    "load_shard",
    "merge_shards",
    "replay_on_model",
    "shard_result",
    "spin_available",
    "write_replay",
]
