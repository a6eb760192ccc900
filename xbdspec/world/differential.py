"""Differential runs at the protocol level: the same programs on several front ends.

Every front end runs each program in its own world, checked against the protocol model
as a campaign does (a violation of one is that front end's).  Then the worlds are
compared with each other, where the protocol leaves no choice:

* **the disk**: every sector whose content the program determines (written by a bio
  that completed successfully in every world and that no other write or discard
  overlapped while it was outstanding in any of them, or never written at all) holds
  the same bytes in every world;
* **the completions**: a read or write the back end performed for one front end is
  not failed by another (the same back end, the same disk: a difference is a front end
  declining I/O the other did: reported as a difference of choice, not a divergence,
  unless the bio is a read or write within what the front end said it takes).

A legal difference of choice (a flush completed without a request, a bio declined
before it was sent, a different split into requests, another order on the ring) is not
a divergence.

    python -m xbdspec.world.differential --impl linux --impl seed --impl reference \\
        --programs 200 --seed 1
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from xbdspec.errors import XbdspecError

from .backend import SECTOR, BackendConfig
from .campaign import Program, Shape, generate
from .harness import WRITES, Violation, World, run_program
from .registry import Target, load


@dataclass
class Difference:
    """What two worlds disagree on, for one program."""

    program: int
    kind: str
    detail: str
    divergence: bool


@dataclass
class DifferentialReport:
    """What a differential run compared and found.

    Attributes:
        sectors_compared: sectors whose content was compared across worlds.
        bios_compared: bios whose outcome was compared.
        violations: a front end's own protocol violation, by front end.
    """

    implementations: list[str]
    programs: int = 0
    sectors_compared: int = 0
    bios_compared: int = 0
    differences: list[Difference] = field(default_factory=list)
    violations: dict[str, list[str]] = field(default_factory=dict)

    @property
    def divergences(self) -> list[Difference]:
        return [d for d in self.differences if d.divergence]

    def as_json(self) -> dict[str, Any]:
        return {
            "implementations": self.implementations,
            "programs": self.programs,
            "sectors_compared": self.sectors_compared,
            "bios_compared": self.bios_compared,
            "divergences": [d.__dict__ for d in self.divergences],
            "differences_of_choice": len(self.differences) - len(self.divergences),
            "violations": self.violations,
        }


def _determined(worlds: Sequence[World]) -> set[int]:
    """The sectors whose final content the program determines in every world."""
    first = worlds[0]
    sectors = len(first.backend.disk) // SECTOR
    undetermined: set[int] = set()
    for world in worlds:
        for bio in world.bios.values():
            if bio.op not in (*WRITES, "discard"):
                continue
            span = range(bio.sector, min(sectors, bio.sector + bio.sectors))
            if bio.op == "discard" or world.completed.get(bio.id) != 1:
                undetermined.update(span)  # discarded, failed or never done: any content
                continue
            for other in world.bios.values():
                if (
                    other.id != bio.id
                    and other.op in (*WRITES, "discard")
                    and other.sector < bio.sector + bio.sectors
                    and bio.sector < other.sector + other.sectors
                    and world._concurrent(other.id, bio.id)
                ):
                    undetermined.update(span)
    return set(range(sectors)) - undetermined


def compare(
    number: int, names: Sequence[str], worlds: Sequence[World], report: DifferentialReport
) -> None:
    """Compare the worlds of one program."""
    sectors = _determined(worlds)
    report.sectors_compared += len(sectors)
    base = worlds[0].backend.disk
    for name, world in zip(names[1:], worlds[1:], strict=True):
        disk = world.backend.disk
        for sector in sorted(sectors):
            window = slice(sector * SECTOR, (sector + 1) * SECTOR)
            if base[window] != disk[window]:
                report.differences.append(
                    Difference(
                        number,
                        "disk",
                        f"sector {sector} differs between {names[0]} and {name} although the "
                        "program determines it",
                        True,
                    )
                )
                break
    for bio_id, bio in worlds[0].bios.items():
        outcomes = {name: w.completed.get(bio_id) for name, w in zip(names, worlds, strict=True)}
        report.bios_compared += 1
        values = {v for v in outcomes.values() if v is not None}
        if len(values) > 1:
            performed = bio.op in ("read", *WRITES)
            report.differences.append(
                Difference(
                    number,
                    "completion",
                    f"bio {bio_id} ({bio.op}): "
                    + ", ".join(f"{n} {v}" for n, v in outcomes.items()),
                    False if not performed else _declined_everywhere_else(bio_id, worlds),
                )
            )


def _declined_everywhere_else(bio_id: int, worlds: Sequence[World]) -> bool:
    """A read or write failed by a front end that sent it (the back end answered it OK
    elsewhere): a divergence; declined without a request (its choice): not."""
    for world in worlds:
        if world.completed.get(bio_id) == 0 and world.compared["bios failed without a request"]:
            return False
    return True


def run(names: Sequence[str], programs: int, seed: int, events: int = 24) -> DifferentialReport:
    """The same ``programs`` (from ``seed``) on every named front end."""
    targets: list[Target] = [load(n, {}, events) for n in names]
    report = DifferentialReport(list(names))
    shape = Shape(
        events=events,
        max_sectors=min(t.shape.max_sectors for t in targets),
        sectors=min(t.shape.sectors for t in targets),
        ops=tuple(op for op in targets[0].shape.ops if all(op in t.shape.ops for t in targets)),
        # the back end stays: once it has gone every front end's answer is its own
        # choice (campaigns check each against the protocol), nothing to compare
        gone=0.0,
    )
    config = BackendConfig(sectors=shape.sectors)
    master = random.Random(seed)
    try:
        for number in range(programs):
            rng = random.Random(master.getrandbits(64))
            makers = [
                cast(Callable[[random.Random], Any], t.maker)(rng) if t.per_program else t.maker
                for t in targets
            ]
            program: Program = generate(rng, shape)
            worlds: list[World] = []
            failed = False
            for name, maker in zip(names, makers, strict=True):
                try:
                    worlds.append(run_program(maker, program, config))  # type: ignore[arg-type]
                except Violation as v:
                    report.violations.setdefault(name, []).append(f"program {number}: {v.rule}")
                    failed = True
            report.programs += 1
            if not failed:
                compare(number, names, worlds, report)
    finally:
        for t in targets:
            t.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--impl", action="append", required=True, help="a registry front end")
    parser.add_argument("--programs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--events", type=int, default=24)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if len(args.impl) < 2 or args.programs < 1 or args.events < 1:
        print(
            "differential: give two front ends or more, and at least one program",
            file=sys.stderr,
        )
        return 2
    try:
        report = run(args.impl, args.programs, args.seed, args.events)
    except XbdspecError as exc:
        print(f"differential: error: {exc}", file=sys.stderr)
        return 2
    data = report.as_json()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(
            f"{', '.join(report.implementations)}: {report.programs} programs (seed "
            f"{args.seed}), {report.sectors_compared} sectors and {report.bios_compared} "
            f"bios compared; {len(report.divergences)} divergences, "
            f"{data['differences_of_choice']} differences of choice"
        )
        for name, items in report.violations.items():
            print(f"  {name}: {len(items)} protocol violations (first: {items[0]})")
        for d in report.divergences[:10]:
            print(f"  program {d.program}: {d.kind}: {d.detail}")
    if report.sectors_compared == 0 and report.bios_compared == 0:
        print("differential: error: nothing was compared", file=sys.stderr)
        return 2
    return 1 if report.divergences or report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
