"""Mutation testing of the reference, killed by the differential test.

A small, dependency-free mutation engine (in the spirit of ``mutmut``; its own because a
mutant must run *in process* under the lock step, with the seed's known findings told
apart from new divergences, which an external runner's "tests failed" cannot say): each
mutant changes one operator, constant or call statement in one function of
``xbdspec.reference.driver`` (the command processing: freeze and thaw, the queues,
``xbd_bio_command``, ``xbd_startio``, ``xbd_queue_cb``, ``xbd_int``, completions, the disk
entry points) or ``xbdspec.reference.lifecycle`` (negotiation, connect, suspend and
resume, the back end's state changes).  The mutated module source is executed into the
module's namespace and every ``from .module import f`` copy elsewhere in the reference
is re-pointed, so the mutant runs in process; afterwards the original is restored.

Two criteria:

* :func:`campaign_kill` (what ``make bench`` reports): the mutant is killed when **the
  default campaign** (``xbdspec difftest --contract freebsd --impl reference``: the
  sweep, the full profile, :data:`DEFAULT_EXAMPLES` programs) reports a *new* divergence,
  exactly as a user would see it (exit status 1), or the harness crashes or hangs; the
  campaign stops at the first new divergence and the time to it is recorded; a
  survivor is then tried by the protocol contract's default campaign
  (:func:`protocol_kill`) and the findings audit's seed replays (:func:`findings_kill`:
  a mutant that behaves as a known finding's fix), as ``make verify`` runs all three;
* :func:`killed` (older, finer): the harness's verdict on some program of four short
  campaigns changes.

A mutant inside a branch only a fix takes (``if fixes.<name>:``) cannot change the
seed's behaviour: it is *fix-only* (equivalent for the seed, counted apart).  Survivors
judged equivalent by reading are listed in :data:`EQUIVALENT` with the reason.
"""

from __future__ import annotations

import ast
import random
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType, FunctionType, ModuleType
from typing import Any

from xbdspec.reference import driver, lifecycle

from .campaign import Campaign
from .harness import Divergence, LockStep
from .program import FULL, SEED_SAFE, random_walk
from .reference_adapter import ReferenceImplementation, reference_sizes
from .sweep import REFERENCE_SWEEP

#: The driver functions mutated (the request path, and the dump path the contract now takes).
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
    "quiesce",
    "dump_complete",
    "dump",
    "_take_back_dump_chunks",
    "_free_dump_grants",
)

#: The life-cycle functions mutated (attach and detach, sysctl and the disk's
#: properties are left out: the contract does not observe them).
LIFECYCLE_TARGETS = (
    "alloc_ring",
    "free_ring",
    "free",
    "initialize",
    "connect",
    "closing",
    "suspend",
    "suspend_continue",
    "_suspend_wait",
    "_suspend_finish",
    "resume",
    "_fail_queued_bios",
    "backend_changed",
)

#: module name (under ``xbdspec.reference``) -> the functions mutated there
MODULE_TARGETS: dict[str, tuple[str, ...]] = {
    "driver": TARGETS,
    "lifecycle": LIFECYCLE_TARGETS,
}
_MODULES: dict[str, ModuleType] = {"driver": driver, "lifecycle": lifecycle}

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
    """One mutation: ``site`` numbers it within ``function``; ``description`` says what.

    Attributes:
        fix_only: the site lies in a branch only an opt-in fix takes: the seed never
            runs it (equivalent for the seed's behaviour).
        module: the reference module (``driver`` or ``lifecycle``).
    """

    function: str
    site: int
    line: int
    description: str
    fix_only: bool = False
    module: str = "driver"

    @property
    def key(self) -> str:
        """A name that survives edits elsewhere in the file (no line number)."""
        return f"{self.module}.{self.function}#{self.site} {self.description}"


def _mentions_fix(test: ast.expr) -> bool:
    """``test`` is ``<...>.fixes.<name>`` or an ``and`` of tests one of which is."""
    if isinstance(test, ast.Attribute) and isinstance(test.value, ast.Attribute | ast.Name):
        inner = test.value
        name = inner.attr if isinstance(inner, ast.Attribute) else inner.id
        return name == "fixes"
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(_mentions_fix(v) for v in test.values)
    return False


class _Mutator(ast.NodeTransformer):
    """Counts mutation sites in a function; mutates the one numbered ``target``."""

    def __init__(self, target: int = -1) -> None:
        self.target = target
        self.count = 0
        self.found: list[tuple[int, str, bool]] = []
        self.fix_depth = 0

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        # the body only: annotations are never evaluated (postponed annotations)
        node.body = [self.visit(statement) for statement in node.body]
        return node

    def visit_If(self, node: ast.If) -> ast.AST:
        node.test = self.visit(node.test)
        fix = _mentions_fix(node.test)
        self.fix_depth += fix
        node.body = [self.visit(statement) for statement in node.body]
        self.fix_depth -= fix
        node.orelse = [self.visit(statement) for statement in node.orelse]
        return node

    def _site(self, node: ast.AST, description: str) -> bool:
        index = self.count
        self.count += 1
        self.found.append((getattr(node, "lineno", 0), description, self.fix_depth > 0))
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


