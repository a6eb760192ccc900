"""A random campaign of harness programs against one front end.

From a seed, :func:`generate` writes programs of harness events: the start-up (attach,
the back end's probe, settle), then random reads, writes and flushes of random sectors
and lengths, serves in ring or reverse order, interrupts, watch deliveries and settles,
and at the end a settle (so that every bio completes) and, now and then, a detach.
:func:`campaign` runs them (:func:`~xbdspec.world.harness.run_program`, the protocol
model checking every step) and reports the programs run, the I/Os completed, the
protocol steps taken per rule (the coverage, every queue's checker counted) and every
violation with its shrunk replay.

``python -m xbdspec.world.campaign --frontend linux --programs 2000`` runs one from the
command line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xbdspec.errors import XbdspecError
from xbdspec.traces.protocol import RING_STEPS

from .backend import SECTOR, BackendConfig
from .harness import GONE, HOSTILE, Frontend, FrontendEnv, Violation, run_program, shrink

Program = list[tuple[str, Mapping[str, Any]]]
MakeFrontend = Callable[[FrontendEnv], Frontend]


@dataclass(frozen=True)
class Shape:
    """What a campaign's programs look like.

    Attributes:
        events: random events per program (after the start-up), at most.
        max_sectors: the longest bio, in sectors (a front end that does not split bios
            needs it within what one request carries).
        sectors: the disk's size (the back end's ``sectors``).
        detach: the chance that a program ends with a detach.
        ops: the bio operations the front end takes.
    """

    events: int = 24
    max_sectors: int = 8
    sectors: int = 256
    detach: float = 0.2
    ops: tuple[str, ...] = ("read", "write", "flush")
    #: the chance that a program has a resume (save and restore, or migration) among
    #: its events: only for a front end with a ``resume`` entry point
    resume: float = 0.0
    #: the chance that a program has the back end misbehave once (a hostile response:
    #: :data:`~xbdspec.world.harness.HOSTILE`), after which only safety is checked
    hostile: float = 0.0
    #: the chance that a program has the back end's end go away once, at a random
    #: point after any resume, I/O going on after it (:data:`~xbdspec.world.harness.GONE`:
    #: Closed directly, its directory removed, or the tool stack's forced removal)
    gone: float = 0.1


START: Program = [("attach", {}), ("backend_probe", {}), ("settle", {})]


def generate(rng: random.Random, shape: Shape) -> Program:
    """One random program."""
    program: Program = list(START)
    next_id = 1
    for _ in range(rng.randint(1, shape.events)):
        roll = rng.random()
        if roll < 0.03:
            # a burst: more bios at once than a one-page ring holds, now and then
            count = rng.randint(2, 48)
            op = "write" if "read" not in shape.ops or rng.random() < 0.5 else "read"
            program.append(("submit_many", {"count": count, "op": op, "first_id": next_id}))
            next_id += count
        elif roll < 0.45:
            kinds = ("read", "write", "write", "flush", "fua", "discard")
            op = rng.choice([o for o in kinds if o in shape.ops])
            params: dict[str, Any] = {"id": next_id, "op": op}
            next_id += 1
            if op != "flush":
                sectors = rng.randint(1, shape.max_sectors)
                params["sector"] = rng.randrange(0, shape.sectors - sectors + 1)
                params["sectors"] = sectors
                if op in ("write", "fua"):
                    params["data"] = rng.randbytes(sectors * SECTOR).hex()
            program.append(("submit", params))
        elif roll < 0.65:
            program.append(("serve", {"reverse": rng.random() < 0.5}))
        elif roll < 0.8:
            program.append(("interrupt", {}))
        elif roll < 0.88:
            program.append((rng.choice(("deliver_front_watch", "deliver_back_watch")), {}))
        else:
            program.append(("settle", {}))
    if shape.hostile and rng.random() < shape.hostile:
        kind = rng.choice(HOSTILE)
        program.insert(rng.randint(len(START), len(program)), ("backend_hostile", {"kind": kind}))
    resumed = len(START)
    if shape.resume and rng.random() < shape.resume:
        resumed = rng.randint(len(START), len(program))
        program.insert(resumed, ("resume", {}))
        resumed += 1
    gone = bool(shape.gone) and rng.random() < shape.gone
    if gone:
        # after the resume (a restore recreates what the tool stack removed), I/O after it
        program.insert(rng.randint(resumed, len(program)), (rng.choice(GONE), {}))
    program.append(("settle", {"rounds": 64}))
    if not gone and rng.random() < shape.detach:
        # (a detach writes the back end's Closing: not to one that is gone)
        program += [("detach", {}), ("settle", {})]
    return program


@dataclass
class Finding:
    """A violation: the program's number, the rule, the event, and the shrunk replay."""

    program: int
    event: int
    rule: str
    replay: Program
    #: the front end's own parameters, when the campaign drew them for the program
    options: dict[str, Any] = field(default_factory=dict)
    #: how many programs showed this violation (the same rule, numbers aside)
    seen: int = 1
    #: the back end the program ran against, when the campaign drew it for the program
    config: BackendConfig | None = None
    #: whether the program shows it again on a fresh front end (False: it depends on the
    #: programs before it, e.g. a child over stdio that fails on its third reset)
    alone: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "event": self.event,
            "rule": self.rule,
            "options": self.options,
            "seen": self.seen,
            "alone": self.alone,
            "replay": [[n, dict(p)] for n, p in self.replay],
        }


