"""Mutation testing of the reference's request path, killed by the differential test.

A small, dependency-free mutation engine (in the spirit of ``mutmut``): each mutant
changes one operator, constant or call statement in one function of
``xbdspec.reference.driver`` (the command processing: freeze and thaw, the queues,
``xbd_bio_command``, ``xbd_startio``, ``xbd_queue_cb``, ``xbd_int``, completions, the disk
entry points).  The mutated module source is executed into the driver module's
namespace and every ``from .driver import f`` copy elsewhere in the reference is
re-pointed, so the mutant runs in process; afterwards the original is restored.

A mutant is *killed* when the differential test's verdict on some program of a short
seeded campaign changes (:data:`CAMPAIGNS`: a divergence appears, disappears or differs),
or when it crashes or hangs the harness; otherwise it *survives* and is listed for
examination (many survivors are equivalent mutants: a change the model cannot observe,
such as a log line, a sector number or the handling of a hostile back end's reply).
"""

from __future__ import annotations

import ast
import random
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType, FunctionType, ModuleType
from typing import Any

from xbdspec.reference import driver

from .harness import Divergence, LockStep
from .program import FULL, SEED_SAFE, random_walk
from .reference_adapter import ReferenceImplementation, reference_sizes

#: The driver functions mutated (the request path; dump support is not modelled).
TARGETS = (
    "freeze",
    "thaw",
    "cm_freeze",
    "cm_thaw",
    "flush_requests",
    "free_command",
    "queue_cb",
    "queue_request",
    "restart_queue_callback",
    "bio_command",
    "startio",
    "bio_complete",
    "int_",
    "open_",
    "close",
    "strategy",
)

_COMPARE_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BINOP_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}


@dataclass(frozen=True)
class Mutant:
    """One mutation: ``site`` numbers it within ``function``; ``description`` says what."""

    function: str
    site: int
    line: int
    description: str


class _Mutator(ast.NodeTransformer):
    """Counts mutation sites in a function; mutates the one numbered ``target``."""

    def __init__(self, target: int = -1) -> None:
        self.target = target
        self.count = 0
        self.found: list[tuple[int, str]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        # the body only: annotations are never evaluated (postponed annotations)
        node.body = [self.visit(statement) for statement in node.body]
        return node

    def _site(self, node: ast.AST, description: str) -> bool:
        index = self.count
        self.count += 1
        self.found.append((getattr(node, "lineno", 0), description))
        return index == self.target

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        op = type(node.ops[0])
        if op in _COMPARE_SWAP and self._site(
            node, f"{op.__name__} -> {_COMPARE_SWAP[op].__name__}"
        ):
            node.ops = [_COMPARE_SWAP[op](), *node.ops[1:]]
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        op = type(node.op)
        if op in _BINOP_SWAP and self._site(node, f"{op.__name__} -> {_BINOP_SWAP[op].__name__}"):
            node.op = _BINOP_SWAP[op]()
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        swap = ast.Or if isinstance(node.op, ast.And) else ast.And
        if self._site(node, f"{type(node.op).__name__} -> {swap.__name__}"):
            node.op = swap()
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) and self._site(node, "not x -> x"):
            return node.operand
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            if self._site(node, f"{value} -> {not value}"):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, int) and self._site(node, f"{value} -> {value + 1}"):
            return ast.copy_location(ast.Constant(value + 1), node)
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.value, ast.Call) and self._site(
            node, f"drop call {ast.unparse(node.value)[:40]}"
        ):
            return ast.copy_location(ast.Pass(), node)
        return node


def _source() -> str:
    with open(driver.__file__, encoding="utf-8") as handle:
        return handle.read()


def mutants() -> list[Mutant]:
    """Every mutant of the target functions, in source order."""
    tree = ast.parse(_source())
    out: list[Mutant] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in TARGETS:
            counter = _Mutator()
            counter.visit(node)
            out += [Mutant(node.name, i, line, d) for i, (line, d) in enumerate(counter.found)]
    return out


def _mutated_module_code(mutant: Mutant) -> Any:
    tree = ast.parse(_source())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == mutant.function:
            _Mutator(mutant.site).visit(node)
    ast.fix_missing_locations(tree)
    return compile(tree, driver.__file__, "exec")


