"""The symbolic interpretation: the model's declaration as z3 formulas.

This module is the one boundary between the plain-Python model and the solver (with
:mod:`xbdspec.proofs.arithmetic`, which states the C-integer obligations over
bit-vectors).  It gives the operators of :mod:`xbdspec.model.expr` a z3
:class:`Z3Algebra`, makes states of z3 variables, and derives from each declared
transition its relation over a current and a next state:

    source(s) and guard(s, p) and t.f == effect(s, p).f for every changed f
    and t.g == s.g for every other field (the frame)

No transition is written here: every formula is the declaration's own guard and
effect functions run on z3 terms.  A test checks that, for random concrete states
and events, the symbolic successor is exactly the concrete one.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import z3
import z3.z3 as _z3api
from xbdspec.model import expr
from xbdspec.model.declaration import Domain, Field, Instance, Spec

# --------------------------------------------------------------------------- fast builders

# z3's ``And``/``Or``/``==`` spend most of their time in Python, finding the arguments'
# common sort and coercing each (several calls per argument); the encodings build
# hundreds of thousands of such terms.  These build the same terms through the C API
# directly when the arguments are already z3 terms of one sort, and fall back to z3's
# own functions otherwise.


def _bool_args(items: Sequence[Any]) -> list[Any] | None:
    """``items`` as z3 Booleans of the main context, or None if one is not."""
    out = []
    for item in items:
        if isinstance(item, bool):
            item = z3.BoolVal(item)
        elif not isinstance(item, z3.BoolRef):
            return None
        out.append(item)
    return out


def mk_and(items: Sequence[Any]) -> Any:
    """The conjunction of ``items`` (z3 Booleans or plain bools)."""
    terms = _bool_args(items)
    if terms is None:
        return z3.And(*items)
    if len(terms) == 1:
        return terms[0]
    if not terms:
        return z3.BoolVal(True)
    ctx = terms[0].ctx
    args, size = _z3api._to_ast_array(terms)
    return z3.BoolRef(_z3api.Z3_mk_and(ctx.ref(), size, args), ctx)


def mk_or(items: Sequence[Any]) -> Any:
    """The disjunction of ``items`` (z3 Booleans or plain bools)."""
    terms = _bool_args(items)
    if terms is None:
        return z3.Or(*items)
    if len(terms) == 1:
        return terms[0]
    if not terms:
        return z3.BoolVal(False)
    ctx = terms[0].ctx
    args, size = _z3api._to_ast_array(terms)
    return z3.BoolRef(_z3api.Z3_mk_or(ctx.ref(), size, args), ctx)


def mk_eq(a: Any, b: Any) -> Any:
    """``a == b`` for a z3 term ``a`` and a z3 term or plain number ``b``."""
    if isinstance(a, z3.BitVecRef):
        if type(b) is int or isinstance(b, enum.IntEnum):
            b = z3.BitVecVal(int(b), a.size())
        elif not (isinstance(b, z3.BitVecRef) and b.size() == a.size()):
            return a == b
    elif isinstance(a, z3.BoolRef):
        if isinstance(b, bool):
            b = z3.BoolVal(b)
        elif not isinstance(b, z3.BoolRef):
            return a == b
    else:
        return a == b
    ctx = a.ctx
    return z3.BoolRef(_z3api.Z3_mk_eq(ctx.ref(), a.as_ast(), b.as_ast()), ctx)


# --------------------------------------------------------------------------- the algebra


class Z3Algebra:
    """The operators of :mod:`xbdspec.model.expr` on z3 terms."""

    def owns(self, value: object) -> bool:
        return isinstance(value, z3.ExprRef)

    def ite(self, cond: Any, then: Any, other: Any) -> Any:
        if (
            isinstance(then, int)
            and isinstance(other, int)
            and type(then) is not bool
            and type(other) is not bool
        ):
            if then == other:
                return then
            # two plain numbers: small integers (u32 fields never choose between constants)
            return z3.If(cond, z3.BitVecVal(then, SMALL), z3.BitVecVal(other, SMALL))
        return z3.If(cond, then, other)

    def all_of(self, items: list[Any]) -> Any:
        return mk_and(items) if len(items) > 1 else items[0]

    def any_of(self, items: list[Any]) -> Any:
        return mk_or(items) if len(items) > 1 else items[0]

    def negate(self, item: Any) -> Any:
        return z3.Not(item)

    def count_true(self, items: list[Any]) -> Any:
        one, zero = z3.BitVecVal(1, SMALL), z3.BitVecVal(0, SMALL)
        total: Any = zero
        for item in items:
            total = total + (z3.If(item, one, zero) if not isinstance(item, bool) else int(item))
        return total

    def u32_add(self, a: Any, b: Any) -> Any:
        return _bv(a) + _bv(b)

    def u32_sub(self, a: Any, b: Any) -> Any:
        return _bv(a) - _bv(b)

    def u32_lt(self, a: Any, b: Any) -> Any:
        return z3.ULT(_bv(a), _bv(b))

    def u32_le(self, a: Any, b: Any) -> Any:
        return z3.ULE(_bv(a), _bv(b))

    def u32_of(self, n: Any) -> Any:
        if isinstance(n, z3.BitVecRef):
            return z3.ZeroExt(32 - n.size(), n) if n.size() < 32 else n
        return z3.BitVecVal(int(n), 32)


def _bv(value: Any) -> Any:
    if isinstance(value, z3.BitVecRef):
        return value
    if isinstance(value, int):
        return z3.BitVecVal(value & expr.U32_MASK, 32)
    raise expr.SymbolicOperationError(f"{value!r} is not a 32-bit value")


_ALGEBRA = Z3Algebra()
expr.register_algebra(_ALGEBRA)


# --------------------------------------------------------------------------- symbolic states


#: Small integers and enums are 16-bit vectors: every declared domain fits with room
#: for the +1/-1 of an effect, comparisons (signed in z3's Python operators) stay
#: exact, and the whole encoding is quantifier-free bit-vector logic, which z3
#: decides by bit-blasting, fast and deterministically.
SMALL = 16


def _var(name: str, domain: Domain) -> Any:
    if domain.kind == "bool":
        return z3.Bool(name)
    if domain.kind == "u32":
        return z3.BitVec(name, 32)
    return z3.BitVec(name, SMALL)


def _in_domain(value: Any, domain: Domain) -> Any:
    if domain.kind in ("bool", "u32"):
        return True
    if domain.kind == "int":
        return mk_and([value >= domain.lo, value <= domain.hi])
    return mk_or([mk_eq(value, int(m)) for m in domain.values()])


def symbolic_state(spec: Spec, prefix: str) -> Any:
    """A ``spec.State`` whose fields are fresh z3 variables named ``prefix.field[i]``."""
    values = []
    for f in spec.fields:
        if f.length is None:
            values.append(_var(f"{prefix}.{f.name}", f.domain))
        else:
            values.append(tuple(_var(f"{prefix}.{f.name}[{i}]", f.domain) for i in range(f.length)))
    return spec.State(*values)


def _elements(spec: Spec, state: Any) -> Iterable[tuple[Field, str, Any]]:
    for f in spec.fields:
        value = getattr(state, f.name)
        if f.length is None:
            yield f, f.name, value
        else:
            for i, item in enumerate(value):
                yield f, f"{f.name}[{i}]", item


def domain_constraint(spec: Spec, state: Any) -> Any:
    """Every field of ``state`` lies in its declared domain."""
    return mk_and([_in_domain(v, f.domain) for f, _, v in _elements(spec, state)])


def equal_states(spec: Spec, a: Any, b: Any) -> Any:
    """``a`` and ``b`` agree on every field."""
    return mk_and(
        [
            mk_eq(x, y)
            for (_, _, x), (_, _, y) in zip(_elements(spec, a), _elements(spec, b), strict=True)
        ]
    )


def concrete_constraint(spec: Spec, state: Any, values: Any) -> Any:
    """The symbolic ``state`` equals the plain state ``values``."""
    return mk_and(
        [
            mk_eq(sym, _plain_to_z3(f, val))
            for (f, _, sym), (_, _, val) in zip(
                _elements(spec, state), _elements(spec, values), strict=True
            )
        ]
    )


def _plain_to_z3(f: Field, value: Any) -> Any:
    if f.domain.kind == "bool":
        return z3.BoolVal(bool(value))
    if f.domain.kind == "u32":
        return z3.BitVecVal(int(value), 32)
    return z3.BitVecVal(int(value), SMALL)


def initial_constraint(spec: Spec, state: Any, ring_base: Any | None = None) -> Any:
    """``state`` is an initial state; the ring's base is any 32-bit value unless given."""
    base = ring_base if ring_base is not None else z3.BitVec("init.ring_base", 32)
    initial = spec.initial_fields(base)
    parts = []
    for f in spec.fields:
        value, target = getattr(state, f.name), initial[f.name]
        if f.length is None:
            parts.append(mk_eq(value, target))
        else:
            parts.extend(mk_eq(v, t) for v, t in zip(value, target, strict=True))
    return mk_and(parts)