@dataclass
class CampaignReport:
    """What a campaign found.

    Attributes:
        coverage: protocol step name -> times taken (all queues).
    """

    programs: int = 0
    #: reads and writes completed successfully (the data checked)
    ios: int = 0
    events: int = 0
    coverage: Counter[str] = field(default_factory=Counter)
    #: observation kind -> how many the harness compared with the protocol model
    compared: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    #: Ctrl-C stopped the campaign (what it had found by then is the report)
    interrupted: bool = False
    #: what stopped the campaign early (a front end that could not be made, say); the
    #: findings before it are kept
    error: str = ""

    def render(self) -> str:
        lines = [
            f"{self.programs} programs, {self.events} events, {self.ios} I/Os completed, "
            f"{len(self.findings)} violations, {self.seconds:.1f} s",
            "protocol steps per rule:",
        ]
        lines += [f"  {name}: {count}" for name, count in sorted(self.coverage.items())]
        for f in self.findings[:10]:
            lines.append(f"violation in program {f.program}, event {f.event}: {f.rule}")
            lines.append("  replay: " + json.dumps([[n, dict(p)] for n, p in f.replay]))
        return "\n".join(lines)


def campaign(
    make_frontend: MakeFrontend | Callable[[random.Random], MakeFrontend],
    seed: int,
    programs: int,
    shape: Shape | None = None,
    config: BackendConfig | None = None,
    per_program: bool = False,
    shrink_findings: int = 20,
    minutes: float | None = None,
    on_finding: Callable[[Finding], None] | None = None,
    vary: Callable[[random.Random], BackendConfig] | None = None,
    progress: Callable[[CampaignReport], None] | None = None,
    partial: bool = False,
) -> CampaignReport:
    """Run ``programs`` random programs from ``seed``.

    ``make_frontend`` makes the front end of each program; with ``per_program`` it is
    called first with the program's random generator (to pick module parameters, the
    campaign's dimensions) and returns the maker.  A violation is reported once per
    signature (its rule, numbers aside: :func:`signature`), counted in its ``seen``;
    the first ``shrink_findings`` signatures are shrunk to a replay (``on_finding`` sees
    each as it is found).  With ``minutes``, the campaign also stops when that time is
    up.  ``progress`` sees the report after every program.

    With ``partial`` nothing found is lost when the campaign stops early: on Ctrl-C it
    returns what it has (``interrupted``; a finding being shrunk keeps its unshrunk
    program), and an error outside a program (``XbdspecError``) ends it with ``error``
    set; without, both go on to the caller as before."""
    shape = shape or Shape()
    config = config or BackendConfig(sectors=shape.sectors)
    report = CampaignReport()
    start = time.monotonic()
    master = random.Random(seed)
    by_signature: dict[str, Finding] = {}
    deadline = None if minutes is None else start + minutes * 60
    try:
        for number in range(programs):
            if progress is not None and number:
                report.seconds = time.monotonic() - start
                progress(report)
            if deadline is not None and time.monotonic() >= deadline:
                break
            rng = random.Random(master.getrandbits(64))
            maker: MakeFrontend = make_frontend(rng) if per_program else make_frontend  # type: ignore[arg-type,assignment]
            program_config = vary(rng) if vary is not None else config
            program = generate(rng, shape)
            report.programs += 1
            report.events += len(program)
            try:
                world = run_program(maker, program, program_config)
            except Violation as v:
                known = by_signature.get(signature(v.rule))
                if known is not None:
                    known.seen += 1
                    continue
                replay = program
                alone = True
                stop = False
                if len(report.findings) < shrink_findings:
                    try:
                        replay = shrink(maker, program, program_config)
                    except XbdspecError:
                        # the program does not show it again on a fresh front end: the
                        # failure depends on what ran before (a child's history)
                        alone = False
                    except KeyboardInterrupt:
                        stop = True  # kept unshrunk: the whole program shows it
                options = dict(getattr(maker, "options", {}))
                finding = Finding(
                    number, v.event, v.rule, replay, options, config=program_config, alone=alone
                )
                by_signature[signature(v.rule)] = finding
                report.findings.append(finding)
                if on_finding is not None:
                    on_finding(finding)
                if stop:
                    raise KeyboardInterrupt from None
                continue
            except XbdspecError as exc:  # the harness refused the program
                options = dict(getattr(maker, "options", {}))
                report.findings.append(
                    Finding(number, -1, f"error: {exc}", program, options, config=program_config)
                )
                continue
            report.compared.update(world.compared)
            report.ios += sum(
                1 for b in world.bios.values() if b.op != "flush" and world.completed.get(b.id) == 1
            )
            # the handshake once (every queue's checker sees it), the ring's steps per queue
            for view in world.queues:
                names = (s.split("(", 1)[0] for s in view.checker.report.steps)
                report.coverage.update(n for n in names if view.queue == 0 or n in RING_STEPS)
    except KeyboardInterrupt:
        report.interrupted = True
        if not partial:
            raise
    except XbdspecError as exc:  # outside a program: making the front end, say
        report.error = str(exc)
        if not partial:
            raise
    report.seconds = time.monotonic() - start
    return report


