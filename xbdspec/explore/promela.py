"""The Promela interpretation: the declaration as a model for the SPIN model checker.

This is the declaration's third interpretation, beside the concrete one
(:mod:`xbdspec.model.concrete`, plain Python values) and the symbolic one
(:mod:`xbdspec.proofs.encoding`, z3 terms).  Like the z3 encoding, it writes no
transition by hand: it gives the operators of :mod:`xbdspec.model.expr` an algebra of
Promela expression terms (:class:`PromelaAlgebra`), runs each instance's own guard and
effect on a state whose fields are Promela variables, and prints what comes back:

* the state: one global variable per scalar field, one array per array field, with
  the initial state as their initial values (``spec.initial_fields``); enumeration
  members print as macros (``Place_BUSY``);
* one option ``:: d_step { source && guard -> ... }`` per instance in the ``do`` loop
  of process ``main`` (a ``d_step`` is one transition: no intermediate state).
  Effects are simultaneous (every new value is a function of the state before the
  step): the sub-terms the new values share (an effect written as a
  :class:`~xbdspec.model.draft.Draft` updates ``frozen`` several times, and its text
  would grow exponentially) are computed once into scratch variables, then the
  assignments are ordered so that no variable is written before every expression that
  reads its old value was evaluated; where that is impossible (a cycle) the values go
  through scratch variables first.  Scratch variables are ``hidden``: not part of the
  stored state;
* invariants: process ``monitor``, whose option ``!(invariant) -> assert`` can fire in
  exactly the states that break it, so SPIN evaluates every invariant in every
  reachable state without storing one extra state;
* step properties: assertions inside the instance's ``d_step``, over the values before
  (the variables) and after (the effect's terms, computed from the same variables);
* deadlock: ``monitor``'s option ``timeout && work_pending`` (``timeout``: no process
  can move) takes it to a state without an end label, which SPIN reports as an
  *invalid end state*; a state with no event enabled and no work pending is a valid
  end state;
* each property is reported once: a hidden flag per property, set in a ``d_step``
  (pan does not undo a ``d_step``'s hidden writes when it backtracks), disables its
  check after the first violation, so ``pan -c0 -e`` writes one trail per property;
* progress (``when ~> goal`` under weak fairness of named events, as
  :mod:`xbdspec.explore.progress` defines it): a never claim per property in the
  *liveness* variant of the model (see :func:`generate` and :func:`_claim`), which
  adds a variable ``xbd_last`` (the fair event the last step belonged to) and a
  stuttering option.

Equal sub-terms are one object while a model is generated (hash-consing), so a
comparison of a term with itself folds to a constant: a step property over fields an
instance does not change simplifies to true and gets no assertion.

**Ring indices (``u32``).** SPIN 6.5.2 rejects ``unsigned x : 32`` (a bit-field width
is at most 31), and masking inside a 32-bit ``int`` cannot give 2**32 values.  So a
``u32`` field is an ``int`` holding the same 32 bits (two's complement): ``u32_add``
and ``u32_sub`` are ``+`` and ``-`` on ``int`` (``pan.c`` is compiled with
``-fwrapv``, so they wrap modulo 2**32 as C's unsigned arithmetic does), equality is
equality of the bits, and orderings (``u32_lt``, ``u32_le``, and ``<`` on a ``u32``
term, which concretely compares values in ``[0, 2**32)``) compare ``a ^ XBD_SIGN``
with ``b ^ XBD_SIGN`` (flipping the sign bit maps unsigned order onto signed order).
Python's ``+`` and ``-`` on a ``u32`` term fail loudly, as the expression language
asks for ``u32_add`` and ``u32_sub``.

**Other fields.** ``bool`` fields are ``bool``; integer and enumeration fields are
``byte`` when their domain lies in 0..255 and ``short`` or ``int`` otherwise.  The
declaration keeps every value inside its domain (the proofs check it); a deliberately
broken variant that leaves it would wrap modulo 256 here, where Python keeps the
integer.

**Multi-core.** ``pan -DNCORE`` refuses hidden variables; :func:`generate` with
``multicore=True`` makes the scratch variables ordinary globals reset to 0 at the end
of every step (so the stored states are the same, with a longer state vector) and
drops the report-once flags (such a run stops at its first violation).

**Write-only fields.** A field that no guard, effect or property reads (only
assigned, like ``dump_result``) is still part of the state; ``spin -a`` would hide it
from the state vector (merging states that differ only in it) unless given ``-o2``,
which :mod:`xbdspec.explore.spin` passes.

Nothing here runs SPIN: :mod:`xbdspec.explore.spin` does.
"""

from __future__ import annotations

import contextvars
import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xbdspec.errors import XbdspecError
from xbdspec.model import expr
from xbdspec.model.concrete import effect_changes
from xbdspec.model.declaration import Domain, Field, Instance, Progress, Spec
from xbdspec.model.vocabulary import BioStage, DumpPc, Place


class PromelaError(XbdspecError):
    """The declaration cannot be written as Promela (the message says what and how to fix)."""


BOOL, INT, U32 = "bool", "int", "u32"

#: the sign bit of a 32-bit int, as a Promela macro (``-2147483648`` cannot be written
#: as a literal: the lexer reads ``2147483648`` first)
SIGN_MACRO = "XBD_SIGN"