def enabled(spec: Spec, instance: Instance, s: Any) -> Any:
    """When ``instance`` may happen in the symbolic state ``s``: source and guard."""
    t = instance.transition
    control = getattr(s, spec.control_of(t))
    source = mk_or([mk_eq(control, int(x)) for x in t.source])
    return mk_and([source, _as_bool(t.guard(s, instance.bindings))])


def successor(spec: Spec, instance: Instance, s: Any) -> dict[str, Any]:
    """The fields ``instance`` changes, as terms over ``s`` (dest included)."""
    t = instance.transition
    changes = dict(t.effect(s, instance.bindings))
    if t.dest is not None:
        changes[spec.control_of(t)] = int(t.dest)
    return changes


def transition_relation(spec: Spec, instance: Instance, s: Any, t: Any) -> Any:
    """``instance`` takes ``s`` to ``t``: enabled, effect, and frame."""
    changes = successor(spec, instance, s)
    parts = [enabled(spec, instance, s)]
    for f in spec.fields:
        after = getattr(t, f.name)
        target = changes.get(f.name, getattr(s, f.name))
        if f.length is None:
            parts.append(mk_eq(after, target))
        else:
            parts.extend(mk_eq(a, b) for a, b in zip(after, target, strict=True))
    return mk_and(parts)