def signature(rule: str) -> str:
    """A violation's signature: its rule with the numbers left out (ids, events and
    grant references differ from program to program)."""
    return "".join(ch for ch in rule if not ch.isdigit())


def linux_dimensions(
    queues: tuple[int, ...] = (1, 4),
    orders: tuple[int, ...] = (0, 4),
    indirect: tuple[int, ...] = (0, 32),
    persistent: tuple[int, ...] = (0, 1),
) -> Callable[[random.Random], MakeFrontend]:
    """The Linux driver with its module parameters drawn per program."""
    from xbdspec.linux.adapter import make

    def pick(rng: random.Random) -> MakeFrontend:
        params = {
            "max_queues": rng.choice(queues),
            "max_ring_page_order": rng.choice(orders),
            "max_indirect_segments": rng.choice(indirect),
            "feature_persistent": rng.choice(persistent),
        }
        maker: MakeFrontend = make(params)
        return maker

    return pick


def load_tutorial() -> Any:
    """The tutorial front end, ``examples/linux_style_frontend.py`` (installed as the
    data package ``xbdspec.examples``), loaded from its file as a user's own module
    would be."""
    import importlib.util

    from xbdspec.resources import data_dir

    path = data_dir("examples") / "linux_style_frontend.py"
    spec = importlib.util.spec_from_file_location("linux_style_frontend", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frontend", choices=("linux", "tutorial"), default="linux")
    parser.add_argument("--programs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--events", type=int, default=24)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.frontend == "linux":
        shape = Shape(events=args.events, max_sectors=64, sectors=2048)
        config = BackendConfig(
            sectors=shape.sectors, max_ring_page_order=4, max_queues=4, max_indirect_segments=32
        )
        # without indirect descriptors a request carries 11 pages: bios up to 64 sectors
        # (8 pages) fit either way
        report = campaign(linux_dimensions(), args.seed, args.programs, shape, config, True)
    else:
        module = load_tutorial()
        shape = Shape(events=args.events)
        report = campaign(module.LinuxStyleFrontend, args.seed, args.programs, shape)
    if args.json:
        print(
            json.dumps(
                {
                    "programs": report.programs,
                    "ios": report.ios,
                    "events": report.events,
                    "coverage": dict(report.coverage),
                    "findings": [f.as_json() for f in report.findings],
                }
            )
        )
    else:
        print(report.render())
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
