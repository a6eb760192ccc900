"""A swarm of SPIN runs split into independent shards, and the merge of their results
(``xbdspec explore --engine spin --shard I/N --seed S``, ``xbdspec explore --merge``).

Beyond exhaustive reach, one bitstate run covers what one hash function and one
search order reach before memory or time runs out.  A *swarm* runs many such searches,
each with its own hash function and its own search order, so that what one misses
another may visit.  Here each search is a **shard**: shard ``I`` of ``N`` with seed
``S`` is one ordinary ``check_spin`` run whose diversification is derived from
``(S, I)`` alone (:meth:`Shard.options`), so that shards need nothing from each other:
each can run on another machine, at another time, and writes one JSON result
(:func:`shard_result`, format ``spin-shard`` version 1).  Running the same shard twice
repeats the same search.

A shard's diversification:

* ``-DT_RAND`` and ``-RS<seed>``: in every state pan starts its scan of the enabled
  steps at a pseudo-random one (the seed from ``S`` and ``I`` by SHA-512, Python's
  ``random.Random`` on a string);
* ``-h<n>``: one of pan's 500 hash functions, distinct for the shards of one swarm
  (``(S * N + I - 1) mod 500``);
* ``-t_reverse`` on even shards: the scan goes the other way round;
* bitstate storage (``-DBITSTATE``) unless hash compaction or exact storage is asked for.

:func:`merge_shards` reads shard results and says what they found together:

* **violations**: the union over the shards, each replayed on the concrete model
  (:func:`~xbdspec.explore.replay.replay_on_model`); replays that reproduce the same
  property (kind and name) are one violation, represented by its shortest replay, with
  the shards that found it.  A replay that does not reproduce is listed apart, never
  dropped.
* **states**: each shard's own count.  Shards overlap (they search one state space), and
  a bitstate run cannot say which states it stored, so the union is not measured: the
  shards together visited at least the largest count and at most the sum.
* **coverage**: a statement that does not overclaim (:class:`Coverage`): exhaustive only
  when some shard's own search was; otherwise, for the shards that finished their search,
  pan's coverage estimate of the best one (what the union at least reaches), and the
  figure if the shards' omissions were independent, said as an assumption; a shard stopped
  by its time-out, memory or depth bound gives no estimate (it did not search the rest);
  missing shards are named.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbdspec import __version__
from xbdspec.errors import InputError, XbdspecError
from xbdspec.model.declaration import Spec
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes
from xbdspec.untrusted import check_sizes, load_json

from .replay import ReplayError, dumps, loads_replay, replay_on_model
from .spin import SpinOptions, SpinReport

#: the ``xbdspec`` key of a shard result, and its version
FORMAT = "spin-shard"
VERSION = 1
#: The largest shard result read (bytes): a shard's figures and a few replays.
MAX_SHARD_BYTES = 64 << 20
#: pan's hash functions (``-h0`` .. ``-h499``)
HASH_FUNCTIONS = 500


def model_digest(text: str) -> str:
    """The SHA-256 of a Promela model's text: shards of one swarm must share it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- shards


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of a swarm of ``count`` shards with seed ``seed``."""

    index: int
    count: int
    seed: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise XbdspecError(f"shard {self.index}/{self.count}: I/N needs 1 <= I <= N")
        if self.seed < 0:
            raise XbdspecError(f"--seed {self.seed}: the seed must not be negative")

    @classmethod
    def parse(cls, text: str, seed: int) -> Shard:
        """``"2/4"`` as shard 2 of 4."""
        index, slash, count = text.partition("/")
        if not slash or not index.strip().isdigit() or not count.strip().isdigit():
            raise XbdspecError(f"--shard {text!r}: write I/N, e.g. --shard 1/4")
        return cls(int(index), int(count), seed)

    @property
    def order_seed(self) -> int:
        """pan's ``-RS``: from the swarm's seed and this shard's index alone."""
        rng = random.Random(f"xbdspec-swarm:{self.seed}:{self.index}")
        return rng.randrange(1, 2**31)

    @property
    def hash_function(self) -> int:
        """pan's ``-h``: distinct for the shards of one swarm (up to 500 shards)."""
        return (self.seed * self.count + self.index - 1) % HASH_FUNCTIONS

    @property
    def reverse_order(self) -> bool:
        """``-t_reverse`` on even shards."""
        return self.index % 2 == 0

    def options(self, base: SpinOptions) -> SpinOptions:
        """``base`` with this shard's diversification (bitstate unless ``base`` asks
        for hash compaction)."""
        return dataclasses.replace(
            base,
            bitstate=base.bitstate or not base.hash_compact,
            order_seed=self.order_seed,
            hash_function=self.hash_function,
            reverse_order=self.reverse_order,
        )

    def as_json(self) -> dict[str, Any]:
        """The shard and what it derived, as its result records them."""
        return {
            "index": self.index,
            "count": self.count,
            "seed": self.seed,
            "order_seed": self.order_seed,
            "hash_function": self.hash_function,
            "reverse_order": self.reverse_order,
        }