#: the text SPIN's guided simulation prints for each step (``printf`` in the option)
STEP_MARK = "xbdspec-step"
#: the text printed when a property's assertion fires: ``xbdspec-violated KIND NAME``
VIOLATION_MARK = "xbdspec-violated"
#: the text printed by the stuttering option of the liveness model
STUTTER_MARK = "xbdspec-stutter"

#: what ``spin -t`` prints before the steps of an acceptance cycle
CYCLE_MARK = "<<<<<START OF CYCLE>>>>>"

#: the deadlock pseudo-property (the Python explorer's name)
DEADLOCK = "Deadlock"


# --------------------------------------------------------------------------- terms


class Term:
    """A Promela expression: a variable, a literal, or an operator over terms.

    Terms form a DAG (an effect reuses the same sub-term many times); a term is
    printed by a :class:`_Renderer`, which can bind shared sub-terms to scratch
    variables instead of repeating their text.

    Attributes:
        kind: ``"bool"``, ``"int"`` or ``"u32"`` (an ``int`` holding 32 bits).
        template: the text, with ``{0}``, ``{1}``... where the arguments go.
        args: the argument terms.
        reads: the state variables (``name`` or ``name[i]``) the term reads.
    """

    __slots__ = ("args", "kind", "reads", "template")

    kind: str
    template: str
    args: tuple[Term, ...]
    reads: frozenset[str]

    def __init__(self, kind: str, template: str, args: tuple[Term, ...] = ()) -> None:
        self.kind = kind
        self.template = template
        self.args = args
        reads: frozenset[str] = frozenset()
        for a in args:
            reads |= a.reads
        self.reads = reads

    @classmethod
    def variable(cls, kind: str, name: str) -> Term:
        """A state variable (``name`` or ``name[i]``)."""
        term = cls(kind, name)
        term.reads = frozenset((name,))
        return term

    def text(self) -> str:
        """The whole expression, every shared sub-term written out."""
        return _Renderer()(self)

    def __repr__(self) -> str:
        shown = self.text()
        return f"Term({self.kind}, {shown[:80] + '...' if len(shown) > 80 else shown})"

    # comparisons give Boolean terms
    def __eq__(self, other: object) -> Any:
        return _equality("==", self, other)

    def __ne__(self, other: object) -> Any:
        return _equality("!=", self, other)

    def __lt__(self, other: Any) -> Any:
        return _ordering("<", self, other)

    def __le__(self, other: Any) -> Any:
        return _ordering("<=", self, other)

    def __gt__(self, other: Any) -> Any:
        return _ordering(">", self, other)

    def __ge__(self, other: Any) -> Any:
        return _ordering(">=", self, other)

    # small-integer arithmetic (u32 values use expr.u32_add / u32_sub)
    def __add__(self, other: Any) -> Term:
        return _arithmetic("+", self, other)

    def __radd__(self, other: Any) -> Term:
        return _arithmetic("+", other, self)

    def __sub__(self, other: Any) -> Term:
        return _arithmetic("-", self, other)

    def __rsub__(self, other: Any) -> Term:
        return _arithmetic("-", other, self)

    def __neg__(self) -> Term:
        return _arithmetic("-", 0, self)

    def __bool__(self) -> bool:
        raise expr.SymbolicOperationError(
            f"a Promela term ({self!r}) was used where Python needs a plain truth value "
            "(if, and, or, not, in). Guards and effects must combine terms with the "
            "operators of xbdspec.model.expr (ite, all_of, any_of, negate, one_of)."
        )

    __hash__ = object.__hash__


#: while a model is generated: every term made so far, by structure, so that equal
#: sub-terms are one object (a step property comparing ``dispatched(t)`` with
#: ``dispatched(s)`` over unchanged fields then simplifies away)
_INTERNED: contextvars.ContextVar[dict[tuple[Any, ...], Term] | None] = contextvars.ContextVar(
    "xbdspec_promela_terms", default=None
)


def _make(kind: str, template: str, args: tuple[Term, ...] = ()) -> Term:
    """The term ``template`` over ``args`` (the one already made, while generating)."""
    table = _INTERNED.get()
    if table is None:
        return Term(kind, template, args)
    key = (kind, template, *(id(a) for a in args))
    found = table.get(key)
    if found is None:
        found = table[key] = Term(kind, template, args)
    return found


def _is_plain(value: object) -> bool:
    return type(value) is bool or isinstance(value, int)


def _kind_of(value: Any) -> str:
    if isinstance(value, Term):
        return value.kind
    if type(value) is bool:
        return BOOL
    if isinstance(value, int):
        return INT
    raise expr.SymbolicOperationError(
        f"{value!r} of type {type(value).__name__} is neither a plain bool/int nor a "
        "Promela term; guards and effects may only combine state fields, parameters "
        "and constants."
    )


def u32_literal(value: int) -> str:
    """The Promela ``int`` literal holding the 32 bits of ``value``."""
    bits = int(value) & expr.U32_MASK
    signed = bits - (1 << 32) if bits >= 1 << 31 else bits
    if signed == -(1 << 31):
        return SIGN_MACRO
    return f"({signed})" if signed < 0 else str(signed)


#: while a model is generated: the enumerations whose members print as macros
#: (``Place_BUSY`` rather than ``2``), with their macro prefix
_ENUMS: contextvars.ContextVar[Mapping[type, str] | None] = contextvars.ContextVar(
    "xbdspec_promela_enums", default=None
)


