"""``xbdspec difftest``: test an implementation against the specification.

Two contracts.  **protocol** (the default, :mod:`xbdspec.world.difftest`): the
implementation is a front end in the harness's world, checked against the protocol
model by what it does on xenstore and the ring::

    xbdspec difftest --impl tutorial --examples 1000 --seed 7
    xbdspec difftest --cmd "./my_frontend" --minutes 5

**freebsd** (the FreeBSD refinement layer): the implementation reports FreeBSD's
internal state (freeze count, command queues, bus_dma outcomes) and runs in lockstep
with the FreeBSD model; for the reference, the compiled seed and the C queue core::

    xbdspec difftest --contract freebsd --impl reference --examples 500 --seed 7 --json
    xbdspec difftest --contract freebsd --impl c-queue-core --minutes 5
    xbdspec difftest --impl reference --replay build/divergences/failed-mapping-leaks.jsonl

Under freebsd a campaign sweeps configurations by default (:mod:`.sweep`: the model's
sizes and, for the reference, the back end's ring pages, indirect segments, sector size
and bio sizes; ``--no-sweep`` or ``--sizes`` narrow it), reports the time to its first
new divergence (``--first`` stops there), counts every model transition against its
declared targets and, with ``--reference-coverage`` and coverage.py installed, the
reference's branches.  A known finding claims a divergence only by its exact signature
(:mod:`.signatures`).

A replay file names its contract in its header.  Exit status (freebsd): 0 when every
divergence is a known finding (or none), 1 when a new one was found (or, with
``--strict``, any divergence or a declared target not reached), 2 on an error;
(protocol): 0 no violation, 1 a violation, 2 an error.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xbdspec import argtypes
from xbdspec.errors import XbdspecError
from xbdspec.model.state import Sizes
from xbdspec.terminal import Progress

from .builtin import BUILTIN, resolve
from .campaign import Campaign
from .contract import Implementation
from .findings import classify, near_findings
from .harness import LockStep
from .program import PROFILES, run_program
from .reference_adapter import REFERENCE_SIZES
from .replay import read_configuration
from .sweep import Configuration, pinned, sizes_sweep


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} makes no test: give at least 1")
    return value


def _positive_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of minutes") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"{text[:40]} minutes makes no test: give a finite number above 0"
        )
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The subcommand's options."""
    parser.add_argument(
        "--contract",
        choices=("protocol", "freebsd"),
        help="protocol (default): a front end in the protocol's world; freebsd: the "
        "FreeBSD refinement layer (reports internal state; replays name their own)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--impl",
        help="protocol: tutorial, linux, reference, reference-fixed, seed, c-frontend or "
        f"package.module:attribute; freebsd: {', '.join(BUILTIN)} or package.module:factory",
    )
    which.add_argument(
        "--cmd",
        help="a program speaking the stdio protocol (version 2 under the protocol "
        'contract, version 1 under freebsd), e.g. "./impl --flag"',
    )
    parser.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="protocol: an option of the front end (e.g. broken=reuses-id for the tutorial)",
    )
    parser.add_argument(
        "--timeout",
        type=argtypes.seconds,
        default=10.0,
        help="protocol, --cmd: seconds to wait for each message of the child (10)",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--examples", type=_positive_int, help="random programs to run (default 200)")
    size.add_argument("--minutes", type=_positive_minutes, help="run for this long instead")
    parser.add_argument(
        "--seed", type=argtypes.seed, help="the campaign's seed (default: random, printed)"
    )
    parser.add_argument(
        "--length",
        type=_positive_int,
        help="events per program at most (protocol 24, freebsd 60)",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        help="freebsd: full (default), every choice the model allows; seed-safe: avoid "
        "known seed defects",
    )
    parser.add_argument(
        "--out",
        "--replay-dir",
        dest="replay_dir",
        type=argtypes.output_dir,
        default=None,
        metavar="DIR",
        help="where the shrunk failing programs (replay files) are written (default: "
        "divergences/ under the build directory: build/ of the checkout, else "
        "$XBDSPEC_BUILD_DIR or ~/.cache/xbdspec; never the current directory)",
    )
    parser.add_argument("--replay", type=Path, help="run one replay file instead of a campaign")
    parser.add_argument("--strict", action="store_true", help="freebsd: known findings fail too")
    parser.add_argument(
        "--sizes",
        choices=sorted(REFERENCE_SIZES),
        help="freebsd: pin the sizes to one variant (by default the sweep runs every one: "
        "a command shortage, a grant shortage, a full ring); the reference keeps the back-end "
        "setups that hold at those sizes",
    )
    parser.add_argument(
        "--first",
        action="store_true",
        help="freebsd: stop at the first new divergence (the report gives the time to it)",
    )
    parser.add_argument(
        "--no-sweep",
        action="store_true",
        help="freebsd: one configuration (the implementation's sizes) instead of the sweep",
    )
    parser.add_argument(
        "--reference-coverage",
        action="store_true",
        help="freebsd: measure the reference's branches with coverage.py (when installed)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


FREEBSD_ONLY = ("sizes", "profile", "strict", "first", "no_sweep", "reference_coverage")


def replay_dir_of(args: argparse.Namespace) -> Path:
    """Where the campaign writes its replay files: ``--out DIR``, else ``divergences/``
    under the build directory (:func:`xbdspec.resources.build_dir`)."""
    from xbdspec.resources import build_dir

    given: Path | None = getattr(args, "replay_dir", None)
    return given if given is not None else build_dir("divergences")


def announce_seed(args: argparse.Namespace, seed: int, more: str = "") -> None:
    """Say the campaign's seed before it runs: on standard output in the text report,
    on standard error under ``--json`` when the seed was drawn (the document carries
    it too), so a run killed outright can still be replayed."""
    line = f"xbdspec difftest: seed {seed} (replay the campaign with --seed {seed}){more}"
    if not args.json:
        print(line, flush=True)
    elif args.seed is None:
        print(line, file=sys.stderr, flush=True)


def campaign_bar(args: argparse.Namespace, examples: int | None) -> Progress:
    """The campaign's progress bar (programs run; a ``--minutes`` campaign counts up)."""
    total = examples if args.minutes is None and examples is not None else None
    return Progress("difftest", total=total, unit="programs", json_output=args.json)


def contract_of(args: argparse.Namespace) -> str:
    """The contract the arguments ask for: a replay file's own, else ``--contract``
    (protocol by default)."""
    if args.replay is not None:
        from xbdspec.world.replay import is_world_program

        own = "protocol" if is_world_program(args.replay) else "freebsd"
        if own == "freebsd" and not _is_v1_replay(args.replay):
            # neither header: the contract asked for reads it, and names what is wrong
            return args.contract or "freebsd"
        if args.contract is not None and args.contract != own:
            raise XbdspecError(
                f"{args.replay} is a replay of the {own} contract, not of {args.contract}"
            )
        return own
    return args.contract or "protocol"


def _is_v1_replay(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            head = json.loads(handle.readline(1 << 20))
    except (OSError, ValueError, RecursionError):  # ValueError: JSON, or past 4300 digits
        return False
    return isinstance(head, dict) and head.get("xbdspec") == "replay"


def run(args: argparse.Namespace) -> int:
    """Run a campaign (or a replay) under its contract and report."""
    contract = contract_of(args)
    if contract == "protocol":
        given = [
            f"--{n.replace('_', '-')}"
            for n in FREEBSD_ONLY
            if getattr(args, n, None) not in (None, False)
        ]
        if given:
            raise XbdspecError(
                f"{', '.join(given)} belong to the FreeBSD refinement layer: add --contract freebsd"
            )
        from xbdspec.world.difftest import run as run_protocol

        if args.length is None:
            args.length = 24
        return run_protocol(args)
    if args.option:
        raise XbdspecError("--option belongs to the protocol contract")
    if args.length is None:
        args.length = 60
    if args.profile is None:
        args.profile = "full"
    return run_freebsd(args)


def sweep_for(
    factory: Callable[[], Implementation], sizes: Sizes, args: argparse.Namespace
) -> list[Configuration]:
    """The configurations a campaign runs: the implementation's own sweep (its optional
    ``configurations()``) narrowed to ``--sizes``; for one without a back-end setup, the
    sweep over sizes (:func:`~.sweep.sizes_sweep`: its own, then :data:`~.sweep.SIZE_SWEEP`,
    or what its ``sweep_sizes()`` offers); one configuration with ``--no-sweep`` or, for
    the latter, ``--sizes``."""
    if getattr(args, "no_sweep", False):
        return [Configuration(args.sizes or "default", sizes)]
    sample = factory()
    try:
        offered = getattr(sample, "configurations", None)
        sweep = list(offered()) if callable(offered) else []
        offered_sizes = getattr(sample, "sweep_sizes", None)
        supported = list(offered_sizes()) if callable(offered_sizes) else None
    finally:
        sample.close()
    if not sweep:
        if args.sizes is not None:
            return [Configuration(args.sizes, sizes)]
        return sizes_sweep(sizes, supported)
    if args.sizes is not None:
        return pinned(sweep, sizes, args.sizes)
    return sweep


def run_freebsd(args: argparse.Namespace) -> int:
    """Run a campaign (or a replay) under the FreeBSD refinement layer and report."""
    factory, sizes = resolve(args.impl, args.cmd)
    if args.sizes is not None:
        sizes = REFERENCE_SIZES[args.sizes]
    if args.replay is not None:
        return _replay(args, factory)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    sweep = sweep_for(factory, sizes, args)
    campaign = Campaign(
        factory,
        sweep[0].sizes,
        PROFILES[args.profile],
        seed,
        args.length,
        replay_dir_of(args),
        configurations=sweep,
        first=getattr(args, "first", False),
        branches=getattr(args, "reference_coverage", False),
    )
    announce_seed(args, seed)
    examples = args.examples if args.examples is not None or args.minutes is not None else 200
    bar = campaign_bar(args, examples)

    said: set[str] = set()

    def show(running: Campaign) -> None:
        for key, (_, _, path, _) in running.divergences.items():
            if key not in said:  # each new kind of divergence, as it is found
                said.add(key)
                bar.write(f"xbdspec difftest: divergence {key}: replay {path}")
        bar.update(
            running.examples,
            steps=running.steps,
            divergences=len(running.divergences),
            **time_left(args.minutes, running.seconds),
        )

    stopped: BaseException | None = None
    try:
        campaign.run(examples=examples, minutes=args.minutes, progress=show)
    except (KeyboardInterrupt, XbdspecError) as exc:
        stopped = exc  # reported below, with everything found before it
    finally:
        bar.close()
    report = campaign.summary()
    return _report_freebsd(args, campaign, report, stopped)


def time_left(minutes: float | None, seconds: float) -> dict[str, str]:
    """The figure ``left`` of a ``--minutes`` campaign's bar (``m:ss``)."""
    if minutes is None:
        return {}
    left = max(0, int(minutes * 60 - seconds))
    return {"left": f"{left // 60}:{left % 60:02d}"}


def _report_freebsd(
    args: argparse.Namespace,
    campaign: Campaign,
    report: dict[str, Any],
    stopped: BaseException | None,
) -> int:
    """Print (or emit) the campaign's report, also when Ctrl-C or an error stopped it;
    the exit status."""
    from xbdspec import output
    from xbdspec.cli import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_VERDICT

    failing = (
        campaign.new_divergences
        if not args.strict
        else [d for d, *_ in campaign.divergences.values()]
    )
    missed = args.strict and not campaign.first and not report["targets"]["ok"]
    verdict = EXIT_VERDICT if failing or missed else 0
    error, kind = "", "input"
    if isinstance(stopped, KeyboardInterrupt):
        status = EXIT_INTERRUPTED
    elif stopped is not None:
        error = f"the campaign stopped after {campaign.examples} programs: {stopped}"
        kind, status = "child", verdict or EXIT_INPUT
    elif not campaign.divergences and (not campaign.steps or not campaign.compared):
        why = (
            "it ran no event"
            if not campaign.steps
            else "the implementation reported no field the model could compare"
        )
        error = (
            f"the campaign compared nothing ({why}): it cannot pass; report the "
            "observation fields (see docs/conformance.md)"
        )
        status = EXIT_INPUT
    else:
        status = verdict
    if error:
        report["error"] = output.error_field(kind, error, status)
    if args.json:
        counts = {
            "examples": campaign.examples,
            "steps": campaign.steps,
            "divergences": len(campaign.divergences),
            "new_divergences": len(campaign.new_divergences),
        }
        output.emit("difftest", ok=status == 0, counts=counts, fields=report)
    elif campaign.examples or campaign.divergences:
        _print_text(campaign, report)
        if campaign.interrupted:
            print(
                f"\nINTERRUPTED by Ctrl-C after {campaign.examples} programs: the divergences "
                f"above are those found by then; replay the campaign with --seed {campaign.seed}"
            )
    if error:
        print(f"xbdspec difftest: error: {error}", file=sys.stderr)
    elif campaign.interrupted:
        print("xbdspec difftest: interrupted", file=sys.stderr)
    return status


def _print_text(campaign: Campaign, report: dict[str, Any]) -> None:
    from xbdspec import output

    print(
        f"{report['implementation']}: {report['examples']} programs, {report['steps']} events "
        f"in {report['seconds']} s ({report['steps_per_second']} events/s), "
        f"profile {report['profile']}, {len(campaign.sweep)} configuration(s)"
    )
    varied = report["sweep"]["dimensions_varied"]
    if varied:
        print("swept: " + "; ".join(f"{k} {output.plain(v)}" for k, v in varied.items()))
    for divergence, _, path, count in campaign.divergences.values():
        print()
        print(divergence.report())
        if divergence.configuration:
            print(f"  configuration: {divergence.configuration}")
        near = near_findings(divergence, campaign.name)
        if near:
            print(
                f"  on the trigger of {', '.join(near)}, but not with its signature: "
                "a new divergence"
            )
        print(f"  seen in {count} program(s); replay: {path}")
    if not campaign.divergences:
        print("no divergence")
    first = report["first_new_divergence"]
    if first is not None:
        print(
            f"\nfirst new divergence after {first['seconds']} s, {first['events']} events "
            f"(program {first['example']}, {first['configuration']})"
        )
    targets = report["targets"]
    transitions = targets["transitions"]
    unreached = transitions["unreached"]
    print(
        f"\ntargets: {transitions['reached']}/{transitions['declared']} model transitions"
        + (f"; not reached: {', '.join(unreached)}" if unreached else "; all reached")
    )
    functions = targets["functions"]
    if functions.get("measured", True):
        missed = functions["unreached"]
        print(
            f"seed functions: {functions['reached']}/{functions['declared']} run"
            + (f"; not run: {', '.join(missed)}" if missed else "")
        )
    branches = report["reference_branches"]
    if branches.get("measured"):
        print(f"reference branches: {branches['branch_percent']}% covered")


def _replay(args: argparse.Namespace, factory: Callable[[], Implementation]) -> int:
    configuration, steps = read_configuration(args.replay)
    impl = factory()
    configure = getattr(impl, "configure", None)
    if callable(configure):
        configure(configuration.setup)
    lock = LockStep(impl, configuration.sizes)
    try:
        divergence = run_program(lock.impl, lock, steps, source=str(args.replay))
    finally:
        lock.impl.close()
    from xbdspec import output

    if divergence is None:
        result = {"replay": str(args.replay), "steps": len(steps), "divergence": None}
        if args.json:
            counts = {"steps": len(steps), "divergences": 0}
            output.emit("difftest", ok=True, counts=counts, fields=result)
        else:
            print(f"{args.replay}: {len(steps)} events, no divergence")
        return 0
    divergence.configuration = configuration.name
    finding = classify(divergence, lock.caps.name)
    status = 0 if finding is not None and not args.strict else 1
    if args.json:
        result = {
            "replay": str(args.replay),
            "steps": len(steps),
            "divergence": divergence.as_json(),
        }
        counts = {"steps": len(steps), "divergences": 1}
        output.emit("difftest", ok=status == 0, counts=counts, fields=result)
    else:
        print(divergence.report())
    return status
