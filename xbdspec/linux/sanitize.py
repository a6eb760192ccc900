"""Linux's ``xen-blkfront.c`` under AddressSanitizer and UndefinedBehaviorSanitizer.

The driver and the shim are built with ``-fsanitize=address,undefined``
(:func:`xbdspec.linux.adapter.build`'s ``sanitize``).  Such a library loads only in a
process that has the sanitizer runtimes loaded before anything else, so the work runs in
a child process, ``python -m xbdspec.linux.sanitize COMMAND``, started by :func:`run` with
``LD_PRELOAD`` set to ``libasan``/``libubsan`` (as the FreeBSD seed's sanitized scenarios
are run) and :data:`~xbdspec.linux.adapter.SANITIZE_ENV`, which makes every driver the
child loads the sanitized one.  Both runtimes stop the process at their first report
(``halt_on_error``), so a clean exit is a run without any.

In the sanitized build the shim leaves SIGSEGV to ASan (``shim_sanitized()``): a fault
inside the driver is ASan's report, with its stack, not a fault contained and reported
by the harness.

Commands (the child prints one JSON line last, its summary):

* ``campaign --seed S --programs N [--events E]``: the registry's ``linux`` target (module
  parameters drawn per program, the back end's features swept), as ``xbdspec difftest
  --impl linux`` runs it; the summary counts the parameter and feature values drawn.
* ``finding NAME [--then-read]``: a Linux finding's replay (:mod:`xbdspec.findings.linux`),
  going on past the protocol violations it shows; with ``--then-read``, a read bio after
  it.
* ``selftest segv|heap|shift``: a deliberate fault inside an entry point (a load from
  address 16, a read past a heap block, a shift past the width of ``int``) after the
  handshake: each must stop the child with ASan's or UBSan's report.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from .adapter import SANITIZE_ENV

#: The runtimes' options: stop at the first report; no leak check (the Python process
#: itself holds memory at exit that LeakSanitizer would report); UBSan's reports with
#: their stacks.
ASAN_OPTIONS = "detect_leaks=0:halt_on_error=1"
UBSAN_OPTIONS = "halt_on_error=1:print_stacktrace=1"
#: What starts a sanitizer's report on stderr.
REPORT_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: UndefinedBehaviorSanitizer")


@dataclass
class SanitizedRun:
    """What a sanitized child did.

    Attributes:
        returncode: its exit status (0: finished with no sanitizer report).
        result: its JSON summary (``None`` if it stopped before printing one).
        reports: the lines of stderr that start a sanitizer report.
        stderr: all of its stderr.
    """

    returncode: int
    result: dict[str, Any] | None
    reports: list[str] = field(default_factory=list)
    stderr: str = ""


def sanitizer_preload() -> str | None:
    """``LD_PRELOAD`` for the runtimes (None if the compiler has none): the seed's."""
    from xbdspec.cdriver.build import sanitizer_preload as preload

    return preload()