def constant(value: Any, kind: str | None = None) -> Term:
    """A plain value as a Promela literal (``kind`` ``"u32"`` for a ring index)."""
    if isinstance(value, Term):
        return value
    if isinstance(value, enum.IntEnum) and kind != U32:
        prefix = (_ENUMS.get() or {}).get(type(value))
        if prefix is not None:
            return _make(INT, f"{prefix}_{value.name}")
    if type(value) is bool:
        if kind == U32:
            return _make(U32, u32_literal(int(value)))
        return _make(BOOL, "true" if value else "false")
    if not isinstance(value, int):
        _kind_of(value)  # raises with the message
    number = int(value)
    if kind == U32:
        return _make(U32, u32_literal(number))
    return _make(INT, f"({number})" if number < 0 else str(number))


def _as_term(value: Any, kind: str) -> Term:
    return value if isinstance(value, Term) else constant(value, U32 if kind == U32 else None)


def _node(kind: str, op: str, *items: Any) -> Term:
    """``(a op b op c ...)`` over terms or plain values."""
    terms = tuple(_as_term(v, kind) for v in items)
    template = "(" + f" {op} ".join(f"{{{i}}}" for i in range(len(terms))) + ")"
    return _make(kind, template, terms)


def _equality(op: str, a: Any, b: Any) -> Any:
    ka, kb = _kind_of(a), _kind_of(b)
    term, plain = (a, b) if isinstance(a, Term) else (b, a)
    if isinstance(term, Term) and term.kind == BOOL and type(plain) is bool:
        # x == True is x, x == False is !x
        wanted = plain if op == "==" else not plain
        return term if wanted else _negate(term)
    kind = U32 if U32 in (ka, kb) else INT
    x, y = _as_term(a, kind), _as_term(b, kind)
    if x is y:
        return op == "=="
    return _make(BOOL, "({0} " + op + " {1})", (x, y))


def _ordering(op: str, a: Any, b: Any) -> Any:
    kind = U32 if U32 in (_kind_of(a), _kind_of(b)) else INT
    x, y = _as_term(a, kind), _as_term(b, kind)
    if x is y:
        return op in ("<=", ">=")
    if kind == U32:
        # unsigned order: flip the sign bit of both, then compare as signed ints
        template = f"(({{0}} ^ {SIGN_MACRO}) {op} ({{1}} ^ {SIGN_MACRO}))"
        return _make(BOOL, template, (x, y))
    return _make(BOOL, "({0} " + op + " {1})", (x, y))


def _arithmetic(op: str, a: Any, b: Any) -> Term:
    if U32 in (_kind_of(a), _kind_of(b)):
        raise expr.SymbolicOperationError(
            f"Python's {op!r} was applied to a 32-bit ring index; ring indices wrap "
            "modulo 2**32 and must be combined with expr.u32_add / u32_sub."
        )
    return _node(INT, op, a, b)


def _negate(term: Term) -> Term:
    if term.template == "(!{0})":
        return term.args[0]
    return _make(BOOL, "(!{0})", (term,))


# --------------------------------------------------------------------------- the algebra


def _distinct(items: list[Any]) -> list[Any]:
    """``items`` without repeats of the same term (``x && x`` is ``x``)."""
    seen: set[int] = set()
    out = []
    for item in items:
        if isinstance(item, Term):
            if id(item) in seen:
                continue
            seen.add(id(item))
        out.append(item)
    return out


class PromelaAlgebra:
    """The operators of :mod:`xbdspec.model.expr` on Promela terms."""

    def owns(self, value: object) -> bool:
        return isinstance(value, Term)

    def ite(self, cond: Any, then: Any, other: Any) -> Any:
        if then is other or (
            _is_plain(then) and _is_plain(other) and then == other and type(then) is type(other)
        ):
            return then
        kinds = {_kind_of(then), _kind_of(other)}
        kind = U32 if U32 in kinds else BOOL if kinds == {BOOL} else INT
        args = (_as_term(cond, BOOL), _as_term(then, kind), _as_term(other, kind))
        return _make(kind, "({0} -> {1} : {2})", args)

    def all_of(self, items: list[Any]) -> Any:
        items = _distinct(items)
        return items[0] if len(items) == 1 else _node(BOOL, "&&", *items)

    def any_of(self, items: list[Any]) -> Any:
        items = _distinct(items)
        return items[0] if len(items) == 1 else _node(BOOL, "||", *items)

    def negate(self, item: Any) -> Any:
        return _negate(_as_term(item, BOOL))

    def count_true(self, items: list[Any]) -> Any:
        plain = sum(1 for item in items if not isinstance(item, Term) and item)
        terms = [_make(INT, "({0} -> 1 : 0)", (item,)) for item in items if isinstance(item, Term)]
        if plain:
            terms.append(constant(plain))
        if not terms:
            return 0
        return terms[0] if len(terms) == 1 else _node(INT, "+", *terms)

    def u32_add(self, a: Any, b: Any) -> Any:
        return _node(U32, "+", a, b)

    def u32_sub(self, a: Any, b: Any) -> Any:
        return _node(U32, "-", a, b)

    def u32_lt(self, a: Any, b: Any) -> Any:
        return _ordering("<", _as_term(a, U32), _as_term(b, U32))

    def u32_le(self, a: Any, b: Any) -> Any:
        return _ordering("<=", _as_term(a, U32), _as_term(b, U32))

    def u32_of(self, n: Any) -> Any:
        if isinstance(n, Term):
            return _make(U32, "{0}", (n,))
        return constant(n, U32)


