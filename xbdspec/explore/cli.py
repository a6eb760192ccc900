"""``xbdspec explore``: exhaustive bounded exploration of the model (or the reference).

Without size options it explores the default configurations
(:data:`~xbdspec.explore.defaults.DEFAULT_RUNS`); with any, the one they describe
(the other sizes from :data:`~xbdspec.explore.defaults.DEFAULT_SIZES`).

``--engine python`` (the default) is the breadth-first explorer of this package;
``--engine spin`` checks the same declaration with SPIN through its Promela
interpretation (:mod:`xbdspec.explore.spin`), without symmetry reduction;
``--shard I/N --seed S`` makes it one shard of a swarm and ``--merge`` merges the
shards' results (:mod:`xbdspec.explore.swarm`).

``--json`` prints the envelope of :mod:`xbdspec.output` (``--out FILE`` writes the same
document, or a shard's result with ``--shard``); a bar shows the search's progress when
standard error is a terminal (:mod:`xbdspec.terminal`).  A search cut by its state bound
says BOUNDED (``complete`` false).

Exit status: 0 when every property holds within the bounds, 1 when a violation
was found, 2 on a usage error, 130 when Ctrl-C stopped it (the figures, the violations
found by then and their replays are still printed and written).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from xbdspec import argtypes, output
from xbdspec.cli import EXIT_INTERRUPTED
from xbdspec.errors import XbdspecError
from xbdspec.model.spec import build_spec
from xbdspec.terminal import Progress
from xbdspec.untrusted import check_sizes

from .checker import Report, check_model
from .counterexample import format_counterexample
from .defaults import DEFAULT_RUNS, runs_from
from .selection import select

_SIZE_OPTIONS = (
    ("commands", "commands in the shadow array (interchangeable)"),
    ("bios", "bios the disk layer submits"),
    ("ring_slots", "ring entries (RING_SIZE)"),
    ("grants", "grant references in the pool"),
    ("grants_per_request", "grant references a command allocates"),
    ("suspends", "suspend cycles the tool stack may start"),
    ("unplugs", "unplug requests the tool stack may make"),
    ("max_users", "concurrent opens of the disk"),
    ("dumps", "calls the kernel dumper may make to xbd_dump"),
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
            type=argtypes.size(name),
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
        type=argtypes.int_range(1, None, "a search of no state checks nothing"),
        default=None,
        help="stop after this many states (no deadlock or progress verdict then)",
    )
    parser.add_argument(
        "--invariant",
        dest="invariants",
        action="append",
        default=None,
        metavar="NAME",
        help="check only this invariant (repeatable; default: every invariant; TLC's "
        "INVARIANT; the Python engine on the model)",
    )
    parser.add_argument(
        "--property",
        dest="properties",
        action="append",
        default=None,
        metavar="NAME",
        help="check only this step or progress property (repeatable; default: every one; "
        "TLC's PROPERTY; the Python engine on the model)",
    )
    parser.add_argument(
        "--replay-dir",
        type=argtypes.output_dir,
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
        type=argtypes.int_range(10, 40, "pan's -w: 2**W slots or bits"),
        default=None,
        metavar="W",
        help="pan -w: 2**W hash slots, or 2**W bits with --spin-bitstate (default 24, 32)",
    )
    spin.add_argument(
        "--spin-cores",
        type=argtypes.int_range(1, 256, "pan's -DNCORE"),
        default=1,
        metavar="N",
        help="multi-core safety run (-DNCORE=N); it stops at its first violation",
    )
    spin.add_argument(
        "--spin-max-depth",
        type=argtypes.int_range(1, None, "pan's -m"),
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
        type=argtypes.seconds,
        default=1800.0,
        metavar="SECONDS",
        help="for the whole check of one configuration (default 1800)",
    )
    spin.add_argument(
        "--spin-memory",
        type=argtypes.int_range(64, 1 << 22, "pan's -DMEMLIM in MB"),
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
        type=argtypes.seed,
        default=1,
        metavar="S",
        help="the swarm's seed (default 1): the shards of one swarm share it",
    )
    swarm.add_argument(
        "--out",
        type=argtypes.output_file,
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
        type=argtypes.output_dir,
        default=None,
        metavar="DIR",
        help="keep the Promela models, pan.c and the trails in DIR",
    )


def run(args: argparse.Namespace) -> int:
    """Explore, print the summary and the counterexamples; 1 if anything is violated."""
    if args.max_states is not None and args.max_states < 1:
        raise XbdspecError("--max-states must be at least 1")
    chosen = getattr(args, "invariants", None) or getattr(args, "properties", None)
    if chosen and (args.engine != "python" or args.target != "model"):
        raise XbdspecError(
            "--invariant and --property choose what the Python engine checks on the model; "
            "drop them for --engine spin or --target reference"
        )
    if chosen:  # the summary's "every invariant" then means every one named here
        named = [
            f"{kind} {', '.join(names)}"
            for kind, names in (("invariants", args.invariants), ("properties", args.properties))
            if names
        ]
        print(f"xbdspec explore: checking only the {'; the '.join(named)}", file=sys.stderr)
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
    with Progress("explore", unit="states", enabled=not args.quiet, json_output=args.json) as bar:
        for number, sizes in enumerate(runs, 1):
            replay_dir = args.replay_dir
            if replay_dir is not None and len(runs) > 1:
                replay_dir = replay_dir / f"run{number}"
            what = f"explore (run {number} of {len(runs)})" if len(runs) > 1 else "explore"

            def show(counters: dict[str, Any], what: str = what) -> None:
                bar.update(
                    counters["states"],
                    what=what,
                    depth=counters["depth"],
                    queue=counters["queue"],
                    per_second=counters["states_per_second"],
                )

            report = check_model(
                spec=select(build_spec(sizes), args.invariants, args.properties),
                symmetry=not args.no_symmetry,
                max_states=args.max_states,
                replay_dir=replay_dir,
                progress=show if bar.mode != "off" else None,
                progress_every=0.5,
            )
            reports.append(report)
            bar.update(report.exploration.states, what=what, depth=report.exploration.depth)
            if not args.json:
                bar.out(summary(report))
            if report.exploration.interrupted:
                break
    for prop, names in reports[0].unknown_fairness.items():
        print(
            f"xbdspec explore: warning: progress property {prop} names fairness events that are "
            f"no event of the model: {', '.join(names)}",
            file=sys.stderr,
        )
    interrupted = any(r.exploration.interrupted for r in reports)
    status = EXIT_INTERRUPTED if interrupted else (1 if any(r.violations for r in reports) else 0)
    if interrupted:
        left = len(runs) - len(reports)
        print(
            "xbdspec explore: interrupted: the figures and violations above are those found "
            "by then" + (f"; {left} configuration(s) not explored" if left else ""),
            file=sys.stderr,
        )
    data = combined_json(reports)
    if interrupted:
        data["interrupted"] = True
    _emit(args, data, status)
    return status


def _counts(data: dict[str, Any]) -> dict[str, int]:
    """The envelope's counts of an exploration's summary object."""
    counts = output.counts_of(data, "states", "transitions", "depth", "violations")
    new = [v for v in data.get("violations", []) if v.get("known") is False]
    if any("known" in v for v in data.get("violations", [])):
        counts["new_violations"] = len(new)
    return counts


def _emit(args: argparse.Namespace, data: dict[str, Any], status: int) -> None:
    """``--json``: the envelope on standard output; ``--out FILE``: the same document in
    FILE."""
    doc = output.envelope("explore", ok=status == 0, counts=_counts(data), fields=data)
    if args.out is not None:
        _write_out(args.out, output.dumps(doc))
    if args.json:
        output.emit("explore", ok=status == 0, counts=_counts(data), fields=data)


def _write_out(path: Path, text: str) -> None:
    try:
        path.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise XbdspecError(f"--out {path}: cannot write the result: {exc.strerror}") from None


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
    with Progress(
        "explore --engine spin",
        total=len(runs),
        unit="configurations",
        enabled=not args.quiet,
        json_output=args.json,
        ticking=True,
    ) as bar:
        for number, sizes in enumerate(runs, 1):
            several = len(runs) > 1
            replay_dir = args.replay_dir
            if replay_dir is not None and several:
                replay_dir = replay_dir / f"run{number}"
            run_options = options
            if spin_dir is not None and several:
                run_options = dataclasses.replace(options, work_dir=spin_dir / f"run{number}")
            part = "" if shard is None else f", shard {shard.index}/{shard.count}"

            def status(line: str, sizes: Any = sizes, part: str = part) -> None:
                bar.update(
                    what=f"spin ({sizes.commands} commands, {sizes.grants} grants{part})",
                    step=line[:60],
                )

            report = check_spin(sizes, options=run_options, replay_dir=replay_dir, status=status)
            reports.append(report)
            bar.update(number)
            if not args.json:
                bar.out(spin_summary(report))
    status_code = 1 if any(r.violations for r in reports) else 0
    if shard is not None:
        result = shard_result(reports, shard)
        if args.out is not None:  # the shard result file --merge reads
            _write_out(args.out, json.dumps(result, indent=2))
        if args.json:
            counts = {
                "states": sum(r.states for r in reports),
                "violations": sum(len(r.violations) for r in reports),
            }
            output.emit(
                "explore", ok=status_code == 0, counts=counts, fields={"shard_result": result}
            )
        return status_code
    result = reports[0].as_json() if len(reports) == 1 else combined_spin_json(reports)
    _emit(args, result, status_code)
    return status_code


def run_merge(args: argparse.Namespace) -> int:
    """``--merge A.json B.json ...``: the shards' results together; 1 if any shard
    reported a violation."""
    from .swarm import load_shard, merge_shards, merge_summary

    report = merge_shards([(str(path), load_shard(path)) for path in args.merge])
    status = 1 if report.violated else 0
    data = report.as_json()
    counts = {
        "shards": len(data["shards_present"]),
        "missing_shards": len(data["shards_missing"]),
        "violations": len(data["violations"]),
    }
    doc = output.envelope("explore", ok=status == 0, counts=counts, fields=data)
    if args.out is not None:
        _write_out(args.out, output.dumps(doc))
    if args.json:
        output.emit("explore", ok=status == 0, counts=counts, fields=data)
    else:
        print(merge_summary(report))
    return status


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
        f"checked the model with SPIN ({report.version or 'spin'}) for "
        f"{output.plain(report.spec.sizes)}",
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
    check_sizes(dataclasses.asdict(sizes), "the size options", option=True)

    bar = Progress(
        f"explore {args.target}", unit="states", enabled=not args.quiet, json_output=args.json
    )

    def show(report: Any, queue: int) -> None:
        bar.update(report.states, depth=report.depth, queue=queue)

    try:
        report = explore_reference(
            sizes,
            max_states=args.max_states or REFERENCE_MAX_STATES,
            replay_dir=args.replay_dir,
            fixes=Fixes.all() if args.target == "reference-fixed" else None,
            progress=show,
        )
    finally:
        bar.close()
    status = EXIT_INTERRUPTED if report.interrupted else (1 if report.new else 0)
    data = report.as_json()
    if not args.json:
        if report.complete:
            bound = "complete"
        elif report.interrupted:
            bound = "INTERRUPTED by Ctrl-C: the figures and divergences are those found by then"
        else:
            bound = (
                f"BOUNDED: stopped at its bound of {report.max_states:,} states "
                "(--max-states); states beyond it were not explored"
            )
        print(
            f"{report.implementation}: {report.states:,} states, {report.transitions:,} steps, "
            f"depth {report.depth}, {report.seconds:.1f} s ({bound})"
        )
        print(f"  sizes: {output.plain(report.sizes)}")
        for v in report.violations.values():
            status_text = "known finding" if v.known else "NEW"
            print(
                f"  {status_text}: {v.property} after {len(v.steps)} events: "
                + " ; ".join(s.label() for s in v.steps)
            )
            if v.replay is not None:
                print(f"    replay: {v.replay}")
    if report.interrupted:
        print("xbdspec explore: interrupted", file=sys.stderr)
    _emit(args, data, status)
    return status


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
        f"explored the model for {output.plain(report.sizes)}",
        f"  {ex.states:,} states{' (up to command permutations)' if report.symmetry else ''}, "
        f"{ex.transitions:,} transitions, depth {ex.depth}, {ex.seconds:.1f} s "
        f"({rate:,.0f} states/s of processor time), {report.bytes_per_state:.0f} bytes/state",
        f"  fingerprint collision probability at most {report.collision_probability:.1e}",
    ]
    if report.never_taken:
        lines.append(f"  transitions never taken: {', '.join(report.never_taken)}")
    if ex.interrupted:
        lines.append(
            "  INTERRUPTED by Ctrl-C: the figures and violations are those found by then; "
            "deadlocks and progress were not checked"
        )
    elif not ex.complete:
        lines.append(
            "  BOUNDED: --max-states cut the search; deadlocks and progress were not checked"
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
