"""``xbdspec diagram``: the model's state diagrams, drawn from its reachable states.

A component's diagram shows only what the model can do from its initial state:

* **Nodes**: the values of the component's control field that some reachable state
  holds.  They are found by exploring the model (:func:`reachability`) at small
  sizes (:data:`FREEBSD_SIZES` for the FreeBSD model, :data:`PROTOCOL_SIZES` for the
  protocol model), with the same transitions as the spec given.
* **Arrows**: the component's own transitions that were taken from a reachable state
  and changed the control field, one arrow per pair of states, labelled with the
  transitions' names (not their events or parameters).
* **No self-loops**: a transition that leaves the control field as it is (an internal
  transition, or one whose destination is its source) is summarised in a table under
  the diagram (:func:`notes_for`), by the states it may be taken in; so are the
  changes other components make to this control field (the tool stack removing a
  directory, say).

The exploration is exact but projected: it tracks only the fields
(:func:`tracked_fields`) that the control fields depend on, i.e. the control fields,
what the guard of every transition writing a tracked field reads, and what the
tracked values it writes are computed from (read from the symbolic encoding of the
guards and effects, :mod:`xbdspec.proofs.encoding`).  A transition that writes no
tracked field cannot change a control field and is left out of the search; the
states such a step may be taken in are then those its declaration allows, among the
reachable ones.

The pages are written into the checkout's ``docs/diagrams/`` (or ``--out DIR``; see
:func:`default_out`); a test fails when the committed ones are stale, and ``--check``
tells a missing page from a stale one.  ``xbdspec.docsgen`` draws the specification
pages with the same functions.
"""

from __future__ import annotations

import argparse
import enum
import functools
import sys
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .declaration import Component, Spec, Transition
from .protocol import ProtocolSizes, build_protocol_spec
from .spec import build_spec
from .state import Sizes

DEFAULT_OUT = Path("docs/diagrams")

#: The FreeBSD model's sizes the diagrams are computed for: one of everything.
FREEBSD_SIZES = Sizes(
    commands=1, bios=1, ring_slots=1, grants=1, grants_per_request=1, suspends=1, unplugs=1
)
#: The protocol model's sizes the diagrams are computed for: one id, one page, one queue.
PROTOCOL_SIZES = ProtocolSizes(ids=1, ring_slots=1, max_order=0, max_queues=1)
#: An exploration stops (and says it is incomplete) after this many projected states.
MAX_STATES = 500_000


# --------------------------------------------------------------------------- what is tracked


def _field_of(variable: str) -> str:
    """``s.req_stage[0]`` -> ``req_stage``."""
    return variable.split(".", 1)[1].split("[", 1)[0]


def _variables(term: Any) -> set[str]:
    """The fields a solver term (or a tuple of them, or a plain value) reads."""
    from xbdspec.proofs import encoding

    return {_field_of(name) for name in encoding.variable_names(term)}


@dataclass(frozen=True)
class _Dependencies:
    """What one transition's guard reads, and what each field it writes is computed from."""

    guard: frozenset[str]
    writes: dict[str, frozenset[str]]


def _dependencies(spec: Spec) -> dict[str, _Dependencies]:
    from xbdspec.proofs import encoding

    state = encoding.symbolic_state(spec, "s")
    guards: dict[str, set[str]] = {}
    writes: dict[str, dict[str, set[str]]] = {}
    for instance in spec.instances:
        name = instance.transition.name
        guards.setdefault(name, set()).update(_variables(encoding.enabled(spec, instance, state)))
        per_field = writes.setdefault(name, {})
        for written, value in encoding.successor(spec, instance, state).items():
            per_field.setdefault(written, set()).update(_variables(value))
    return {
        name: _Dependencies(
            frozenset(guards[name]), {f: frozenset(v) for f, v in writes[name].items()}
        )
        for name in guards
    }


def tracked_fields(spec: Spec) -> tuple[str, ...]:
    """The smallest set of fields holding the control fields and closed under: a
    transition that writes a tracked field has its guard's fields and the fields the
    tracked values it writes are computed from tracked too (in the spec's order)."""
    deps = _dependencies(spec)
    tracked = {c.control for c in spec.components.values()}
    changed = True
    while changed:
        changed = False
        for d in deps.values():
            hit = [f for f in d.writes if f in tracked]
            if not hit:
                continue
            needed = set(d.guard).union(*(d.writes[f] for f in hit))
            if not needed <= tracked:
                tracked |= needed
                changed = True
    return tuple(f.name for f in spec.fields if f.name in tracked)