def _source(module: str = "driver") -> str:
    path = _MODULES[module].__file__
    assert path is not None
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def mutants(modules: tuple[str, ...] = ("driver",)) -> list[Mutant]:
    """Every mutant of the target functions of ``modules``, in source order."""
    out: list[Mutant] = []
    for module in modules:
        tree = ast.parse(_source(module))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in MODULE_TARGETS[module]:
                counter = _Mutator()
                counter.visit(node)
                out += [
                    Mutant(node.name, i, line, d, fix, module)
                    for i, (line, d, fix) in enumerate(counter.found)
                ]
    return out


def _mutated_module_code(mutant: Mutant) -> Any:
    tree = ast.parse(_source(mutant.module))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == mutant.function:
            _Mutator(mutant.site).visit(node)
    ast.fix_missing_locations(tree)
    return compile(tree, _MODULES[mutant.module].__file__ or "<mutant>", "exec")


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
        self.drivers: dict[str, Any] = {}

    def __enter__(self) -> None:
        if self.mutant is None:
            return
        from xbdspec.reference import platform

        # running the module again registers its (mutated) device methods with the bus
        # (DRIVER_MODULE): the registry is put back on exit with the namespace
        self.drivers = dict(platform.DRIVERS)
        target = _MODULES[self.mutant.module]
        namespace = target.__dict__
        self.saved = dict(namespace)
        old_functions = {id(v): k for k, v in namespace.items() if isinstance(v, FunctionType)}
        exec(_mutated_module_code(self.mutant), namespace)  # the mutant under test
        # only functions are mutated: the module's classes and other objects stay the
        # ones the rest of the reference and the adapter hold (a SuspendSleep made by a
        # mutant must still be a SuspendSleep to the adapter)
        for binding, value in self.saved.items():
            if not isinstance(value, FunctionType) and binding in namespace:
                namespace[binding] = value
        for module in _reference_modules():
            if module is target:
                continue
            for attr, value in list(vars(module).items()):
                replaced = old_functions.get(id(value))
                if replaced is not None and replaced in namespace:
                    self.repointed.append((module, attr, value))
                    setattr(module, attr, namespace[replaced])

    def __exit__(self, *exc: object) -> None:
        if self.mutant is None:
            return
        from xbdspec.reference import platform

        namespace = _MODULES[self.mutant.module].__dict__
        namespace.clear()
        namespace.update(self.saved)
        for module, attr, value in self.repointed:
            setattr(module, attr, value)
        platform.DRIVERS.clear()
        platform.DRIVERS.update(self.drivers)


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


#: The default campaign's programs (``xbdspec difftest``'s default) and its seed here.
DEFAULT_EXAMPLES = 200
DEFAULT_SEED = 1


@dataclass(frozen=True)
class CampaignVerdict:
    """What the default campaign made of one mutant.

    Attributes:
        killed: a new divergence was reported (or the harness crashed or hung).
        how: the first new divergence's signature key, or why it counts as killed.
        seconds / events: to the first new divergence (``None``: none).
    """

    killed: bool
    how: str
    seconds: float | None = None
    events: int | None = None


_baseline_keys: dict[tuple[int, int], frozenset[str]] = {}


def baseline_keys(examples: int = DEFAULT_EXAMPLES, seed: int = DEFAULT_SEED) -> frozenset[str]:
    """The new-divergence signatures the unmutated seed already shows in the default
    campaign (seed divergences no catalogued signature claims yet): a mutant is killed by
    a new divergence outside them."""
    if (examples, seed) not in _baseline_keys:
        campaign = Campaign(
            ReferenceImplementation,
            REFERENCE_SWEEP[0].sizes,
            FULL,
            seed,
            60,
            None,
            configurations=REFERENCE_SWEEP,
        )
        campaign.run(examples=examples)
        _baseline_keys[(examples, seed)] = frozenset(
            k for k, (d, *_) in campaign.divergences.items() if d.finding is None
        )
    return _baseline_keys[(examples, seed)]


#: programs of the protocol contract's campaign (``xbdspec difftest --impl reference``)
PROTOCOL_PROGRAMS = 300

_protocol_baseline: dict[tuple[int, int], frozenset[str]] = {}


class _FirstNew(Exception):
    """Stops a protocol campaign at its first violation the unmutated seed does not show."""

    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule


