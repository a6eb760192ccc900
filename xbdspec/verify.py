"""``xbdspec verify`` (``make verify``): everything the project can check, with a summary.

Each stage is a command of this project run in its own process (its own process group),
so one stage's failure cannot hide another's; the summary gives each stage's status,
its key figures and its time: ``ok``; ``bounded`` when it passed within a bound it names
(an exploration stopped at its state bound is not a plain ok); ``FAILED``; ``skipped``
with the reason (the compiled seed absent, a stage asked to be left out).  The exit
status is 1 when any stage fails, 130 on Ctrl-C (the stages done are summarised).  A
progress bar (on a terminal) names the running stage and relays its own progress
(:mod:`xbdspec.terminal`); ``--json`` gives the summary in the envelope of
:mod:`xbdspec.output`.
"""

from __future__ import annotations

import argparse
import contextlib
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

from xbdspec.resources import CHECKOUT, build_dir, doc

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


def seed_missing() -> str:
    """Why the seed driver cannot be compiled here (empty: it can): it is read from
    ``$XBD_BLKFRONT``, else from ``../shared/seed/blkfront.c`` beside the checkout."""
    if os.environ.get("XBD_BLKFRONT"):
        return ""
    if CHECKOUT is None:
        return (
            "no seed driver: set XBD_BLKFRONT=/path/to/blkfront.c (the installed package "
            "has no checkout beside which ../shared/seed/blkfront.c could be)"
        )
    seed = CHECKOUT.parent / "shared" / "seed" / "blkfront.c"
    return "" if seed.exists() else f"no seed driver at {seed} and XBD_BLKFRONT is not set"


def workdir() -> Path:
    """Where the stages run: the checkout, or (installed) the build directory, never
    the installed tree nor the user's current directory."""
    if CHECKOUT is not None:
        return CHECKOUT
    where = build_dir("verify")
    where.mkdir(parents=True, exist_ok=True)
    return where