def run_json(report: SpinReport) -> dict[str, Any]:
    """One configuration's part of a shard result: the summary of ``--json``, the
    model's digest, and each violation's replay inline (the shard's files stay on its
    machine)."""
    data = report.as_json()
    data["model_digest"] = report.model_digest
    sizes = report.spec.sizes
    for entry, violation in zip(data["violations"], report.violations, strict=True):
        if isinstance(sizes, Sizes):
            text = dumps(violation.counterexample, sizes)
            entry["replay_lines"] = [json.loads(line) for line in text.splitlines()]
    return data


def shard_result(reports: Sequence[SpinReport], shard: Shard) -> dict[str, Any]:
    """A shard's JSON result (format ``spin-shard`` version 1): the shard, and one entry
    per configuration it checked."""
    return {
        "xbdspec": FORMAT,
        "version": VERSION,
        "xbdspec_version": __version__,
        "shard": shard.as_json(),
        "runs": [run_json(r) for r in reports],
    }


def load_shard(path: str | Path) -> dict[str, Any]:
    """A shard result read back, its structure checked (``InputError`` naming the file)."""
    where = str(path)
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_SHARD_BYTES + 1)
    except OSError as exc:
        raise InputError(where, f"cannot read the shard result: {exc.strerror}") from None
    if len(raw) > MAX_SHARD_BYTES:
        raise InputError(where, f"longer than {MAX_SHARD_BYTES >> 20} MiB: not a shard result")
    data = load_json(raw, where)
    if isinstance(data, dict) and data.get("tool") == "xbdspec" and "shard_result" in data:
        data = data["shard_result"]  # `--shard ... --json > FILE`: the envelope around it
    return check_shard(data, where)


def check_shard(data: Any, where: str) -> dict[str, Any]:
    """``data`` if it is a shard result, else ``InputError``."""
    if not isinstance(data, dict) or data.get("xbdspec") != FORMAT:
        raise InputError(
            where,
            f'not a shard result (no "xbdspec": "{FORMAT}"): write one with '
            "xbdspec explore --engine spin --shard I/N --seed S --out FILE",
        )
    if data.get("version") != VERSION:
        raise InputError(where, f"shard result version {data.get('version')!r}, not {VERSION}")
    shard = data.get("shard")
    runs = data.get("runs")
    if not isinstance(shard, dict) or not isinstance(runs, list) or not runs:
        raise InputError(where, 'a shard result needs a "shard" object and a list of "runs"')
    for key in ("index", "count", "seed"):
        if type(shard.get(key)) is not int:
            raise InputError(where, f"shard.{key} must be an integer")
    for number, run in enumerate(runs, 1):
        if not isinstance(run, dict):
            raise InputError(where, f"runs[{number}] is not an object")
        for key, kind in (
            ("sizes", dict),
            ("model_digest", str),
            ("states", int),
            ("violations", list),
            ("spin", dict),
        ):
            if not isinstance(run.get(key), kind):
                raise InputError(where, f"runs[{number}].{key} is missing or not a {kind.__name__}")
    return data


# --------------------------------------------------------------------------- merging


@dataclass
class ShardFigures:
    """One shard's search of one configuration, as the merge shows it.

    Attributes:
        index: the shard's number; source: the file it came from.
        states: the states it stored; seconds: pan's search time.
        finished: its search ended by itself (no time-out, memory or depth bound, no
            stop at a first violation).
        bitstate, hash_compact: how it stored states.
        coverage_estimate: pan's bitstate estimate (finished bitstate shards).
        collision_probability: hash compaction's (finished hash-compact shards).
        stopped_by: why it did not finish, in words.
    """

    index: int
    source: str
    states: int
    seconds: float
    finished: bool
    bitstate: bool
    hash_compact: bool
    coverage_estimate: float | None
    collision_probability: float | None
    stopped_by: list[str]

    def as_json(self) -> dict[str, Any]:
        """As ``--merge --json`` lists it."""
        return dataclasses.asdict(self)


