"""Coverage as a target: what a campaign declares it must reach, and what it did not.

A campaign counts every model transition it saw the implementation take (the lock step
counts the path of the matching candidate, internal steps included).  Its
:class:`Targets` say which of them must fire at least once: by default every transition
of the model whose event the implementation does not refuse.  When coverage.py is
installed and the campaign is asked to (``--reference-coverage``), the reference's
branches are measured too (:class:`BranchCoverage`): every seed function ported in
``xbdspec.reference``'s driver and life cycle that the contract can reach must run,
and the report gives the branch figures of every module of the reference.

``check`` names what was not reached; ``xbdspec difftest --strict`` fails on it.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbdspec.model.declaration import Spec
from xbdspec.model.state import Sizes

from .harness import Coverage

#: Seed functions the FreeBSD contract cannot reach: ioctl (no vocabulary), detach and
#: the sysctl/feature strings (not in the model's life cycle), and helpers only a hostile
#: xenstore value or an allocation failure reaches.  (The dump path, ``dump``,
#: ``quiesce``, ``dump_complete`` and the fix's ``_take_back_dump_chunks`` and
#: ``_free_dump_grants``, is reached through the ``dump`` event.)
UNREACHABLE_FUNCTIONS: frozenset[str] = frozenset(
    {
        "ioctl",
        "detach",
        "sysctl_features",
        "feature_string",
        "setup_sysctl",
        "_fall_back_to_direct",
        "_media_size_fits",
        "_read_local",
        "_requeue_ready_bios",
        "_mapping_in_flight",
        "_response_id_valid",
        "_blkif_sector",
        "_rejected_before_a_command",
        "_bio_failed_not_held",
        "shutdown",
    }
)

#: The reference modules whose functions are targets (the seed's own functions).
FUNCTION_MODULES = ("driver.py", "lifecycle.py")


@dataclass(frozen=True)
class Targets:
    """What a campaign must reach.

    Attributes:
        transitions: model transitions that must fire at least once.
        functions: seed functions (``module:function``) that must run, when the
            reference's coverage is measured.
    """

    transitions: frozenset[str]
    functions: frozenset[str] = frozenset()

    def check(self, coverage: Coverage, branches: BranchCoverage | None) -> dict[str, Any]:
        """The targets, what was reached and what was not (``ok``: nothing missed)."""
        unreached = sorted(t for t in self.transitions if coverage.transitions.get(t, 0) == 0)
        report: dict[str, Any] = {
            "transitions": {
                "declared": len(self.transitions),
                "reached": len(self.transitions) - len(unreached),
                "unreached": unreached,
            }
        }
        missed_functions: list[str] = []
        if branches is not None:
            declared = self.functions or branches.reachable_functions()
            missed_functions = sorted(f for f in declared if f not in branches.functions_run)
            report["functions"] = {
                "declared": len(declared),
                "reached": len(declared) - len(missed_functions),
                "unreached": missed_functions,
            }
        else:
            report["functions"] = {"declared": 0, "reached": 0, "unreached": [], "measured": False}
        report["ok"] = not unreached and not missed_functions
        return report


#: Transitions no state of the model enables (not a target of any campaign), with the
#: evidence.  Told to the model's maintainers: a guard that cannot hold is a smell.
#: (``interrupt_ignored`` was one, waiting for a notification while disconnected; it is
#: now a spurious interrupt, offered while disconnected with the channel bound.)
DEAD_TRANSITIONS: dict[str, str] = {}


def default_targets(spec: Spec, refused: frozenset[str] = frozenset()) -> Targets:
    """Every model transition whose event the implementation does not refuse, less those
    only a refused event leads to (:func:`only_through`) and the dead ones
    (:data:`DEAD_TRANSITIONS`)."""
    shadow = only_through(refused) | DEAD_TRANSITIONS.keys()
    return Targets(
        frozenset(
            t.name for t in spec.transitions if t.event not in refused and t.name not in shadow
        )
    )


#: The smallest sizes: the model's whole state space is explored in seconds.
SMALL = Sizes(commands=1, bios=1, ring_slots=1, grants=1, grants_per_request=1)


@functools.cache
def only_through(refused: frozenset[str]) -> frozenset[str]:
    """Transitions of the model that fire only after an event of ``refused``.

    Both state spaces at :data:`SMALL` sizes are explored exhaustively, with every event
    and without the refused ones; what fires in the first and never in the second needs a
    refused event (``backend_follows_closing`` needs the front end to close first at
    shutdown, which the seed never does).  A transition that does not fire at these sizes
    at all (a shortage needs two commands) stays a target."""
    if not refused:
        return frozenset()
    return frozenset(_fired(frozenset()) - _fired(refused))


@functools.cache
def _fired(left_out: frozenset[str]) -> frozenset[str]:
    from xbdspec.explore.fast import FastStepper
    from xbdspec.model.concrete import Stepper
    from xbdspec.model.spec import build_spec

    spec = build_spec(SMALL)
    fast = FastStepper(spec)
    initial = Stepper(spec).initial()
    seen = {initial}
    frontier = [initial]
    fired: set[str] = set()
    while frontier:
        state = frontier.pop()
        for index, after in fast.successors(state):
            transition = fast.instances[index].transition
            if transition.event in left_out:
                continue
            fired.add(transition.name)
            if after not in seen:
                seen.add(after)
                frontier.append(after)
    return frozenset(fired)


def coverage_available() -> bool:
    """Whether coverage.py can be imported."""
    return importlib.util.find_spec("coverage") is not None


def reference_dir() -> Path:
    """The directory of ``xbdspec.reference``'s sources."""
    import xbdspec.reference as reference

    return Path(reference.__file__).resolve().parent


