"""The declaration's steps compiled to Python functions, for the trace checkers.

A trace checker takes one model step at a time: is the step allowed from this state
(its component's control state among the step's sources, every condition true) and,
if so, which state does it lead to.  Evaluated straight from the declaration
(:mod:`xbdspec.model.concrete`), a step goes through the operators of
:mod:`xbdspec.model.expr` (each looks at its arguments' types to find their algebra),
a :class:`~xbdspec.model.draft.Draft` and ``namedtuple._replace``: 5 to 70 µs for a
ring step of the protocol model.  :func:`compile_step` runs the step's own
``conditions`` and ``effect`` once, on a *symbolic* state whose fields are
:class:`Code` terms (a third algebra beside the plain values and z3's terms,
registered with :func:`xbdspec.model.expr.register_algebra`), writes down every
operation they do as a line of Python, and makes those lines one function of the
state: the same operations on the same values, without the dispatch, well under a
microsecond for most ring steps.  There is no second copy of the rules: what is
compiled is what the declaration's own functions do.

Why the compiled step is the plain one:

* Every operation a condition or an effect does on a term is written down with the
  same Python operator (``==``, ``+``, ``&``, ...) or with the plain meaning of
  :mod:`xbdspec.model.expr`'s operator (``u32_add(a, b)`` is ``(a + b) & 0xFFFFFFFF``,
  ``all_of`` the ``bool`` of the conjunction of values computed before it, ...); an
  enumeration member or any other constant the functions use is the very object.
* The parameters are bound: a step is compiled per instance (its parameters' values
  fixed), so Python's ``if`` on a parameter (``if p.push:``) and array indices
  (``s.req_stage[p.id]``) are plain values while the functions run.
* Anything the algebra cannot follow (``bool()`` of a term, a term as an index or a
  dictionary key, a method it does not have, ...) raises inside the compilation: the
  step is then not compiled (:func:`compile_step` returns None) and the checker keeps
  the plain interpretation for it.
* The operations are pure (plain values in, plain values out), so rearranging them
  changes no result: only what a condition or the state after reads is computed (the
  rest is left out), a definition read once is written into what reads it, equal
  expressions are computed once, each condition is looked at as soon as it is
  computed, the ``& 0xFFFFFFFF`` of a value already masked is left out, an array's new
  value that is the same expression of each element is one comprehension
  (:func:`_mapped`), tests of several elements of one array against one value are one
  loop (:func:`_loops_of_equalities`), and so are assignments of one value to several
  elements; the new state is a copy of the old one's fields with the changed ones
  assigned.
* ``tests/traces/test_compiled.py`` compares the compiled and the plain step of every
  transition of the protocol model on states reached by random traces and on
  random states (hypothesis).

A compiled step returns the state after it, or None when the step is not allowed
(the caller asks the plain interpretation why, which gives the same answer).

Compiling costs the declaration's functions run once on terms and, for a new shape of
function, Python's ``compile``: the text of a compiled step names its values (element
indices, the indices a loop goes over, constants) by the order they first appear in it
(:func:`_renamed`), so two instances that differ only in such values
(``backend_consume(id=3)`` and ``(id=4)``; ``frontend_service_ring`` taking two
responses or five) have the same text, and share one code object (``codes``).
"""

from __future__ import annotations

import re
import threading
import types
from collections.abc import Callable
from typing import Any

from xbdspec.errors import XbdspecError
from xbdspec.model import expr
from xbdspec.model.concrete import effect_changes
from xbdspec.model.declaration import Instance, Transition

#: A compiled step: the state after it, or None when it is not allowed.
CompiledStep = Callable[[Any], Any]

_MASK = "4294967295"
#: The names a compiled step defines: fields ``f<position>``, elements of array fields
#: ``e<n>``, temporaries ``t<n>``.
_NAME = re.compile(r"\b[eft][0-9]+\b")
#: The operators whose result is a ``bool`` whatever the operands (ints, enumerations).
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})


class NotCompilable(XbdspecError):
    """A condition or an effect did something with a term the compiler cannot follow
    (Python's ``if`` on a state field, say): the step stays interpreted."""