# --------------------------------------------------------------------------- exploring


@dataclass
class Reachability:
    """What exploring a model from its initial state found, control field by control field.

    Attributes:
        sizes: the sizes explored.
        tracked: the fields the search tracks (:func:`tracked_fields`).
        states: projected states visited.
        complete: False when the search stopped at :data:`MAX_STATES`.
        control: for each component, the control values some reachable state holds.
        edges: for each component, ``(before, after)`` -> the transitions (of any
            component) taken from a reachable state that changed its control field so.
        stays: for each transition writing a tracked field, the values of its own
            component's control field it was taken in without changing it.
        searched: the transitions the search steps (those writing a tracked field);
            for the others, nothing is known beyond their declaration.
    """

    sizes: Any
    tracked: tuple[str, ...]
    states: int = 0
    complete: bool = True
    control: dict[str, set[Any]] = field(default_factory=dict)
    edges: dict[str, dict[tuple[Any, Any], list[str]]] = field(default_factory=dict)
    stays: dict[str, set[Any]] = field(default_factory=dict)
    searched: frozenset[str] = frozenset()

    def taken(self) -> set[str]:
        """The transitions seen taken from a reachable state."""
        names = set(self.stays)
        for per_pair in self.edges.values():
            for ts in per_pair.values():
                names.update(ts)
        return names


def explore(spec: Spec, max_states: int = MAX_STATES) -> Reachability:
    """Breadth-first search of ``spec``'s states projected on :func:`tracked_fields`.

    Untracked fields keep their initial values in the states the search steps; only
    the transitions that write a tracked field are stepped, and by construction their
    guards and the tracked values they write read tracked fields only, so the
    projected search visits exactly the projections of the reachable states.
    """
    from .concrete import Stepper

    tracked = tracked_fields(spec)
    deps = _dependencies(spec)
    searched = frozenset(n for n, d in deps.items() if any(f in tracked for f in d.writes))
    instances = [i for i in spec.instances if i.transition.name in searched]
    stepper = Stepper(spec)
    base = stepper.initial()
    index = [spec.State._fields.index(f) for f in tracked]
    controls = {name: spec.State._fields.index(c.control) for name, c in spec.components.items()}
    own = {t.name: controls[t.component] for t in spec.transitions}

    def full(key: tuple[Any, ...]) -> Any:
        values = list(base)
        for i, v in zip(index, key, strict=True):
            values[i] = v
        return spec.State._make(values)

    reach = Reachability(sizes=spec.sizes, tracked=tracked, searched=searched)
    reach.control = {name: set() for name in spec.components}
    reach.edges = {name: {} for name in spec.components}
    start = tuple(base[i] for i in index)
    seen = {start}
    queue = deque([start])
    while queue:
        key = queue.popleft()
        state = full(key)
        for name, at in controls.items():
            reach.control[name].add(state[at])
        for instance in instances:
            if not stepper.is_enabled(state, instance):
                continue
            after = stepper.apply(state, instance)
            t = instance.transition
            for name, at in controls.items():
                if after[at] != state[at]:
                    pairs = reach.edges[name].setdefault((state[at], after[at]), [])
                    if t.name not in pairs:
                        pairs.append(t.name)
            if after[own[t.name]] == state[own[t.name]]:
                reach.stays.setdefault(t.name, set()).add(state[own[t.name]])
            successor = tuple(after[i] for i in index)
            if successor not in seen:
                if len(seen) >= max_states:
                    reach.complete = False
                    continue
                seen.add(successor)
                queue.append(successor)
    reach.states = len(seen)
    return reach


def exploration_spec(spec: Spec) -> Spec:
    """``spec``'s transitions and components at the diagrams' small sizes.

    The FreeBSD model is taken at :data:`FREEBSD_SIZES`, the protocol model at
    :data:`PROTOCOL_SIZES`; a spec with other sizes is explored as it is.
    """
    if isinstance(spec.sizes, Sizes):
        small = build_spec(FREEBSD_SIZES)
    elif isinstance(spec.sizes, ProtocolSizes):
        small = build_protocol_spec(PROTOCOL_SIZES)
    else:
        return spec
    components = tuple(spec.components.values())
    if spec.transitions == small.transitions and components == tuple(small.components.values()):
        return small
    return small.replace(transitions=spec.transitions, components=components)


