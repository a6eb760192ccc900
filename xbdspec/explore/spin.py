"""Running SPIN on the Promela interpretation (``xbdspec explore --engine spin``).

:func:`check_spin` writes the model's two Promela variants
(:func:`xbdspec.explore.promela.generate`) into a temporary directory and, for each,
runs ``spin -a -o2`` (``-o2``: a field nothing reads, only assigns, stays in the
state vector, as in the Python explorer's states), compiles ``pan.c`` with the
system ``cc`` and runs ``pan``:

* the **safety** model, compiled with ``-DSAFETY``: invariants, step properties and
  deadlocks, each reported once (``pan -c0 -e`` goes on after a violation and writes
  one trail per violated property, like the Python explorer's first witness of each);
* the **liveness** model, compiled without it: one ``pan -a -N <claim>`` run per
  progress property (acceptance cycles of its never claim).

Options: ``-DNCORE=N`` (multi-core, safety only; such a run stops at its first
violation), ``-DBITSTATE`` with ``-w`` (bitstate hashing for sizes beyond exhaustive
reach: the result states pan's hash factor and the coverage estimate derived from
it), ``-DHC4`` (hash compaction: 96 bits of hash a state, with the collision
probability stated), ``-DT_RAND`` with ``-RS``, ``-h`` and ``-t_reverse`` (a swarm
shard's own search order and hash function: :mod:`xbdspec.explore.swarm`), ``-m`` (the
depth bound), ``-DMEMLIM``.  Every command runs in its own process
group with a deadline; on time-out the group gets SIGINT (pan then prints its
figures so far) and, ten seconds later, SIGKILL.  pan's output is parsed into a
:class:`PanRun`.

Each trail is replayed by ``spin -t`` (guided simulation), which prints the mark
``xbdspec-step <id>`` of every step taken (and ``<<<<<START OF CYCLE>>>>>`` for a
lasso); the ids are instances of the declaration, replayed on the concrete model
(:class:`~xbdspec.model.concrete.Stepper`) and written in the Python explorer's
replay format (:mod:`xbdspec.explore.replay`), whose checker confirms the violation.

The Debian package is ``spin`` (``apt-get install -y spin``); the C compiler is
``cc`` (``build-essential``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from xbdspec.errors import XbdspecError
from xbdspec.model.concrete import Stepper
from xbdspec.model.declaration import Spec
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes

from .counterexample import Counterexample, Step
from .promela import (
    CYCLE_MARK,
    DEADLOCK,
    STEP_MARK,
    STUTTER_MARK,
    VIOLATION_MARK,
    PromelaModel,
    generate,
)
from .replay import Replay, ReplayError, ReplayEvent, dumps, replay_on_model, write_replay

#: the Debian package that provides ``spin``
DEBIAN_PACKAGE = "spin"
#: what the Makefile and CI run to get it
INSTALL_COMMAND = "apt-get install -y spin"


#: ``-DHC<n>``: the bytes of pan's second hash ``K2`` a hash-compacted state keeps
#: beside the 64-bit ``K1``
HASH_COMPACT_BYTES = 4
#: the bits of hash that tell two hash-compacted states apart
HASH_COMPACT_BITS = 64 + 8 * HASH_COMPACT_BYTES


class SpinError(XbdspecError):
    """SPIN, the C compiler or pan failed, or their output could not be understood."""


class SpinNotInstalled(SpinError):
    """``spin`` or ``cc`` is not on the PATH."""


def spin_available(cc: str = "cc") -> bool:
    """Whether ``spin`` and the C compiler are on the PATH."""
    return shutil.which("spin") is not None and shutil.which(cc) is not None


def require_spin(cc: str = "cc") -> None:
    """Raise :class:`SpinNotInstalled` with the install command when SPIN is missing."""
    missing = [name for name in ("spin", cc) if shutil.which(name) is None]
    if missing:
        raise SpinNotInstalled(
            f"--engine spin needs {' and '.join(missing)} on the PATH; on Debian: "
            f"`{INSTALL_COMMAND}` (and `apt-get install -y build-essential` for cc)."
        )


def spin_version() -> str:
    """``Spin Version 6.5.2 -- 6 December 2019``, as ``spin -V`` prints it."""
    require_spin()
    done = subprocess.run(["spin", "-V"], capture_output=True, text=True, timeout=30, check=False)
    return done.stdout.strip()


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class SpinOptions:
    """How SPIN is run.

    Attributes:
        max_depth: pan's ``-m``: the depth bound of its depth-first search.  A run that
            reaches it is not complete (pan says "max search depth too small").
        exact_depth: compile with ``-DREACH``: with a depth bound, every state within
            ``max_depth`` steps of the initial state is visited (without it, a state
            first met on a long path is not explored again when met on a shorter one,
            so a depth-bounded search may miss states within the bound).  Slower.
        hash_bits: pan's ``-w``: the hash table has ``2**w`` slots (exhaustive), or the
            bit array ``2**w`` bits (bitstate).  Default 24 (pan's own default: 16M
            slots, 128 MB; raise it to about log2 of the states expected) and 32
            (512 MB of bits).
        bitstate: compile with ``-DBITSTATE`` (states stored as bits: a run may miss
            states; its coverage estimate is reported).
        hash_functions: pan's ``-k`` (bitstate): bits set per state.
        cores: ``-DNCORE`` for the safety run (1: a single core).  A multi-core run
            stops at its first violation.
        timeout: seconds for the whole check (generation, compilation, every run).
        memory_mb: ``-DMEMLIM``: pan stops when it would use more.
        progress: run the liveness model (progress properties) too.
        collapse: compile with ``-DCOLLAPSE`` (compressed state storage: less memory,
            a little slower).
        hash_compact: compile with ``-DHC4`` (hash compaction): each state is stored as
            96 bits of its hash (pan's 64-bit ``K1`` and 4 bytes of ``K2``) instead of
            its whole vector, about 40 bytes a state with pan's own overhead instead of
            about 130.  Two states whose 96 bits agree are taken for one, so the search
            is complete unless such a collision happened; the result states the
            probability (at most ``n(n-1)/2 / 2**96`` for ``n`` states, the birthday
            bound for uniform hashes, the same kind of figure as the Python explorer's
            64-bit fingerprints).  Not with ``bitstate`` or ``collapse``.
        order_seed: search-order diversification for a swarm shard
            (:mod:`xbdspec.explore.swarm`): ``pan.c`` compiled with ``-DT_RAND`` (in
            every state pan starts its scan of the enabled steps at a random one) and
            run with ``-RS<order_seed>``; None (the default) keeps pan's fixed order.
        hash_function: pan's ``-h``: which of its 500 hash functions (0..499) stores
            the states, so that shards lose different states to hash collisions.
        reverse_order: pan's ``-t_reverse``: scan the steps in reverse order.
        optimize: the compiler's optimisation flag for ``pan.c`` (``-O2``; ``-O0``
            compiles faster, for tiny sizes).
        cc: the C compiler.
        work_dir: keep the models, ``pan.c`` and the trails here (default: a temporary
            directory, removed afterwards).
    """

    max_depth: int = 1_000_000
    exact_depth: bool = False
    hash_bits: int | None = None
    bitstate: bool = False
    hash_functions: int = 3
    cores: int = 1
    timeout: float = 1800.0
    memory_mb: int = 4096
    progress: bool = True
    collapse: bool = False
    hash_compact: bool = False
    order_seed: int | None = None
    hash_function: int = 0
    reverse_order: bool = False
    optimize: str = "-O2"
    cc: str = "cc"
    work_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.max_depth < 1 or self.cores < 1 or self.hash_functions < 1:
            raise SpinError("the depth bound, the number of cores and -k must be at least 1")
        if self.hash_bits is not None and not 10 <= self.hash_bits <= 40:
            raise SpinError(f"-w{self.hash_bits}: the hash bits must be within 10..40")
        if self.timeout <= 0 or self.memory_mb < 64:
            raise SpinError("the time-out must be positive and the memory at least 64 MB")
        if not 0 <= self.hash_function <= 499:
            raise SpinError(f"-h{self.hash_function}: pan's hash functions are 0..499")
        if self.order_seed is not None and not 1 <= self.order_seed < 2**31:
            raise SpinError(f"-RS{self.order_seed}: the seed must be within 1..2**31-1")
        if self.hash_compact and (self.bitstate or self.collapse):
            raise SpinError("hash compaction (-DHC4) excludes bitstate and -DCOLLAPSE")

    @property
    def w(self) -> int:
        """The ``-w`` pan runs with."""
        if self.hash_bits is not None:
            return self.hash_bits
        return 32 if self.bitstate else 24


# --------------------------------------------------------------------------- one pan run


@dataclass
class PanRun:
    """One pan run and its figures, as pan printed them.

    Attributes:
        mode: ``safety`` or ``liveness``; claim: the never claim (liveness).
        commands: the ``spin -a``, ``cc`` and ``pan`` command lines.
        states: states stored; matched: states matched again; transitions: pan's
            "transitions (= stored+matched)" (one more than the Python explorer's
            edges: pan counts the step into the initial state).
        depth: the deepest point of pan's depth-first search (not the breadth-first
            depth the Python explorer reports).
        errors: violations pan counted; messages: its ``pan:N:`` lines.
        memory_mb: pan's "total actual memory usage".
        seconds: pan's own elapsed time; compile_seconds: ``spin -a`` and ``cc``.
        cpu_seconds: pan's processor time (every core's, for a multi-core run): on a
            shared machine the rate per processor second says more than pan's own.
        hash_factor: bitstate: bits of the array per state stored (pan's figure).
        coverage: bitstate: the coverage estimate ``1 - (1 - exp(-k / hash_factor))
            ** k``: one less the chance that a new state's ``k`` bits were all set
            already at the final fill (it is then taken for a visited one).  An
            estimate, not a bound: what only such a state leads to is lost with it.
        hash_compact: compiled with ``-DHC4`` (see :attr:`SpinOptions.hash_compact`
            and :attr:`collision_probability`).
        depth_limited, timed_out, out_of_memory: why the run may be incomplete.
        trails: the trail files pan wrote.
        output: pan's whole output.
    """

    mode: str
    claim: str | None
    commands: list[list[str]]
    states: int = 0
    matched: int = 0
    transitions: int = 0
    depth: int = 0
    errors: int = 0
    messages: list[str] = field(default_factory=list)
    memory_mb: float | None = None
    seconds: float = 0.0
    compile_seconds: float = 0.0
    cpu_seconds: float = 0.0
    state_vector_bytes: int | None = None
    hash_factor: float | None = None
    hash_functions: int | None = None
    coverage: float | None = None
    bitstate: bool = False
    hash_compact: bool = False
    cores: int = 1
    stops_at_first_error: bool = False
    depth_limited: bool = False
    timed_out: bool = False
    out_of_memory: bool = False
    trails: list[Path] = field(default_factory=list)
    output: str = ""

    @property
    def exhaustive(self) -> bool:
        """Every reachable state was visited: not bitstate, no bound or limit was hit,
        and no stop at a first violation."""
        return not (
            self.bitstate
            or self.depth_limited
            or self.timed_out
            or self.out_of_memory
            or (self.stops_at_first_error and self.errors > 0)
        )

    @property
    def collision_probability(self) -> float | None:
        """Hash compaction: the chance that two of the states stored shared their
        :data:`HASH_COMPACT_BITS` bits of hash (one was then never explored), by the
        birthday bound ``n(n-1)/2 / 2**bits`` (uniform hashes assumed)."""
        if not self.hash_compact:
            return None
        return min(1.0, self.states * (self.states - 1) / 2 / 2.0**HASH_COMPACT_BITS)

    @property
    def states_per_second(self) -> float | None:
        """States stored per second of pan's search."""
        return self.states / self.seconds if self.seconds > 0 else None

    def as_json(self) -> dict[str, Any]:
        """The run's figures (without the output)."""
        return {
            "mode": self.mode,
            "claim": self.claim,
            "commands": [" ".join(c) for c in self.commands],
            "states": self.states,
            "matched": self.matched,
            "transitions": self.transitions,
            "depth": self.depth,
            "errors": self.errors,
            "messages": self.messages,
            "memory_mb": self.memory_mb,
            "seconds": round(self.seconds, 3),
            "compile_seconds": round(self.compile_seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "states_per_second": (
                None if self.states_per_second is None else round(self.states_per_second)
            ),
            "states_per_cpu_second": (
                round(self.states / self.cpu_seconds) if self.cpu_seconds > 0 else None
            ),
            "state_vector_bytes": self.state_vector_bytes,
            "bitstate": self.bitstate,
            "hash_factor": self.hash_factor,
            "hash_functions": self.hash_functions,
            "coverage_estimate": self.coverage,
            "hash_compact": self.hash_compact,
            "collision_probability": self.collision_probability,
            "cores": self.cores,
            "exhaustive": self.exhaustive,
            "depth_limited": self.depth_limited,
            "timed_out": self.timed_out,
            "out_of_memory": self.out_of_memory,
        }


_NUMBER = r"([0-9][0-9.e+]*)"


def _count(text: str) -> int:
    """A count as pan prints it: ``1395``, or ``1.7455701e+08`` past 10**8."""
    return int(text) if text.isdigit() else round(float(text))


def parse_pan_output(run: PanRun, output: str) -> PanRun:
    """Fill ``run``'s figures from pan's output (single- or multi-core)."""
    run.output = output

    def last(pattern: str) -> str | None:
        found = re.findall(pattern, output, flags=re.MULTILINE)
        return str(found[-1]) if found else None

    vectors = re.findall(r"State-vector (\d+) byte, depth reached (\d+), errors: (\d+)", output)
    if vectors:
        size, depth, errors = vectors[-1]
        run.state_vector_bytes, run.depth, run.errors = int(size), int(depth), int(errors)
    stored = last(r"^\s*" + _NUMBER + r" states, stored")
    run.states = _count(stored) if stored is not None else run.states
    if stored is None:
        # a multi-core run stopped by SIGINT prints no totals, only each core's progress
        # lines (rounded) and, for some cores, their exact count of states visited
        per_core = {
            core: _count(number)
            for core, number in re.findall(
                r"^(cpu\d+): Depth=.*States=\s*" + _NUMBER, output, flags=re.MULTILINE
            )
        }
        per_core.update(
            (core, _count(number))
            for core, number in re.findall(
                r"^(cpu\d+): elapsed time .* \(" + _NUMBER + r" states visited\)",
                output,
                flags=re.MULTILINE,
            )
        )
        if per_core:
            run.states = sum(per_core.values())
    matched = last(r"^\s*" + _NUMBER + r" states, matched")
    run.matched = _count(matched) if matched is not None else 0
    transitions = last(r"^\s*" + _NUMBER + r" transitions \(= ")
    run.transitions = _count(transitions) if transitions is not None else run.states + run.matched
    memory = last(r"^\s*" + _NUMBER + r"\s+total actual memory usage")
    run.memory_mb = float(memory) if memory is not None else None
    elapsed = re.findall(r"elapsed time " + _NUMBER + " seconds", output)
    if elapsed:
        run.seconds = max(float(x) for x in elapsed)
    factor = last(r"hash factor: " + _NUMBER)
    run.hash_factor = float(factor) if factor is not None else None
    bits = last(r"bits set per state: (\d+)")
    run.hash_functions = int(bits) if bits is not None else run.hash_functions
    if run.bitstate and run.hash_factor and run.hash_functions:
        k = run.hash_functions
        run.coverage = 1.0 - (1.0 - math.exp(-k / run.hash_factor)) ** k
    run.messages = re.findall(r"^(?:cpu\d+: )?pan:\d+: .*$", output, flags=re.MULTILINE)
    run.depth_limited = "max search depth too small" in output
    run.out_of_memory = bool(re.search(r"out of memory|reached -DMEMLIM bound", output))
    return run


# --------------------------------------------------------------------------- processes


@dataclass
class _Done:
    output: str
    returncode: int | None
    timed_out: bool
    seconds: float
    #: processor time of the command and what it waited for (``RUSAGE_CHILDREN``
    #: before and after: commands run one at a time)
    cpu_seconds: float = 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command: Sequence[str], cwd: Path, deadline: float, grace: float = 10.0) -> _Done:
    """Run ``command`` in its own process group until it ends or ``deadline``
    (``time.monotonic()``): then SIGINT to the group (pan prints its figures), and
    SIGKILL ``grace`` seconds later."""
    started = time.monotonic()
    remaining = deadline - started
    if remaining <= 0:
        return _Done("", None, True, 0.0)
    cpu = _children_cpu()
    proc = subprocess.Popen(
        list(command),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=remaining)
        return _Done(out, proc.returncode, False, time.monotonic() - started, _children_cpu() - cpu)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            out, _ = proc.communicate()
        return _Done(
            out or "", proc.returncode, True, time.monotonic() - started, _children_cpu() - cpu
        )
    finally:
        if proc.poll() is None:  # an exception on the way: leave nothing running
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen[str], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _checked(done: _Done, what: str) -> str:
    if done.timed_out:
        raise SpinError(f"{what} did not finish before the time-out; raise --spin-timeout")
    if done.returncode != 0:
        tail = "\n".join(done.output.strip().splitlines()[-15:])
        raise SpinError(f"{what} failed (exit status {done.returncode}):\n{tail}")
    return done.output


# --------------------------------------------------------------------------- compiling


def _compile(
    model: PromelaModel, directory: Path, options: SpinOptions, deadline: float
) -> tuple[list[list[str]], float]:
    """Write ``model.pml``, run ``spin -a`` and compile ``pan``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.pml").write_text(model.text, encoding="utf-8")
    started = time.monotonic()
    # -o2: keep write-only variables in the state vector.  By default spin -a hides a
    # global that nothing reads (only assigned: dump_result, say), so states differing
    # only in it are one state to pan and its count falls short of the Python
    # explorer's; every field is part of the state (the scratch and report-once
    # variables are declared hidden and stay hidden; in a multi-core run the scratch
    # variables are globals reset to 0 after every step, so they add no states).
    spin = ["spin", "-a", "-o2", "model.pml"]
    _checked(_run(spin, directory, deadline), "spin -a")
    flags = [options.optimize, "-fwrapv", "-w", "-DNOREDUCE", f"-DMEMLIM={options.memory_mb}"]
    if model.mode == "safety":
        flags.append("-DSAFETY")
        if options.cores > 1:
            flags.append(f"-DNCORE={options.cores}")
    if options.bitstate:
        flags.append("-DBITSTATE")
    if options.collapse and not options.bitstate:
        flags.append("-DCOLLAPSE")
    if options.hash_compact:
        flags.append(f"-DHC{HASH_COMPACT_BYTES}")
    if options.exact_depth:
        flags.append("-DREACH")
    if options.order_seed is not None:
        flags.append("-DT_RAND")
    cc = [options.cc, *flags, "-o", "pan", "pan.c"]
    _checked(_run(cc, directory, deadline), "compiling pan.c")
    return [spin, cc], time.monotonic() - started


def _pan(
    model: PromelaModel,
    directory: Path,
    options: SpinOptions,
    deadline: float,
    *,
    claim: str | None = None,
) -> tuple[PanRun, list[str]]:
    """Run pan once; its figures, and the command line."""
    command = ["./pan", f"-m{options.max_depth}", f"-w{options.w}", "-n"]
    if options.bitstate:
        command.append(f"-k{options.hash_functions}")
    if options.hash_function:
        command.append(f"-h{options.hash_function}")
    if options.order_seed is not None:
        command.append(f"-RS{options.order_seed}")
    if options.reverse_order:
        command.append("-t_reverse")
    first_only = claim is not None or not model.reports_every_property
    if claim is not None:
        command += ["-a", f"-N{claim}"]
    elif first_only:
        command.append("-c1")
    else:
        command += ["-c0", "-e"]
    for old in directory.glob("*trail"):
        old.unlink()
    done = _run(command, directory, deadline)
    run = PanRun(
        mode=model.mode,
        claim=claim,
        commands=[command],
        bitstate=options.bitstate,
        hash_compact=options.hash_compact,
        cores=options.cores if claim is None else 1,
        stops_at_first_error=first_only,
        hash_functions=options.hash_functions if options.bitstate else None,
    )
    parse_pan_output(run, done.output)
    run.timed_out = done.timed_out
    run.cpu_seconds = done.cpu_seconds
    stopped = run.errors or run.out_of_memory or run.depth_limited
    if not done.timed_out and done.returncode not in (0, None) and not stopped:
        raise SpinError(f"pan failed (exit status {done.returncode}):\n{done.output[-2000:]}")
    run.trails = sorted(directory.glob("*trail"), key=_trail_order)
    return run, command


def _trail_order(path: Path) -> tuple[int, str]:
    number = re.search(r"(\d+)\.trail$", path.name)
    return (int(number.group(1)) if number else 0, path.name)


# --------------------------------------------------------------------------- trails


@dataclass
class Trail:
    """What SPIN's guided simulation of one trail showed.

    Attributes:
        steps: the ids of the instances taken (``spec.instances``), in order.
        violation: ``(kind, property)`` from the model's last mark, if one fired.
        cycle_start: the number of steps before the acceptance cycle (a lasso).
        stutters_at_end: the cycle consists of stuttering alone (the behaviour stops).
    """

    steps: list[int]
    violation: tuple[str, str] | None
    cycle_start: int | None
    stutters_at_end: bool


def parse_trail(output: str) -> Trail:
    """The marks in ``spin -t`` output (see :mod:`xbdspec.explore.promela`)."""
    steps: list[int] = []
    violation: tuple[str, str] | None = None
    cycle_start: int | None = None
    for line in output.splitlines():
        text = line.strip()
        if text.startswith(STEP_MARK + " "):
            steps.append(int(text.split()[1]))
        elif text.startswith(VIOLATION_MARK + " "):
            # the last mark is the trail's own violation: pan's trail ends at it, and a
            # property already reported in the search (its first-report flag set there)
            # may fire again earlier on the path in the simulation, where flags start at 0
            _, kind, name = text.split(maxsplit=2)
            violation = (kind, name)
        elif text == CYCLE_MARK:
            cycle_start = len(steps)
        elif text == STUTTER_MARK:
            continue
    stutters = cycle_start is not None and cycle_start == len(steps)
    return Trail(steps, violation, None if stutters else cycle_start, stutters)


#: seconds a trail's guided simulation may take, past the check's own deadline (a run
#: cut by the time-out may still have found violations worth reporting)
SIMULATION_SECONDS = 300.0


def _simulate(directory: Path, trail: Path) -> Trail:
    deadline = time.monotonic() + SIMULATION_SECONDS
    done = _run(["spin", "-t", "-k", trail.name, "model.pml"], directory, deadline)
    return parse_trail(_checked(done, f"spin -t on {trail.name}"))


class SpinTrailError(SpinError):
    """A SPIN trail does not replay on the concrete model: the Promela interpretation
    and the concrete one disagree (a bug of this module or of the algebra)."""


# --------------------------------------------------------------------------- the check


@dataclass
class SpinViolation:
    """A violated property found by SPIN, as a concrete counterexample.

    Attributes:
        counterexample: the trail replayed on the concrete model.
        reproduced: the replay checker (:func:`replay_on_model`) confirms it.
        detail: what that check found.
        replay: where the replay file was written.
        trail: pan's trail file (gone with the temporary directory).
    """

    counterexample: Counterexample
    reproduced: bool
    detail: str
    replay: Path | None = None
    trail: str = ""

    def as_json(self) -> dict[str, Any]:
        """As the Python explorer's ``--json`` lists a violation, plus ``reproduced``."""
        cx = self.counterexample
        return {
            "property": cx.property,
            "kind": cx.kind,
            "trace_length": len(cx.steps),
            "cycle_start": cx.cycle_start,
            "replay": None if self.replay is None else str(self.replay),
            "reproduced": self.reproduced,
        }


@dataclass
class SpinReport:
    """The outcome of one check by SPIN.

    Attributes:
        spec: the declaration checked; options: how SPIN ran.
        safety: the safety run; liveness: one run per progress property.
        violations: one per violated property.
        seconds: wall time of everything (generation, compilation, runs, replays).
        generate_seconds: writing the Promela.
        safety_model_checks_deadlock: the model has a deadlock check (a spec without
            a notion of pending work has none).
        model_digest: the SHA-256 of the single-core safety model's Promela text (what
            the shards of one swarm must share; :mod:`xbdspec.explore.swarm`).
    """

    spec: Spec
    options: SpinOptions
    safety: PanRun
    liveness: list[PanRun]
    violations: list[SpinViolation]
    seconds: float
    generate_seconds: float
    version: str = ""
    safety_model_checks_deadlock: bool = True
    model_digest: str = ""

    @property
    def complete(self) -> bool:
        """The safety run visited every reachable state."""
        return self.safety.exhaustive

    @property
    def states(self) -> int:
        """The model's states: pan's states stored, less the one state the monitor
        process enters to report a deadlock (as an invalid end state)."""
        deadlocked = any(v.counterexample.kind == "deadlock" for v in self.violations)
        return self.safety.states - (1 if deadlocked else 0)

    @property
    def progress_checked(self) -> bool:
        """Every progress property was checked exhaustively."""
        return (
            bool(self.liveness)
            and len(self.liveness) == len(self.spec.progress)
            and all(r.exhaustive or r.errors > 0 for r in self.liveness)
        )

    @property
    def compile_seconds(self) -> float:
        """``spin -a`` and ``cc``, both models (the liveness runs share one ``pan``)."""
        return self.safety.compile_seconds + (
            self.liveness[0].compile_seconds if self.liveness else 0.0
        )

    def as_json(self) -> dict[str, Any]:
        """The summary object of ``xbdspec explore --engine spin --json``: the Python
        engine's keys where they mean the same, and pan's figures under ``spin``."""
        s = self.safety
        sizes = self.spec.sizes
        return {
            "engine": "spin",
            "target": "model",
            "sizes": (
                dataclasses.asdict(sizes)
                if dataclasses.is_dataclass(sizes) and not isinstance(sizes, type)
                else str(sizes)
            ),
            "symmetry": False,
            "complete": self.complete,
            "states": self.states,
            "transitions": s.transitions,
            "depth": s.depth,
            "seconds": round(self.seconds, 3),
            "search_seconds": round(s.seconds, 3),
            "compile_seconds": round(self.compile_seconds, 3),
            "states_per_second": (
                None if s.states_per_second is None else round(s.states_per_second)
            ),
            "bitstate": s.bitstate,
            "coverage_estimate": s.coverage,
            "hash_compact": s.hash_compact,
            "collision_probability": s.collision_probability,
            "progress_checked": self.progress_checked,
            "violations": [v.as_json() for v in self.violations],
            "spin": {
                "version": self.version,
                "options": {
                    k: (str(v) if isinstance(v, Path) else v)
                    for k, v in dataclasses.asdict(self.options).items()
                },
                "safety": s.as_json(),
                "liveness": [r.as_json() for r in self.liveness],
            },
        }


def check_spin(
    sizes: Sizes | None = None,
    *,
    spec: Spec | None = None,
    options: SpinOptions | None = None,
    replay_dir: Path | None = None,
    work_pending: Any = "default",
    status: Callable[[str], None] | None = None,
) -> SpinReport:
    """Check the model (``build_spec(sizes)`` unless ``spec`` is given) with SPIN:
    invariants, step properties, deadlocks and (unless ``options.progress`` is off)
    the progress properties; every trail is replayed on the concrete model.

    ``work_pending`` is passed to :func:`~xbdspec.explore.promela.generate`.
    ``status`` is called with a line before each stage (for a progress display).
    """
    options = options or SpinOptions()
    require_spin(options.cc)
    spec = spec or build_spec(sizes or Sizes())
    say = status or (lambda line: None)
    started = time.monotonic()
    deadline = started + options.timeout
    version = spin_version()
    say("generating Promela")
    safety_model = generate(
        spec, mode="safety", work_pending=work_pending, multicore=options.cores > 1
    )
    liveness_model = generate(spec, mode="liveness") if options.progress and spec.progress else None
    single_core = (
        safety_model
        if options.cores == 1
        else generate(spec, mode="safety", work_pending=work_pending)
    )
    digest = hashlib.sha256(single_core.text.encode("utf-8")).hexdigest()
    generate_seconds = time.monotonic() - started
    keep = options.work_dir
    with tempfile.TemporaryDirectory(prefix="xbdspec-spin-") as scratch:
        root = Path(keep) if keep is not None else Path(scratch)
        violations: list[SpinViolation] = []
        say("compiling the safety model")
        commands, compile_seconds = _compile(safety_model, root / "safety", options, deadline)
        say("running pan (safety)")
        safety, _ = _pan(safety_model, root / "safety", options, deadline)
        safety.commands = [*commands, *safety.commands]
        safety.compile_seconds = compile_seconds
        violations += _violations(spec, root / "safety", safety, replay_dir, len(violations))
        liveness: list[PanRun] = []
        if liveness_model is not None and time.monotonic() < deadline:
            say("compiling the liveness model")
            commands, compile_seconds = _compile(
                liveness_model, root / "liveness", dataclasses.replace(options, cores=1), deadline
            )
            for claim, prop in liveness_model.claims.items():
                if time.monotonic() >= deadline:
                    break
                say(f"running pan (progress {prop})")
                run, _ = _pan(liveness_model, root / "liveness", options, deadline, claim=claim)
                run.commands = [*commands, *run.commands]
                run.compile_seconds = compile_seconds
                liveness.append(run)
                violations += _violations(
                    spec, root / "liveness", run, replay_dir, len(violations), prop
                )
    return SpinReport(
        spec=spec,
        options=options,
        safety=safety,
        liveness=liveness,
        violations=violations,
        seconds=time.monotonic() - started,
        generate_seconds=generate_seconds,
        version=version,
        safety_model_checks_deadlock=safety_model.deadlock,
        model_digest=digest,
    )


def _violations(
    spec: Spec,
    directory: Path,
    run: PanRun,
    replay_dir: Path | None,
    numbered: int,
    progress: str | None = None,
) -> list[SpinViolation]:
    """The violations of ``run``'s trails, replayed on the concrete model."""
    found: list[SpinViolation] = []
    seen: set[str] = set()
    for path in run.trails:
        trail = _simulate(directory, path)
        if progress is not None:
            kind, name = "progress", progress
        elif trail.violation is not None:
            kind, name = trail.violation
        else:
            raise SpinTrailError(
                f"pan's trail {path.name} shows no property's mark; pan said: "
                + "; ".join(run.messages)
            )
        if name in seen:
            continue
        seen.add(name)
        violation = concretise(spec, trail, kind, name)
        if replay_dir is not None and isinstance(spec.sizes, Sizes):
            number = numbered + len(found) + 1
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
            violation.replay = write_replay(
                replay_dir / f"{number:02d}-{kind}-{safe}.jsonl",
                violation.counterexample,
                spec.sizes,
            )
        violation.trail = path.name
        found.append(violation)
    return found


def concretise(spec: Spec, trail: Trail, kind: str, name: str) -> SpinViolation:
    """The trail's steps run on the concrete model, as a counterexample of ``name``,
    checked again by the replay checker."""
    stepper = Stepper(spec)
    state = stepper.initial()
    initial = state
    steps: list[Step] = []
    for number, iid in enumerate(trail.steps, 1):
        if not 0 <= iid < len(spec.instances):
            raise SpinTrailError(f"SPIN's trail names instance {iid}, which the model has not")
        instance = spec.instances[iid]
        if not stepper.is_enabled(state, instance):
            raise SpinTrailError(
                f"step {number} of SPIN's trail, {instance.label} [{instance.transition.name}], "
                "is not enabled on the concrete model: the Promela interpretation and the "
                "concrete one disagree."
            )
        after = stepper.apply(state, instance)
        steps.append(Step(instance, state, after))
        state = after
    kind = {"invariant": "invariant", "step": "step", "deadlock": "deadlock"}.get(kind, kind)
    cx = Counterexample(name if kind != "deadlock" else DEADLOCK, kind, initial, steps)
    if kind == "progress":
        cx.cycle_start = trail.cycle_start
        cx.when_at = _when_at(spec, name, cx.states)
    try:
        outcome = replay_on_model(_replay_of(spec, cx), spec)
    except ReplayError as exc:
        # a replay names events, not transitions: where two transitions answer the same
        # event with the same parameters (a model that is not deterministic, such as a
        # seeded broken one), the replay checker takes the first and may leave the trail
        return SpinViolation(
            cx,
            False,
            f"the trail holds on the concrete model, but its replay (events, not "
            f"transitions) does not: {exc}",
        )
    return SpinViolation(cx, outcome.reproduced, outcome.detail)


def _when_at(spec: Spec, name: str, states: list[Any]) -> int | None:
    """The first state from which ``when`` holds and ``goal`` never does again."""
    prop = next(p for p in spec.progress if p.name == name)
    k = spec.sizes
    goal_later = False
    candidate: int | None = None
    for i in range(len(states) - 1, -1, -1):
        goal_later = goal_later or bool(prop.goal(states[i], k))
        if goal_later:
            break
        if prop.when(states[i], k):
            candidate = i
    return candidate


def _replay_of(spec: Spec, cx: Counterexample) -> Replay:
    """``cx`` as a loaded replay (what :func:`dumps` writes and
    :func:`~xbdspec.explore.replay.loads_replay` reads back)."""
    if isinstance(spec.sizes, Sizes):
        from .replay import loads_replay

        return loads_replay(dumps(cx, spec.sizes), "<spin trail>")
    events = tuple(
        ReplayEvent(
            s.instance.transition.event,
            {
                n: v.name if isinstance(v, enum.Enum) else v
                for n, v in s.instance.bindings.as_dict().items()
            },
            number,
        )
        for number, s in enumerate(cx.steps, 2)
    )
    return Replay(
        source="<spin trail>",
        target="model",
        sizes=cast(Sizes, spec.sizes),  # only read through ``spec`` below
        property=cx.property,
        kind=cx.kind,
        events=events,
        when_at=cx.when_at,
        cycle_start=cx.cycle_start,
    )