def _reference_modules() -> list[ModuleType]:
    return [
        m
        for name, m in sys.modules.items()
        if name.startswith("xbdspec.reference") and m is not None
    ]


class _Installed:
    """Run a mutant: the driver's namespace replaced, copies re-pointed; undone on exit."""

    def __init__(self, mutant: Mutant | None) -> None:
        self.mutant = mutant
        self.saved: dict[str, Any] = {}
        self.repointed: list[tuple[ModuleType, str, Any]] = []

    def __enter__(self) -> None:
        if self.mutant is None:
            return
        namespace = driver.__dict__
        self.saved = dict(namespace)
        old_functions = {id(v): k for k, v in namespace.items() if isinstance(v, FunctionType)}
        exec(_mutated_module_code(self.mutant), namespace)  # the mutant under test
        for module in _reference_modules():
            if module is driver:
                continue
            for attr, value in list(vars(module).items()):
                name = old_functions.get(id(value))
                if name is not None and name in namespace:
                    self.repointed.append((module, attr, value))
                    setattr(module, attr, namespace[name])

    def __exit__(self, *exc: object) -> None:
        if self.mutant is None:
            return
        namespace = driver.__dict__
        namespace.clear()
        namespace.update(self.saved)
        for module, attr, value in self.repointed:
            setattr(module, attr, value)


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Timeout


#: (profile, size variant) pairs each mutant is run under: the seed-safe profile runs
#: past the known findings; the full one reaches their paths; the grant-shortage sizes
#: reach the grant callback.
CAMPAIGNS = (
    (SEED_SAFE, "command-shortage"),
    (FULL, "command-shortage"),
    (SEED_SAFE, "grant-shortage"),
    (FULL, "ring-full"),
)

Verdict = tuple[Any, ...] | None


def _signature(d: Divergence | None) -> Verdict:
    if d is None:
        return None
    return (
        d.kind,
        len(d.steps),
        tuple(sorted(d.differences.items())),
        d.fault,
        tuple(d.invariants),
    )


def verdicts(programs: int) -> list[Verdict]:
    """The harness's verdict on every program of every campaign (in order)."""
    out: list[Verdict] = []
    for profile, variant in CAMPAIGNS:
        impl = ReferenceImplementation()
        lock = LockStep(impl, reference_sizes(variant))
        for i in range(programs):
            result = random_walk(impl, lock, random.Random(f"mutant:{i}"), 50, profile)
            out.append(_signature(result.divergence))
    return out


_baseline: dict[int, list[Verdict]] = {}


def killed(mutant: Mutant | None, programs: int = 15, seconds: int = 30) -> tuple[bool, str]:
    """Whether the differential test's verdict on some program changes under ``mutant``
    (``None``: the unmutated reference, which cannot be killed), and how.

    The criterion is the verdict, not "a new divergence": a mutant in a path the seed
    already gets wrong (a known finding) is killed when it changes what goes wrong.
    """
    if programs not in _baseline:
        _baseline[programs] = verdicts(programs)
    expected = _baseline[programs]
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        with _Installed(mutant):
            got = verdicts(programs)
        for index, (want, have) in enumerate(zip(expected, got, strict=True)):
            if want != have:
                profile, variant = CAMPAIGNS[index // programs]
                what = "no divergence" if have is None else f"{have[0]} at event {have[1]}"
                return True, f"{profile.name}/{variant} program {index % programs}: {what}"
        return False, "survived"
    except _Timeout:
        return True, "timeout (the mutant loops)"
    except Exception as exc:  # any crash of the harness kills the mutant
        return True, f"crash: {type(exc).__name__}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_sample(count: int, seed: int = 0) -> Iterator[tuple[Mutant, bool, str]]:
    """``count`` mutants drawn at random (seeded), each with its verdict."""
    pool = mutants()
    chosen = random.Random(seed).sample(pool, min(count, len(pool)))
    for mutant in sorted(chosen, key=lambda m: (m.line, m.site)):
        kill, how = killed(mutant)
        yield mutant, kill, how
