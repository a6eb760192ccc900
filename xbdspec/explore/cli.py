"""``xbdspec explore``: exhaustive bounded exploration of the model (or the reference).

Without size options it explores the default configurations
(:data:`~xbdspec.explore.defaults.DEFAULT_RUNS`); with any, the one they describe
(the other sizes from :data:`~xbdspec.explore.defaults.DEFAULT_SIZES`).

``--engine python`` (the default) is the breadth-first explorer of this package;
``--engine spin`` checks the same declaration with SPIN through its Promela
interpretation (:mod:`xbdspec.explore.spin`), without symmetry reduction;
``--shard I/N --seed S`` makes it one shard of a swarm and ``--merge`` merges the
shards' results (:mod:`xbdspec.explore.swarm`).

Exit status: 0 when every property holds within the bounds, 1 when a violation
was found, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from xbdspec.errors import XbdspecError
from xbdspec.model.spec import build_spec

from .checker import Report, check_model
from .counterexample import format_counterexample
from .defaults import DEFAULT_RUNS, runs_from
from .search import print_progress

_SIZE_OPTIONS = (
    ("commands", "commands in the shadow array (interchangeable)"),
    ("bios", "bios the disk layer submits"),
    ("ring_slots", "ring entries (RING_SIZE)"),
    ("grants", "grant references in the pool"),
    ("grants_per_request", "grant references a command allocates"),
    ("suspends", "suspend cycles the tool stack may start"),
    ("unplugs", "unplug requests the tool stack may make"),
    ("max_users", "concurrent opens of the disk"),
)


def _default(name: str) -> str:
    values = sorted({getattr(sizes, name) for sizes in DEFAULT_RUNS})
    if len(values) == 1:
        return str(values[0])
    return " and ".join(map(str, values)) + ": without size options, one run for each"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``xbdspec explore``."""
    parser.add_argument(
        "--target",
        choices=("model", "reference", "reference-fixed"),
        default="model",
        help="what to explore: the model (default), the reference driver in lock-step with "
        "it (the seed's behaviour: documented findings are reported as known), or the "
        "reference with every fix of docs/findings/ on (any divergence is new)",
    )
    for name, help_text in _SIZE_OPTIONS:
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=int,
            default=None,
            help=f"{help_text} (default {_default(name)})",
        )
    parser.add_argument(
        "--no-symmetry",
        action="store_true",
        help="do not identify states that differ by a permutation of the commands",
    )
    parser.add_argument(
        "--max-states",
        type=int,
        default=None,
        help="stop after this many states (no deadlock or progress verdict then)",
    )
    parser.add_argument(
        "--replay-dir",
        type=Path,
        default=None,
        help="write one replay file (JSON lines) per counterexample here",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no progress display on stderr")
    parser.add_argument(
        "--engine",
        choices=("python", "spin"),
        default="python",
        help="python: this package's breadth-first explorer (default); spin: the SPIN model "
        "checker on the model's Promela interpretation (needs `spin` and `cc`; no symmetry "
        "reduction; docs/explorer.md, 'The SPIN engine')",
    )
    spin = parser.add_argument_group("SPIN engine (--engine spin)")
    spin.add_argument(
        "--spin-bitstate",
        action="store_true",
        help="bitstate hashing (-DBITSTATE) for sizes beyond exhaustive reach; the summary "
        "states pan's hash factor and the coverage estimate",
    )
    spin.add_argument(
        "--spin-hash-bits",
        type=int,
        default=None,
        metavar="W",
        help="pan -w: 2**W hash slots, or 2**W bits with --spin-bitstate (default 24, 32)",
    )
    spin.add_argument(
        "--spin-cores",
        type=int,
        default=1,
        metavar="N",
        help="multi-core safety run (-DNCORE=N); it stops at its first violation",
    )
    spin.add_argument(
        "--spin-max-depth",
        type=int,
        default=1_000_000,
        metavar="M",
        help="pan -m: the depth bound of pan's depth-first search (default 1000000)",
    )
    spin.add_argument(
        "--spin-exact-depth",
        action="store_true",
        help="with --spin-max-depth: visit every state within M steps (-DREACH; slower)",
    )
    spin.add_argument(
        "--spin-timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="for the whole check of one configuration (default 1800)",
    )
    spin.add_argument(
        "--spin-memory",
        type=int,
        default=4096,
        metavar="MB",
        help="pan's memory bound (-DMEMLIM, default 4096)",
    )
    spin.add_argument(
        "--spin-collapse",
        action="store_true",
        help="compressed state storage (-DCOLLAPSE): less memory, a little slower",
    )
    spin.add_argument(
        "--spin-hash-compact",
        action="store_true",
        help="hash compaction (-DHC4): 96 bits of hash stored per state, about 40 bytes a "
        "state instead of about 130; complete unless two states' hashes collided (the "
        "summary states the probability)",
    )
    spin.add_argument(
        "--spin-no-progress",
        action="store_true",
        help="check invariants, step properties and deadlocks only (no liveness runs)",
    )
    swarm = parser.add_argument_group(
        "swarm shards (--engine spin; docs/explorer.md, 'Beyond one machine')"
    )
    swarm.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="run shard I of a swarm of N: a bitstate search (unless --spin-hash-compact) "
        "with its own hash function and search order derived from --seed and I alone, so "
        "each shard can run on another machine; with --json or --out, a shard result",
    )
    swarm.add_argument(
        "--seed",
        type=int,
        default=1,
        metavar="S",
        help="the swarm's seed (default 1): the shards of one swarm share it",
    )
    swarm.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the JSON result (a shard result with --shard) to FILE",
    )
    swarm.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        metavar="SHARD.json",
        help="merge shard results instead of exploring: the union of their violations "
        "(each replayed on the model, one per property), each shard's states and a combined "
        "coverage statement",
    )
    spin.add_argument(
        "--spin-keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the Promela models, pan.c and the trails in DIR",
    )