def reachability(spec: Spec) -> Reachability:
    """The reachable control states and steps of ``spec`` at the diagrams' sizes.

    Cached by the model's kind, transitions and components (a spec has no equality of
    its own; the spec explored rides along in the key without being compared).
    """
    small = exploration_spec(spec)
    return _reachability(
        type(small.sizes).__name__,
        small.transitions,
        tuple(small.components.values()),
        _Carried(small),
    )


class _Carried:
    """A value carried through a cache key without taking part in it."""

    __slots__ = ("spec",)

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Carried)

    def __hash__(self) -> int:
        return 0


@functools.lru_cache(maxsize=8)
def _reachability(
    kind: str,
    transitions: tuple[Transition, ...],
    components: tuple[Component, ...],
    carried: _Carried,
) -> Reachability:
    return explore(carried.spec)


# --------------------------------------------------------------------------- drawing


def _name(value: Any) -> str:
    return value.name if isinstance(value, enum.Enum) else str(value)


def _ordered(values: Iterable[Any]) -> list[Any]:
    return sorted(values, key=int)


def sizes_text(sizes: Any) -> str:
    """``commands=1, bios=1, ...``: the sizes explored (the ring's base left out)."""
    return ", ".join(
        f"{f.name}={getattr(sizes, f.name)}" for f in fields(sizes) if f.name != "ring_base"
    )


def _group(
    edges: dict[tuple[Any, Any], list[str]],
) -> tuple[frozenset[Any], list[tuple[str, Any]]]:
    """The states to draw as one box, and the ``(transition, destination)`` exits the
    box stands for: the set of three or more states from each of which the same
    transitions lead out to the same states, chosen to save the most arrows (none
    when no set saves two)."""
    exits: dict[tuple[str, Any], set[Any]] = {}
    for (before, after), names in edges.items():
        for name in names:
            exits.setdefault((name, after), set()).add(before)
    best: tuple[tuple[int, int, int], frozenset[Any], list[tuple[str, Any]]] | None = None
    for group in {frozenset(s) for s in exits.values() if len(s) >= 3}:
        shared = [e for e, srcs in exits.items() if group <= srcs and e[1] not in group]
        saved = (len(group) - 1) * len({after for _, after in shared})
        key = (saved, len(group), -min(int(v) for v in group))
        if saved >= 2 and (best is None or key > best[0]):
            best = (key, group, shared)
    return (best[1], best[2]) if best else (frozenset(), [])


def _own_edges(spec: Spec, component: str, reach: Reachability) -> dict[tuple[Any, Any], list[str]]:
    """``(before, after)`` -> the component's own transitions taken so, in declaration order."""
    order = {t.name: i for i, t in enumerate(spec.transitions)}
    mine = {t.name for t in spec.transitions if t.component == component}
    own: dict[tuple[Any, Any], list[str]] = {}
    for pair, names in reach.edges[component].items():
        kept = sorted((n for n in names if n in mine), key=order.__getitem__)
        if kept:
            own[pair] = kept
    return own


GROUP = "G"
GROUP_LABEL = "each of these states"


