"""The protocol pages of the documentation site (``docs/protocol/``), generated from
the protocol model.

Everything here is read from the model and its checks, never written by hand about
them: the rules, their guards in words, their header quotes and deviations from
:func:`xbdspec.model.protocol.build_protocol_spec`; the diagrams from
:func:`xbdspec.model.diagram.mermaid_for`; the proof status from the committed
``docs/status/prove.json`` (obligations ``protocol.<name>`` and ``<name>_refines_protocol``);
which front end takes which rule from running the commit checker
(:func:`xbdspec.traces.protocol.check_scenario`) over ``tests/protocol/scenarios/``;
the refinement from :mod:`xbdspec.model.refinement`.

:func:`pages` is called by :func:`xbdspec.docsgen.pages`, so the staleness check of
``make docs`` and ``tests/docs/`` covers these pages too.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from xbdspec import docsgen
from xbdspec.model import refinement
from xbdspec.model.declaration import Quote, Spec, Transition
from xbdspec.model.diagram import mermaid_for, notes_for, reachability
from xbdspec.model.protocol import DEVIATIONS, ProtocolSizes, build_protocol_spec
from xbdspec.model.protocol import ring as protocol_ring

__all__ = ["FRONTENDS", "Scenario", "pages", "scenarios"]

GENERATED = docsgen.GENERATED
SCENARIO_DIR = docsgen.REPO_ROOT / "tests" / "protocol" / "scenarios"
PREFIX = "protocol."

#: The front ends the scenarios are written for, in the order the pages list them.
FRONTENDS: dict[str, str] = {
    "freebsd": "FreeBSD",
    "linux": "Linux",
    "netbsd": "NetBSD",
    "openbsd": "OpenBSD",
    "minios": "Mini-OS",
    "mirageos": "MirageOS",
}

PAGE_OF = {"toolstack": "toolstack.md", "backend": "backend.md", "frontend": "frontend.md"}
TITLE_OF = {"toolstack": "The tool stack", "backend": "The back end", "frontend": "The front end"}


# --------------------------------------------------------------------------- text


_SPAN = re.compile(r"``(.+?)``|`([^`]+)`|(?<!\w)\*\*(?=\S)(.+?)(?<=\S)\*\*(?!\w)")


def prose(text: str) -> str:
    """Model prose as Markdown: double-backticked names become inline code, ``**bold**``
    stays bold, and the characters Markdown would read as markup elsewhere (``*``,
    ``_``, ``#``, ``<``) are escaped."""
    out: list[str] = []
    last = 0
    for match in _SPAN.finditer(text):
        out.append(_escape(text[last : match.start()]))
        code = match.group(1) or match.group(2)
        out.append(f"`{code}`" if code else f"**{_escape(match.group(3))}**")
        last = match.end()
    out.append(_escape(text[last:]))
    return "".join(out)


def _escape(text: str) -> str:
    for char in ("\\", "*", "_", "#"):
        text = text.replace(char, "\\" + char)
    return text.replace("<", "&lt;")


def docstring(text: str) -> str:
    """A docstring as Markdown paragraphs (dedented with :func:`inspect.cleandoc`)."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(prose(" ".join(p.split())) for p in paragraphs if p.strip())


def first_sentence(text: str) -> str:
    return prose(docsgen._first_sentence(inspect.cleandoc(text)))


def quote_block(quote: Quote | None) -> str:
    """The header sentences as a blockquote, with their citation."""
    if quote is None:
        return "No header quote.\n"
    return f"> {prose(quote.text)}\n>\n> — {prose(quote.cite())} (`{quote.header}`)\n"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    return docsgen._table(header, rows)


def _code(text: object) -> str:
    return f"`{text}`"


def _anchor(name: str) -> str:
    return "r-" + name.replace("_", "-")


def _o_anchor(name: str) -> str:
    return "o-" + name.lower()


def rule_link(spec: Spec, name: str, here: str | None = None) -> str:
    """A link to a rule's section on its component's page (``here``: the page it is on)."""
    page = PAGE_OF[spec.transition(name).component]
    target = f"#{_anchor(name)}" if page == here else f"{page}#{_anchor(name)}"
    return f"[`{name}`]({target})"


def _name(value: Any) -> str:
    return getattr(value, "name", repr(value))


def _states(values: Sequence[Any], every: Sequence[Any]) -> str:
    if len(values) == len(every) and len(every) > 2:
        return "any"
    return ", ".join(_name(v) for v in values)


# --------------------------------------------------------------------------- status


def _result(o: Mapping[str, Any] | None) -> str:
    if o is None:
        return "not run"
    return f"{docsgen._result_text(o)} ({o['seconds']} s)"


def _status_note(status: Mapping[str, Any]) -> str:
    obligations = docsgen._obligations(status)
    mine = [o for n, o in obligations.items() if n.startswith(PREFIX)]
    if not status.get("prove"):
        return (
            "!!! warning\n    No proof status is committed (`docs/status/prove.json`); "
            "run `make docs-status`.\n"
        )
    if not mine:
        return (
            "!!! warning\n    The committed `docs/status/prove.json` has no protocol "
            "obligations; run `make docs-status`.\n"
        )
    counts: dict[str, int] = {}
    for o in mine:
        counts[o["result"]] = counts.get(o["result"], 0) + 1
    parts = ", ".join(f"{n} {r}" for r, n in sorted(counts.items()))
    unexpected = [o["name"] for o in mine if not o.get("as_expected", True)]
    return (
        f"Proof status: the last `xbdspec prove --json` run committed in "
        f"`docs/status/prove.json` (refresh with `make docs-status`) has {len(mine)} "
        f"protocol obligations: {parts}; {len(unexpected)} unexpected"
        + (": " + ", ".join(_code(u) for u in unexpected) if unexpected else "")
        + ".\n"
    )


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """One scenario file, checked against the protocol model.

    Attributes:
        path: the file, relative to the repository.
        frontend, name: the header's ``frontend`` and ``scenario``.
        source, version, backend, description: what the header says it was written
            from.
        verdict, deviations: the checker's verdict.
        steps: the protocol rules the scenario took, in order, with repetitions.
        violation: for a violation, why.
    """

    path: str
    frontend: str
    name: str
    source: str
    version: str
    backend: str
    description: str
    verdict: str
    deviations: tuple[str, ...]
    steps: tuple[str, ...]
    violation: str


@functools.lru_cache(maxsize=4)
def scenarios(folder: Path = SCENARIO_DIR) -> tuple[Scenario, ...]:
    """Every scenario of ``folder``, checked, in the order of :data:`FRONTENDS`."""
    from xbdspec.traces.protocol import check_scenario

    found = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        header, report = check_scenario(str(path))
        frontend = str(header.get("frontend", path.stem.split("_", 1)[0]))
        found.append(
            Scenario(
                path=str(path.relative_to(docsgen.REPO_ROOT))
                if path.is_relative_to(docsgen.REPO_ROOT)
                else str(path),
                frontend=frontend,
                name=str(header.get("scenario", path.stem.split("_", 1)[-1])),
                source=str(header.get("source", "")),
                version=str(header.get("version", "")),
                backend=str(header.get("backend", "")),
                description=str(header.get("description", "")),
                verdict=report.verdict,
                deviations=tuple(report.deviations),
                steps=tuple(label.split("(", 1)[0] for label in report.steps),
                violation=report.violation,
            )
        )
    order = list(FRONTENDS)
    return tuple(
        sorted(
            found,
            key=lambda s: (order.index(s.frontend) if s.frontend in order else len(order), s.path),
        )
    )


def _frontends(found: Sequence[Scenario]) -> list[str]:
    names = list(FRONTENDS)
    return names + sorted({s.frontend for s in found} - set(names))


def _frontend_name(key: str) -> str:
    return FRONTENDS.get(key, key)


def _taken_by(name: str, found: Sequence[Scenario]) -> list[tuple[str, list[str]]]:
    """For each front end, the scenarios in which ``name`` was taken."""
    return [
        (fe, [s.name for s in found if s.frontend == fe and name in s.steps])
        for fe in _frontends(found)
    ]


def scenario_table(found: Sequence[Scenario]) -> str:
    rows = [
        (
            _frontend_name(s.frontend),
            _code(s.name),
            prose(s.source),
            prose(s.version),
            prose(s.backend),
            s.verdict + (f" ({', '.join(s.deviations)})" if s.deviations else ""),
            len(s.steps),
        )
        for s in found
    ]
    return _table(
        ("front end", "scenario", "driver source", "version", "back end", "verdict", "steps"),
        rows,
    )


# --------------------------------------------------------------------------- the rules


def _ring_rules() -> set[str]:
    return {t.name for t in protocol_ring.table.transitions}


def condition_texts(spec: Spec, t: Transition) -> list[str]:
    """The guard's conjuncts in words (``t.conditions``), in order, without repeats."""
    if t.conditions is None:
        return []
    from xbdspec.model.concrete import Stepper

    state = Stepper(spec).initial()
    texts: list[str] = []
    for instance in spec.instances:
        if instance.transition is not t:
            continue
        for text, _ in t.conditions(state, instance.bindings):
            if text not in texts:
                texts.append(text)
    return texts


def _param_text(spec: Spec, p: Any) -> str:
    values = ", ".join(_name(v) for v in p.domain_for(spec.sizes))
    return f"`{p.name}`: {prose(p.doc)} (at the default sizes: {values})"


def rule_section(
    spec: Spec, t: Transition, status: Mapping[str, Any], found: Sequence[Scenario]
) -> str:
    """One rule: doc, facts, guard in words, quote, deviation, proof, who takes it."""
    comp = spec.components[t.component]
    every = tuple(spec.field_by_name[comp.control].domain.values())
    obligations = docsgen._obligations(status)
    out = [f"### `{t.name}` {{#{_anchor(t.name)}}}\n"]
    out.append(f"{prose(t.doc)}\n")
    facts: list[Sequence[object]] = [
        ("from", _states(t.source, every)),
        ("to", _name(t.dest) if t.dest is not None else "(stays: an internal step)"),
        ("parameters", ", ".join(_code(p.name) for p in t.params) or "none"),
        ("source", prose(t.seed)),
    ]
    out.append(docsgen._facts(facts))
    if t.params:
        out.append("Its parameters:\n")
        out.append("\n".join(f"- {_param_text(spec, p)}" for p in t.params) + "\n")
    texts = condition_texts(spec, t)
    if texts:
        out.append("It requires (the guard, conjunct by conjunct):\n")
        out.append("\n".join(f"{i}. {prose(text)}" for i, text in enumerate(texts, 1)) + "\n")
    else:
        out.append("It requires nothing beyond its source state.\n")
    out.append(quote_block(t.quote))
    if t.deviation:
        text = DEVIATIONS.get(t.deviation, "(not described in DEVIATIONS)")
        out.append(
            f'!!! warning "Tolerated deviation: `{t.deviation}`"\n'
            + textwrap.indent(prose(text), "    ")
            + "\n"
        )
    proof = [
        (
            _code(PREFIX + t.name + suffix),
            _result(obligations.get(PREFIX + t.name + suffix)),
        )
        for suffix in ("_preserves_invariants", "_is_live")
    ]
    out.append("Proof status:\n")
    out.append(_table(("obligation", "result"), proof))
    taken = _taken_by(t.name, found)
    if any(names for _, names in taken):
        out.append("Taken in the scenarios (see [Scenarios](#scenarios)):\n")
    else:
        out.append("Taken in no scenario (see [Scenarios](#scenarios)).\n")
    out.append(
        _table(
            ("front end", "scenarios"),
            ((_frontend_name(fe), ", ".join(names) or "—") for fe, names in taken),
        )
    )
    return "\n".join(out)


def _rule_row(
    spec: Spec, t: Transition, status: Mapping[str, Any], found: Sequence[Scenario], page: str
) -> Sequence[object]:
    comp = spec.components[t.component]
    every = tuple(spec.field_by_name[comp.control].domain.values())
    obligations = docsgen._obligations(status)
    proofs = [obligations.get(PREFIX + t.name + s) for s in ("_preserves_invariants", "_is_live")]
    if any(o is None for o in proofs):
        proved = "not run"
    elif all(o is not None and o["result"] == "proved" for o in proofs):
        proved = "proved"
    else:
        proved = ", ".join(str(o["result"]) for o in proofs if o is not None)
    takers = [_frontend_name(fe) for fe, names in _taken_by(t.name, found) if names]
    return (
        rule_link(spec, t.name, page),
        _states(t.source, every),
        _name(t.dest) if t.dest is not None else "(stays)",
        _code(t.deviation) if t.deviation else "",
        proved,
        ", ".join(takers) or "—",
    )


def component_page(spec: Spec, component: str, status: Mapping[str, Any]) -> str:
    """A component of the protocol: its diagram, then each rule."""
    comp = spec.components[component]
    control = spec.field_by_name[comp.control]
    page = PAGE_OF[component]
    initial = spec.initial_fields(spec.sizes.ring_base)[comp.control]
    found = scenarios()
    ring_names = _ring_rules()
    mine = [t for t in spec.transitions if t.component == component]
    handshake = [t for t in mine if t.name not in ring_names]
    ring = [t for t in mine if t.name in ring_names]
    out = [f"# {TITLE_OF.get(component, component)}: the `{component}` rules\n", GENERATED + "\n"]
    out.append(f"{prose(comp.doc)}\n")
    out.append(
        f"Control field: `{comp.control}` ({prose(control.doc)}); initial state "
        f"`{_name(initial)}`. Rules: {len(mine)}"
        + (f" ({len(handshake)} of the handshake, {len(ring)} of the ring)" if ring else "")
        + ". Every rule is a transition of the protocol model "
        "(`model/protocol/`); what the three verdicts mean and the state's fields are on "
        "[the overview](index.md).\n"
    )
    out.append(_status_note(status))
    out.append("## Diagram\n")
    out.append(
        "The reachable states of the control field and the rules that change it; each "
        "arrow is labelled with the rules that take it.\n"
    )
    reach = reachability(spec)
    out.append(docsgen._fence("mermaid", mermaid_for(spec, component, reach)))
    out.append(notes_for(spec, component, reach, link=lambda n: rule_link(spec, n, page)))
    out.append("## Rules\n")
    out.append(
        _table(
            ("rule", "from", "to", "deviation", "proof", "taken by"),
            (_rule_row(spec, t, status, found, page) for t in mine),
        )
    )
    if ring:
        out.append("## The handshake\n")
    for t in handshake:
        out.append(rule_section(spec, t, status, found))
    if ring:
        out.append("## The ring\n")
        untaken = not any(t.name in s.steps for t in ring for s in found)
        out.append(
            "The rules of the shared ring (`model/protocol/ring.py`). None changes the "
            "control field: each may be taken in the states its source lists, when its "
            "guard holds."
            + (
                " The scenarios are xenstore commits, which the ring does not go through: "
                "no scenario takes a ring rule."
                if untaken
                else ""
            )
            + "\n"
        )
        for t in ring:
            out.append(rule_section(spec, t, status, found))
    out.append("## Scenarios\n")
    out.append(
        "The rules above were collected by running the commit checker "
        "(`xbdspec check`, `xbdspec.traces.protocol.check_scenario`) over every scenario "
        "of `tests/protocol/scenarios/` when the page was generated. Each scenario is a "
        "sequence of xenstore commits written from the driver source its header cites:\n"
    )
    out.append(scenario_table(found))
    return "\n".join(out)


# --------------------------------------------------------------------------- the overview


def _sizes_table() -> str:
    docs = docsgen._attribute_docs(ProtocolSizes)
    rows = [
        (_code(f.name), docsgen._default_text(f.default), prose(docs.get(f.name, "")))
        for f in dataclass_fields(ProtocolSizes)
    ]
    return _table(("parameter", "default", "meaning"), rows)


def _abstractions() -> str:
    from xbdspec.model.protocol import state as protocol_state

    doc = inspect.cleandoc(protocol_state.__doc__ or "")
    if "Abstractions, stated once:" not in doc:
        return ""
    body = doc.split("Abstractions, stated once:", 1)[1].strip()
    items = re.split(r"\n(?=\* )", body)
    return (
        "\n".join("* " + prose(" ".join(item.removeprefix("* ").split())) for item in items) + "\n"
    )


def _citers(spec: Spec) -> dict[Quote, list[str]]:
    found: dict[Quote, list[str]] = {}
    for t in spec.transitions:
        if t.quote is not None:
            found.setdefault(t.quote, []).append(rule_link(spec, t.name, "index.md"))
    props: list[tuple[str, Quote | None]] = [(i.name, i.quote) for i in spec.invariants]
    props += [(p.name, p.quote) for p in spec.step_properties]
    for name, quote in props:
        if quote is not None:
            found.setdefault(quote, []).append(f"[`{name}`](obligations.md#{_o_anchor(name)})")
    return found


def index_page(spec: Spec, status: Mapping[str, Any]) -> str:
    """What the protocol model is, its verdicts, components, state and scenarios."""
    from xbdspec.model.protocol import quotes

    found = scenarios()
    ring_names = _ring_rules()
    out = ["# The protocol model\n", GENERATED + "\n"]
    out.append(
        "The protocol model states what the Xen public headers `blkif.h`, `xenbus.h` and "
        "`ring.h` require of **every** front end and back end of a paravirtual block "
        "device, and of the tool stack that creates and removes it: the XenBus handshake "
        "(who writes which state node, with which keys, after what), and the shared ring "
        "(requests and responses by id, the producer and consumer indices, "
        "notifications, grants). It is declared once in `model/protocol/`, in the same "
        "declaration language as the FreeBSD driver model, so the prover, the explorer "
        "and the commit checker all read the same rules. Every rule and every obligation "
        "quotes the header sentences it rests on, verbatim.\n"
    )
    out.append(
        "No driver's internal state appears in it: every field is something on the "
        "wire. A driver model is related to it by a refinement; the FreeBSD model is one "
        "([the refinement](refinement.md): each FreeBSD transition is proved to be a "
        "protocol step or a stutter). Other front ends are checked against it through "
        "their xenstore commits ([scenarios](#scenarios)).\n"
    )
    out.append(
        "- [The tool stack](toolstack.md), [the back end](backend.md) and "
        "[the front end](frontend.md): each component's diagram and rules.\n"
        "- [Obligations](obligations.md): the invariants and step properties every pair "
        "of ends keeps, and their proofs.\n"
        "- [The FreeBSD refinement](refinement.md): the abstraction and the proof per "
        "transition.\n"
    )
    out.append(_status_note(status))
    out.append("## Verdicts\n")
    out.append(
        "The commit checker (`xbdspec check FILE` on a file of xenstore commits) gives one "
        "of three verdicts:\n\n"
        "1. **conforms**: every commit is a protocol step (or changes nothing the "
        "protocol sees);\n"
        "2. **tolerated deviation**: some commit is a step the headers do not allow but "
        "real ends take and real peers accept; the rule it takes names the deviation "
        "(below);\n"
        "3. **violation**: some commit is no step from any state consistent with what "
        "came before; the report names the commit and the conditions of the rule it "
        "breaks.\n"
    )
    out.append("The tolerated deviations (`DEVIATIONS`):\n")
    rows: list[Sequence[object]] = []
    for name, text in DEVIATIONS.items():
        rules = [
            rule_link(spec, t.name, "index.md") for t in spec.transitions if t.deviation == name
        ]
        rows.append((_code(name), prose(text), ", ".join(rules) or "—"))
    out.append(_table(("deviation", "what it is", "rules"), rows))
    out.append("## Components\n")
    rows = []
    for c in spec.components.values():
        mine = [t for t in spec.transitions if t.component == c.name]
        ring = sum(1 for t in mine if t.name in ring_names)
        rows.append(
            (
                f"[`{c.name}`]({PAGE_OF[c.name]})",
                _code(c.control),
                f"{len(mine)}" + (f" ({ring} of the ring)" if ring else ""),
                prose(c.doc),
            )
        )
    out.append(_table(("component", "control field", "rules", "what it stands for"), rows))
    out.append("## State\n")
    out.append(
        "Every field is a xenstore node (or a fact about a group of nodes), a field of "
        "the shared ring page, a private ring index the other end learns of through the "
        "shared ones, an event channel's pending bit, or a grant "
        "(`model/protocol/state.py`). Domains are for the default sizes; an array has "
        "one element per request id. Abstractions, stated once:\n"
    )
    out.append(_abstractions())
    init = spec.initial_fields(spec.sizes.ring_base)
    rows = []
    for f in spec.fields:
        domain = f.domain.describe() + (f" × {f.length}" if f.length is not None else "")
        start = init[f.name]
        shown = (
            "(" + ", ".join(_name(v) if hasattr(v, "name") else repr(v) for v in start) + ")"
            if isinstance(start, tuple)
            else (_name(start) if hasattr(start, "name") else repr(start))
        )
        rows.append((_code(f.name), f.group, domain, shown, prose(f.doc)))
    out.append(_table(("field", "group", "domain", "initially", "meaning"), rows))
    out.append("### Sizes (`ProtocolSizes`)\n")
    out.append(_sizes_table())
    out.append("## Scenarios\n")
    out.append(
        "Each scenario is the sequence of xenstore commits one front end makes against "
        "a back end, written from the driver source its header cites "
        "(`tests/protocol/scenarios/`), and checked when this page was generated:\n"
    )
    out.append(scenario_table(found))
    violations = [s for s in found if s.violation]
    for s in violations:
        out.append(f'!!! failure "`{s.path}`"\n    {prose(s.violation)}\n')
    out.append("## Header sentences\n")
    out.append(
        "Every quote of `model/protocol/quotes.py` (verbatim from the headers of Xen "
        "4.17), and the rules and obligations resting on it:\n"
    )
    citers = _citers(spec)
    rows = [
        (
            _code(name),
            prose(q.cite()),
            prose(q.text),
            ", ".join(citers.get(q, [])) or "—",
        )
        for name, q in quotes.ALL.items()
    ]
    out.append(_table(("quote", "where", "sentences", "cited by"), rows))
    return "\n".join(out)


# --------------------------------------------------------------------------- obligations


def obligations_page(spec: Spec, status: Mapping[str, Any]) -> str:
    """Every invariant and step property of the protocol, with quote and proof status."""
    obligations = docsgen._obligations(status)
    preserving = {
        t.name: obligations.get(f"{PREFIX}{t.name}_preserves_invariants") for t in spec.transitions
    }
    ran = [o for o in preserving.values() if o is not None]
    proved = [n for n, o in preserving.items() if o is not None and o["result"] == "proved"]
    not_proved = [n for n in preserving if n not in proved]
    all_proved = bool(ran) and not not_proved

    def preservation() -> str:
        if not ran:
            return "not run"
        if all_proved:
            return f"proved: each of the {len(proved)} rules keeps it"
        return f"{len(proved)} of {len(preserving)} rules proved; not: " + ", ".join(
            _code(n) for n in not_proved
        )

    out = ["# Protocol obligations\n", GENERATED + "\n"]
    out.append(
        "What every front end and back end together keep true, stated on the protocol "
        "model (`model/protocol/properties.py`) and proved there by induction: each "
        "invariant holds in the initial state (`protocol.initial_satisfies_<name>`), and "
        "from any state satisfying all of them every rule keeps all of them "
        "(`protocol.<rule>_preserves_invariants`, one obligation per rule, which also "
        "checks every step property on that rule's steps). The auxiliary invariants are "
        "there to make the others inductive. A driver model inherits the obligations "
        "through its [refinement](refinement.md).\n"
    )
    out.append(_status_note(status))
    rows: list[Sequence[object]] = []
    for inv in spec.invariants:
        init = obligations.get(f"{PREFIX}initial_satisfies_{inv.name}")
        state = "not run"
        if init is not None and ran:
            state = (
                "proved"
                if init["result"] == "proved" and all_proved
                else docsgen._result_text(init) + ("" if all_proved else "; step not proved")
            )
        rows.append(
            (
                f"[`{inv.name}`](#{_o_anchor(inv.name)})",
                "auxiliary invariant" if inv.auxiliary else "invariant",
                state,
                first_sentence(inv.doc),
            )
        )
    for sp in spec.step_properties:
        rows.append(
            (
                f"[`{sp.name}`](#{_o_anchor(sp.name)})",
                "step property",
                ("proved" if all_proved else "not proved") if ran else "not run",
                first_sentence(sp.doc),
            )
        )
    out.append("## Summary\n")
    out.append(_table(("obligation", "kind", "status", "meaning"), rows))
    out.append("## Invariants\n")
    for inv in spec.invariants:
        out.append(f"### `{inv.name}` {{#{_o_anchor(inv.name)}}}\n")
        out.append(docstring(inv.doc) + "\n")
        if inv.quote is not None:
            out.append(quote_block(inv.quote))
        facts: list[Sequence[object]] = [
            ("kind", "auxiliary (makes others inductive)" if inv.auxiliary else "main"),
            ("source", prose(inv.source)),
        ]
        for name in (f"initial_satisfies_{inv.name}", f"{inv.name}_is_falsifiable"):
            facts.append((_code(PREFIX + name), _result(obligations.get(PREFIX + name))))
        facts.append(("preserved by every rule", preservation()))
        out.append(docsgen._facts(facts))
        out.append(docsgen._fence("python", docsgen._without_docstring(docsgen._source(inv.holds))))
    out.append("## Step properties\n")
    out.append(
        "A step property constrains every step `(before, after)` of every rule; each "
        "rule's preservation obligation checks them all.\n"
    )
    for sp in spec.step_properties:
        out.append(f"### `{sp.name}` {{#{_o_anchor(sp.name)}}}\n")
        out.append(docstring(sp.doc) + "\n")
        if sp.quote is not None:
            out.append(quote_block(sp.quote))
        facts = [
            ("source", prose(sp.source)),
            ("checked on every rule's steps", preservation()),
        ]
        out.append(docsgen._facts(facts))
        out.append(docsgen._fence("python", docsgen._without_docstring(docsgen._source(sp.holds))))
    if spec.progress:
        out.append("## Progress properties\n")
        out.append(
            "Leads-to properties, for an explorer to check under the fairness listed; "
            "the prover does not discharge them.\n"
        )
        rows = [
            (
                _code(pr.name),
                prose(pr.doc),
                prose(pr.source),
                ", ".join(rule_link(spec, e, None) for e in pr.fairness if _is_rule(spec, e))
                or "none",
            )
            for pr in spec.progress
        ]
        out.append(_table(("property", "meaning", "source", "fairness"), rows))
    out.append(_content_rules())
    others = [
        o
        for n, o in obligations.items()
        if n.startswith(PREFIX)
        and o["kind"] not in ("initial", "inductive", "live-guard", "falsifiable")
    ]
    if others:
        out.append("## Other obligations\n")
        out.append(
            _table(
                ("obligation", "kind", "result", "bound"),
                ((_code(o["name"]), o["kind"], _result(o), o["bound"]) for o in others),
            )
        )
    live = [o for n, o in obligations.items() if n.startswith(PREFIX) and o["kind"] == "live-guard"]
    if live:
        proved_live = sum(1 for o in live if o["result"] == "proved")
        out.append(
            f"Live guards: {proved_live} of {len(live)} rules shown enabled in some state "
            "satisfying the invariants (each rule's page has its own).\n"
        )
    return "\n".join(out)


def _is_rule(spec: Spec, name: str) -> bool:
    return any(t.name == name for t in spec.transitions)


def _content_rules() -> str:
    try:
        from xbdspec.model.protocol import content
    except ImportError:  # pragma: no cover - the module is part of the model
        return ""
    rules = [("request", r) for r in getattr(content, "REQUEST_RULES", ())] + [
        ("device property", r) for r in getattr(content, "PROPERTY_RULES", ())
    ]
    if not rules:
        return ""
    out = ["## Rules on exchanged values\n"]
    out.append(
        "What a request written on the ring, or a device property the back end "
        "publishes, must hold (`model/protocol/content.py`). They are predicates on "
        "values, applied by the commit checker when the back end connects; they are no "
        "proof obligations.\n"
    )
    rows = [
        (_code(r.name), kind, prose(r.doc), prose(r.quote.text), prose(r.quote.cite()))
        for kind, r in rules
    ]
    out.append(_table(("rule", "on", "what it requires", "header sentences", "where"), rows))
    return "\n".join(out)


# --------------------------------------------------------------------------- refinement


@dataclass(frozen=True)
class Mapped:
    """One protocol field of :func:`xbdspec.model.refinement.abstraction`'s result."""

    field: str
    expression: str
    note: str


def abstraction_table() -> tuple[list[Mapped], list[str]]:
    """The fields :func:`~xbdspec.model.refinement.abstraction` returns, each with the
    source of its expression and the comment above it; and the local definitions the
    expressions use (their source lines)."""
    source = textwrap.dedent(inspect.getsource(refinement.abstraction))
    tree = ast.parse(source)
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    lines = source.splitlines()
    mapped: list[Mapped] = []
    local: list[str] = []
    for node in function.body:
        if isinstance(node, ast.Assign):
            segment = ast.get_source_segment(source, node)
            if segment:
                local.append(segment)
        if not (isinstance(node, ast.Return) and isinstance(node.value, ast.Dict)):
            continue
        previous_end = node.lineno
        for key, value in zip(node.value.keys, node.value.values, strict=True):
            if not isinstance(key, ast.Constant):
                continue
            comments = [
                ln.strip().lstrip("#").strip()
                for ln in lines[previous_end : key.lineno - 1]
                if ln.strip().startswith("#")
            ]
            note = " ".join(comments)
            expression = ast.get_source_segment(source, value) or ""
            mapped.append(Mapped(str(key.value), " ".join(expression.split()), note))
            assert value.end_lineno is not None
            previous_end = value.end_lineno
    return mapped, local


def _alternative(spec: Spec, steps: tuple[str, ...]) -> str:
    if not steps:
        return "a stutter"
    return " ; ".join(rule_link(spec, s, None) for s in steps)


def refinement_page(spec: Spec, freebsd: Spec, status: Mapping[str, Any]) -> str:
    """The FreeBSD model as a refinement of the protocol model."""
    obligations = docsgen._obligations(status)
    out = ["# The FreeBSD refinement\n", GENERATED + "\n"]
    out.append(
        "The FreeBSD driver model ([the specification](../spec/index.md)) describes one "
        "front end, with its queues, freezes and handlers, beside a back end and a tool "
        "stack as simple as it needs. It refines the protocol model "
        "(`model/refinement.py`): a mapping, the *abstraction*, takes each FreeBSD state "
        "to the protocol fields it determines, and for each FreeBSD transition `REFINES` "
        "names the protocol steps it may stand for: one rule, a stutter (no protocol "
        "field changes), or two rules in sequence. `xbdspec prove` discharges one "
        "obligation per FreeBSD transition (`<transition>_refines_protocol`): from every "
        "FreeBSD state satisfying the FreeBSD invariants, the image of the step is one of "
        "the alternatives named. A FreeBSD step that refines none is a finding of the "
        "seed, never a reason to relax the protocol. Through the refinement the FreeBSD "
        "model inherits the protocol's [obligations](obligations.md).\n"
    )
    refined = [obligations.get(f"{t.name}_refines_protocol") for t in freebsd.transitions]
    ran = [o for o in refined if o is not None]
    if ran:
        good = sum(1 for o in ran if o["result"] == "proved")
        out.append(
            f"Status (`docs/status/prove.json`): {good} of {len(freebsd.transitions)} "
            "FreeBSD transitions proved to refine the protocol; the initial state: "
            f"{_result(obligations.get('initial_refines_protocol'))}.\n"
        )
    else:
        out.append(
            "!!! warning\n    The committed `docs/status/prove.json` has no refinement "
            "obligations; run `make docs-status`.\n"
        )
    k = freebsd.sizes
    sizes = refinement.protocol_sizes(k)
    out.append("## Sizes\n")
    out.append(
        prose(" ".join(inspect.cleandoc(refinement.protocol_sizes.__doc__ or "").split()))
        + " For the FreeBSD model's default sizes that is "
        + ", ".join(
            f"`{f.name}={getattr(sizes, f.name)}`"
            for f in dataclass_fields(sizes)
            if f.name != "ring_base"
        )
        + ".\n"
    )
    out.append("## The abstraction\n")
    out.append(
        "Each protocol field and the expression of the FreeBSD state `s` it is computed "
        "from (`abstraction(s, k)`, read from its source); a note is the comment the "
        "source has above the field (it may speak for the fields after it too). A "
        "command is a request id (`cm_id` is the shadow index).\n"
    )
    mapped, local = abstraction_table()
    rows = [
        (
            _code(m.field),
            _code(m.expression),
            prose(m.note),
            prose(spec.field_by_name[m.field].doc) if m.field in spec.field_by_name else "",
        )
        for m in mapped
    ]
    out.append(_table(("protocol field", "from the FreeBSD state", "note", "meaning"), rows))
    if local:
        out.append("The expressions use these local definitions:\n")
        out.append(docsgen._fence("python", "\n".join(local)))
    out.append(
        "A command's ring stage becomes the request's stage (`_stage`); a command on the "
        "ring carries its operation (`_operation`); otherwise the request reads as READ:\n"
    )
    stage_rows = [(_code(_name(a)), _code(_name(b))) for a, b in refinement._STAGE.items()]
    out.append(_table(("FreeBSD `cmd_stage`", "protocol `req_stage`"), stage_rows))
    out.append(docsgen._fence("python", docsgen._source(refinement._operation)))
    out.append("## Hidden fields\n")
    out.append(
        "The protocol fields the FreeBSD model does not determine (`HIDDEN`: its back end "
        "polls the ring and is never notified). A refinement obligation holds for every "
        "value of them.\n"
    )
    out.append(
        _table(
            ("protocol field", "meaning"),
            ((_code(f), prose(spec.field_by_name[f].doc)) for f in refinement.HIDDEN),
        )
    )
    covered = {m.field for m in mapped} | set(refinement.HIDDEN)
    missing = [f.name for f in spec.fields if f.name not in covered]
    if missing:
        out.append(
            '!!! failure "Protocol fields neither mapped nor hidden"\n    '
            + ", ".join(_code(f) for f in missing)
            + "\n"
        )
    else:
        out.append(
            f"Every one of the protocol's {len(spec.fields)} fields is mapped "
            f"({len(mapped)}) or hidden ({len(refinement.HIDDEN)}).\n"
        )
    out.append("## Transitions\n")
    out.append(
        "Each FreeBSD transition, the protocol steps it stands for (alternatives "
        "separated by *or*; `a ; b` is `a` then `b`), and the result of its obligation.\n"
    )
    rows = []
    for t in freebsd.transitions:
        alternatives = refinement.REFINES.get(t.name)
        shown = (
            " or ".join(_alternative(spec, a) for a in alternatives)
            if alternatives is not None
            else "**missing from `REFINES`**"
        )
        rows.append(
            (
                f"[`{t.name}`](../spec/machines/{t.component}.md#{docsgen._anchor(t.name)})",
                t.component,
                shown,
                _result(obligations.get(f"{t.name}_refines_protocol")),
            )
        )
    out.append(_table(("FreeBSD transition", "component", "refines", "proof"), rows))
    extra = sorted(set(refinement.REFINES) - {t.name for t in freebsd.transitions})
    if extra:
        out.append(
            "`REFINES` also names transitions the FreeBSD model does not have: "
            + ", ".join(_code(n) for n in extra)
            + ".\n"
        )
    return "\n".join(out)


# --------------------------------------------------------------------------- the whole set


def pages(
    freebsd: Spec | None = None,
    status: Mapping[str, Any] | None = None,
    spec: Spec | None = None,
) -> dict[str, str]:
    """The protocol pages, by path relative to the docs folder."""
    from xbdspec.model.spec import build_spec

    spec = spec or build_protocol_spec()
    freebsd = freebsd or build_spec()
    status = status if status is not None else docsgen.load_status(docsgen.STATUS_DIR)
    result = {
        "protocol/index.md": index_page(spec, status),
        "protocol/obligations.md": obligations_page(spec, status),
        "protocol/refinement.md": refinement_page(spec, freebsd, status),
    }
    for name in spec.components:
        result[f"protocol/{PAGE_OF.get(name, name + '.md')}"] = component_page(spec, name, status)
    return result