_ALGEBRA = PromelaAlgebra()
expr.register_algebra(_ALGEBRA)


# --------------------------------------------------------------------------- printing terms


class _Renderer:
    """Prints terms; sub-terms in ``temps`` are printed as their scratch variable.

    ``reads(term)`` gives the state variables the printed text reads directly (a
    scratch variable stands for the value it was given earlier)."""

    def __init__(self, temps: Mapping[int, str] | None = None) -> None:
        self.temps = dict(temps or {})
        self._memo: dict[int, tuple[str, frozenset[str]]] = {}

    def _render(self, term: Term) -> tuple[str, frozenset[str]]:
        key = id(term)
        temp = self.temps.get(key)
        if temp is not None:
            return temp, frozenset()
        found = self._memo.get(key)
        if found is not None:
            return found
        result: tuple[str, frozenset[str]]
        if not term.args:
            result = (term.template, term.reads)
        else:
            parts = [self._render(a) for a in term.args]
            reads: frozenset[str] = frozenset()
            for _, r in parts:
                reads |= r
            result = (term.template.format(*(p for p, _ in parts)), reads)
        self._memo[key] = result
        return result

    def __call__(self, term: Term) -> str:
        return self._render(term)[0]

    def reads(self, term: Term) -> frozenset[str]:
        return self._render(term)[1]


def _shared_nodes(roots: Iterable[Term]) -> list[Term]:
    """The operator nodes reachable from ``roots`` through more than one edge, children
    before parents: the sub-terms worth computing once into a scratch variable."""
    count: dict[int, int] = {}
    nodes: dict[int, Term] = {}
    order: list[Term] = []
    for root in roots:
        stack: list[tuple[Term, bool]] = [(root, False)]
        count[id(root)] = count.get(id(root), 0) + 1
        while stack:
            term, done = stack.pop()
            if done:
                order.append(term)
                continue
            if id(term) in nodes:
                continue
            nodes[id(term)] = term
            stack.append((term, True))
            for a in term.args:
                count[id(a)] = count.get(id(a), 0) + 1
                if id(a) not in nodes:
                    stack.append((a, False))
    return [
        t
        for t in order
        if count.get(id(t), 0) > 1 and t.args and t.template not in ("{0}", "(!{0})")
    ]


# --------------------------------------------------------------------------- the state


@dataclass(frozen=True)
class Variable:
    """The Promela variable of one field.

    Attributes:
        field: the declared field.
        type: the Promela type (``bool``, ``byte``, ``short``, ``int``).
        kind: the term kind of its elements (``bool``, ``int``, ``u32``).
    """

    field: Field
    type: str
    kind: str


def variable_for(f: Field) -> Variable:
    """The Promela type of field ``f`` (see the module docstring)."""
    d: Domain = f.domain
    if d.kind == "bool":
        return Variable(f, "bool", BOOL)
    if d.kind == "u32":
        return Variable(f, "int", U32)
    values = [int(v) for v in d.values()]
    lo, hi = min(values), max(values)
    if lo >= 0 and hi <= 255:
        return Variable(f, "byte", INT)
    if lo >= -32768 and hi <= 32767:
        return Variable(f, "short", INT)
    return Variable(f, "int", INT)


#: Promela's reserved words: a field with one of these names cannot be a variable
_KEYWORDS = """active assert atomic bit bool break byte chan d_step D_proctype do else empty
    enabled eval false fi for full get_priority goto hidden if in init inline int len
    local ltl mtype nempty never nfull np_ od of pc_value print printf printm priority
    proctype provided run select set_priority short show skip timeout trace true typedef
    unless unsigned xr xs c_code c_decl c_expr c_state c_track notrace"""
PROMELA_KEYWORDS = frozenset(_KEYWORDS.split())


def symbolic_state(spec: Spec) -> Any:
    """A ``spec.State`` whose fields are Promela variable terms."""
    values: list[Any] = []
    for f in spec.fields:
        if f.name in PROMELA_KEYWORDS or f.name.startswith(("xbd_", "_")):
            raise PromelaError(
                f"field {f.name!r} cannot be a Promela variable: the name is a Promela "
                "keyword or starts with a prefix the generated model reserves (xbd_, _); "
                "rename the field in the declaration."
            )
        kind = variable_for(f).kind
        if f.length is None:
            values.append(Term.variable(kind, f.name))
        else:
            values.append(tuple(Term.variable(kind, f"{f.name}[{i}]") for i in range(f.length)))
    return spec.State(*values)


def _value_text(value: Any, kind: str, render: _Renderer) -> str:
    if isinstance(value, Term):
        return render(value)
    if isinstance(value, enum.Enum) and not isinstance(value, int):
        raise PromelaError(f"{value!r} is not an integer enumeration member")
    return constant(value, kind).text()


# --------------------------------------------------------------------------- pending work


def freebsd_work_pending(s: Any, k: Any) -> Any:
    """Work is pending (:func:`xbdspec.explore.target.model_work_pending`, written with
    the expression operators so that it also reads as Promela): a bio is queued or held
    by a command, a command is not free, or the dumper waits in ``xbd_dump``.  A test
    checks that both agree."""
    return expr.any_of(
        *(expr.one_of(st, (BioStage.QUEUED, BioStage.HELD)) for st in s.bio_stage),
        *(p != Place.FREE for p in s.cmd_place),
        s.dump_pc != DumpPc.IDLE,
    )