def mermaid_for(spec: Spec, component: str, reach: Reachability | None = None) -> str:
    """The Mermaid state diagram of one component: its reachable control states and
    the transitions of its own taken between them (no self-loops).

    Where the same transitions leave each of three or more states for the same
    states (closing from any open state, say), those states are drawn in one box
    (:func:`_group`) and each such transition as one arrow out of the box.  A state
    entered only by another component's steps carries a note naming them.
    """
    reach = reach or reachability(spec)
    comp = spec.components[component]
    initial = spec.initial_fields(spec.sizes.ring_base)[comp.control]
    states = _ordered(reach.control[component])
    order = {t.name: i for i, t in enumerate(spec.transitions)}
    own = _own_edges(spec, component, reach)
    group, shared = _group(own)
    out_of_group: dict[Any, list[str]] = {}
    for name, after in sorted(shared, key=lambda e: order[e[0]]):
        out_of_group.setdefault(after, []).append(name)
        for before in group:
            own[(before, after)] = [n for n in own[(before, after)] if n != name]

    def arrow(before: str, after: str, names: Sequence[str]) -> str:
        return f"{before} --> {after}: {'<br>'.join(names)}"

    pairs = sorted(
        ((b, a, n) for (b, a), n in own.items() if n), key=lambda e: (int(e[0]), int(e[1]))
    )
    direction = "TB" if len(states) > 3 else "LR"
    lines = [
        "---",
        f"title: {component} ({comp.control})",
        "---",
        "stateDiagram-v2",
        f"  direction {direction}",
        f"  [*] --> {_name(initial)}",
    ]
    if group:
        lines.append(f'  state "{GROUP_LABEL}" as {GROUP} {{')
        lines += [f"    {_name(s)}" for s in _ordered(group)]
        lines += [
            f"    {arrow(_name(b), _name(a), n)}" for b, a, n in pairs if b in group and a in group
        ]
        lines.append("  }")
    lines += [f"  {_name(s)}" for s in states if s not in group]
    entered = {a for _, a, _ in pairs} | set(out_of_group) | {initial}
    for s in states:
        if s in entered:
            continue
        others = sorted(
            {n for (b, a), ns in reach.edges[component].items() if a == s for n in ns},
            key=order.__getitem__,
        )
        if others:
            who = ", ".join(f"{n} ({spec.transition(n).component})" for n in others)
            lines.append(f"  note right of {_name(s)}: entered only by {who}")
    lines += [
        f"  {arrow(_name(b), _name(a), n)}" for b, a, n in pairs if not (b in group and a in group)
    ]
    lines += [
        f"  {arrow(GROUP, _name(a), names)}"
        for a, names in sorted(out_of_group.items(), key=lambda kv: int(kv[0]))
    ]
    return "\n".join(lines) + "\n"


def _code(name: str) -> str:
    return f"`{name}`"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def _states_text(values: Iterable[Any], every: Sequence[Any]) -> str:
    values = _ordered(values)
    if len(every) > 1 and values == list(every):
        return "every state"
    return ", ".join(_name(v) for v in values)


def notes_for(
    spec: Spec,
    component: str,
    reach: Reachability | None = None,
    link: Callable[[str], str] = _code,
) -> str:
    """What the diagram does not draw, in Markdown: the sizes it was computed for, the
    steps that keep the control state (by the states they may be taken in), the
    changes other components make to it, the control values never reached, and the
    component's transitions never taken.  ``link`` renders a transition's name."""
    reach = reach or reachability(spec)
    comp = spec.components[component]
    control = spec.field_by_name[comp.control]
    states = _ordered(reach.control[component])
    mine = [t for t in spec.transitions if t.component == component]
    out: list[str] = []
    complete = "" if reach.complete else f" (incomplete: stopped at {reach.states} states)"
    out.append(
        f"Reachable states and the steps taken between them were computed by exploring "
        f"the model from its initial state with {sizes_text(reach.sizes)}: "
        f"{reach.states} states of the fields the control states depend on{complete}.\n"
    )
    if _group(_own_edges(spec, component, reach))[0]:
        out.append(
            f"The box ({GROUP_LABEL}) gathers states that the same transitions leave for "
            "the same states: an arrow leaving the box is taken from each state in it.\n"
        )
    never_reached = [v for v in control.domain.values() if v not in reach.control[component]]
    if never_reached:
        out.append(
            f"`{comp.control}` never holds "
            + ", ".join(_name(v) for v in never_reached)
            + ": those states are not drawn.\n"
        )
    # steps that keep the control state
    where: dict[str, set[Any]] = {}
    for t in mine:
        if t.name in reach.searched:
            if t.name in reach.stays:
                where[t.name] = reach.stays[t.name]
        elif t.dest is None or t.dest in t.source:
            declared = t.source if t.dest is None else (t.dest,)
            allowed = {s for s in declared if s in reach.control[component]}
            if allowed:
                where[t.name] = allowed
    if where:
        groups: dict[tuple[Any, ...], list[str]] = {}
        for name, values in where.items():
            groups.setdefault(tuple(_ordered(values)), []).append(name)
        rows = [
            (_states_text(key, states), ", ".join(link(n) for n in names))
            for key, names in sorted(
                groups.items(), key=lambda kv: (len(kv[0]) != len(states), [int(v) for v in kv[0]])
            )
        ]
        out.append(
            "Steps that leave the state as it is (not drawn), by the reachable states they "
            "may be taken in (for a step whose guard reads fields the control states do "
            "not depend on, the reachable states its declaration allows):\n"
        )
        out.append(_table(("in", "steps"), rows))
    # other components' changes to this control field
    foreign = [
        (name, before, after)
        for (before, after), names in reach.edges[component].items()
        for name in names
        if spec.transition(name).component != component
    ]
    if foreign:
        merged: dict[str, tuple[list[Any], set[Any]]] = {}
        for name, before, after in foreign:
            entry = merged.setdefault(name, ([], set()))
            entry[0].append(before)
            entry[1].add(after)
        foreign_rows = [
            (
                link(name),
                spec.transition(name).component,
                _states_text(set(befores), states),
                ", ".join(_name(a) for a in _ordered(afters)),
            )
            for name, (befores, afters) in merged.items()
        ]
        out.append(f"Other components' steps that set `{comp.control}` (not drawn):\n")
        out.append(_table(("step", "component", "from", "to"), foreign_rows))
    taken = reach.taken()
    untaken = [t.name for t in mine if t.name in reach.searched and t.name not in taken]
    if untaken:
        out.append(
            "Never taken from a reachable state at these sizes: "
            + ", ".join(link(n) for n in untaken)
            + ".\n"
        )
    return "\n".join(out)


