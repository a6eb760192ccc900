"""``xbdspec verify`` (``make verify``): everything the project can check, with a summary.

Each stage is a command of this project run in its own process, so one stage's
failure cannot hide another's; the summary gives each stage's verdict, its key
figures and its time, and the exit status is non-zero when any stage fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Stage:
    """One check ``make verify`` runs.

    Attributes:
        name: how the summary calls it.
        argv: the command (``xbdspec`` subcommands run through this interpreter).
        summarise: turns the command's standard output into one line of figures.
    """

    name: str
    argv: list[str]
    summarise: Callable[[str], str]
    skipped: str = ""


def _xbdspec(*args: str) -> list[str]:
    return [sys.executable, "-m", "xbdspec", *args]


def _json(text: str) -> Any:
    start = text.find("{")
    return json.loads(text[start:]) if start >= 0 else {}


def _prove_summary(out: str) -> str:
    data = _json(out)
    items = data.get("obligations", [])
    counts = {
        r: sum(1 for o in items if o["result"] == r) for r in ("proved", "refuted", "unknown")
    }
    known = sum(1 for o in items if o.get("finding") and o["result"] == "refuted")
    return (
        f"{len(items)} obligations: {counts['proved']} proved, {counts['refuted']} refuted "
        f"({known} known findings), {counts['unknown']} unknown; {data.get('seconds', 0):.1f} s"
    )


def _simulate_summary(out: str) -> str:
    d = _json(out)
    return (
        f"{d.get('bios_completed')}/{d.get('bios_submitted')} bios completed, "
        f"{d.get('bios_lost')} lost, {d.get('double_completions')} twice, "
        f"{d.get('data_mismatches')} wrong data (seed {d.get('seed')})"
    )


def _explore_summary(out: str) -> str:
    d = _json(out)
    return (
        f"{d.get('states')} states, {d.get('transitions')} transitions, depth {d.get('depth')}, "
        f"{len(d.get('violations', []))} violations, {d.get('states_per_second', 0):.0f} states/s"
    )


def _difftest_summary(out: str) -> str:
    d = _json(out)
    divergences = d.get("divergences", [])
    known = sorted({x["finding"] for x in divergences if x.get("finding")})
    new = sum(1 for x in divergences if not x.get("finding"))
    return (
        f"{d.get('examples')} examples, {d.get('steps')} steps, {len(divergences)} kinds of "
        f"divergence: {len(known)} known seed findings, {new} new; seed {d.get('seed')}"
    )


def _findings_summary(out: str) -> str:
    d = _json(out)
    verdict = "as documented" if d.get("ok") else "NOT as documented"
    return (
        f"{d.get('findings')} documented findings: {d.get('reproduced')} reproduce on the seed, "
        f"{d.get('fixed')} clean with their fix; {verdict}"
    )


def _explore_reference_summary(out: str) -> str:
    d = _json(out)
    bound = "complete" if d.get("complete") else "bounded by --max-states"
    new = sum(1 for v in d.get("violations", []) if not v.get("known"))
    return (
        f"{d.get('states')} states ({bound}), depth {d.get('depth')}, "
        f"{len(d.get('violations', []))} divergences, {new} new"
    )


def _last_line(out: str) -> str:
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def stages() -> list[Stage]:
    """The stages, in order; stages of parts not yet built are left out."""
    found: list[Stage] = [
        Stage("proofs", _xbdspec("prove", "--json"), _prove_summary),
        Stage(
            "diagrams up to date",
            _xbdspec("diagram", "--check"),
            lambda out: "the committed diagrams match the model",
        ),
        Stage(
            "reference simulation",
            _xbdspec("simulate", "--ios", "10000", "--seed", "1", "--json"),
            _simulate_summary,
        ),
    ]
    from xbdspec.cli import SUBCOMMANDS

    found.append(Stage("documented findings", _xbdspec("findings", "--json"), _findings_summary))
    if _available(SUBCOMMANDS["explore"][0]):
        found.append(Stage("exploration (model)", _xbdspec("explore", "--json"), _explore_summary))
        found.append(
            Stage(
                "exploration (reference-fixed)",
                _xbdspec("explore", "--target", "reference-fixed", "--json", "--quiet"),
                _explore_reference_summary,
            )
        )
    if _available(SUBCOMMANDS["difftest"][0]):
        found.append(
            Stage(
                "differential campaign (reference)",
                _xbdspec(
                    "difftest",
                    "--contract",
                    "freebsd",
                    "--impl",
                    "reference",
                    "--examples",
                    "200",
                    "--seed",
                    "1",
                    "--json",
                ),
                _difftest_summary,
            )
        )
        found.append(
            Stage(
                "differential campaign (reference-fixed)",
                _xbdspec(
                    "difftest",
                    "--contract",
                    "freebsd",
                    "--impl",
                    "reference-fixed",
                    "--examples",
                    "200",
                    "--seed",
                    "1",
                    "--strict",
                    "--json",
                ),
                _difftest_summary,
            )
        )
        seed = ROOT.parent / "shared" / "seed" / "blkfront.c"
        if not seed.exists() and not os.environ.get("XBD_BLKFRONT"):
            found.append(
                Stage(
                    "differential campaign (compiled seed)",
                    [],
                    _last_line,
                    f"skipped: no seed driver at {seed} and XBD_BLKFRONT is not set",
                )
            )
        else:
            found.append(
                Stage(
                    "differential campaign (compiled seed)",
                    _xbdspec(
                        "difftest",
                        "--contract",
                        "freebsd",
                        "--impl",
                        "c-driver",
                        "--examples",
                        "100",
                        "--seed",
                        "1",
                        "--json",
                    ),
                    _difftest_summary,
                )
            )
    found += _protocol_stages()
    if shutil.which("ruff", path=str(Path(sys.executable).parent)):
        found.append(
            Stage("ruff", [str(Path(sys.executable).parent / "ruff"), "check", "."], _last_line)
        )
    found.append(Stage("mypy", [sys.executable, str(ROOT / "tools" / "typecheck.py")], _last_line))
    return found


def _protocol_summary(out: str) -> str:
    d = _json(out)
    compared = d.get("compared", {})
    known = [v for v in d.get("violations", []) if v.get("known")]
    new = len(d.get("violations", [])) - len(known)
    return (
        f"{d.get('programs')} programs, {d.get('ios')} I/Os, "
        f"{compared.get('requests read from the ring', 0)} requests read and "
        f"{compared.get('xenstore commits', 0)} commits compared, "
        f"{len(d.get('reached', {}).get('rules', {}))} rules reached; "
        f"{new} new violations, {len(known)} documented findings "
        f"({', '.join(sorted({v['known'] for v in known})) or 'none'}); seed {d.get('seed')}"
    )


def _protocol_stages() -> list[Stage]:
    """Every front end the protocol-level harness runs (``xbdspec difftest``, the
    protocol contract), each a seeded campaign; one that cannot run here says why."""
    stages: list[Stage] = []
    seed = ROOT.parent / "shared" / "seed" / "blkfront.c"
    for impl, programs, why_not in (
        ("tutorial", 300, ""),
        ("reference", 300, ""),
        ("reference-fixed", 300, ""),
        (
            "seed",
            300,
            ""
            if seed.exists() or os.environ.get("XBD_BLKFRONT")
            else f"no seed driver at {seed} and XBD_BLKFRONT is not set",
        ),
        ("c-frontend", 200, "" if shutil.which("cc") else "no C compiler (cc)"),
        ("linux", 300, _linux_missing()),
    ):
        name = f"protocol conformance ({impl})"
        if why_not:
            stages.append(Stage(name, [], _last_line, f"skipped: {why_not}"))
            continue
        argv = _xbdspec(
            "difftest", "--impl", impl, "--examples", str(programs), "--seed", "1", "--json"
        )
        if impl == "linux":
            argv[-3:-3] = ["--length", "48"]
        stages.append(Stage(name, argv, _protocol_summary))
    return stages


def _linux_missing() -> str:
    """Why Linux's front end cannot run here (empty: it can); never a silent skip."""
    try:
        from xbdspec.linux import source

        if source.available():
            return ""
        return (
            "linux-source-6.1 is not installed and apt cannot install it here (make linux-frontend)"
        )
    except Exception as exc:  # the reason is the summary's
        return f"linux-source-6.1 cannot be had: {str(exc)[:200]} (make linux-frontend)"


