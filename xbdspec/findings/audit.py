"""``xbdspec findings``: the audit of the seed's documented findings.

For every finding of the catalogue the audit replays its minimal counterexample on the
reference four ways and expects:

* **seed** (``Fixes()``): the violation shows; a program's divergence is classified as
  this finding (or, for a finding whose fix builds on others, as one of them);
* **prerequisites only** (when the finding ``requires`` other fixes): still violated, and
  classified as this finding: the finding is not one of its prerequisites in disguise;
* **fixed** (its fix and its prerequisites): clean, every event applied;
* **all fixes** (the ``reference-fixed`` profile): clean.

It also checks that the catalogue, the ``Fixes`` fields and the replays name the same
findings, and that every rejected candidate's program runs clean on the seed.  Exit
status 0 exactly when every documented finding reproduces and every fix removes it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from xbdspec.conformance.findings import FINDINGS as CLASSIFIED
from xbdspec.errors import XbdspecError
from xbdspec.reference.platform import Fixes

from .catalogue import BY_NAME, FINDINGS, REJECTED, Finding
from .replay import REJECTED_REPLAYS, REPLAYS, Outcome, kind_of, replay, run_program


@dataclass
class Verdict:
    """The audit of one finding.

    Attributes:
        finding: its name.
        outcomes: ``"seed"``, ``"prerequisites"``, ``"fixed"``, ``"all-fixes"`` -> outcome.
        problems: where it departs from what is documented (empty: as documented).
    """

    finding: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def fixes_for(finding: Finding) -> Fixes:
    """The fixes a finding's replay must run clean with: its own and its prerequisites'."""
    return Fixes.only(finding.name, *finding.requires)


def audit_finding(finding: Finding) -> Verdict:
    """Replay ``finding`` on the seed, its prerequisites, its fix and all fixes."""
    verdict = Verdict(finding.name)
    if kind_of(finding.name) is None:
        verdict.problems.append("no replay (no program, no scenario)")
        return verdict
    seed = verdict.outcomes["seed"] = replay(finding.name, Fixes())
    if seed.clean:
        verdict.problems.append("does not reproduce on the seed's behaviour")
    elif seed.kind == "scenario":
        if not finding.shows:
            verdict.problems.append("a scenario finding must say what its violation shows")
        elif finding.shows not in (seed.violation or ""):
            verdict.problems.append(
                f"the seed's violation is not the documented one ({finding.shows!r}): "
                f"{_first_line(seed.violation)}"
            )
    elif seed.kind == "program":
        expected = {finding.name, *finding.requires}
        if seed.classified_as not in expected:
            verdict.problems.append(
                f"the seed's divergence is classified as {seed.classified_as or 'new'}, "
                f"not as {' or '.join(sorted(expected))}"
            )
    if finding.requires:
        pre = verdict.outcomes["prerequisites"] = replay(
            finding.name, Fixes.only(*finding.requires)
        )
        if pre.clean:
            verdict.problems.append(
                f"runs clean with its prerequisites' fixes alone ({', '.join(finding.requires)})"
            )
        elif pre.kind == "program" and pre.classified_as != finding.name:
            verdict.problems.append(
                f"with its prerequisites fixed, classified as {pre.classified_as or 'new'}"
            )
    fixed = verdict.outcomes["fixed"] = replay(finding.name, fixes_for(finding))
    if not fixed.clean:
        verdict.problems.append(f"still violated with its fix: {_first_line(fixed.violation)}")
    every = verdict.outcomes["all-fixes"] = replay(finding.name, Fixes.all())
    if not every.clean:
        verdict.problems.append(f"violated with every fix on: {_first_line(every.violation)}")
    return verdict


def _first_line(text: str | None) -> str:
    return (text or "").splitlines()[0] if text else ""


def consistency_problems() -> list[str]:
    """Where the catalogue, the fixes, the replays and the classifier disagree."""
    problems: list[str] = []
    names = [f.name for f in FINDINGS]
    if len(set(names)) != len(names):
        problems.append("the catalogue names a finding twice")
    missing_fix = sorted(set(names) - set(Fixes.names()))
    extra_fix = sorted(set(Fixes.names()) - set(names))
    problems += [f"finding {n} has no Fixes field" for n in missing_fix]
    problems += [f"Fixes.{n.replace('-', '_')} fixes no catalogued finding" for n in extra_fix]
    for path in sorted(REPLAYS.glob("*.jsonl")):
        if path.stem not in BY_NAME:
            problems.append(f"replay {path.name} is no catalogued finding's")
    for classified in CLASSIFIED:
        if classified.name not in BY_NAME:
            problems.append(f"the conformance classifier names {classified.name}, not catalogued")
    for finding in FINDINGS:
        problems += [
            f"{finding.name} requires unknown finding {r}"
            for r in finding.requires
            if r not in BY_NAME
        ]
    from xbdspec.proofs.arithmetic import ARITHMETIC_OBLIGATIONS

    for obligation in ARITHMETIC_OBLIGATIONS:
        if obligation.fixes is not None and obligation.fixes not in BY_NAME:
            problems.append(
                f"proof {obligation.name} restates the fix of {obligation.fixes}, not catalogued"
            )
        if obligation.finding is None:
            continue
        documented = BY_NAME.get(obligation.finding)
        if documented is None:
            problems.append(
                f"proof {obligation.name} documents {obligation.finding}, not catalogued"
            )
        elif documented.proof != obligation.name:
            problems.append(f"{documented.name} does not name its proof {obligation.name}")
    rejected = {r.name for r in REJECTED}
    for path in sorted(REJECTED_REPLAYS.glob("*.jsonl")):
        if path.stem not in rejected:
            problems.append(f"rejected replay {path.name} is no rejected candidate's")
            continue
        outcome = run_program(path.stem, path, Fixes())
        if not outcome.clean:
            problems.append(
                f"rejected candidate {path.stem} diverges on the seed: "
                f"{_first_line(outcome.violation)}"
            )
    return problems


@dataclass
class AuditReport:
    """The whole audit."""

    verdicts: list[Verdict]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems and all(v.ok for v in self.verdicts)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "findings": len(self.verdicts),
            "reproduced": sum(1 for v in self.verdicts if not _clean(v, "seed")),
            "fixed": sum(1 for v in self.verdicts if _clean(v, "fixed")),
            "rejected_candidates": len(REJECTED),
            "problems": self.problems,
            "verdicts": [
                {
                    "finding": v.finding,
                    "severity": BY_NAME[v.finding].severity.value,
                    "ok": v.ok,
                    "problems": v.problems,
                    "replay": v.outcomes["seed"].kind if "seed" in v.outcomes else None,
                    "events": len(v.outcomes["seed"].steps) if "seed" in v.outcomes else 0,
                    "seed": _first_line(v.outcomes["seed"].violation)
                    if "seed" in v.outcomes
                    else None,
                }
                for v in self.verdicts
            ],
        }


def _linux_section(names: Iterable[str] | None) -> dict[str, Any] | None:
    """The Linux findings' audit (their replays on the compiled driver), or None when
    only FreeBSD findings were named; ``skipped`` says why when Linux's source is not
    there (``make linux-frontend``)."""
    from xbdspec.linux import source

    from . import linux

    chosen = [f for f in linux.FINDINGS if names is None or f.name in set(names)]
    if not chosen:
        return None
    section: dict[str, Any] = {
        "version": linux.VERSION,
        "source": linux.SOURCE,
        "skipped": "",
        "ok": True,
        "findings": [],
    }
    if not source.available():
        section["skipped"] = "Linux's source is not installed: run `make linux-frontend`"
        section["ok"] = not os.environ.get("CI")
        return section
    for finding in chosen:
        outcome = linux.audit_finding(finding)
        section["findings"].append(
            {
                "finding": finding.name,
                "severity": finding.severity.value,
                "ok": outcome.ok,
                "problems": outcome.problems,
                "rule": outcome.rule,
            }
        )
    section["ok"] = all(f["ok"] for f in section["findings"])
    return section


def _clean(verdict: Verdict, key: str) -> bool:
    outcome = verdict.outcomes.get(key)
    return outcome is not None and outcome.clean


def audit(names: Iterable[str] | None = None) -> AuditReport:
    """Audit the named findings (all by default)."""
    chosen = list(FINDINGS) if names is None else [_lookup(n) for n in names]
    return AuditReport([audit_finding(f) for f in chosen], consistency_problems())


def _lookup(name: str) -> Finding:
    if name not in BY_NAME:
        from xbdspec.resources import doc

        known = ", ".join(sorted(BY_NAME))
        raise XbdspecError(
            f"no finding is named {name!r}; the findings are {known} ({doc('findings/index.md')})"
        )
    return BY_NAME[name]


def show(name: str) -> str:
    """A finding's counterexample and what each replay did, for a reader."""
    finding = _lookup(name)
    verdict = audit_finding(finding)
    lines = [f"{finding.name}: {finding.title} ({finding.severity.value})"]
    seed = verdict.outcomes.get("seed")
    if seed is not None:
        lines.append(f"counterexample ({seed.kind}, {len(seed.steps)} events):")
        lines += [f"  {i:3}. {s}" for i, s in enumerate(seed.steps, 1)]
    for key, outcome in verdict.outcomes.items():
        fixes = ", ".join(outcome.fixes) if len(outcome.fixes) < 4 else "all"
        state = "clean" if outcome.clean else "violated"
        lines.append(f"{key} (fixes: {fixes or 'none'}): {state}")
        if outcome.violation:
            lines += [f"    {line}" for line in outcome.violation.splitlines()]
    lines.append("as documented" if verdict.ok else "PROBLEMS: " + "; ".join(verdict.problems))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``xbdspec findings``."""
    parser.add_argument(
        "names", nargs="*", metavar="FINDING", help="audit only these findings (default: all)"
    )
    parser.add_argument("--show", metavar="FINDING", help="print one finding's replays in full")
    parser.add_argument("--json", action="store_true", help="print the audit as one JSON object")


def run(args: argparse.Namespace) -> int:
    """Audit; 0 when exactly the documented findings reproduce and every fix removes its."""
    from xbdspec import output

    if args.show:
        text = show(args.show)
        code = 0 if text.endswith("as documented") else 1
        if args.json:
            output.emit(
                "findings",
                ok=code == 0,
                counts={"findings": 1},
                fields={"show": args.show, "text": text.splitlines()},
            )
        else:
            print(text)
        return code
    from . import linux as linux_findings

    names = args.names or None
    freebsd = None if names is None else [n for n in names if n not in linux_findings.BY_NAME]
    report = audit(freebsd) if freebsd is None or freebsd else AuditReport([], [])
    linux = _linux_section(
        None if names is None else [n for n in names if n in linux_findings.BY_NAME]
    )
    if args.json:
        data = report.as_json()
        data["linux"] = linux
        ok = report.ok and (linux is None or linux["ok"])
        data["ok"] = ok
        counts = output.counts_of(
            data, "findings", "reproduced", "fixed", "rejected_candidates", "problems"
        )
        if linux is not None:
            counts["linux_findings"] = len(linux["findings"])
            counts["linux_reproduced"] = sum(1 for f in linux["findings"] if f["ok"])
        output.emit("findings", ok=ok, counts=counts, fields=data)
        return 0 if ok else 1
    width = max(
        [len(v.finding) for v in report.verdicts]
        + [len(f["finding"]) for f in (linux or {}).get("findings", [])]
        + [10]
    )
    for v in report.verdicts:
        severity = BY_NAME[v.finding].severity.value
        status = "as documented" if v.ok else "PROBLEM: " + "; ".join(v.problems)
        print(f"{v.finding:{width}}  {severity:22}  {status}")
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    if linux is not None:
        print(f"\n{linux['version']}: {linux['source']}")
        if linux["skipped"]:
            print(f"  skipped: {linux['skipped']}")
        for item in linux["findings"]:
            status = "as documented" if item["ok"] else "PROBLEM: " + "; ".join(item["problems"])
            print(f"{item['finding']:{width}}  {item['severity']:22}  {status}")
    data = report.as_json()
    ok = report.ok and (linux is None or linux["ok"])
    linux_line = (
        ""
        if linux is None or linux["skipped"]
        else f"; Linux: {sum(f['ok'] for f in linux['findings'])} of "
        f"{len(linux['findings'])} reproduce with a clean control"
    )
    print(
        f"\n{data['findings']} findings: {data['reproduced']} reproduce on the seed, "
        f"{data['fixed']} clean with their fix; {data['rejected_candidates']} rejected "
        f"candidates{linux_line}; {'ok' if ok else 'NOT as documented'}"
    )
    return 0 if ok else 1