def _protocol_campaign(
    programs: int, seed: int, expected: frozenset[str] | None
) -> tuple[frozenset[str], int]:
    """The protocol contract's default campaign on the reference (the registry's
    ``reference`` target: its shape and back-end sweep): the signatures of the violations
    no documented finding claims, and the events run.  With ``expected``, it stops at
    the first signature outside it (:class:`_FirstNew`)."""
    from xbdspec.world.campaign import campaign, signature
    from xbdspec.world.registry import load

    target = load("reference")
    found: set[str] = set()

    def note(finding: Any) -> None:
        config = finding.config or target.config
        if target.known is not None and target.known(finding.rule, config) is not None:
            return
        key = signature(finding.rule)
        found.add(key)
        if expected is not None and key not in expected:
            raise _FirstNew(finding.rule)

    try:
        report = campaign(
            target.maker,
            seed,
            programs,
            target.shape,
            target.config,
            per_program=target.per_program,
            vary=target.vary,
            on_finding=note,
            shrink_findings=0,
        )
    finally:
        target.close()
    return frozenset(found), report.events


def protocol_baseline(
    programs: int = PROTOCOL_PROGRAMS, seed: int = DEFAULT_SEED
) -> frozenset[str]:
    """The violations of the protocol contract no documented finding claims that the
    unmutated seed already shows (a mutant is killed by one outside them)."""
    if (programs, seed) not in _protocol_baseline:
        _protocol_baseline[(programs, seed)] = _protocol_campaign(programs, seed, None)[0]
    return _protocol_baseline[(programs, seed)]


def protocol_kill(
    mutant: Mutant | None, programs: int = PROTOCOL_PROGRAMS, seed: int = DEFAULT_SEED
) -> CampaignVerdict:
    """Run the protocol contract's default campaign (``xbdspec difftest --impl
    reference``: the world's back end, grants, event channels and xenstore, the
    protocol model's rules) with ``mutant`` installed: killed by a violation the
    unmutated seed does not show, or a crash of the harness.  It sees what the FreeBSD
    model's fields do not: grants and pages left behind, the ring torn down, xenstore
    keys, the data on the disk."""
    expected = protocol_baseline(programs, seed)
    start = time.perf_counter()
    try:
        with _Installed(mutant):
            _protocol_campaign(programs, seed, expected)
    except _FirstNew as new:
        return CampaignVerdict(True, f"protocol: {new.rule[:120]}", time.perf_counter() - start)
    except _Timeout:
        raise
    except Exception as exc:  # any crash of the harness kills the mutant
        return CampaignVerdict(True, f"protocol crash: {type(exc).__name__}: {str(exc)[:80]}")
    return CampaignVerdict(False, "survived")


def _findings_outcomes() -> dict[str, tuple[bool, str | None, bool, bool]]:
    """Each catalogued finding's replay as ``xbdspec findings`` (the audit ``make
    verify`` runs) judges it: on the seed's behaviour (clean, the finding the classifier
    names, the documented violation shown) and with the finding's fix (clean: the
    audit's *fixed* column, which exercises the fix's code, e.g. the dump's take-back of
    its chunks on ``EBUSY``)."""
    from xbdspec.findings.audit import fixes_for
    from xbdspec.findings.catalogue import FINDINGS
    from xbdspec.findings.replay import kind_of, replay
    from xbdspec.reference.platform import Fixes

    out: dict[str, tuple[bool, str | None, bool, bool]] = {}
    for finding in FINDINGS:
        if kind_of(finding.name) is None:
            continue
        outcome = replay(finding.name, Fixes())
        shows = bool(finding.shows) and finding.shows in (outcome.violation or "")
        fixed = replay(finding.name, fixes_for(finding))
        out[finding.name] = (outcome.clean, outcome.classified_as, shows, fixed.clean)
    return out


_findings_baseline: dict[str, tuple[bool, str | None, bool, bool]] = {}


def findings_kill(mutant: Mutant | None) -> CampaignVerdict:
    """Replay every documented finding on the seed and with its fix, ``mutant``
    installed (the findings audit of ``make verify``, its seed and fixed columns):
    killed when a finding's replay no longer reproduces as documented (it runs clean, is
    classified as another finding, or no longer shows its violation), its fix no longer
    makes it run clean, or the replay crashes.  It sees a
    mutant that behaves as a fix of a known finding, which no campaign can: a campaign
    reports only divergences the seed does not already show."""
    if not _findings_baseline:
        _findings_baseline.update(_findings_outcomes())
    start = time.perf_counter()
    try:
        with _Installed(mutant):
            got = _findings_outcomes()
    except _Timeout:
        raise
    except Exception as exc:  # any crash of the replay kills the mutant
        return CampaignVerdict(True, f"findings crash: {type(exc).__name__}: {str(exc)[:80]}")
    for name, want in _findings_baseline.items():
        if got.get(name) != want:
            return CampaignVerdict(
                True, f"findings: {name} {want} -> {got.get(name)}", time.perf_counter() - start
            )
    return CampaignVerdict(False, "survived")