def run(args: argparse.Namespace) -> int:
    """Explore, print the summary and the counterexamples; 1 if anything is violated."""
    if args.max_states is not None and args.max_states < 1:
        raise XbdspecError("--max-states must be at least 1")
    if getattr(args, "merge", None):
        return run_merge(args)
    if getattr(args, "shard", None) is not None and args.engine != "spin":
        raise XbdspecError("--shard splits a SPIN swarm: add --engine spin")
    if getattr(args, "engine", "python") == "spin":
        return run_spin(args)
    if args.target in ("reference", "reference-fixed"):
        return run_reference(args)
    runs = runs_from({name: getattr(args, name) for name, _ in _SIZE_OPTIONS})
    reports = []
    for number, sizes in enumerate(runs, 1):
        replay_dir = args.replay_dir
        if replay_dir is not None and len(runs) > 1:
            replay_dir = replay_dir / f"run{number}"
        report = check_model(
            sizes,
            symmetry=not args.no_symmetry,
            max_states=args.max_states,
            replay_dir=replay_dir,
            progress=None if args.quiet else print_progress,
        )
        reports.append(report)
        if not args.json:
            print(summary(report), flush=True)
    for prop, names in reports[0].unknown_fairness.items():
        print(
            f"xbdspec explore: warning: progress property {prop} names fairness events that are "
            f"no event of the model: {', '.join(names)}",
            file=sys.stderr,
        )
    if args.json or args.out is not None:
        text = json.dumps(combined_json(reports), indent=2)
        if args.out is not None:
            args.out.write_text(text + "\n", encoding="utf-8")
        if args.json:
            print(text)
    return 1 if any(r.violations for r in reports) else 0