def successor_state(spec: Spec, instance: Instance, s: Any) -> Any:
    """The state ``instance`` takes ``s`` to, as terms over ``s`` (its guard aside)."""
    return s._replace(**successor(spec, instance, s))


def substitute_state(spec: Spec, formula: Any, state: Any, by: Any) -> Any:
    """``formula`` with every variable of the symbolic ``state`` replaced by the same
    field of ``by`` (terms or plain values).

    ``claim[t := succ(s)]`` is how the combined checks below state "the step's
    successor satisfies the claim": for a deterministic effect, ``exists t.
    T(s, t) and not claim(s, t)`` is ``enabled(s) and not claim(s, succ(s))``, so
    no variables of ``t`` and no frame equalities are needed.
    """
    pairs = []
    for (f, _, var), (_, _, value) in zip(_elements(spec, state), _elements(spec, by), strict=True):
        if isinstance(value, z3.ExprRef):
            if not value.eq(var):
                pairs.append((var, value))
        else:
            pairs.append((var, _plain_to_z3(f, value)))
    if not pairs:
        return formula
    # z3.substitute checks every pair's sorts in Python; Z3_substitute checks them in C
    size = len(pairs)
    sources, targets = (_z3api.Ast * size)(), (_z3api.Ast * size)()
    for number, (var, value) in enumerate(pairs):
        sources[number], targets[number] = var.as_ast(), value.as_ast()
    ctx = formula.ctx
    return z3.BoolRef(
        _z3api.Z3_substitute(ctx.ref(), formula.as_ast(), size, sources, targets), ctx
    )


def _as_bool(value: Any) -> Any:
    return z3.BoolVal(value) if isinstance(value, bool) else value


def as_formula(value: Any) -> Any:
    """A guard's or a property's result as a z3 Boolean (plain ``bool`` included)."""
    return _as_bool(value)


# --------------------------------------------------------------------------- reading models back


def read_state(spec: Spec, model: Any, state: Any) -> Any:
    """The plain ``spec.State`` a z3 model gives the symbolic ``state``."""
    values = []
    for f in spec.fields:
        value = getattr(state, f.name)
        if f.length is None:
            values.append(_read(model, f, value))
        else:
            values.append(tuple(_read(model, f, v) for v in value))
    return spec.State(*values)


def _read(model: Any, f: Field, term: Any) -> Any:
    got = model.eval(term, model_completion=True)
    if f.domain.kind == "bool":
        return z3.is_true(got)
    number = got.as_long() if f.domain.kind == "u32" else got.as_signed_long()
    if f.domain.kind == "enum":
        assert f.domain.enum_type is not None
        try:
            return f.domain.enum_type(number)
        except ValueError:
            return number
    return number