@dataclass
class Coverage:
    """What the shards of one configuration covered together, stated without
    overclaiming.

    Attributes:
        exhaustive: some shard's own search visited every reachable state.
        states_at_least: the union of the shards' states is at least the largest
            shard's count (the union is not measured: shards overlap).
        states_at_most: and at most the sum.
        finished: the shards whose search ended by itself.
        estimate_best_shard: among finished bitstate shards, the best coverage
            estimate: the union covers at least what that shard covers.
        estimate_if_independent: ``1 - prod(1 - c_i)`` over the finished bitstate
            shards: the union's coverage if their omissions were independent (an
            assumption: distinct hash functions and orders make it plausible, nothing
            proves it).
        collision_probability: an exhaustive hash-compact shard's.
        statement: the whole in sentences.
    """

    exhaustive: bool
    states_at_least: int
    states_at_most: int
    finished: list[int]
    estimate_best_shard: float | None
    estimate_if_independent: float | None
    collision_probability: float | None
    statement: list[str]

    def as_json(self) -> dict[str, Any]:
        """As ``--merge --json`` gives it."""
        return dataclasses.asdict(self)


@dataclass
class MergedViolation:
    """One violated property found by one or more shards.

    Attributes:
        kind, property: what is violated.
        found_by: the shards whose replay reproduces it.
        replay_lines: the shortest of those replays (the replay format's lines).
        trace_length: its number of events.
        detail: what replaying it on the model showed.
    """

    kind: str
    property: str
    found_by: list[int]
    replay_lines: list[dict[str, Any]]
    trace_length: int
    detail: str

    def as_json(self) -> dict[str, Any]:
        """As ``--merge --json`` lists it."""
        return dataclasses.asdict(self)


@dataclass
class Unconfirmed:
    """A shard's violation whose replay does not reproduce on the merge's model (or
    could not be replayed): kept and reported, never silently dropped."""

    shard: int
    kind: str
    property: str
    detail: str

    def as_json(self) -> dict[str, Any]:
        """As ``--merge --json`` lists it."""
        return dataclasses.asdict(self)


@dataclass
class MergedRun:
    """The shards' results for one configuration (sizes and model)."""

    sizes: dict[str, Any]
    model_digest: str
    shards: list[ShardFigures]
    coverage: Coverage
    violations: list[MergedViolation]
    unconfirmed: list[Unconfirmed] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """As ``--merge --json`` gives it."""
        return {
            "sizes": self.sizes,
            "model_digest": self.model_digest,
            "shards": [s.as_json() for s in self.shards],
            "coverage": self.coverage.as_json(),
            "violations": [v.as_json() for v in self.violations],
            "unconfirmed": [u.as_json() for u in self.unconfirmed],
        }


@dataclass
class MergeReport:
    """What a swarm's shards found together.

    Attributes:
        sources: the files merged; seed, count: the swarm's.
        present: the shard numbers given; missing: those of ``1..count`` not given.
        runs: one per configuration.
    """

    sources: list[str]
    seed: int
    count: int
    present: list[int]
    missing: list[int]
    runs: list[MergedRun]

    @property
    def violated(self) -> bool:
        """Some shard reported a violation (confirmed or not)."""
        return any(r.violations or r.unconfirmed for r in self.runs)

    def as_json(self) -> dict[str, Any]:
        """The object ``xbdspec explore --merge --json`` prints."""
        return {
            "engine": "spin",
            "merged": self.sources,
            "seed": self.seed,
            "count": self.count,
            "shards_present": self.present,
            "shards_missing": self.missing,
            "complete": all(r.coverage.exhaustive for r in self.runs),
            "violations": [
                {**v.as_json(), "sizes": r.sizes} for r in self.runs for v in r.violations
            ],
            "runs": [r.as_json() for r in self.runs],
        }