def _available(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="STAGE",
        help="leave out a stage (by the start of its name)",
    )


def run(args: argparse.Namespace) -> int:
    results: list[tuple[str, bool, str, float]] = []
    skipped: list[tuple[str, str]] = []
    for stage in stages():
        if any(stage.name.startswith(s) for s in args.skip):
            skipped.append((stage.name, "skipped: --skip"))
            continue
        if stage.skipped:
            print(f"== {stage.name}: {stage.skipped}", flush=True)
            skipped.append((stage.name, stage.skipped))
            continue
        shown = stage.argv[1:] if stage.argv[0] == sys.executable else stage.argv
        print(f"== {stage.name}: {' '.join(shown)}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(stage.argv, cwd=ROOT, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        ok = proc.returncode == 0
        try:
            figures = stage.summarise(proc.stdout)
        except (ValueError, KeyError, TypeError):
            figures = _last_line(proc.stdout)
        if not ok:
            print(proc.stdout[-4000:])
            print(proc.stderr[-4000:], file=sys.stderr)
        results.append((stage.name, ok, figures, seconds))
        print(f"   {'ok' if ok else 'FAILED'} ({seconds:.1f} s): {figures}", flush=True)
    width = max(len(r[0]) for r in results)
    print("\nSummary")
    for name, ok, figures, seconds in results:
        print(f"  {name:{width}}  {'ok    ' if ok else 'FAILED'}  {seconds:7.1f} s  {figures}")
    for name, reason in skipped:
        print(f"  {name:{width}}  skipped           {reason}")
    failed = [r[0] for r in results if not r[1]]
    print(
        f"\n{len(results) - len(failed)} of {len(results)} stages passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
        + (f"; {len(skipped)} left out (said above)" if skipped else "")
    )
    return 1 if failed else 0