def default_work_pending(spec: Spec) -> Callable[[Any, Any], Any] | None:
    """The deadlock condition the Python explorer uses for ``spec``: the FreeBSD
    model's pending work when the spec has its bio and command fields, else None
    (no deadlock check: the protocol model has legitimate terminal states)."""
    names = set(spec.field_by_name)
    return freebsd_work_pending if {"bio_stage", "cmd_place"} <= names else None


# --------------------------------------------------------------------------- the model


@dataclass
class PromelaModel:
    """A generated Promela model and what its parts stand for.

    Attributes:
        text: the Promela source.
        mode: ``"safety"`` (invariants, step properties, deadlock) or ``"liveness"``
            (one never claim per progress property).
        multicore: generated for ``pan -DNCORE`` (no hidden variables: see
            :func:`generate`).
        spec: the declaration it was generated from.
        options: the ids (positions in ``spec.instances``) of the instances that
            have an option (an instance whose guard is plainly false has none).
        invariants: the invariants checked (those not plainly true).
        step_properties: the step properties checked in some step.
        claims: never-claim name -> progress property name (liveness only).
        deadlock: whether a deadlock (no event enabled, work pending) is checked.
        fair_events: the events ``xbd_last`` tells apart (liveness): event
            ``fair_events[i]`` is ``xbd_last == i + 1``.
    """

    text: str
    mode: str
    multicore: bool
    spec: Spec
    options: tuple[int, ...]
    invariants: tuple[str, ...]
    step_properties: tuple[str, ...]
    claims: dict[str, str] = field(default_factory=dict)
    deadlock: bool = False
    fair_events: tuple[str, ...] = ()

    @property
    def reports_every_property(self) -> bool:
        """Whether one run reports the first violation of *every* property (the
        first-report flags need hidden variables, which multi-core pan refuses)."""
        return self.mode == "safety" and not self.multicore


def identifier(name: str) -> str:
    """``name`` made a Promela identifier (letters, digits and ``_``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"


def _comment(text: str) -> str:
    return "/* " + text.replace("*/", "* /") + " */"


def _enum_names(spec: Spec) -> dict[type, str]:
    """The enumerations of the fields' domains, each named by a unique prefix."""
    names: dict[type, str] = {}
    taken: set[str] = set()
    for f in spec.fields:
        e = f.domain.enum_type
        if e is None or e in names or e.__name__ in taken:
            continue
        names[e] = e.__name__
        taken.add(e.__name__)
    return names


#: the type of a scratch variable of each term kind (multi-core: they are stored)
_SCRATCH_TYPES = {BOOL: "bool", INT: "short", U32: "int"}