class _Builder:
    """One compilation under way: the definitions of the function (each a name and
    the expression it holds, in the order they were made), the values it names."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, list[str]]] = []
        #: the names used since the last definition (what the next one reads)
        self.uses: list[str] = []
        #: the names of the values the function uses (``L<n>``), and the values
        self.values: dict[str, Any] = {}
        self._ints: dict[int, str] = {}
        self._bools: dict[bool, str] = {}
        self._objects: dict[int, str] = {}
        #: fields and elements read so far: origin -> name
        self._read: dict[tuple[int, int | None], str] = {}
        #: the temporaries made, by their expression, and by their name
        self._made: dict[str, Code] = {}
        self.defs: dict[str, Code] = {}
        self._index: dict[str, tuple[str, str, list[str]]] = {}
        #: temporary -> whether it reads an element of an array (:func:`_mapped`)
        self.element_readers: dict[str, bool] = {}
        self._count = 0

    def read_items(self) -> list[tuple[tuple[int, int | None], str]]:
        """The fields and elements read so far, with their names."""
        return list(self._read.items())

    def line_of(self, name: str) -> tuple[str, str, list[str]] | None:
        """The definition of the temporary ``name``."""
        index = self._index
        if len(index) != len(self.lines):
            index.clear()
            index.update((line[0], line) for line in self.lines)
        return index.get(name)

    def literal(self, value: Any) -> str:
        """A plain value, by a name of the function bound to the very object (an
        integer, a bool, an enumeration member, a frozenset): a tuple is a tuple of
        them, ``None`` is ``None``.  Integers are told from bools (``1`` is not
        ``True`` here), everything else by identity."""
        kind = type(value)
        names: dict[Any, str]
        if kind is int:
            names = self._ints
            key: Any = value
        elif kind is bool:
            names = self._bools
            key = value
        elif value is None:
            return "None"
        elif kind is tuple:
            return f"({''.join([f'{self.ref(v)}, ' for v in value])})"
        else:
            names = self._objects
            key = id(value)
        name = names.get(key)
        if name is None:
            name = names[key] = f"L{len(self.values)}"
            self.values[name] = value
        return name

    def ref(self, value: Any) -> str:
        """An expression for a term or a plain value."""
        if type(value) is Code:
            return self.use(value)
        return self.literal(value)

    def use(self, code: Code) -> str:
        """The name of a term, reading it from the state the first time (a field
        ``s[i]``, an element ``f<i>[j]`` of an array field)."""
        found = code.name
        if found is None:
            origin = code.origin
            assert origin is not None
            found = self._read.get(origin)
            if found is None:
                found = self._read_origin(origin)
        self.uses.append(found)
        return found

    def _read_origin(self, origin: tuple[int, int | None]) -> str:
        """Define the name of a field, or of an element of an array field."""
        position, element = origin
        if element is None:
            found = f"f{position}"
            self.lines.append((found, f"s[{position}]", []))
        else:
            parent = self._read.get((position, None)) or self._read_origin((position, None))
            self._count += 1
            found = f"e{self._count}"
            self.lines.append((found, f"{parent}[{self.literal(element)}]", [parent]))
        self._read[origin] = found
        return found

    def temp(self, expression: str, boolean: bool = False, u32: bool = False) -> Code:
        """A new temporary holding ``expression`` (``boolean``: always a ``bool``;
        ``u32``: always an ``int`` in ``[0, 2**32)``)."""
        found = self._made.get(expression)
        if found is not None:  # the same expression of the same names: pure, so shared
            self.uses = []
            return found
        self._count += 1
        name = f"t{self._count}"
        self.lines.append((name, expression, self.uses))
        self.uses = []
        found = self._made[expression] = Code(name, boolean=boolean, u32=u32)
        self.defs[name] = found
        return found

    def masked(self, value: Any) -> str:
        """``value & 0xFFFFFFFF`` (what ``u32_lt`` compares): the value itself when it
        is one already."""
        if isinstance(value, Code) and value.u32:
            return self.use(value)
        return f"({self.ref(value)} & {_MASK})"

    def binary(self, op: str, left: Any, right: Any) -> Code:
        made = self.temp(f"{self.ref(left)} {op} {self.ref(right)}", op in _COMPARISONS)
        if op == "==" and isinstance(left, Code) and not isinstance(right, Code):
            origin = left.origin
            if origin is not None and origin[1] is not None:
                made.element_eq = (origin[0], origin[1], right)
        return made

    def named(self, value: Any) -> str:
        """A plain value by a name of the function, by identity (a tuple too)."""
        name = self._objects.get(id(value))
        if name is None:
            name = self._objects[id(value)] = f"L{len(self.values)}"
            self.values[name] = value
        return name


#: The compilation under way (one at a time: :data:`_LOCK`).
_CURRENT: list[_Builder] = []
_LOCK = threading.Lock()


def _builder() -> _Builder:
    if not _CURRENT:
        raise NotCompilable("a term used outside a compilation")
    return _CURRENT[-1]


def _refuse(what: str) -> Callable[..., Any]:
    def refuse(self: Code, *args: Any) -> Any:
        raise NotCompilable(f"{what} of a state term")

    return refuse


def _binary(op: str) -> Callable[[Code, Any], Code]:
    def method(self: Code, other: Any) -> Code:
        return _builder().binary(op, self, other)

    return method


def _reflected(op: str) -> Callable[[Code, Any], Code]:
    def method(self: Code, other: Any) -> Code:
        return _builder().binary(op, other, self)

    return method


class Code:
    """A term of the compiler's algebra: a value the compiled step computes.

    Attributes:
        name: the temporary holding it, or None for a field of the state or an
            element of an array field (read by the step when first used).
        origin: for a field, ``(position, None)``; for an element,
            ``(position, index)``.
        boolean: the value is always a ``bool`` (a comparison's, a conjunction's).
        u32: the value is an ``int`` in ``[0, 2**32)`` (a ring index's arithmetic).
        element_eq: for ``element == constant``, which element and constant.
    """

    __slots__ = ("boolean", "element_eq", "name", "origin", "u32")

    def __init__(
        self,
        name: str | None,
        origin: tuple[int, int | None] | None = None,
        boolean: bool = False,
        u32: bool = False,
    ) -> None:
        self.name = name
        self.origin = origin
        self.boolean = boolean
        #: the value is a ``(...) & 0xFFFFFFFF``: an int in [0, 2**32)
        self.u32 = u32
        #: for ``element == constant``: (the array's position, the element's index, the
        #: constant), which :meth:`_CodeAlgebra._junction` may test in one loop
        self.element_eq: tuple[int, int, Any] | None = None

    __eq__ = _binary("==")  # type: ignore[assignment]
    __ne__ = _binary("!=")  # type: ignore[assignment]
    __lt__ = _binary("<")
    __le__ = _binary("<=")
    __gt__ = _binary(">")
    __ge__ = _binary(">=")
    __add__ = _binary("+")
    __radd__ = _reflected("+")
    __sub__ = _binary("-")
    __rsub__ = _reflected("-")
    __mul__ = _binary("*")
    __rmul__ = _reflected("*")
    __floordiv__ = _binary("//")
    __rfloordiv__ = _reflected("//")
    __mod__ = _binary("%")
    __rmod__ = _reflected("%")
    __and__ = _binary("&")
    __rand__ = _reflected("&")
    __or__ = _binary("|")
    __ror__ = _reflected("|")
    __xor__ = _binary("^")
    __rxor__ = _reflected("^")
    __lshift__ = _binary("<<")
    __rlshift__ = _reflected("<<")
    __rshift__ = _binary(">>")
    __rrshift__ = _reflected(">>")
    __hash__ = _refuse("hash()")
    __bool__ = _refuse("bool()")
    __index__ = _refuse("an index")
    __int__ = _refuse("int()")
    __iter__ = _refuse("iteration")
    __len__ = _refuse("len()")
    __getitem__ = _refuse("indexing")
    __contains__ = _refuse("membership")

    def __neg__(self) -> Code:
        b = _builder()
        return b.temp(f"-{b.use(self)}")

    def __invert__(self) -> Code:
        b = _builder()
        return b.temp(f"~{b.use(self)}")

    def __repr__(self) -> str:
        return f"Code({self.name or self.origin})"


class _CodeAlgebra:
    """:mod:`xbdspec.model.expr`'s operators on :class:`Code` terms, each with the
    meaning of the operator's plain branch, over operands computed before it."""

    def owns(self, value: object) -> bool:
        return isinstance(value, Code)

    def ite(self, cond: Any, then: Any, other: Any) -> Any:
        b = _builder()
        return b.temp(f"{b.ref(then)} if {b.ref(cond)} else {b.ref(other)}")

    def all_of(self, items: list[Any]) -> Any:
        return self._junction(items, " and ")

    def any_of(self, items: list[Any]) -> Any:
        return self._junction(items, " or ")

    @staticmethod
    def _junction(items: list[Any], op: str) -> Any:
        """``all(items)`` or ``any(items)``: a ``bool``.  Of operands that are all
        ``bool`` already, ``and`` and ``or`` give one of them, a ``bool``."""
        b = _builder()
        booleans = all(isinstance(i, Code) and i.boolean for i in items)
        if booleans and len(items) == 1:
            return items[0]
        if booleans and op == " and ":
            items = _loops_of_equalities(b, items)
            if len(items) == 1:
                return items[0]
        joined = op.join([b.ref(i) for i in items])
        if booleans:
            return b.temp(joined, boolean=True)
        return b.temp(f"True if ({joined}) else False", boolean=True)

    def negate(self, item: Any) -> Any:
        b = _builder()
        return b.temp(f"not {b.ref(item)}", boolean=True)

    def count_true(self, items: list[Any]) -> Any:
        b = _builder()
        return b.temp(" + ".join(f"(1 if {b.ref(i)} else 0)" for i in items))

    def u32_add(self, a: Any, c: Any) -> Any:
        b = _builder()
        return b.temp(f"({b.ref(a)} + {b.ref(c)}) & {_MASK}", u32=True)

    def u32_sub(self, a: Any, c: Any) -> Any:
        b = _builder()
        return b.temp(f"({b.ref(a)} - {b.ref(c)}) & {_MASK}", u32=True)

    def u32_lt(self, a: Any, c: Any) -> Any:
        b = _builder()
        return b.temp(f"{b.masked(a)} < {b.masked(c)}", boolean=True)

    def u32_le(self, a: Any, c: Any) -> Any:
        b = _builder()
        return b.temp(f"{b.masked(a)} <= {b.masked(c)}", boolean=True)

    def u32_of(self, n: Any) -> Any:
        b = _builder()
        if isinstance(n, Code) and n.u32:
            return n
        return b.temp(f"{b.ref(n)} & {_MASK}", u32=True)


def _loops_of_equalities(b: _Builder, items: list[Any]) -> list[Any]:
    """The operands of a conjunction with the tests ``array[j] == constant`` of one
    array and one constant, two or more, made one test of all of them in a loop
    (``all([f27[j] == L1 for j in L9])``, ``L9`` the indices): the text then does not
    depend on which elements, nor how many, are tested."""
    groups: dict[tuple[int, Any], list[Code]] = {}
    for item in items:
        found = item.element_eq
        if found is not None:
            position, _, constant = found
            key = (
                position,
                (type(constant), constant) if type(constant) in (int, bool) else id(constant),
            )
            groups.setdefault(key, []).append(item)
    if not any(len(g) > 1 for g in groups.values()):
        return items
    out: list[Any] = []
    done: set[int] = set()
    for item in items:
        found = item.element_eq
        if found is None:
            out.append(item)
            continue
        position, _, constant = found
        key = (
            position,
            (type(constant), constant) if type(constant) in (int, bool) else id(constant),
        )
        group = groups[key]
        if len(group) == 1:
            out.append(item)
        elif id(group[0]) not in done:
            done.add(id(group[0]))
            indices = tuple(g.element_eq[1] for g in group)  # type: ignore[index]
            array = b.use(_field_term(position))
            value = b.ref(constant)
            out.append(
                b.temp(f"_all([{array}[_j] == {value} for _j in {b.named(indices)}])", boolean=True)
            )
    return out


expr.register_algebra(_CodeAlgebra())

#: The terms of the fields (and of their elements), shared by every compilation.
_FIELD_TERMS: dict[int, Code] = {}


def _field_term(position: int) -> Code:
    found = _FIELD_TERMS.get(position)
    if found is None:
        found = _FIELD_TERMS[position] = Code(None, (position, None))
    return found


class _SymbolicState:
    """A state whose fields are :class:`Code` terms (an array field: a tuple of
    terms, one per element), read by the compiled step when first used."""

    def __init__(self, sample: Any) -> None:
        #: the array fields' tuples of terms, by position
        self.arrays: dict[int, tuple[Code, ...]] = {}
        for position, (name, value) in enumerate(zip(sample._fields, sample, strict=True)):
            if isinstance(value, tuple):
                terms = tuple(Code(None, (position, j)) for j in range(len(value)))
                self.arrays[position] = terms
                setattr(self, name, terms)
            else:
                setattr(self, name, _field_term(position))


#: A symbolic state per state type and arrays' lengths.
_STATES: dict[tuple[Any, ...], _SymbolicState] = {}


def _symbolic(sample: Any) -> _SymbolicState:
    """The symbolic state of ``sample``'s type and arrays' lengths (made once; the
    sample last asked for is remembered by identity)."""
    last = _LAST
    if last and last[0] is sample:
        held: _SymbolicState = last[1]
        return held
    key = (type(sample), *(len(v) if isinstance(v, tuple) else -1 for v in sample))
    found = _STATES.get(key)
    if found is None:
        found = _STATES[key] = _SymbolicState(sample)
    _LAST[:] = [sample, found]
    return found


#: The sample :func:`_symbolic` was last asked for, and its symbolic state.
_LAST: list[Any] = []


def _field_value(
    b: _Builder, state: _SymbolicState, position: int, value: Any, out: list[str]
) -> str:
    """The expression of a field's new value (with the statements that make it, in
    ``out``).  An array field where at most three quarters of the elements change: a
    list copy of its old value with the new elements assigned (the text names the
    elements' indices, so it does not depend on which they are); else a tuple of
    every element."""
    if not isinstance(value, tuple):
        return b.ref(value)
    old = state.arrays.get(position)
    if old is None or len(old) != len(value):
        return b.literal(value)
    changed = [j for j in range(len(value)) if value[j] is not old[j]]
    if 4 * len(changed) > 3 * len(value):
        mapped = _mapped(b, state, value)
        if mapped is not None:
            return mapped
        return f"({''.join(f'{b.ref(v)}, ' for v in value)})"
    if not changed:
        return b.use(_field_term(position))
    name = f"a{position}"
    out.append(f"    {name} = _list({b.use(_field_term(position))})")
    # the elements given one value, assigned in one loop: the text names the indices
    # as one value, so it does not depend on which elements, nor how many
    groups: dict[Any, list[int]] = {}
    for j in changed:
        v = value[j]
        key = (type(v), v) if type(v) in (int, bool) else id(v)
        groups.setdefault(key, []).append(j)
    for indices in groups.values():
        item = b.ref(value[indices[0]])
        if len(indices) == 1:
            out.append(f"    {name}[{b.literal(indices[0])}] = {item}")
        else:
            out.append(f"    for _j in {b.named(tuple(indices))}: {name}[_j] = {item}")
    return f"_tuple({name})"


def _mapped(b: _Builder, state: _SymbolicState, value: tuple[Any, ...]) -> str | None:
    """An array's new value as one comprehension over the old arrays, when each
    element ``j`` is the same expression of the elements ``j`` of arrays (and of
    values that read no element): ``tuple([L2 if x27 == L1 else x27 for x27 in f27])``
    for ``push_requests``' ``tuple(ite(st == PRIVATE, PUBLISHED, st) for st in ...)``.
    None when it is not."""
    origins = {name: origin for origin, name in b.read_items() if origin[1] is not None}
    texts: set[str] = set()
    sources: set[int] = set()
    free: set[str] = set()
    for j, v in enumerate(value):
        found = _element_expression(b, v, j, origins, sources, free, 0)
        if found is None:
            return None
        texts.add(found)
        if len(texts) > 1:
            return None
    if not sources or any(len(state.arrays.get(p, ())) != len(value) for p in sources):
        return None
    order = sorted(sources)
    arrays = [b.use(_field_term(p)) for p in order]
    b.uses.extend(sorted(free))
    (text,) = texts
    names = ", ".join(f"x{p}" for p in order)
    over = arrays[0] if len(arrays) == 1 else f"_zip({', '.join(arrays)})"
    return f"_tuple([{text} for {names} in {over}])"


def _element_expression(
    b: _Builder,
    value: Any,
    j: int,
    origins: dict[str, tuple[int, int | None]],
    sources: set[int],
    free: set[str],
    depth: int,
) -> str | None:
    """The text of ``value`` as a function of elements ``j`` (named ``x<position>``)
    and of values that read no element (kept by name, in ``free``); None when it reads
    another element, or nests too deep."""
    if not isinstance(value, Code):
        return b.literal(value)
    if value.origin is not None:
        position, element = value.origin
        if element is None:
            name = b.use(value)
            b.uses.pop()
            free.add(name)
            return name
        if element != j:
            return None
        sources.add(position)
        return f"x{position}"
    temporary = value.name
    assert temporary is not None
    line = b.line_of(temporary)
    if not _reads_an_element(b, temporary, origins):
        free.add(temporary)
        return temporary
    if depth > 16 or line is None:
        return None
    _, expression, reads = line
    parts: list[str] = []
    for read in reads:
        if read in origins:
            position, element = origins[read]
            if element != j:
                return None
            sources.add(position)
            parts.append(f"x{position}")
            continue
        code = b.defs.get(read)
        if code is None:  # a field
            free.add(read)
            parts.append(read)
            continue
        inner = _element_expression(b, code, j, origins, sources, free, depth + 1)
        if inner is None:
            return None
        parts.append(f"({inner})")
    pieces = _NAME.split(expression)
    if len(pieces) != len(parts) + 1:
        return None
    return "".join(p + q for p, q in zip(pieces, [*parts, ""], strict=True))


def _reads_an_element(b: _Builder, name: str, origins: dict[str, tuple[int, int | None]]) -> bool:
    """Whether the temporary ``name`` reads an element of an array, itself or through
    the temporaries it reads."""
    known = b.element_readers
    found = known.get(name)
    if found is None:
        line = b.line_of(name)
        found = line is not None and any(
            r in origins or (r in b.defs and _reads_an_element(b, r, origins)) for r in line[2]
        )
        known[name] = found
    return found


def compile_step(
    transition: Transition,
    control: str,
    instance: Instance,
    sample: Any,
    codes: dict[str, types.CodeType] | None = None,
) -> CompiledStep | None:
    """``transition`` with ``instance``'s parameters as one function of the state:
    the state after the step, or None when the step is not allowed: its component's
    ``control`` field outside its sources, or one of its ``conditions`` false (none
    when it has none, as the protocol checker takes a step).  None when the step
    cannot be compiled (see :class:`NotCompilable`).

    ``sample`` is any state of the model (it gives the fields and the arrays'
    lengths); ``codes`` holds the code objects compiled so far, by their text (bounded
    by the caller)."""
    with _LOCK:
        b = _Builder()
        _CURRENT.append(b)
        try:
            made = _generate(b, transition, control, instance, sample)
        except Exception:  # anything the compiler cannot follow: the step stays interpreted
            return None
        finally:
            _CURRENT.pop()
    made, values = _renamed(made, b.values)
    code = None if codes is None else codes.get(made)
    if code is None:
        try:
            module = compile(made, f"<compiled {transition.name}>", "exec")
        except (SyntaxError, RecursionError, MemoryError, ValueError):
            return None
        code = next(c for c in module.co_consts if isinstance(c, types.CodeType))
        if codes is not None:
            codes[made] = code
    namespace: dict[str, Any] = values
    namespace["_new"] = tuple.__new__
    namespace["_State"] = type(sample)
    namespace["_list"] = list
    namespace["_tuple"] = tuple
    namespace["_zip"] = zip
    namespace["_all"] = all
    namespace["__builtins__"] = {}
    step: CompiledStep = types.FunctionType(code, namespace, "step")
    return step


def _renamed(text: str, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``text`` with its values named again by the order they first appear in it (the
    names were given as the values were met, dead code's too), and the values by their
    new names: two instances whose steps differ only in values have one text."""
    names: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        found = names.get(match[0])
        if found is None:
            found = names[match[0]] = f"L{len(names)}"
        return found

    renamed = _VALUE.sub(rename, text)
    return renamed, {new: values[old] for old, new in names.items()}


#: The names of a compiled step's values (``L<n>``).
_VALUE = re.compile(r"\bL[0-9]+\b")


def _generate(
    b: _Builder,
    transition: Transition,
    control: str,
    instance: Instance,
    sample: Any,
) -> str:
    """The text of the compiled step (see :func:`compile_step`)."""
    state = _symbolic(sample)
    fields = list(sample._fields)
    control_position = fields.index(control)
    conditions: list[Any] = []
    if transition.conditions is not None:
        conditions = [c for _, c in transition.conditions(state, instance.bindings)]
    checks: list[str] = []  # the names to test, in order
    refused = False
    for cond in conditions:
        if isinstance(cond, Code):
            checks.append(b.use(cond))
        elif not cond:
            refused = True
    checked = len(b.lines)
    b.uses = []
    changes = effect_changes(transition, control, state, instance.bindings)
    unknown = set(changes) - set(fields)
    if unknown:
        raise NotCompilable(f"the effect assigns {sorted(unknown)}, no field")
    result: list[str] = []
    for position, name in enumerate(fields):
        if name in changes:
            made = _field_value(b, state, position, changes[name], result)
            result.append(f"    r[{position}] = {made}")
    sources = b.literal(frozenset(transition.source))
    result_uses = b.uses
    body = [f"    if s[{control_position}] not in {sources}: return None"]
    if refused:
        body.append("    return None")
    else:
        emitted, inline = _emit(b.lines, checked, checks, result_uses)
        body += emitted
        if result:
            body.append("    r = _list(s)")
            body += [_NAME.sub(lambda m: inline.get(m[0], m[0]), line) for line in result]
            body.append("    return _new(_State, r)")
        else:
            body.append("    return s")
    return "\n".join(["def step(s):", *body])


def _emit(
    lines: list[tuple[str, str, list[str]]], checked: int, checks: list[str], result: list[str]
) -> tuple[list[str], dict[str, str]]:
    """The function's body, and what the result's names stand for.

    Only the definitions a check or the result (which reads the names ``result``)
    reads are kept (the others are pure and unread); a definition read once is written
    into the expression that reads it (up to a nesting depth); each check comes right
    after what it tests is computed, and the result's definitions after every check.
    The second value maps each name written into another expression to its text (the
    result's statements are rewritten with it)."""
    live = set(checks)
    live.update(result)
    for name, _, reads in reversed(lines):
        if name in live:
            live.update(reads)
    uses: dict[str, int] = dict.fromkeys(live, 0)
    for name, _, reads in lines:
        if name in live:
            for read in reads:
                uses[read] += 1
    for name in checks:
        uses[name] += 1
    for name in result:
        uses[name] += 1
    inline: dict[str, str] = {}
    depth: dict[str, int] = {}

    names = inline.keys()

    def written(expression: str, reads: list[str]) -> tuple[str, int]:
        if names.isdisjoint(reads):
            return expression, 0
        deepest = max([depth.get(r, 0) for r in reads])
        return _NAME.sub(lambda m: inline.get(m[0], m[0]), expression), deepest

    pending = list(dict.fromkeys(checks))
    defined: set[str] = set()
    out: list[str] = []

    def check(name: str) -> None:
        out.append(f"    if not {inline.get(name, name)}: return None")

    for i, (name, expression, reads) in enumerate(lines):
        if i == checked:
            for c in pending:
                check(c)
            pending = []
        if name in live:
            text, deepest = written(expression, reads)
            if uses[name] == 1 and deepest < _INLINE_DEPTH:
                inline[name] = f"({text})"
                depth[name] = deepest + 1
            else:
                out.append(f"    {name} = {text}")
        defined.add(name)
        while pending and pending[0] in defined:
            check(pending.pop(0))
    for c in pending:
        check(c)
    return out, inline


#: How deep expressions written into one another may nest (Python's parser takes 200).
_INLINE_DEPTH = 24
