"""``xbdspec difftest`` under the protocol contract (the default).

    xbdspec difftest --impl tutorial --examples 1000 --seed 7
    xbdspec difftest --impl tutorial --option broken=reuses-id --examples 50
    xbdspec difftest --cmd "./my_frontend" --minutes 5
    xbdspec difftest --replay build/divergences/request-id-is-reused-p3.jsonl

The front end runs in the harness's world (:mod:`xbdspec.world`); the protocol model
checks every xenstore commit, every request read from the ring, every response taken,
every completion and its data, every grant ended.  The report says how many of each
were compared and which protocol rules the campaign reached; a campaign that compared no
I/O cannot pass (exit 2).  Every failure of the implementation (a protocol violation, a
crash, a hang, a malformed message, an exception) is shrunk to a shortest program and
written as a replay file, with the protocol trace of its run beside it.

Exit status: 0 no violation (or only documented findings, each claimed by its exact
signature: ``docs/findings/linux.md``), 1 a new violation (any, with ``--strict``), 2 an
error (an argument, a front end that cannot run, a campaign that compared nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from xbdspec.model.protocol import ProtocolSizes, build_protocol_spec

from xbdspec.errors import XbdspecError

from . import replay as replay_file
from .campaign import CampaignReport, Finding, campaign
from .harness import Violation, World, run_program
from .registry import Target, load

#: What the report counts as I/O compared: without any, the campaign tested nothing.
ESSENTIAL = ("requests read from the ring", "completions")


def untested(report: CampaignReport) -> list[str]:
    """What of :data:`ESSENTIAL` a campaign with no finding never compared (empty: it
    tested I/O, or it found something); such a campaign cannot pass."""
    if report.findings:
        return []
    return [k for k in ESSENTIAL if not report.compared.get(k)]


def _options(pairs: list[str] | None) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise XbdspecError(f"--option {pair[:60]!r}: give KEY=VALUE")
        options[key] = value
    return options


def target_of(args: argparse.Namespace, events: int, header_impl: str = "") -> Target:
    """The front end the arguments name (``--cmd``, ``--impl``, or a replay's own)."""
    options = _options(getattr(args, "option", None))
    if args.cmd is not None:
        from .stdio import stdio_target

        return stdio_target(args.cmd, options, events, timeout=args.timeout)
    name = args.impl or header_impl
    if not name:
        raise XbdspecError("name the front end: --impl NAME or --cmd COMMAND")
    return load(name, options, events)


def rules() -> list[str]:
    """Every rule (transition) of the protocol model."""
    spec = build_protocol_spec(ProtocolSizes())
    return [t.name for t in spec.transitions]


def summary(target: Target, seed: int, report: CampaignReport) -> dict[str, Any]:
    """The campaign's report as JSON."""
    never = [r for r in rules() if not report.coverage.get(r)]
    return {
        "contract": "protocol",
        "implementation": target.name,
        "options": target.options,
        "dimensions": list(target.dimensions),
        "seed": seed,
        "programs": report.programs,
        "events": report.events,
        "ios": report.ios,
        "compared": dict(sorted(report.compared.items())),
        "reached": {"rules": dict(sorted(report.coverage.items())), "never": never},
        "violations": [
            {
                **f.as_json(),
                "replay_file": getattr(f, "path", None),
                "known": _known(target, f),
            }
            for f in report.findings
        ],
        "seconds": round(report.seconds, 2),
        "events_per_second": round(report.events / report.seconds) if report.seconds else 0,
    }


def _known(target: Target, finding: Finding) -> str | None:
    if target.known is None:
        return None
    return target.known(finding.rule, finding.config or target.config)


def render(result: dict[str, Any]) -> str:
    """The report as text."""
    lines = [
        f"{result['implementation']}: {result['programs']} programs, {result['events']} "
        f"events, {result['ios']} I/Os completed in {result['seconds']} s "
        f"({result['events_per_second']} events/s)",
        "programs vary: " + ("; ".join(result["dimensions"]) or "nothing (one configuration)"),
        "compared with the protocol model: "
        + ", ".join(f"{n} {k}" for k, n in result["compared"].items()),
        f"rules reached: {len(result['reached']['rules'])} of "
        f"{len(result['reached']['rules']) + len(result['reached']['never'])}"
        + (
            f"; never: {', '.join(result['reached']['never'])}"
            if result["reached"]["never"]
            else ""
        ),
    ]
    if not result["violations"]:
        lines.append("no violation")
    for v in result["violations"][:20]:
        lines.append("")
        lines.append(
            f"violation in program {v['program']}, event {v['event']}: {v['rule']}"
            + (f" (and in {v['seen'] - 1} more programs)" if v["seen"] > 1 else "")
        )
        if v["known"]:
            lines.append(f"  a documented finding: {v['known']}")
        if not v["alone"]:
            lines.append(
                "  the program does not show it again on a fresh front end: it depends on the "
                "programs before it (replay the campaign with its seed)"
            )
        lines.append(f"  replay ({len(v['replay'])} events): {v['replay_file']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run a campaign, or a replay, under the protocol contract.

    What was found is never lost: on Ctrl-C, or an error after the campaign started,
    the report of what ran (its violations, their replay files, the seed) is printed
    (and with ``--json`` is the envelope) before the exit status 130 or the error's."""
    from xbdspec import output
    from xbdspec.cli import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_VERDICT
    from xbdspec.conformance.cli import announce_seed, campaign_bar, replay_dir_of, time_left

    if args.replay is not None:
        return _replay(args)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    target = target_of(args, args.length)
    directory: Path = replay_dir_of(args)
    examples = (
        args.examples
        if args.examples is not None
        else (1 << 62 if args.minutes is not None else 200)
    )
    announce_seed(args, seed, f"; {target.name} under the protocol contract")
    bar = campaign_bar(args, examples)
    try:

        def keep(finding: Finding) -> None:
            path = directory / f"{replay_file.slug(finding.rule, finding.program)}.jsonl"
            world = _world_of(target, finding)
            replay_file.write(
                path,
                replay_file.Replay(
                    target.name if args.cmd is None else args.cmd,
                    {**target.options, **{k: str(v) for k, v in finding.options.items()}},
                    finding.config or target.config,
                    finding.replay,
                    finding.rule,
                    finding.event,
                ),
                world,
            )
            finding.path = str(path)  # type: ignore[attr-defined]
            bar.write(f"xbdspec difftest: violation {finding.rule}: replay {path}")

        def show(report: CampaignReport) -> None:
            bar.update(
                report.programs,
                events=report.events,
                violations=len(report.findings),
                **time_left(args.minutes, report.seconds),
            )

        report = campaign(
            target.maker,
            seed,
            examples,
            target.shape,
            target.config,
            per_program=target.per_program,
            minutes=args.minutes,
            on_finding=keep,
            vary=target.vary,
            progress=show,
            partial=True,
        )
    finally:
        bar.close()
        target.close()
    result = summary(target, seed, report)
    new = [v for v in result["violations"] if not v["known"]]
    counts = {
        "programs": report.programs,
        "events": report.events,
        "ios": report.ios,
        "violations": len(result["violations"]),
        "new_violations": len(new),
    }
    verdict = EXIT_VERDICT if new or (args.strict and result["violations"]) else 0
    error = ""
    if report.interrupted:
        status = EXIT_INTERRUPTED
        result["interrupted"] = True
    elif report.error:
        error = f"the campaign stopped after {report.programs} programs: {report.error}"
        status = verdict or EXIT_INPUT
    elif missing := untested(report):
        error = (
            f"the campaign compared no {' and no '.join(missing)} "
            f"in {report.programs} programs: it tested no I/O and cannot pass"
        )
        status = EXIT_INPUT
    else:
        status = verdict
    if error:
        result["error"] = output.error_field("child" if report.error else "input", error, status)
    if args.json:
        output.emit("difftest", ok=status == 0, counts=counts, fields=result)
    else:
        print(render(result))
        if report.interrupted:
            print(
                f"\nINTERRUPTED by Ctrl-C after {report.programs} programs: the violations "
                f"above are those found by then; replay the campaign with --seed {seed}"
            )
    if error:
        print(f"xbdspec difftest: error: {error}", file=sys.stderr)
    elif report.interrupted:
        print("xbdspec difftest: interrupted", file=sys.stderr)
    return status


def _world_of(target: Target, finding: Finding) -> World | None:
    """The world of a finding's replay run (for its protocol trace)."""
    maker = target.maker
    if target.per_program and target.remake is not None:
        maker = target.remake(finding.options)
    world: list[World] = []
    with contextlib.suppress(XbdspecError):
        config = finding.config or target.config
        run_program(maker, finding.replay, config, keep=world)  # type: ignore[arg-type]
    return world[0] if world else None


def _replay(args: argparse.Namespace) -> int:
    recorded = replay_file.read(args.replay)
    namespace = argparse.Namespace(**vars(args))
    if args.impl is None and args.cmd is None:
        # the replay's own front end, with the options it was recorded with
        if recorded.implementation.split(" ", 1)[0] in _registry_names():
            namespace.impl = recorded.implementation.split(" ", 1)[0]
        namespace.option = [f"{k}={v}" for k, v in recorded.options.items()]
    target = target_of(namespace, 24)
    try:
        world: list[World] = []
        violation: Violation | None = None
        maker = target.maker
        if target.per_program and target.remake is not None:
            # a target that draws a front end per program: the one the replay recorded
            try:
                maker = target.remake(recorded.options)
            except (ValueError, TypeError) as exc:  # the options are the file's: input
                raise XbdspecError(f"{args.replay}: the replay's options: {exc}") from None
        try:
            run_program(maker, recorded.program, recorded.config, keep=world)  # type: ignore[arg-type]
        except Violation as v:
            violation = v
    finally:
        target.close()
    result: dict[str, Any] = {
        "replay": str(args.replay),
        "events": len(recorded.program),
        "recorded_rule": recorded.rule,
        "violation": None
        if violation is None
        else {"event": violation.event, "rule": violation.rule},
        "compared": dict(sorted(Counter(world[0].compared).items())) if world else {},
    }
    status = 0 if violation is None else 1
    if args.json:
        from xbdspec import output

        counts = {"events": len(recorded.program), "violations": int(violation is not None)}
        output.emit("difftest", ok=status == 0, counts=counts, fields=result)
    elif violation is None:
        print(f"{args.replay}: {len(recorded.program)} events, no violation")
    else:
        print(f"{args.replay}: violation at event {violation.event}: {violation.rule}")
    return status


def _registry_names() -> set[str]:
    from .registry import ENTRIES

    return set(ENTRIES)