def page_for(spec: Spec, component: str) -> str:
    """The Markdown page holding one component's diagram."""
    comp = spec.components[component]
    return (
        f"# The `{component}` machine\n\n"
        "<!-- generated by `xbdspec diagram` from the model's declaration; do not edit -->\n\n"
        f"{comp.doc} Control field: `{comp.control}`. Each arrow is labelled with the "
        "transitions that take it; their guards and effects are in the declaration "
        "(`model/handshake.py`, `model/requests.py`) and on the "
        f"[machine's page](../spec/machines/{component}.md).\n\n"
        f"```mermaid\n{mermaid_for(spec, component)}```\n\n"
        f"{notes_for(spec, component)}"
    )


def pages(spec: Spec | None = None) -> dict[str, str]:
    """Every diagram page, by file name."""
    spec = spec or build_spec()
    return {f"{name}.md": page_for(spec, name) for name in spec.components}


def default_out() -> Path:
    """Where the pages go without ``--out``: the checkout's ``docs/diagrams/`` (wherever
    the command runs from), or ``diagrams/`` under the build directory when the package
    is installed (:func:`xbdspec.resources.build_dir`); never the current directory."""
    from xbdspec.resources import CHECKOUT, build_dir

    return CHECKOUT / DEFAULT_OUT if CHECKOUT is not None else build_dir("diagrams")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``xbdspec diagram``."""
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder to write the pages into (default: docs/diagrams/ of the checkout; "
        "installed, diagrams/ under the build directory)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a page is missing or differs from the model",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print what was written or checked as one JSON document (docs/output.md)",
    )


def run(args: argparse.Namespace) -> int:
    """Write the pages (or, with ``--check``, compare them); 1 when one is missing or
    stale under ``--check``."""
    from xbdspec import output
    from xbdspec.errors import XbdspecError

    out: Path = args.out if args.out is not None else default_out()
    as_json = getattr(args, "json", False)
    missing: list[str] = []
    stale: list[str] = []
    written: list[str] = []
    every = pages()
    for name, text in every.items():
        path = out / name
        if args.check:
            if not path.exists():
                missing.append(str(path))
            elif path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        try:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise XbdspecError(f"--out {out}: cannot write {name}: {exc.strerror}") from None
        written.append(str(path))
        if not as_json:
            print(f"wrote {path}")
    status = 1 if missing or stale else 0
    if as_json:
        output.emit(
            "diagram",
            ok=status == 0,
            counts={
                "pages": len(every),
                "written": len(written),
                "missing": len(missing),
                "stale": len(stale),
            },
            fields={
                "out": str(out),
                "check": bool(args.check),
                "pages": sorted(every),
                "written": written,
                "missing": missing,
                "stale": stale,
            },
        )
    if missing and len(missing) == len(every):
        print(
            f"no diagrams in {out}: all {len(every)} pages are missing "
            "(write them with `xbdspec diagram`, or name their folder with --out)",
            file=sys.stderr,
        )
    elif missing:
        print("missing diagrams (run `xbdspec diagram`): " + ", ".join(missing), file=sys.stderr)
    if stale:
        print("stale diagrams (run `xbdspec diagram`): " + ", ".join(stale), file=sys.stderr)
    if args.check and not status and not as_json:
        print(f"the {len(every)} diagram pages in {out} match the model")
    return status