def merge_shards(
    results: Sequence[tuple[str, dict[str, Any]]], spec: Spec | None = None
) -> MergeReport:
    """Merge shard results ``(source, data)`` (each checked by :func:`check_shard`).

    Every shard must belong to the same swarm (seed and count) and check the same
    configurations with the same model (``model_digest``); a shard given twice is
    refused.  Violations are replayed on ``spec`` (default ``build_spec`` of the
    configuration's sizes).
    """
    if not results:
        raise XbdspecError("--merge needs at least one shard result")
    checked = [(source, check_shard(data, source)) for source, data in results]
    first_source, first = checked[0]
    seed, count = first["shard"]["seed"], first["shard"]["count"]
    seen: dict[int, str] = {}
    for source, data in checked:
        shard = data["shard"]
        if (shard["seed"], shard["count"]) != (seed, count):
            raise InputError(
                source,
                f"shard of swarm seed {shard['seed']}, {shard['count']} shards; "
                f"{first_source} is of seed {seed}, {count} shards: merge one swarm at a time",
            )
        if shard["index"] in seen:
            raise InputError(
                source, f"shard {shard['index']}/{count} was given already ({seen[shard['index']]})"
            )
        seen[shard["index"]] = source
        keys = [(json.dumps(r["sizes"], sort_keys=True), r["model_digest"]) for r in data["runs"]]
        first_keys = [
            (json.dumps(r["sizes"], sort_keys=True), r["model_digest"]) for r in first["runs"]
        ]
        if keys != first_keys:
            raise InputError(
                source,
                f"its configurations or models differ from {first_source}'s (sizes and "
                "model_digest must agree: the same xbdspec and the same size options)",
            )
    runs = []
    for number in range(len(first["runs"])):
        parts = [(source, data["shard"]["index"], data["runs"][number]) for source, data in checked]
        runs.append(_merge_run(parts, spec))
    present = sorted(seen)
    return MergeReport(
        sources=[source for source, _ in checked],
        seed=seed,
        count=count,
        present=present,
        missing=[i for i in range(1, count + 1) if i not in seen],
        runs=runs,
    )


def _figures(source: str, index: int, run: dict[str, Any]) -> ShardFigures:
    safety = run["spin"].get("safety", {})
    stopped = [
        why
        for why, key in (
            ("the time-out", "timed_out"),
            ("the memory bound", "out_of_memory"),
            ("the depth bound", "depth_limited"),
        )
        if safety.get(key)
    ]
    if safety.get("cores", 1) > 1 and safety.get("errors", 0):
        stopped.append("its first violation (multi-core)")
    return ShardFigures(
        index=index,
        source=source,
        states=int(run["states"]),
        seconds=float(run.get("search_seconds", 0.0)),
        finished=not stopped,
        bitstate=bool(run.get("bitstate")),
        hash_compact=bool(run.get("hash_compact")),
        coverage_estimate=run.get("coverage_estimate") if not stopped else None,
        collision_probability=run.get("collision_probability") if not stopped else None,
        stopped_by=stopped,
    )


def _merge_run(parts: list[tuple[str, int, dict[str, Any]]], spec: Spec | None) -> MergedRun:
    sizes = parts[0][2]["sizes"]
    figures = sorted((_figures(source, index, run) for source, index, run in parts), key=_index)
    model = spec
    if model is None:
        check_sizes(sizes, f"{parts[0][0]} sizes")
        try:
            model = build_spec(Sizes(**sizes))
        except (TypeError, ValueError) as exc:
            raise InputError(parts[0][0], f"sizes {sizes}: {exc}") from None
    found: dict[tuple[str, str], MergedViolation] = {}
    unconfirmed: list[Unconfirmed] = []
    for source, index, run in sorted(parts, key=lambda p: p[1]):
        for entry in run["violations"]:
            kind, name = str(entry.get("kind")), str(entry.get("property"))
            lines = entry.get("replay_lines")
            if not isinstance(lines, list):
                unconfirmed.append(Unconfirmed(index, kind, name, "the shard gave no replay"))
                continue
            text = "\n".join(json.dumps(line) for line in lines) + "\n"
            try:
                replay = loads_replay(text, f"{source} ({kind} {name})")
                outcome = replay_on_model(replay, model)
            except (InputError, ReplayError) as exc:
                unconfirmed.append(Unconfirmed(index, kind, name, f"does not replay: {exc}"))
                continue
            if not outcome.reproduced:
                unconfirmed.append(Unconfirmed(index, kind, name, outcome.detail))
                continue
            key = (replay.kind or kind, replay.property or name)
            length = len(replay.events)
            known = found.get(key)
            if known is None:
                found[key] = MergedViolation(key[0], key[1], [index], lines, length, outcome.detail)
                continue
            known.found_by.append(index)
            if length < known.trace_length:
                known.replay_lines, known.trace_length = lines, length
                known.detail = outcome.detail
    return MergedRun(
        sizes=sizes,
        model_digest=parts[0][2]["model_digest"],
        shards=figures,
        coverage=coverage_of(figures),
        violations=sorted(found.values(), key=lambda v: (v.kind, v.property)),
        unconfirmed=unconfirmed,
    )