class _Scratch:
    """Scratch variables of one step, by kind; the same names serve every step."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {BOOL: 0, INT: 0, U32: 0}
        self.most: dict[str, int] = {BOOL: 0, INT: 0, U32: 0}

    def start(self) -> None:
        self.used = {BOOL: 0, INT: 0, U32: 0}

    def take(self, kind: str) -> str:
        number = self.used[kind]
        self.used[kind] = number + 1
        self.most[kind] = max(self.most[kind], number + 1)
        return f"xbd_{kind[0]}{number}"

    def names_used(self) -> list[str]:
        return [f"xbd_{kind[0]}{i}" for kind, n in self.used.items() for i in range(n)]

    def declarations(self, hidden: bool) -> list[str]:
        prefix = "hidden " if hidden else ""
        # hidden variables may not be bool or bit
        return [
            f"{prefix}{'int' if hidden else _SCRATCH_TYPES[kind]} xbd_{kind[0]}{i};"
            for kind, n in self.most.items()
            for i in range(n)
        ]


def generate(
    spec: Spec,
    *,
    mode: str = "safety",
    work_pending: Callable[[Any, Any], Any] | str | None = "default",
    progress: Sequence[Progress] | None = None,
    multicore: bool = False,
) -> PromelaModel:
    """The Promela model of ``spec``.

    Args:
        mode: ``"safety"``: invariants (process ``monitor``), step properties
            (assertions in the steps) and deadlock (an invalid end state);
            ``"liveness"``: the progress properties, one never claim each, with the
            variable ``xbd_last`` and a stuttering option (see the module docstring).
            They are separate models because ``xbd_last`` multiplies the states: the
            safety model's states are exactly the Python explorer's.
        work_pending: ``work_pending(s, k)``, written with the expression operators:
            a state without an enabled event is a deadlock when it holds.  The default
            is :func:`default_work_pending`; None checks no deadlock.
        progress: the progress properties (default ``spec.progress``).
        multicore: for ``pan`` compiled with ``-DNCORE``, which refuses hidden
            variables: the scratch variables are then ordinary globals, reset to 0 at
            the end of every step (so every stored state has them 0 and the states are
            the same, in a longer state vector), and there are no first-report flags
            (run such a model to its first error).
    """
    if mode not in ("safety", "liveness"):
        raise PromelaError(f"mode must be 'safety' or 'liveness', not {mode!r}")
    if work_pending == "default":
        work_pending = default_work_pending(spec)
    assert not isinstance(work_pending, str)
    token = _ENUMS.set(_enum_names(spec))
    interned = _INTERNED.set({})
    try:
        return _generate(
            spec,
            mode=mode,
            work_pending=work_pending,
            progress=tuple(spec.progress if progress is None else progress),
            multicore=multicore,
        )
    finally:
        _INTERNED.reset(interned)
        _ENUMS.reset(token)


def _generate(
    spec: Spec,
    *,
    mode: str,
    work_pending: Callable[[Any, Any], Any] | None,
    progress: tuple[Progress, ...],
    multicore: bool,
) -> PromelaModel:
    s = symbolic_state(spec)
    k = spec.sizes
    variables = [variable_for(f) for f in spec.fields]
    kinds = {v.field.name: v.kind for v in variables}
    liveness = mode == "liveness"
    flags = not liveness and not multicore  # first-report flags (hidden variables)
    fair_events = tuple(e for e in spec.events() if any(e in p.fairness for p in progress))
    fair_id = {e: i + 1 for i, e in enumerate(fair_events)}
    out: list[str] = []

    def w(line: str = "") -> None:
        out.append(line)

    _header(w, spec, mode, multicore)
    w(f"#define {SIGN_MACRO} (-2147483647 - 1)")
    for enum_type, prefix in (_ENUMS.get() or {}).items():
        doc = enum_type.__doc__.splitlines()[0] if enum_type.__doc__ else enum_type.__name__
        w(_comment(doc))
        members: Iterable[enum.IntEnum] = enum_type  # type: ignore[assignment]
        for member in members:
            w(f"#define {prefix}_{member.name} {constant(int(member)).text()}")
    w()
    initial = spec.initial_fields(k.ring_base)
    for v in variables:
        _declare(w, v, initial[v.field.name])
    if liveness:
        w(
            f"{'byte' if len(fair_events) < 255 else 'short'} xbd_last;"
            "  /* the fair event the last step belonged to (0: none, or a stutter) */"
        )
    w()

    # every instance's enabling condition (source and guard), for the loop and the claims
    guards: dict[int, Any] = {}
    for iid, inst in enumerate(spec.instances):
        t = inst.transition
        control = getattr(s, spec.control_of(t))
        domain = {int(v) for v in spec.field_by_name[spec.control_of(t)].domain.values()}
        source: Any = (
            True if {int(x) for x in t.source} >= domain else expr.one_of(control, t.source)
        )
        guards[iid] = expr.all_of(source, t.guard(s, inst.bindings))

    body: list[str] = []
    scratch = _Scratch()
    options: list[int] = []
    checked_steps: set[str] = set()
    for iid, inst in enumerate(spec.instances):
        if guards[iid] is False:
            body.append(
                f"  {_comment(f'{iid}: {inst.label} [{inst.transition.name}]: never enabled')}"
            )
            continue
        options.append(iid)
        checks = [] if liveness else _step_checks(spec, s, inst)
        checked_steps.update(name for _, name, _ in checks)
        body.extend(
            _option(
                spec,
                s,
                iid,
                inst,
                guards[iid],
                kinds,
                checks=checks,
                scratch=scratch,
                flags=flags,
                reset_scratch=multicore,
                last=fair_id.get(inst.transition.event, 0) if liveness else None,
            )
        )

    monitor: list[str] = []
    invariants: list[str] = []
    if not liveness:
        for number, inv in enumerate(spec.invariants):
            holds = inv.holds(s, k)
            if holds is True:
                monitor.append(f"  {_comment(f'{inv.name}: holds whatever the state')}")
                continue
            invariants.append(inv.name)
            fails = _bool_text(expr.negate(holds))
            seen = f"!xbd_seen_inv_{number} && " if flags else ""
            monitor += [
                f"  :: d_step {{ {_comment(inv.name)}",
                f"       {seen}{fails} ->",
                *([f"       xbd_seen_inv_{number} = 1;"] if flags else []),
                f'       printf("{VIOLATION_MARK} invariant {inv.name}\\n");',
                f"       assert({_assertion('inv', inv.name, flags)})",
                "     }",
            ]
    deadlock = False
    if not liveness and work_pending is not None:
        pending = work_pending(s, k)
        if pending is not False:
            deadlock = True
            seen = "!xbd_seen_deadlock && " if flags else ""
            # a d_step (not atomic) so that the hidden flag is not undone on backtracking
            # (spin -a warns about the timeout in a d_step: harmless here)
            monitor += [
                f"  :: d_step {{ {_comment('deadlock: no event enabled while work is pending')}",
                f"       timeout && {seen}{_bool_text(pending)} ->",
                *(["       xbd_seen_deadlock = 1;"] if flags else []),
                f'       printf("{VIOLATION_MARK} deadlock {DEADLOCK}\\n")',
                "     }; goto deadlocked",
            ]

    w(
        "/* scratch values of one step"
        + (
            " and first-report flags: hidden, so not part of the stored state */"
            if not multicore
            else " (multi-core: not hidden, and 0 between steps) */"
        )
    )
    out.extend(scratch.declarations(hidden=not multicore))
    if flags:
        out.extend(f"hidden byte xbd_seen_inv_{n};" for n in range(len(spec.invariants)))
        out.extend(f"hidden byte xbd_seen_step_{n};" for n in range(len(spec.step_properties)))
        w("hidden byte xbd_seen_deadlock;")
        w("/* always 0: asserted when a property fails, so that pan's message names it */")
        out.extend(f"hidden byte inv_{identifier(n)};" for n in invariants)
        out.extend(f"hidden byte step_{identifier(n)};" for n in sorted(checked_steps))
    w()

    if liveness:
        for e in fair_events:
            enabled = expr.any_of(
                *(guards[i] for i, inst in enumerate(spec.instances) if inst.transition.event == e)
            )
            w(f"#define xbd_en_{identifier(e)} {_bool_text(enabled)}")
            name = identifier(e)
            w(f"#define xbd_fair_{name} (!xbd_en_{name} || xbd_last == {fair_id[e]})")
        w()

    w("active proctype main() {")
    w("end_main:")
    w("  do")
    out.extend(body)
    if not options:
        w("  :: false  /* no instance can ever be enabled */")
    if liveness:
        w("  :: d_step { /* stutter: the behaviour may stop anywhere (fairness decides) */")
        w(f'       true -> printf("{STUTTER_MARK}\\n"); xbd_last = 0')
        w("     }")
    w("  od")
    w("}")
    w()
    if monitor:
        w("active proctype monitor() {")
        w("end_monitor:")
        w("  do")
        out.extend(monitor)
        w("  od;")
        w("deadlocked:")
        w("  false")
        w("}")
        w()

    claims: dict[str, str] = {}
    if liveness:
        for prop in progress:
            name = f"progress_{identifier(prop.name)}"
            claims[name] = prop.name
            out.extend(_claim(spec, s, prop, name, fair_id))
    return PromelaModel(
        text="\n".join(out) + "\n",
        mode=mode,
        multicore=multicore,
        spec=spec,
        options=tuple(options),
        invariants=tuple(invariants),
        step_properties=tuple(p.name for p in spec.step_properties if p.name in checked_steps),
        claims=claims,
        deadlock=deadlock,
        fair_events=fair_events,
    )


def _assertion(kind: str, name: str, flags: bool) -> str:
    """What an assertion asserts: a hidden variable named after the property (always
    0, so that pan's message names it), or plain ``false`` where hidden variables
    are not allowed."""
    return f"{kind}_{identifier(name)}" if flags else "false"


def _header(w: Callable[[str], None], spec: Spec, mode: str, multicore: bool) -> None:
    w("/*")
    w(f" * Generated by xbdspec.explore.promela: the {mode} model of the declaration")
    w(f" * for {spec.sizes}{' (multi-core variant)' if multicore else ''}.")
    w(" * Do not edit: every guard, effect and property is the declaration's own function")
    w(" * run on Promela terms.  State: one variable per field (arrays for array fields);")
    w(" * ring indices (u32) are ints holding the same 32 bits (pan.c is compiled with")
    w(" * -fwrapv), compared as unsigned through the sign-bit flip XBD_SIGN.  Each option")
    w(" * of main's loop is one instance of a transition, labelled with its id in")
    w(" * spec.instances, its event and its transition.  Generate pan with spin -a -o2:")
    w(" * without -o2, spin hides a field that is only assigned (never read) from the")
    w(" * state vector, and pan then counts fewer states than the declaration has.")
    w(" */")
    w("")


def _declare(w: Callable[[str], None], v: Variable, value: Any) -> None:
    f = v.field
    if f.length is None:
        w(f"{v.type} {f.name} = {constant(value, v.kind).text()};  {_comment(f.doc)}")
        return
    items = tuple(value)
    if any(int(x) != int(items[0]) for x in items):
        raise PromelaError(
            f"the initial value of array field {f.name} is not the same in every element "
            f"({items!r}); a Promela array is initialised with one value. Give the field "
            "a uniform initial value, or declare one scalar field per element."
        )
    w(f"{v.type} {f.name}[{f.length}] = {constant(items[0], v.kind).text()};  {_comment(f.doc)}")


def _elements(spec: Spec, state: Any) -> list[tuple[str, str, Any]]:
    """``(field name, variable text, value)`` of every element of ``state``."""
    out = []
    for f in spec.fields:
        value = getattr(state, f.name)
        if f.length is None:
            out.append((f.name, f.name, value))
        else:
            out.extend((f.name, f"{f.name}[{i}]", item) for i, item in enumerate(value))
    return out


def _after(spec: Spec, s: Any, inst: Instance) -> tuple[Any, dict[str, Any]]:
    t = inst.transition
    changes = effect_changes(t, spec.control_of(t), s, inst.bindings)
    return s._replace(**changes), changes


def _step_checks(spec: Spec, s: Any, inst: Instance) -> list[tuple[int, str, Any]]:
    """The step properties the instance's steps could break: ``(number, name, holds)``."""
    after, _ = _after(spec, s, inst)
    checks = []
    for number, p in enumerate(spec.step_properties):
        holds = p.holds(s, after, spec.sizes)
        if holds is not True:
            checks.append((number, p.name, holds))
    return checks


def _option(
    spec: Spec,
    s: Any,
    iid: int,
    inst: Instance,
    guard: Any,
    kinds: Mapping[str, str],
    *,
    checks: list[tuple[int, str, Any]],
    scratch: _Scratch,
    flags: bool,
    reset_scratch: bool,
    last: int | None,
) -> list[str]:
    """One ``:: d_step { guard -> ... }`` option of the loop.

    Inside the ``d_step``: the guard; the mark ``xbdspec-step <id>`` for SPIN's
    guided simulation; the sub-terms the new values share, each computed once into a
    scratch variable; the step properties' assertions; the assignments, in an order
    where no variable is written before every expression reading its old value."""
    t = inst.transition
    after, _ = _after(spec, s, inst)
    writes = [
        (name, var, new)
        for (name, var, old), (_, _, new) in zip(
            _elements(spec, s), _elements(spec, after), strict=True
        )
        if new is not old
    ]
    roots = [v for _, _, v in writes if isinstance(v, Term)]
    roots += [h for _, _, h in checks if isinstance(h, Term)]
    scratch.start()
    render = _Renderer()
    lines: list[str] = []
    for node in _shared_nodes(roots):
        name = scratch.take(node.kind)
        lines.append(f"{name} = {render(node)};")
        render.temps[id(node)] = name
    for number, pname, holds in checks:
        fails = "true" if holds is False else render(_negate(_as_term(holds, BOOL)))
        seen = f"!xbd_seen_step_{number} && " if flags else ""
        mark = f"xbd_seen_step_{number} = 1; " if flags else ""
        lines.append(
            f"if :: {seen}{fails} -> {mark}"
            f'printf("{VIOLATION_MARK} step {pname}\\n"); '
            f"assert({_assertion('step', pname, flags)}) :: else -> skip fi;"
        )
    pending = [
        (
            var,
            kinds[name],
            _value_text(value, kinds[name], render),
            render.reads(value) if isinstance(value, Term) else frozenset(),
        )
        for name, var, value in writes
    ]
    assignments: list[str] = []
    while pending:
        for i, (var, _, text, _) in enumerate(pending):
            if all(var not in reads for j, (_, _, _, reads) in enumerate(pending) if j != i):
                assignments.append(f"{var} = {text};")
                del pending[i]
                break
        else:
            # a cycle (x = f(y), y = g(x)): the remaining values go through scratch first
            for var, kind, text, _ in pending:
                name = scratch.take(kind)
                lines.append(f"{name} = {text};")
                assignments.append(f"{var} = {name};")
            pending = []
    if last is not None:
        assignments.append(f"xbd_last = {last};")
    if reset_scratch:
        assignments.extend(f"{name} = 0;" for name in scratch.names_used())
    return [
        f"  :: d_step {{ {_comment(f'{iid}: {inst.label} [{t.name}]')}",
        f"       {_bool_text(guard)} ->",
        f'       printf("{STEP_MARK} {iid}\\n");',
        *(f"       {line}" for line in lines + assignments),
        "     }",
    ]


def _claim(spec: Spec, s: Any, prop: Progress, name: str, fair_id: Mapping[str, int]) -> list[str]:
    """The never claim of ``prop``: it accepts exactly the weakly fair behaviours that
    reach ``when and not goal`` and never meet ``goal`` afterwards.

    Weak fairness of event ``e`` on an infinite behaviour: infinitely often ``e`` is
    disabled or was just taken (``xbd_fair_e``: ``!xbd_en_e || xbd_last == id(e)``).
    The claim waits for these conditions one after the other (states ``fair0``,
    ``fair1``...) and passes through ``accept_fair`` each time all were met: a
    behaviour visits it infinitely often exactly when each condition holds infinitely
    often.  A behaviour that stops (stutters for ever) is fair exactly when no fair
    event is enabled where it stops, as in :mod:`xbdspec.explore.progress`.
    """
    k = spec.sizes
    tag = identifier(prop.name)
    when = _bool_text(expr.all_of(prop.when(s, k), expr.negate(prop.goal(s, k))))
    goal_free = _bool_text(expr.negate(prop.goal(s, k)))
    fair = [e for e in dict.fromkeys(prop.fairness) if e in fair_id]
    conds = [f"xbd_fair_{identifier(e)}" for e in fair]
    states = [f"fair{i}" for i in range(len(conds))]

    def after(i: int) -> str:
        return states[i + 1] if i + 1 < len(states) else "accept_fair"

    lines = [
        f"#define xbd_start_{tag} {when}",
        f"#define xbd_goal_free_{tag} {goal_free}",
        f"never {name} {{  {_comment(f'{prop.name}: {prop.doc}')}",
        f"  {_comment('weakly fair: ' + (', '.join(fair) or 'nothing'))}",
        "wait:",
        "  do",
        "  :: true",
        f"  :: xbd_start_{tag} -> goto {states[0] if states else 'accept_fair'}",
        "  od;",
    ]
    for i, cond in enumerate(conds):
        lines += [
            f"{states[i]}:",
            "  do",
            f"  :: xbd_goal_free_{tag} && {cond} -> goto {after(i)}",
            f"  :: xbd_goal_free_{tag} && !{cond} -> skip",
            "  od;",
        ]
    lines += ["accept_fair:", "  do"]
    if conds:
        lines += [
            f"  :: xbd_goal_free_{tag} && {conds[0]} -> goto {after(0)}",
            f"  :: xbd_goal_free_{tag} && !{conds[0]} -> goto {states[0]}",
        ]
    else:
        lines.append(f"  :: xbd_goal_free_{tag}")
    return [*lines, "  od", "}", ""]


def _bool_text(value: Any) -> str:
    """A condition as Promela text (plain booleans included)."""
    if isinstance(value, Term):
        return _Renderer()(value)
    return "true" if value else "false"