def show_value(value: Any) -> str:
    """A field value as a person reads it (enums by name, u32 in hex when large)."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, tuple):
        return "(" + ", ".join(show_value(v) for v in value) + ")"
    if isinstance(value, int) and not isinstance(value, bool) and value > 0xFFFF:
        return hex(value)
    return repr(value)


# --------------------------------------------------------------------------- the solver


#: A time-out only as a safety net: the bound that decides a check is z3's resource
#: limit, which counts work, not seconds, so a loaded machine gives the same answers.
SAFETY_TIMEOUT_MS = 120_000


class Verdict(enum.Enum):
    """A three-way result: never a bool."""

    PROVED = "proved"
    REFUTED = "refuted"
    UNKNOWN = "unknown"


@dataclass
class Check:
    """The result of one validity check.

    Attributes:
        verdict: proved (the negation is unsat), refuted (a model exists), unknown.
        model: the z3 model of a refutation.
        seconds: the time the solver took.
        reason: why the result is unknown (timeout, resource limit).
    """

    verdict: Verdict
    model: Any
    seconds: float
    reason: str = ""


#: simplify, propagate values, solve equations, bit-blast, SAT: the tactic
#: :meth:`Prover.satisfiable` uses with ``bitblast``
BITBLAST = z3.Then("simplify", "propagate-values", "solve-eqs", "bit-blast", "sat")


class Prover:
    """z3 behind one object: assumptions in scopes, validity checks with limits.

    Every check runs in a fresh quantifier-free bit-vector solver holding the
    assumptions of the open scopes: z3 then preprocesses and bit-blasts the whole
    problem, which is much faster here than its incremental mode.  A ``rlimit``
    (z3's deterministic work counter) bounds every check as well as a timeout, so
    a result does not depend on the machine's speed.
    """

    def __init__(self, *, timeout_ms: int = SAFETY_TIMEOUT_MS, rlimit: int = 50_000_000) -> None:
        self.timeout_ms = timeout_ms
        self.rlimit = rlimit
        self._scopes: list[list[Any]] = [[]]

    def assume(self, *facts: Any) -> None:
        """Add facts to the current scope."""
        self._scopes[-1].extend(_as_bool(f) for f in facts)

    def push(self) -> None:
        """Open a scope."""
        self._scopes.append([])

    def pop(self) -> None:
        """Drop the innermost scope and its facts."""
        if len(self._scopes) == 1:
            raise expr.SymbolicOperationError("Prover.pop() without a matching push()")
        self._scopes.pop()

    def valid(self, claim: Any, *assumptions: Any) -> Check:
        """Whether ``claim`` follows from the scope and ``assumptions``."""
        return self.satisfiable(z3.Not(_as_bool(claim)), *assumptions, invert=True)

    def satisfiable(self, *facts: Any, invert: bool = False, bitblast: bool = False) -> Check:
        """Whether ``facts`` can hold together with the scope.

        With ``invert`` the verdict is about validity of the negation: sat means
        REFUTED, unsat PROVED.  Without it, sat means PROVED (a witness exists).

        With ``bitblast`` the solver is z3's tactic pipeline to SAT
        (:data:`BITBLAST`): a decision procedure for the quantifier-free bit-vector
        problems of the encodings, faster on the large combined checks than the
        default solver's preprocessing; it answers unknown for anything it cannot
        bit-blast.  The obligations use it where only an unsat answer is taken as it
        is (a proof), and check any other answer again with the default solver.
        """
        start = time.perf_counter()
        solver = BITBLAST.solver() if bitblast else z3.Solver()
        solver.set("timeout", self.timeout_ms)
        solver.set("rlimit", self.rlimit)
        for scope in self._scopes:
            solver.add(*scope)
        solver.add(*(_as_bool(f) for f in facts))
        answer = solver.check()
        model = solver.model() if answer == z3.sat else None
        reason = solver.reason_unknown() if answer == z3.unknown else ""
        seconds = time.perf_counter() - start
        if answer == z3.unknown:
            return Check(Verdict.UNKNOWN, None, seconds, reason)
        found = answer == z3.sat
        if invert:
            return Check(Verdict.REFUTED if found else Verdict.PROVED, model, seconds)
        return Check(Verdict.PROVED if found else Verdict.REFUTED, model, seconds)


class SharedHypotheses:
    """One solver holding fixed hypotheses (a model's domains and invariants), asked
    many satisfiability questions, each in its own scope (``push``, the facts,
    ``check``, ``pop``).

    A fresh :class:`Prover` per question bit-blasts the hypotheses every time; for
    the many small questions asked under the same invariants (a guard is live, two
    transitions overlap) that is most of the work, and keeping them in one
    incremental solver answers the same questions several times faster.  Each check
    has the same ``rlimit`` and time-out as a :class:`Prover`'s; verdicts read as
    :meth:`Prover.satisfiable`'s (sat: PROVED, a witness exists).  The solver is made
    on first use, so that each worker process of ``xbdspec prove`` makes its own.
    """

    def __init__(
        self, *hypotheses: Any, timeout_ms: int = SAFETY_TIMEOUT_MS, rlimit: int = 50_000_000
    ) -> None:
        self.hypotheses = [_as_bool(h) for h in hypotheses]
        self.timeout_ms = timeout_ms
        self.rlimit = rlimit
        self._solver: Any = None

    def satisfiable(self, *facts: Any) -> Check:
        """Whether ``facts`` can hold together with the hypotheses."""
        start = time.perf_counter()
        if self._solver is None:
            self._solver = z3.Solver()
            self._solver.set("timeout", self.timeout_ms)
            self._solver.set("rlimit", self.rlimit)
            self._solver.add(*self.hypotheses)
        solver = self._solver
        solver.push()
        try:
            solver.add(*(_as_bool(f) for f in facts))
            answer = solver.check()
            model = solver.model() if answer == z3.sat else None
            reason = solver.reason_unknown() if answer == z3.unknown else ""
        finally:
            solver.pop()
        seconds = time.perf_counter() - start
        if answer == z3.unknown:
            return Check(Verdict.UNKNOWN, None, seconds, reason)
        return Check(Verdict.PROVED if answer == z3.sat else Verdict.REFUTED, model, seconds)


class IncrementalSolver:
    """A solver kept across checks, for bounded unrollings that grow step by step."""

    def __init__(self, *, timeout_ms: int = SAFETY_TIMEOUT_MS) -> None:
        self.solver = z3.Solver()
        self.solver.set("timeout", timeout_ms)

    def add(self, *facts: Any) -> None:
        """Assert facts for every later check."""
        self.solver.add(*(_as_bool(f) for f in facts))

    def check_with(self, *facts: Any) -> Check:
        """Whether the facts so far and ``facts`` can hold together (PROVED: a witness)."""
        start = time.perf_counter()
        answer = self.solver.check(*(_as_bool(f) for f in facts))
        seconds = time.perf_counter() - start
        if answer == z3.unknown:
            return Check(Verdict.UNKNOWN, None, seconds, self.solver.reason_unknown())
        if answer == z3.sat:
            return Check(Verdict.PROVED, self.solver.model(), seconds)
        return Check(Verdict.REFUTED, None, seconds)


def E_or(parts: Sequence[Any]) -> Any:
    """The disjunction of ``parts``."""
    return mk_or(parts)


def negation(value: Any) -> Any:
    """``not value`` as a z3 formula (plain ``bool`` included)."""
    return z3.Not(_as_bool(value))


def implies_(premise: Any, conclusion: Any) -> Any:
    """``premise`` implies ``conclusion`` as a z3 formula."""
    return z3.Implies(_as_bool(premise), _as_bool(conclusion))


def choose(cond: Any, then: Any, other: Any) -> Any:
    """``If(cond, then, other)`` with the same coercions as the model's ``ite``."""
    return _ALGEBRA.ite(cond, then, other)


def selector(name: str) -> Any:
    """A fresh step selector (which instance a bounded step takes)."""
    return z3.BitVec(name, SMALL)


def u_less(a: Any, bound: int) -> Any:
    """Unsigned ``a < bound`` for a selector."""
    return z3.ULT(a, bound)


def read_number(model: Any, term: Any) -> int:
    """The value a z3 model gives a bit-vector term."""
    return int(model.eval(term, model_completion=True).as_long())


def all_constraints(parts: Sequence[Any]) -> Any:
    """The conjunction of ``parts`` (plain booleans allowed)."""
    return mk_and(parts)


def describe_model(spec: Spec, model: Any, states: Mapping[str, Any]) -> dict[str, Any]:
    """Plain states for each named symbolic state in a z3 model."""
    return {name: read_state(spec, model, s) for name, s in states.items()}


def E_and(parts: Sequence[Any]) -> Any:
    """The conjunction of ``parts``."""
    return mk_and(parts)


def z3_u32(name: str) -> Any:
    """A fresh 32-bit variable (a ring base, say)."""
    return z3.BitVec(name, 32)


def variable_names(term: Any) -> set[str]:
    """The names of the state variables a term (or a tuple of terms, or a plain value)
    reads: what a guard or an effect depends on (the diagrams use it)."""
    found: set[str] = set()
    todo = list(term) if isinstance(term, tuple) else [term]
    seen: set[int] = set()
    while todo:
        t = todo.pop()
        if isinstance(t, tuple):
            todo.extend(t)
            continue
        if not isinstance(t, z3.ExprRef) or t.get_id() in seen:
            continue
        seen.add(t.get_id())
        if z3.is_const(t) and t.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            found.add(t.decl().name())
        else:
            todo.extend(t.children())
    return found