def stages() -> list[Stage]:
    """The stages, in order; stages of parts not yet built are left out."""
    found: list[Stage] = [
        Stage("proofs", _xbdspec("prove", "--json"), _prove_summary),
        Stage(
            "diagrams up to date",
            # the docs' pages (the checkout's docs/diagrams, or the copy installed with
            # the package): either way, the pages a reader gets must be the model's
            _xbdspec("diagram", "--check", "--out", str(doc("diagrams"))),
            lambda out: "the documented diagrams match the model",
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
                _xbdspec("explore", "--target", "reference-fixed", "--json"),
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
        if seed_missing():
            found.append(
                Stage(
                    "differential campaign (compiled seed)",
                    [],
                    _last_line,
                    f"skipped: {seed_missing()}",
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
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    checkout = (ROOT / "pyproject.toml").exists()
    if not checkout:
        why = "skipped: a check of the checkout's sources; the package runs installed"
        found.append(Stage("ruff", [], _last_line, why))
        found.append(Stage("mypy", [], _last_line, why))
        return found
    if ruff:
        found.append(Stage("ruff", [ruff, "check", "."], _last_line))
    else:
        found.append(
            Stage("ruff", [], _last_line, "skipped: ruff is not installed beside this Python")
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
    for impl, programs, why_not in (
        ("tutorial", 300, ""),
        ("reference", 300, ""),
        ("reference-fixed", 300, ""),
        (
            "seed",
            300,
            seed_missing(),
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
    """The options of ``xbdspec verify``."""
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="STAGE",
        help="leave out a stage (by the start of its name; repeatable)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="STAGE",
        help="run only the stages whose name starts with STAGE (repeatable)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the summary as one JSON document (docs/output.md)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


@dataclass
class StageResult:
    """What one stage gave.

    Attributes:
        name: the stage's name.
        status: ``ok``, ``bounded`` (passed, within a bound it names: an exploration
            stopped at its state bound), ``failed`` or ``skipped``.
        figures: the stage's key figures in one line (its command's JSON, summarised).
        reason: why it was skipped, or what bounded it.
        seconds: its wall time.
        exit_status: its command's exit status (``None`` when it did not run).
    """

    name: str
    status: str
    figures: str = ""
    reason: str = ""
    seconds: float = 0.0
    exit_status: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The stage as ``verify --json`` lists it."""
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "figures": self.figures,
            "seconds": round(self.seconds, 2),
            "exit_status": self.exit_status,
        }


def bound_of(data: Any) -> str:
    """What bounded a stage that passed, read from its JSON document (empty: nothing):
    an exploration whose ``complete`` is false stopped at its state bound."""
    if not isinstance(data, dict) or data.get("complete") is not False:
        return ""
    limit = data.get("max_states")
    states = data.get("states")
    if isinstance(limit, int) and limit:
        return (
            f"stopped at its bound of {limit:,} states (--max-states): states beyond it "
            "were not explored"
        )
    return f"incomplete: stopped after {states} states" if states else "incomplete"


def run(args: argparse.Namespace) -> int:
    """Run every stage (each in its own process), then the summary; 1 if one failed,
    130 on Ctrl-C (the stages done by then are summarised, the running one is stopped)."""
    from xbdspec import output
    from xbdspec.cli import EXIT_INTERRUPTED
    from xbdspec.terminal import Progress

    skip = list(getattr(args, "skip", []) or [])
    only = list(getattr(args, "only", []) or [])
    as_json = bool(getattr(args, "json", False))
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if as_json else print
    chosen = stages()
    results: list[StageResult] = []
    interrupted = False
    bar = Progress(
        "verify",
        total=sum(
            1
            for st in chosen
            if not st.skipped
            and (not only or any(st.name.startswith(o) for o in only))
            and not any(st.name.startswith(k) for k in skip)
        ),
        unit="stages",
        enabled=not getattr(args, "quiet", False),
        json_output=as_json,
        ticking=True,
    )
    try:
        for stage in chosen:
            if only and not any(stage.name.startswith(o) for o in only):
                continue
            if any(stage.name.startswith(s) for s in skip):
                results.append(StageResult(stage.name, "skipped", reason="skipped: --skip"))
                continue
            if stage.skipped:
                say(f"== {stage.name}: {stage.skipped}")
                results.append(StageResult(stage.name, "skipped", reason=stage.skipped))
                continue
            shown = stage.argv[1:] if stage.argv[0] == sys.executable else stage.argv
            say(f"== {stage.name}: {' '.join(shown)}")
            bar.update(what=stage.name)
            result, out, err = _run_stage(stage, bar)
            results.append(result)
            done = sum(1 for r in results if r.exit_status is not None)
            bar.update(done, what="verify")
            if result.status == "failed":
                say(out[-4000:])
                print(err[-4000:], file=sys.stderr)
            line = f"   {result.status} ({result.seconds:.1f} s): {result.figures}"
            if result.status == "bounded":
                line += f"\n   BOUNDED: {result.reason}"
            if as_json:
                bar.write(line)
            else:
                bar.out(line)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    failed = [r.name for r in results if r.status == "failed"]
    left_out = [r for r in results if r.status == "skipped"]
    bounded = [r for r in results if r.status == "bounded"]
    status = EXIT_INTERRUPTED if interrupted else (1 if failed else 0)
    if as_json:
        counts = {
            "stages": len(results),
            "passed": sum(1 for r in results if r.status in ("ok", "bounded")),
            "bounded": len(bounded),
            "failed": len(failed),
            "skipped": len(left_out),
        }
        fields: dict[str, Any] = {"stages": [r.as_json() for r in results], "failed": failed}
        if interrupted:
            fields["interrupted"] = True
        output.emit("verify", ok=status == 0, counts=counts, fields=fields)
        return status
    _print_summary(results, interrupted)
    return status


def _print_summary(results: list[StageResult], interrupted: bool) -> None:
    """The table of stages: each one's status, time and figures; what was left out and
    why; what bounded a stage that passed."""
    if not results:
        print("\nno stage was run (--only and --skip left none)")
        return
    width = max(len(r.name) for r in results)
    print("\nSummary")
    for r in results:
        if r.status == "skipped":
            continue
        label = {"ok": "ok", "bounded": "bounded", "failed": "FAILED"}.get(r.status, r.status)
        print(f"  {r.name:{width}}  {label:7}  {r.seconds:7.1f} s  {r.figures}")
        if r.status == "bounded":
            print(f"  {'':{width}}  {'':7}  {'':9}  bounded: {r.reason}")
    for r in results:
        if r.status == "skipped":
            print(f"  {r.name:{width}}  skipped  {'':9}  {r.reason}")
    ran = [r for r in results if r.status != "skipped"]
    failed = [r.name for r in ran if r.status == "failed"]
    bounded = [r for r in ran if r.status == "bounded"]
    skipped = len(results) - len(ran)
    print(
        f"\n{len(ran) - len(failed)} of {len(ran)} stages passed"
        + (f" ({len(bounded)} within a bound, said above)" if bounded else "")
        + (f"; failed: {', '.join(failed)}" if failed else "")
        + (f"; {skipped} left out (said above)" if skipped else "")
        + (
            "; INTERRUPTED by Ctrl-C: the stages after the last above were not run"
            if interrupted
            else ""
        )
    )


def _run_stage(stage: Stage, bar: Any) -> tuple[StageResult, str, str]:
    """Run one stage's command in its own process group, relaying its progress to
    ``bar``; the result, its standard output and its standard error.  Ctrl-C stops the
    whole group and goes on to the caller."""
    import signal
    import threading

    from xbdspec.terminal import parse_relay, relayed_text

    env = {**os.environ, "XBDSPEC_PROGRESS": "relay"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        stage.argv,
        cwd=workdir(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    errors: list[str] = []

    def read_errors() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            relayed = parse_relay(line)
            if relayed is None:
                errors.append(line)
            else:
                bar.update(what=stage.name, progress=relayed_text(relayed))

    reader = threading.Thread(target=read_errors, daemon=True)
    reader.start()
    try:
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait()
    except KeyboardInterrupt:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        reader.join(timeout=5)
    seconds = time.perf_counter() - start
    err = "".join(errors)
    try:
        figures = stage.summarise(out)
    except (ValueError, KeyError, TypeError, AttributeError):
        figures = _last_line(out)
    if proc.returncode != 0:
        status, reason = "failed", ""
    else:
        try:
            reason = bound_of(_json(out))
        except ValueError:
            reason = ""
        status = "bounded" if reason else "ok"
    result = StageResult(stage.name, status, figures, reason, seconds, proc.returncode)
    return result, out, err