def run_spin(args: argparse.Namespace) -> int:
    """``--engine spin``: each configuration checked by SPIN; 1 if anything is violated."""
    from .spin import SpinOptions, check_spin
    from .swarm import Shard, shard_result

    if args.target != "model":
        raise XbdspecError(
            "--engine spin checks the model only; explore the reference with --engine python"
        )
    if args.max_states is not None:
        raise XbdspecError(
            "--max-states bounds the Python engine; with --engine spin bound the search "
            "with --spin-max-depth, or use --spin-bitstate"
        )
    if args.spin_cores < 1:
        raise XbdspecError("--spin-cores must be at least 1")
    spin_dir = args.spin_keep
    shard = Shard.parse(args.shard, args.seed) if args.shard is not None else None
    options = SpinOptions(
        max_depth=args.spin_max_depth,
        exact_depth=args.spin_exact_depth,
        hash_bits=args.spin_hash_bits,
        bitstate=args.spin_bitstate,
        cores=args.spin_cores,
        timeout=args.spin_timeout,
        memory_mb=args.spin_memory,
        progress=not args.spin_no_progress,
        collapse=args.spin_collapse,
        hash_compact=args.spin_hash_compact,
        work_dir=spin_dir,
    )
    if shard is not None:
        options = shard.options(options)
    runs = runs_from({name: getattr(args, name) for name, _ in _SIZE_OPTIONS})
    reports = []
    for number, sizes in enumerate(runs, 1):
        several = len(runs) > 1
        replay_dir = args.replay_dir
        if replay_dir is not None and several:
            replay_dir = replay_dir / f"run{number}"
        run_options = options
        if spin_dir is not None and several:
            run_options = dataclasses.replace(options, work_dir=spin_dir / f"run{number}")

        def status(line: str, sizes: Any = sizes) -> None:
            if not args.quiet:
                part = "" if shard is None else f", shard {shard.index}/{shard.count}"
                print(
                    f"explore --engine spin ({sizes.commands} commands, {sizes.grants} "
                    f"grants{part}): {line}",
                    file=sys.stderr,
                    flush=True,
                )

        report = check_spin(sizes, options=run_options, replay_dir=replay_dir, status=status)
        reports.append(report)
        if not args.json:
            print(spin_summary(report), flush=True)
    if shard is not None:
        result = shard_result(reports, shard)
    elif len(reports) == 1:
        result = reports[0].as_json()
    else:
        result = combined_spin_json(reports)
    text = json.dumps(result, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    if args.json:
        print(text)
    return 1 if any(r.violations for r in reports) else 0


def run_merge(args: argparse.Namespace) -> int:
    """``--merge A.json B.json ...``: the shards' results together; 1 if any shard
    reported a violation."""
    from .swarm import load_shard, merge_shards, merge_summary

    report = merge_shards([(str(path), load_shard(path)) for path in args.merge])
    text = json.dumps(report.as_json(), indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text if args.json else merge_summary(report))
    return 1 if report.violated else 0


def combined_spin_json(reports: list[Any]) -> dict[str, Any]:
    """As :func:`combined_json`, for SPIN reports."""
    runs = [r.as_json() for r in reports]
    search = sum(r["search_seconds"] for r in runs)
    states = sum(r["states"] for r in runs)
    return {
        "engine": "spin",
        "target": "model",
        "sizes": [r["sizes"] for r in runs],
        "symmetry": False,
        "complete": all(r["complete"] for r in runs),
        "states": states,
        "transitions": sum(r["transitions"] for r in runs),
        "depth": max(r["depth"] for r in runs),
        "seconds": round(sum(r["seconds"] for r in runs), 3),
        "search_seconds": round(search, 3),
        "compile_seconds": round(sum(r["compile_seconds"] for r in runs), 3),
        "states_per_second": round(states / search) if search else None,
        "progress_checked": all(r["progress_checked"] for r in runs),
        "violations": [{**v, "sizes": r["sizes"]} for r in runs for v in r["violations"]],
        "runs": runs,
    }


def spin_summary(report: Any) -> str:
    """The human summary of a SPIN check: pan's figures, then every counterexample."""
    s = report.safety
    rate = s.states_per_second
    lines = [
        f"checked the model with SPIN ({report.version or 'spin'}) for {report.spec.sizes}",
        f"  {report.states:,} states (no symmetry reduction), {s.transitions:,} transitions, "
        f"depth-first depth {s.depth}, search {s.seconds:.1f} s"
        + (f" ({rate:,.0f} states/s)" if rate else "")
        + f", compilation {report.compile_seconds:.1f} s, {report.seconds:.1f} s in all"
        + (f", {s.memory_mb:,.0f} MB" if s.memory_mb is not None else ""),
    ]
    if s.bitstate:
        coverage = "unknown" if s.coverage is None else f"{100 * s.coverage:.4f}%"
        cut = s.timed_out or s.out_of_memory or s.depth_limited
        lines.append(
            f"  BITSTATE: hash factor {s.hash_factor}, {s.hash_functions} bits per state; "
            + (
                f"coverage estimate {coverage} (pan's hash factor: an estimate, not a bound)"
                if not cut
                else f"the search was cut (below), so no coverage of the states it did not "
                f"reach; of those it met, an estimated {coverage} were not lost to collisions"
            )
        )
    if s.hash_compact:
        lines.append(
            "  HASH-COMPACT (-DHC4): states stored as 96 bits of hash; "
            + ("complete unless" if s.exhaustive else "the search was cut (below); besides,")
            + f" two of the {s.states:,} states may have shared their 96 bits: probability "
            f"at most {s.collision_probability:.1e}"
        )
    for why, hit in (
        ("the depth bound (--spin-max-depth) was reached", s.depth_limited),
        ("the time-out was reached", s.timed_out),
        ("the memory bound (--spin-memory) was reached", s.out_of_memory),
        ("the multi-core run stopped at its first violation", s.stops_at_first_error and s.errors),
    ):
        if hit:
            lines.append(f"  INCOMPLETE: {why}")
    if report.liveness:
        done = sum(1 for r in report.liveness if r.exhaustive)
        lines.append(
            f"  progress: {len(report.liveness)} of {len(report.spec.progress)} properties "
            f"checked ({done} exhaustively), "
            f"{sum(r.states for r in report.liveness):,} product states in all"
        )
        for r in report.liveness:
            reasons = [
                text
                for text, hit in (
                    ("the memory bound (--spin-memory)", r.out_of_memory),
                    ("the time-out (--spin-timeout)", r.timed_out),
                    ("the depth bound (--spin-max-depth)", r.depth_limited),
                    ("bitstate", r.bitstate),
                )
                if hit
            ]
            if reasons and not r.errors:
                lines.append(
                    f"  INCOMPLETE progress check {r.claim}: {', '.join(reasons)} "
                    f"({r.states:,} product states)"
                )
    elif report.spec.progress:
        lines.append("  progress properties not checked (--spin-no-progress)")
    if not report.violations:
        checked = ["invariant", "step property"]
        if report.safety_model_checks_deadlock:
            checked.append("deadlock-freedom")
        if report.liveness:
            checked.append("progress property")
        lines.append(
            f"  no violation: every {', '.join(checked[:-1])} and {checked[-1]} holds within "
            "these bounds"
        )
    for v in report.violations:
        lines.append("")
        lines.append(format_counterexample(report.spec, v.counterexample))
        lines.append(
            "  replayed on the concrete model: "
            + ("confirmed" if v.reproduced else f"NOT reproduced ({v.detail})")
        )
        if v.replay is not None:
            lines.append(f"  replay: {v.replay}")
    return "\n".join(lines)


def run_reference(args: argparse.Namespace) -> int:
    """``--target reference``: the driver code itself, in lock-step with the model; 1 if a
    departure no documented finding explains is found."""
    from xbdspec.reference.platform import Fixes

    from .reference import DEFAULT_REFERENCE_SIZES, REFERENCE_MAX_STATES, explore_reference

    given = {
        name: getattr(args, name) for name, _ in _SIZE_OPTIONS if getattr(args, name) is not None
    }
    sizes = dataclasses.replace(DEFAULT_REFERENCE_SIZES, **given)

    def show(report: Any, queue: int) -> None:
        if not args.quiet:
            print(
                f"\rexplore reference: {report.states:,} states, depth {report.depth}, "
                f"queue {queue:,}",
                end="",
                file=sys.stderr,
                flush=True,
            )

    report = explore_reference(
        sizes,
        max_states=args.max_states or REFERENCE_MAX_STATES,
        replay_dir=args.replay_dir,
        fixes=Fixes.all() if args.target == "reference-fixed" else None,
        progress=show,
    )
    if not args.quiet:
        print(file=sys.stderr)
    if args.out is not None:
        args.out.write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        bound = "complete" if report.complete else f"stopped at {report.states:,} states"
        print(
            f"{report.implementation}: {report.states:,} states, {report.transitions:,} steps, "
            f"depth "
            f"{report.depth}, {report.seconds:.1f} s ({bound})"
        )
        for v in report.violations.values():
            status = "known finding" if v.known else "NEW"
            print(
                f"  {status}: {v.property} after {len(v.steps)} events: "
                + " ; ".join(s.label() for s in v.steps)
            )
    return 1 if report.new else 0


def combined_json(reports: list[Report]) -> dict[str, Any]:
    """One run's summary object; for several runs, the totals (``states``,
    ``transitions``, ``seconds``..., ``sizes`` a list, each violation with its
    ``sizes``) and every run's own object under ``runs``."""
    if len(reports) == 1:
        return reports[0].as_json()
    runs = [r.as_json() for r in reports]
    cpu = sum(r["cpu_seconds"] for r in runs)
    states = sum(r["states"] for r in runs)
    return {
        "target": "model",
        "sizes": [r["sizes"] for r in runs],
        "complete": all(r["complete"] for r in runs),
        "states": states,
        "transitions": sum(r["transitions"] for r in runs),
        "depth": max(r["depth"] for r in runs),
        "seconds": round(sum(r["seconds"] for r in runs), 3),
        "cpu_seconds": round(cpu, 3),
        "states_per_second": round(states / cpu) if cpu else None,
        "bytes_per_state": max(r["bytes_per_state"] for r in runs),
        "fingerprint_collision_probability": max(
            r["fingerprint_collision_probability"] for r in runs
        ),
        "violations": [{**v, "sizes": r["sizes"]} for r in runs for v in r["violations"]],
        "runs": runs,
    }


def summary(report: Report) -> str:
    """The human summary: figures, then every counterexample."""
    ex = report.exploration
    spec = build_spec(report.sizes)
    rate = ex.states / ex.cpu_seconds if ex.cpu_seconds else 0.0
    lines = [
        f"explored the model for {report.sizes}",
        f"  {ex.states:,} states{' (up to command permutations)' if report.symmetry else ''}, "
        f"{ex.transitions:,} transitions, depth {ex.depth}, {ex.seconds:.1f} s "
        f"({rate:,.0f} states/s of processor time), {report.bytes_per_state:.0f} bytes/state",
        f"  fingerprint collision probability at most {report.collision_probability:.1e}",
    ]
    if report.never_taken:
        lines.append(f"  transitions never taken: {', '.join(report.never_taken)}")
    if not ex.complete:
        lines.append(
            "  INCOMPLETE: --max-states cut the search; deadlocks and progress were not checked"
        )
    if not report.violations:
        lines.append(
            "  no violation: every invariant, step property, deadlock-freedom and progress "
            "property holds within these bounds"
        )
    for v in report.violations:
        lines.append("")
        lines.append(format_counterexample(spec, v.counterexample))
        if v.replay is not None:
            lines.append(f"  replay: {v.replay}")
    return "\n".join(lines)