def campaign_kill(
    mutant: Mutant | None,
    examples: int = DEFAULT_EXAMPLES,
    seed: int = DEFAULT_SEED,
    seconds: int = 120,
) -> CampaignVerdict:
    """Run the default campaigns on the reference with ``mutant`` installed (``None``:
    unmutated, never killed): the FreeBSD refinement's (sweep, full profile, stopping
    at the first new divergence the unmutated seed does not show), then, if the mutant
    survived it, the protocol contract's (:func:`protocol_kill`), then the findings
    audit's replays (:func:`findings_kill`), as ``make verify`` runs all three."""
    verdict = _freebsd_kill(mutant, examples, seed, seconds)
    if verdict.killed or mutant is None:
        return verdict
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        verdict = protocol_kill(mutant, seed=seed)
        if verdict.killed:
            return verdict
        return findings_kill(mutant)
    except _Timeout:
        return CampaignVerdict(True, "protocol or findings: timeout (the mutant loops)")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _freebsd_kill(mutant: Mutant | None, examples: int, seed: int, seconds: int) -> CampaignVerdict:
    """The FreeBSD refinement's default campaign on ``mutant`` (see :func:`campaign_kill`)."""
    expected = baseline_keys(examples, seed)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        with _Installed(mutant):
            campaign = Campaign(
                ReferenceImplementation,
                REFERENCE_SWEEP[0].sizes,
                FULL,
                seed,
                60,
                None,
                configurations=REFERENCE_SWEEP,
                first=True,
                expected=expected,
            )
            campaign.run(examples=examples)
        first = campaign.first_new
        if first is None:
            return CampaignVerdict(False, "survived")
        return CampaignVerdict(True, str(first["signature"]), first["seconds"], first["events"])
    except _Timeout:
        return CampaignVerdict(True, "timeout (the mutant loops)")
    except Exception as exc:  # any crash of the harness kills the mutant
        return CampaignVerdict(True, f"crash: {type(exc).__name__}: {str(exc)[:80]}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


#: Why a survivor is equivalent, by kind (:data:`EQUIVALENT` names one for each mutant).
_WHY: dict[str, str] = {
    "alloc_or_input": (
        "an error path of a xenstore read or write, an allocation, a grant or an invalid "
        "back-end value (sector size, segments, requests, ring pages), none of which an "
        "event of the contract makes happen (scenarios with hostile or failing platform "
        "inputs cover them)"
    ),
    "resize": (
        "the resize path of xbd_connect (Connected seen again while connected): the back "
        "end's size never changes in the contract, so the path returns having changed "
        "nothing"
    ),
    "setup": (
        "a detail of the shadow's set-up that the contract's sizes make equivalent: at "
        "most one indirection page, the readonly argument's truthiness, sg_refs' initial "
        "values (overwritten before use), a command counter only a fix reads, the DMA "
        "tag's parameters"
    ),
    "reinit": (
        "xbd_initialize already ran when the back end was InitWait or Initialised, and it"
        " returns at once when not Initialising; the model's back end always passes one "
        "of them before Connected"
    ),
    "open_flag": (
        "XBDF_OPEN is set and cleared but never read by the driver, and the model has no "
        "such field (it counts users)"
    ),
    "final_check": (
        "both branches leave rsp_event at rsp_cons + 1; the final check only matters for "
        "a response published while xbd_int runs, which no event of the contract "
        "interleaves"
    ),
    "unlocked_callback": (
        "the adapter runs grant free callbacks outside the I/O lock (the grants_returned "
        "event), so mtx_owned is false there and the test is false either way"
    ),
    "valid_ids": (
        "with the fix off the test is `not _response_id_valid(id)`, false for every id "
        "the modelled back end answers (it answers only ids it was sent)"
    ),
    "log": (
        "logging only (printf, disk_err, device_printf, a message's text): the kernel "
        "log is no observation of the contract"
    ),
    "zero": ("offset - 0 is offset + 0: REQ_OPERATION and IND_OPERATION are 0"),
    "handle": (
        "the request's handle is the low 16 bits of the disk structure's address, 0 in "
        "the simulation (back ends ignore it: rejected request-handle-low-bits): "
        "computing 0, not writing it, or writing its two zero bytes 2 or 24 bytes early "
        "(into the unused tail of the slot before) changes no byte a back end reads"
    ),
    "assert": ("mtx_assert_owned: every caller of xbd_startio holds xbd_io_lock"),
    "queued": (
        "only whether queued is 0 matters, and flush_requests with nothing newly "
        "written pushes nothing and notifies no one"
    ),
    "fixoff": (
        "the test is `fixes.<fix> and ...`: with the fix off (the seed) it is false "
        "whatever the mutated operand"
    ),
    "deferred": (
        "deferred is read only by the fix mapping-failure-stops-loop's test (`fixes... "
        "and deferred`), false on the seed whatever deferred is"
    ),
    "capacity": (
        "a bound the contract's sizes never near: one indirection page (ncopy 1, at "
        "most 8), 32 segments in a 512-entry page"
    ),
    "tag": ("a guard against a NULL DMA tag or map, which xbd_connect always creates"),
    "dump_length": (
        "xbd_dump's length is a whole number of sectors (the kernel dumper writes "
        "blocks of the disk's sector size, and so does the adapter's dumper): "
        "`length > 0` and `length > 1` agree on every multiple of 512"
    ),
    "dump_chunk": (
        "`length > xbd_max_request_size ? max : length` and `length >= max ? max : "
        "length` choose the same chunk: they differ only at length == max, where "
        "both are max"
    ),
    "defret": (
        "the return after a deferred load: the command holds the queue (ASYNC_MAPPING), "
        "so xbd_startio's loop ends at its next test anyway; a non-zero return ends it "
        "one test earlier, and the flush it then skips has nothing written to push"
    ),
    "sync": (
        "bus_dma sync operations and the map's loaded/destroyed marks: the simulated "
        "bus_dma needs none of them and the contract observes no data"
    ),
    "notify": (
        "the notification of the back end: the FreeBSD model's back end polls the ring "
        "and is never notified (refinement HIDDEN: evt_to_back); the protocol contract "
        "checks notifications"
    ),
    "hostile": (
        "the guard and report of a response naming no command: the modelled back end "
        "answers only ids it was sent (a hostile back end is the protocol contract's "
        "business: finding response-id-trusted)"
    ),
    "nodrv": ("a disk with no softc (d_drv1 NULL): the contract's disk always has one"),
    "freeze": (
        "freeze's early return for a flag already set: every caller freezes a flag only "
        "while it is clear, so the mutant's missing early return is never needed"
    ),
    "owib": (
        "only for an ordered write needing indirect segments, which the adapter never "
        "submits (it caps ordered writes at ten pages: ordered-write-indirect-barrier)"
    ),
    "alloc": (
        "the error path of an allocation, a grant or a xenstore write that no event of "
        "the contract fails (an allocation-failure scenario's business)"
    ),
    "fixcall": (
        "_fail_queued_bios is called only from branches an opt-in fix takes (xbd_detach "
        "with resume-loses-ready-write, _fail_outstanding, xbd_backend_changed with "
        "stranded-bios-on-disk-gone): the seed never runs it"
    ),
    "frozen_restart": (
        "on the seed a failed deferred mapping leaves the queue frozen (its cm_thaw is "
        "the failed-mapping-leaks fix's), so the xbd_startio the mutant adds breaks at "
        "its first test and queues nothing"
    ),
    "spurious_wakeup": (
        "an extra wakeup of xbd_suspend's sleeper: it re-tests the busy queue and sleeps "
        "again while anything is busy, and the completion that empties the busy queue "
        "wakes it anyway (xbd_int while SUSPENDED)"
    ),
    "resid": (
        "bio_resid: the contract observes a bio's error and its completions, not the residual count"
    ),
    "shadow_len": (
        "xbd_free's loop runs over xbd_max_requests, which equals len(xbd_shadow) "
        "whenever the shadow exists: xbd_connect builds that many commands, and "
        "xbd_initialize, the only writer of xbd_max_requests, runs only from "
        "Initialising, after xbd_free dropped the shadow"
    ),
    "dropped_shadow": (
        "the commands' sg_refs are cleared just before the shadow array itself is "
        "dropped (sc.xbd_shadow = None): nothing reaches them afterwards"
    ),
    "overwritten": (
        "xbd_ring_pages is set to 1 and overwritten by 1 << max_ring_page_order before "
        "anything reads it"
    ),
    "bound": (
        "the port when no interrupt handle is bound: xbd_alloc_ring returns an error "
        "(and xbd_initialize with it) unless the port was bound"
    ),
    "closing_write": (
        "xbd_closing writes Closing and then Closed in one handler; the back end's watch "
        "runs after it and reads the node's value then: Closed either way (a watch event "
        "names the path, not the value)"
    ),
    "first_call": (
        "first and timed_out are read only together (`not first and timed_out`), which "
        "is false for xbd_suspend's call whichever of the two is mutated"
    ),
    "clamp": (
        "the clamp of a ring of no pages: the ring's pages come from an order (1 << "
        "order), at least 1"
    ),
}

#: Survivors judged equivalent by reading: ``Mutant.key`` -> why no observation the
#: contract defines can tell the mutant from the seed.
EQUIVALENT: dict[str, str] = {
    "lifecycle.connect#72 drop call xenbus_dev_fatal(dev, err, 'Cannot alloc": (
        "only reached when bus_dma_tag_create fails, which no event of the contract makes "
        "happen (an allocation-failure scenario's business, not a program's)"
    ),
    "driver.bio_command#23 And -> Or": _WHY["owib"],
    "driver.bio_complete#2 drop call sc.platform.disk_err(bp, 'disk error')": _WHY["log"],
    "driver.bio_complete#3 4294967295 -> 4294967296": _WHY["log"],
    "driver.bio_complete#4 BitAnd -> BitOr": _WHY["log"],
    "driver.bio_complete#5 drop call sc.platform.printf(f' status: {cm.cm_sta": _WHY["log"],
    "driver.close#4 0 -> 1": _WHY["fixoff"],
    "driver.close#5 Eq -> NotEq": _WHY["fixoff"],
    "driver.flush_requests#0 IsNot -> Is": _WHY["notify"],
    "driver.flush_requests#1 And -> Or": _WHY["notify"],
    "driver.flush_requests#2 drop call sc.platform.evtchn.signal_backend()": _WHY["notify"],
    "driver.free_command#2 BitAnd -> BitOr": _WHY["log"],
    "driver.freeze#0 NotEq -> Eq": _WHY["freeze"],
    "driver.dump#8 0 -> 1": _WHY["dump_length"],
    "driver.dump#13 drop call platform.device_printf(dev, 'dump: no mo": _WHY["log"],
    "driver.dump#19 drop call platform.device_printf(dev, 'no more gra": _WHY["log"],
    "driver.dump#20 Gt -> GtE": _WHY["dump_chunk"],
    "driver.dump#30 drop call platform.device_printf(dev, f'Dump I/O f": _WHY["log"],
    "driver.int_#14 GtE -> Gt": _WHY["hostile"],
    "driver.int_#15 Or -> And": _WHY["hostile"],
    "driver.int_#16 Is -> IsNot": _WHY["hostile"],
    "driver.int_#17 0 -> 1": _WHY["hostile"],
    "driver.int_#25 Eq -> NotEq": _WHY["sync"],
    "driver.int_#26 0 -> 1": _WHY["sync"],
    "driver.int_#27 IsNot -> Is": _WHY["sync"],
    "driver.int_#28 False -> True": _WHY["sync"],
    "driver.int_#46 drop call xenbus_dev_fatal(_dev(sc, 'xbd_int'), EI": _WHY["hostile"],
    "driver.int_#6 not x -> x": _WHY["fixoff"],
    "driver.open_#1 IsNot -> Is": _WHY["nodrv"],
    "driver.open_#2 drop call dp.platform.printf(f'xbd{dp.d_unit}: not": _WHY["nodrv"],
    "driver.queue_cb#17 IsNot -> Is": _WHY["handle"],
    "driver.queue_cb#18 0 -> 1": _WHY["handle"],
    "driver.queue_cb#2 BitAnd -> BitOr": _WHY["deferred"],
    "driver.queue_cb#25 Add -> Sub": _WHY["zero"],
    "driver.queue_cb#29 Add -> Sub": _WHY["handle"],
    "driver.queue_cb#3 0 -> 1": _WHY["deferred"],
    "driver.queue_cb#30 drop call U16.pack_into(buf, offset + REQ_HANDLE, ": _WHY["handle"],
    "driver.queue_cb#37 Add -> Sub": _WHY["zero"],
    "driver.queue_cb#4 NotEq -> Eq": _WHY["deferred"],
    "driver.queue_cb#43 Add -> Sub": _WHY["handle"],
    "driver.queue_cb#44 drop call U16.pack_into(buf, offset + IND_HANDLE, ": _WHY["handle"],
    "driver.queue_cb#48 8 -> 9": _WHY["capacity"],
    "driver.queue_cb#50 8 -> 9": _WHY["capacity"],
    "driver.queue_cb#51 Gt -> GtE": _WHY["capacity"],
    "driver.queue_cb#56 Eq -> NotEq": _WHY["sync"],
    "driver.queue_cb#57 Eq -> NotEq": _WHY["sync"],
    "driver.queue_cb#58 Eq -> NotEq": _WHY["sync"],
    "driver.queue_cb#59 And -> Or": _WHY["sync"],
    "driver.queue_cb#60 Or -> And": _WHY["sync"],
    "driver.queue_cb#61 0 -> 1": _WHY["sync"],
    "driver.queue_cb#62 IsNot -> Is": _WHY["sync"],
    "driver.queue_cb#9 Eq -> NotEq": _WHY["fixoff"],
    "driver.queue_request#2 Or -> And": _WHY["tag"],
    "driver.queue_request#6 0 -> 1": _WHY["defret"],
    "driver.startio#0 drop call mtx_assert_owned(sc.xbd_io_lock)": _WHY["assert"],
    "driver.startio#15 drop call sc.platform.printf(f'xbd_queue_request r": _WHY["log"],
    "driver.startio#16 1 -> 2": _WHY["queued"],
    "driver.startio#2 0 -> 1": _WHY["queued"],
    "driver.strategy#2 Is -> IsNot": _WHY["nodrv"],
    "driver.strategy#3 drop call disk.platform.biodone(bp)": _WHY["nodrv"],
    "lifecycle.alloc_ring#0 drop call xenbus_dev_fatal(dev, ENOMEM, 'allocatin": _WHY["alloc"],
    "lifecycle.alloc_ring#10 drop call xenbus_dev_fatal(dev, error, 'xen_intr_a": _WHY["alloc"],
    "lifecycle.alloc_ring#4 drop call xenbus_dev_fatal(dev, error, f'granting ": _WHY["alloc"],
    "lifecycle.alloc_ring#8 drop call xenbus_dev_fatal(dev, error, f'writing {": _WHY["alloc"],
    "lifecycle.alloc_ring#9 drop call xenbus_dev_fatal(dev, error, f'writing {": _WHY["alloc"],
    "lifecycle.free#11 True -> False": _WHY["sync"],
    "lifecycle.free#13 True -> False": _WHY["sync"],
    "lifecycle.initialize#11 1 -> 2": _WHY["clamp"],
    "lifecycle.initialize#13 drop call platform.device_printf(dev, f'Back-end s": _WHY["log"],
    "lifecycle.initialize#9 1 -> 2": _WHY["clamp"],
    "driver.int_#7 And -> Or": _WHY["valid_ids"],
    "driver.restart_queue_callback#0 And -> Or": _WHY["unlocked_callback"],
    "driver.close#1 not x -> x": _WHY["open_flag"],
    "driver.close#6 And -> Or": _WHY["open_flag"],
    "driver.int_#35 NotEq -> Eq": _WHY["final_check"],
    "driver.queue_cb#53 4 -> 5": _WHY["capacity"],
    "driver.queue_cb#54 Add -> Sub": _WHY["capacity"],
    "lifecycle.initialize#4 Gt -> GtE": _WHY["fixoff"],
    "lifecycle.initialize#10 Lt -> LtE": _WHY["alloc_or_input"],
    "lifecycle.initialize#12 Gt -> GtE": _WHY["alloc_or_input"],
    "lifecycle.initialize#14 not x -> x": _WHY["alloc_or_input"],
    "lifecycle.initialize#18 drop call platform.device_printf(dev, f'Back-end s": _WHY["log"],
    "lifecycle.initialize#19 Gt -> GtE": _WHY["alloc_or_input"],
    "lifecycle.initialize#20 drop call platform.device_printf(dev, f'Back-end s": _WHY["log"],
    "lifecycle.initialize#25 drop call xenbus_dev_fatal(dev, error, f'writing {": _WHY[
        "alloc_or_input"
    ],
    "lifecycle.initialize#28 drop call xenbus_dev_fatal(dev, error, f'writing {": _WHY[
        "alloc_or_input"
    ],
    "lifecycle.initialize#31 drop call xenbus_dev_fatal(dev, error, f'writing {": _WHY[
        "alloc_or_input"
    ],
    "lifecycle.initialize#32 drop call xenbus_dev_fatal(dev, error, f'writing {": _WHY[
        "alloc_or_input"
    ],
    "lifecycle.connect#2 Is -> IsNot": _WHY["resize"],
    "lifecycle.connect#3 0 -> 1": _WHY["alloc_or_input"],
    "lifecycle.connect#4 NotEq -> Eq": _WHY["alloc_or_input"],
    "lifecycle.connect#5 drop call xenbus_dev_error(dev, err, f'reading sec": _WHY[
        "alloc_or_input"
    ],
    "lifecycle.connect#6 0 -> 1": _WHY["resize"],
    "lifecycle.connect#7 not x -> x": _WHY["fixoff"],
    "lifecycle.connect#10 drop call xenbus_dev_error(dev, err, f'unable to r": _WHY["resize"],
    "lifecycle.connect#11 drop call platform.device_printf(dev, f'changed ca": _WHY["log"],
    "lifecycle.connect#12 drop call xenbus_dev_fatal(dev, err, f'reading bac": _WHY[
        "alloc_or_input"
    ],
    "lifecycle.connect#13 0 -> 1": _WHY["alloc_or_input"],
    "lifecycle.connect#17 Or -> And": _WHY["alloc_or_input"],
    "lifecycle.connect#15 0 -> 1": _WHY["alloc_or_input"],
    'lifecycle.connect#19 drop call xenbus_dev_fatal(dev, 0, f"invalid param': _WHY[
        "alloc_or_input"
    ],
    "lifecycle.connect#18 0 -> 1": _WHY["alloc_or_input"],
    "lifecycle.connect#20 Gt -> GtE": _WHY["fixoff"],
    "lifecycle.connect#23 not x -> x": _WHY["alloc_or_input"],
    "lifecycle.connect#24 Lt -> LtE": _WHY["alloc_or_input"],
    "lifecycle.connect#25 Or -> And": _WHY["alloc_or_input"],
    "lifecycle.connect#28 not x -> x": _WHY["fixoff"],
    "lifecycle.connect#32 LtE -> Lt": _WHY["alloc_or_input"],
    "lifecycle.connect#34 0 -> 1": _WHY["alloc_or_input"],
    "lifecycle.connect#48 IsNot -> Is": _WHY["fixoff"],
    "lifecycle.connect#63 Gt -> GtE": _WHY["alloc_or_input"],
    "lifecycle.connect#64 Gt -> GtE": _WHY["alloc_or_input"],
    "lifecycle.connect#68 Lt -> LtE": _WHY["alloc_or_input"],
    "lifecycle.connect#69 512 -> 513": _WHY["setup"],
    "lifecycle.connect#73 IsNot -> Is": _WHY["alloc_or_input"],
    "lifecycle.connect#74 True -> False": _WHY["alloc_or_input"],
    "lifecycle.connect#75 drop call xenbus_dev_fatal(dev, ENOMEM, 'Cannot al": _WHY[
        "alloc_or_input"
    ],
    "lifecycle.connect#76 0 -> 1": _WHY["setup"],
    "lifecycle.connect#77 0 -> 1": _WHY["setup"],
    "lifecycle.connect#81 Gt -> GtE": _WHY["setup"],
    "lifecycle.connect#83 0 -> 1": _WHY["alloc_or_input"],
    "lifecycle.connect#87 Add -> Sub": _WHY["setup"],
    "lifecycle.connect#88 1 -> 2": _WHY["setup"],
    "lifecycle.connect#89 1 -> 2": _WHY["setup"],
    "lifecycle.connect#91 IsNot -> Is": _WHY["alloc_or_input"],
    "lifecycle.connect#92 drop call platform.mem.free(indirectpages)": _WHY["alloc_or_input"],
    "lifecycle.connect#94 1 -> 2": _WHY["setup"],
    "lifecycle.connect#95 0 -> 1": _WHY["fixoff"],
    "lifecycle.connect#96 Eq -> NotEq": _WHY["fixoff"],
    "lifecycle.connect#100 1048576 -> 1048577": _WHY["log"],
    "lifecycle.connect#101 drop call platform.device_printf(dev, f'{megabytes": _WHY["log"],
    "lifecycle.resume#0 NotEq -> Eq": _WHY["fixoff"],
    "lifecycle.resume#3 Eq -> NotEq": _WHY["fixoff"],
    "lifecycle.backend_changed#1 NotEq -> Eq": _WHY["fixoff"],
    "lifecycle.backend_changed#6 drop call initialize(sc)": _WHY["reinit"],
    "lifecycle.backend_changed#11 drop call sc.platform.device_printf(dev, 'detachin": _WHY["log"],
    "lifecycle.backend_changed#13 NotEq -> Eq": _WHY["fixoff"],
    "lifecycle.backend_changed#0 Eq -> NotEq": _WHY["fixoff"],
    "lifecycle._fail_queued_bios#0 drop call mtx_lock(sc.xbd_io_lock)": _WHY["fixcall"],
    "lifecycle._fail_queued_bios#1 IsNot -> Is": _WHY["fixcall"],
    "lifecycle._fail_queued_bios#2 drop call sc.platform.biofinish(bp, error)": _WHY["fixcall"],
    "lifecycle._fail_queued_bios#3 drop call mtx_unlock(sc.xbd_io_lock)": _WHY["fixcall"],
    "driver.queue_cb#12 And -> Or": _WHY["frozen_restart"],
    "driver.queue_cb#10 And -> Or": _WHY["spurious_wakeup"],
    "driver.bio_complete#7 0 -> 1": _WHY["resid"],
    "lifecycle.free#5 GtE -> Gt": _WHY["shadow_len"],
    "lifecycle.free#6 IsNot -> Is": _WHY["dropped_shadow"],
    "lifecycle.free#12 IsNot -> Is": _WHY["sync"],
    "lifecycle.initialize#2 1 -> 2": _WHY["overwritten"],
    "lifecycle.initialize#30 0 -> 1": _WHY["bound"],
    "lifecycle.closing#0 drop call xenbus_set_state(dev, XenbusState.Closin": _WHY["closing_write"],
    "lifecycle.suspend#1 True -> False": _WHY["first_call"],
    "lifecycle.suspend#2 False -> True": _WHY["first_call"],
    "driver.close#10 Eq -> NotEq": _WHY["fixoff"],
    "driver.close#11 NotEq -> Eq": _WHY["fixoff"],
}