def _index(f: ShardFigures) -> int:
    return f.index


def coverage_of(shards: Sequence[ShardFigures]) -> Coverage:
    """The combined coverage statement of one configuration's shards."""
    counts = [s.states for s in shards]
    finished = [s for s in shards if s.finished]
    exact = [s for s in finished if not s.bitstate]
    statement: list[str] = []
    collision: float | None = None
    if exact:
        best = min(exact, key=lambda s: s.collision_probability or 0.0)
        collision = best.collision_probability
        statement.append(
            f"exhaustive: shard {best.index}'s own search visited every reachable state "
            f"({best.states:,} states)"
            + (
                f", unless two states' 96-bit hashes collided (probability at most {collision:.1e})"
                if best.hash_compact and collision is not None
                else ""
            )
        )
    else:
        statement.append(
            "not exhaustive: every shard stored states as bits (or was stopped), so states "
            "may have been missed; the number of reachable states is not known"
        )
    statement.append(
        f"states visited by the shards together: at least {max(counts):,} (the largest "
        f"shard) and at most {sum(counts):,} (the sum; shards overlap, and a bitstate run "
        "cannot say which states it stored, so the union is not measured)"
    )
    estimates = [s.coverage_estimate for s in finished if s.bitstate and s.coverage_estimate]
    best_estimate = max(estimates) if estimates else None
    independent = 1.0 - math.prod(1.0 - c for c in estimates) if estimates else None
    if not exact:
        if estimates:
            statement.append(
                f"{len(estimates)} of {len(shards)} shards finished their search; the best "
                f"one's coverage estimate is {100 * (best_estimate or 0):.4f}% (pan's hash "
                "factor: an estimate, not a bound), which the union reaches at least; if the "
                f"shards' omissions were independent (an assumption), "
                f"{100 * (independent or 0):.6f}%"
            )
        else:
            statement.append(
                "no shard finished its search: no coverage estimate; only the states counted "
                "above were checked"
            )
    for s in shards:
        if s.stopped_by:
            statement.append(
                f"shard {s.index} was stopped by {' and '.join(s.stopped_by)} after "
                f"{s.states:,} states: it gives no coverage estimate (it did not search the rest)"
            )
    return Coverage(
        exhaustive=bool(exact),
        states_at_least=max(counts),
        states_at_most=sum(counts),
        finished=[s.index for s in finished],
        estimate_best_shard=None if exact else best_estimate,
        estimate_if_independent=None if exact else independent,
        collision_probability=collision,
        statement=statement,
    )


def merge_summary(report: MergeReport) -> str:
    """The human summary of a merge."""
    lines = [
        f"merged {len(report.sources)} shard result(s) of swarm seed {report.seed} "
        f"({report.count} shards): shards {', '.join(map(str, report.present))}"
    ]
    if report.missing:
        lines.append(
            f"  MISSING: shards {', '.join(map(str, report.missing))} of {report.count} "
            "were not given; what only they would have visited is not covered"
        )
    for run in report.runs:
        sizes = ", ".join(f"{k}={v}" for k, v in run.sizes.items() if k != "ring_base")
        lines.append(f"configuration {sizes}")
        for s in run.shards:
            state = "finished" if s.finished else f"stopped by {' and '.join(s.stopped_by)}"
            extra = (
                f", coverage estimate {100 * s.coverage_estimate:.4f}%"
                if s.coverage_estimate is not None
                else ""
            )
            lines.append(
                f"  shard {s.index}: {s.states:,} states in {s.seconds:.1f} s, {state}{extra}"
            )
        lines += [f"  {text}" for text in run.coverage.statement]
        for v in run.violations:
            lines.append(
                f"  VIOLATED {v.kind} {v.property}: found by shards "
                f"{', '.join(map(str, v.found_by))}; shortest replay {v.trace_length} events "
                f"({v.detail})"
            )
        for u in run.unconfirmed:
            lines.append(f"  UNCONFIRMED {u.kind} {u.property} from shard {u.shard}: {u.detail}")
        if not run.violations and not run.unconfirmed:
            lines.append("  no violation in any shard")
    return "\n".join(lines)