def run(args: Sequence[str], timeout: float = 900.0) -> SanitizedRun:
    """Run ``python -m xbdspec.linux.sanitize ARGS`` with the runtimes preloaded.

    Raises:
        RuntimeError: the C compiler has no sanitizer runtimes.
        subprocess.TimeoutExpired: the child ran past ``timeout`` seconds (it is killed).
    """
    preload = sanitizer_preload()
    if preload is None:
        raise RuntimeError("the C compiler has no libasan/libubsan (gcc's sanitizer runtimes)")
    # build in this process (no runtimes needed to compile): the child only loads
    from .adapter import build, instance_dir

    library = build(sanitize=True).library
    env = {
        **os.environ,
        "LD_PRELOAD": preload,
        "ASAN_OPTIONS": ASAN_OPTIONS,
        "UBSAN_OPTIONS": UBSAN_OPTIONS,
        SANITIZE_ENV: "1",
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "xbdspec.linux.sanitize", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise
    finally:
        shutil.rmtree(instance_dir(library, child.pid), ignore_errors=True)
    proc = subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
    reports = [line for line in proc.stderr.splitlines() if any(m in line for m in REPORT_MARKERS)]
    result = None
    lines = proc.stdout.strip().splitlines()
    if lines:
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            result = None
    return SanitizedRun(proc.returncode, result, reports, proc.stderr)


# ---- the child's commands


def _campaign(seed: int, programs: int, events: int) -> dict[str, Any]:
    """The registry's ``linux`` target's campaign, counting what each program drew."""
    from xbdspec.world import registry
    from xbdspec.world.campaign import campaign

    target = registry.load("linux", events=events)
    params: Counter[str] = Counter()
    features: Counter[str] = Counter()
    maker, vary = target.maker, target.vary

    def pick(rng: random.Random) -> Any:
        made = cast(Callable[[random.Random], Any], maker)(rng)
        params.update(f"{k}={v}" for k, v in sorted(getattr(made, "options", {}).items()))
        return made

    def draw(rng: random.Random) -> Any:
        assert vary is not None
        config = vary(rng)
        features.update(
            f"{k}={getattr(config, k)}"
            for k in ("feature_flush", "feature_barrier", "feature_discard", "feature_persistent")
        )
        features[f"max_queues={config.max_queues}"] += 1
        return config

    report = campaign(
        pick if target.per_program else maker,
        seed,
        programs,
        target.shape,
        target.config,
        per_program=target.per_program,
        vary=draw if vary is not None else None,
    )
    return {
        "command": "campaign",
        "sanitized": _sanitized(),
        "seed": seed,
        "programs": report.programs,
        "events": report.events,
        "ios": report.ios,
        "violations": [f.rule for f in report.findings],
        # each with its shrunk replay, the module parameters and the back end it drew
        "findings": [
            {**f.as_json(), "config": dataclasses.asdict(f.config) if f.config else None}
            for f in report.findings
        ],
        "coverage": dict(sorted(report.coverage.items())),
        "params": dict(sorted(params.items())),
        "features": dict(sorted(features.items())),
    }


def _finding(name: str, then_read: bool) -> dict[str, Any]:
    """A Linux finding's replay on the driver, going on past its violations."""
    from xbdspec.findings import linux
    from xbdspec.world.harness import World

    from .adapter import make

    finding = linux.BY_NAME[name]
    world = World(make(dict(finding.params)), finding.config)
    rules: list[str] = []
    # record every violation and go on (as tests/linux/test_linux_findings.py does): the
    # point is what the driver does next
    world._fail = rules.append  # type: ignore[method-assign,assignment]
    program = list(finding.program)
    if then_read:
        program.append(("submit", {"id": 1, "op": "read", "sector": 0, "sectors": 8}))
    for event, params in program:
        print(f"event {event} {json.dumps(dict(params))}", file=sys.stderr, flush=True)
        world.run(event, params)
    return {
        "command": "finding",
        "sanitized": _sanitized(),
        "finding": name,
        "rules": rules,
        "completed": {str(k): v for k, v in world.completed.items()},
    }


def _selftest(kind: str) -> dict[str, Any]:
    """A deliberate fault inside an entry point of a driver through the handshake
    (:meth:`~xbdspec.linux.adapter.LinuxBlkfront.selftest_fault`): what shows that a
    sanitizer's report is not swallowed (by the shim's crash containment, or otherwise)."""
    from xbdspec.world.harness import World

    from .adapter import LinuxBlkfront, make

    world = World(make({}))
    for event in ("attach", "backend_probe", "settle"):
        world.run(event, {})
    front = world.frontend
    assert isinstance(front, LinuxBlkfront)
    front.selftest_fault(kind)
    return {"command": "selftest", "sanitized": _sanitized(), "kind": kind}


def _sanitized() -> bool:
    """Whether the drivers this process loads are the sanitized build (and it runs)."""
    from .adapter import build, sanitizer_runtime_loaded

    return build().sanitize and sanitizer_runtime_loaded()


def main(argv: Sequence[str] | None = None) -> int:
    """The child: one command, its JSON summary on the last line of stdout."""
    parser = argparse.ArgumentParser(prog="python -m xbdspec.linux.sanitize")
    sub = parser.add_subparsers(dest="command", required=True)
    camp = sub.add_parser("campaign", help="a seeded campaign of the linux target")
    camp.add_argument("--seed", type=int, default=1)
    camp.add_argument("--programs", type=int, default=100)
    camp.add_argument("--events", type=int, default=24)
    fin = sub.add_parser("finding", help="a Linux finding's replay, past its violations")
    fin.add_argument("name")
    fin.add_argument("--then-read", action="store_true")
    test = sub.add_parser("selftest", help="a deliberate fault inside an entry point")
    test.add_argument("kind", choices=("segv", "heap", "shift"))
    args = parser.parse_args(argv)
    if args.command == "campaign":
        out = _campaign(args.seed, args.programs, args.events)
    elif args.command == "finding":
        out = _finding(args.name, args.then_read)
    else:
        out = _selftest(args.kind)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