@dataclass
class BranchCoverage:
    """The reference's lines and branches executed during a campaign (coverage.py).

    Attributes:
        files: module file name -> coverage.py's summary (statements, branches, ...).
        functions_run: ``module:function`` of every top-level function that ran.
        functions_all: every top-level function of :data:`FUNCTION_MODULES`.
    """

    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    functions_run: set[str] = field(default_factory=set)
    functions_all: set[str] = field(default_factory=set)
    _cov: Any = None

    @classmethod
    def start(cls) -> BranchCoverage | None:
        """Start measuring (``None`` when coverage.py is not installed)."""
        if not coverage_available():
            return None
        import coverage  # type: ignore[import-not-found, unused-ignore]

        where = reference_dir()
        cov = coverage.Coverage(
            branch=True, data_file=None, include=[str(where / "*.py")], config_file=False
        )
        cov.start()
        return cls(_cov=cov)

    def stop(self) -> BranchCoverage:
        """Stop measuring and summarise."""
        cov = self._cov
        cov.stop()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "coverage.json"
            cov.json_report(outfile=str(out))
            data = json.loads(out.read_text())
        for path, info in data.get("files", {}).items():
            name = Path(path).name
            self.files[name] = info.get("summary", {})
            if name in FUNCTION_MODULES:
                executed = set(info.get("executed_lines", []))
                for function, body in _functions(Path(path)).items():
                    qualified = f"{name.removesuffix('.py')}:{function}"
                    self.functions_all.add(qualified)
                    if executed & body:
                        self.functions_run.add(qualified)
        self._cov = None
        return self

    def reachable_functions(self) -> set[str]:
        """The functions the contract can reach (all but :data:`UNREACHABLE_FUNCTIONS`)."""
        return {f for f in self.functions_all if f.split(":", 1)[1] not in UNREACHABLE_FUNCTIONS}

    def as_json(self) -> dict[str, Any]:
        """Totals, per-module figures and the functions that did not run."""
        totals = {
            key: sum(int(s.get(key, 0)) for s in self.files.values())
            for key in ("num_statements", "covered_lines", "num_branches", "covered_branches")
        }
        branches = totals["num_branches"]
        return {
            "measured": True,
            "totals": totals,
            "branch_percent": round(100 * totals["covered_branches"] / branches, 1)
            if branches
            else 0.0,
            "files": {
                name: {
                    "statements": s.get("num_statements"),
                    "covered_lines": s.get("covered_lines"),
                    "branches": s.get("num_branches"),
                    "covered_branches": s.get("covered_branches"),
                }
                for name, s in sorted(self.files.items())
            },
            "functions_not_run": sorted(self.reachable_functions() - self.functions_run),
        }

    @staticmethod
    def unavailable(asked: bool) -> dict[str, Any]:
        """The report's entry when nothing was measured, and why."""
        if not asked:
            why = "not asked for (--reference-coverage)"
        elif not coverage_available():
            why = "coverage.py is not installed in this environment"
        else:
            why = "the implementation is not the in-process reference"
        return {"measured": False, "why": why}


def _functions(path: Path) -> dict[str, set[int]]:
    """Top-level function name -> the line numbers of its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: dict[str, set[int]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            first = node.body[0]
            # skip the docstring: a function ran when a statement of its body did
            start_node = (
                node.body[1]
                if len(node.body) > 1
                and isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                else first
            )
            end = node.end_lineno or start_node.lineno
            out[node.name] = set(range(start_node.lineno, end + 1))
    return out
