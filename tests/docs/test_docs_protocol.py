"""The protocol pages (``docs/protocol/``) and the reachable-state diagrams: generated,
fresh, and read from the model, its proofs and its scenarios."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from pathlib import Path

import pytest
from xbdspec.model import diagram, refinement
from xbdspec.model.protocol import DEVIATIONS, build_protocol_spec
from xbdspec.model.spec import build_spec
from xbdspec.model.vocabulary import XenbusState

from xbdspec import docs_protocol, docsgen

DOCS = docsgen.DOCS_DIR
PROTOCOL_PAGES = {
    "protocol/index.md",
    "protocol/toolstack.md",
    "protocol/backend.md",
    "protocol/frontend.md",
    "protocol/obligations.md",
    "protocol/refinement.md",
}
NEVER_ENTERED = ("Unknown", "InitWait", "Reconfiguring", "Reconfigured")


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return docsgen.pages()


def _mermaid_blocks(text: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)```", text, flags=re.DOTALL)


def _nodes_and_arrows(block: str) -> tuple[set[str], list[tuple[str, str]]]:
    nodes: set[str] = set()
    arrows: list[tuple[str, str]] = []
    for line in block.splitlines():
        line = line.strip()
        match = re.match(r"(\S+) --> (\S+?)(?::|$)", line)
        if match:
            arrows.append((match.group(1), match.group(2)))
            nodes.update(match.groups())
        elif re.fullmatch(r"\w+", line) and line not in ("stateDiagram-v2",):
            nodes.add(line)
        elif line.startswith("state "):
            nodes.add(line.split(" as ")[-1].split()[0])
    nodes.discard("[*]")
    return nodes, arrows


def _section(page: str, heading: str) -> str:
    start = page.index(heading)
    rest = page[start + len(heading) :]
    end = re.search(r"^#{2,3} ", rest, flags=re.MULTILINE)
    return rest[: end.start()] if end else rest


# --------------------------------------------------------------------------- freshness


def test_the_protocol_pages_are_generated_and_committed(generated: dict[str, str]) -> None:
    assert set(generated) >= PROTOCOL_PAGES
    for rel in sorted(PROTOCOL_PAGES):
        path = DOCS / rel
        assert path.exists(), f"{path} is missing: run `make docs`"
        assert path.read_text() == generated[rel], f"{path} is stale: run `make docs`"


def test_a_stale_protocol_page_is_caught(tmp_path: Path) -> None:
    out = tmp_path / "docs"
    (out / "status").mkdir(parents=True)
    for name in ("prove.json", "explore.json"):
        if (DOCS / "status" / name).exists():
            (out / "status" / name).write_text((DOCS / "status" / name).read_text())
    docsgen.generate(out)
    page = out / "protocol" / "backend.md"
    page.write_text(page.read_text().replace("backend_init_wait", "backend_wait", 1))
    (out / "protocol" / "refinement.md").unlink()
    assert set(docsgen.check(out)) == {page, out / "protocol" / "refinement.md"}


def test_the_protocol_pages_are_in_the_nav_before_the_freebsd_model() -> None:
    nav = docsgen.site_nav(DOCS)
    titles = [next(iter(entry)) for entry in nav]
    assert "Protocol" in titles
    assert titles.index("Protocol") < titles.index("FreeBSD model")
    entries = nav[titles.index("Protocol")]["Protocol"]
    assert {next(iter(e.values())) for e in entries} == PROTOCOL_PAGES


# --------------------------------------------------------------------------- the rules


def test_each_rule_section_shows_its_doc_quote_and_proof(generated: dict[str, str]) -> None:
    spec = build_protocol_spec()
    for t in spec.transitions:
        page = generated[f"protocol/{t.component}.md"]
        section = _section(page, f"### `{t.name}` {{#r-{t.name.replace('_', '-')}}}")
        assert t.quote is not None, t.name
        assert f"> {docs_protocol.prose(t.quote.text)}" in section, t.name
        assert docs_protocol.prose(t.quote.cite()) in section, t.name
        assert docs_protocol.prose(t.doc) in section, t.name
        assert f"`protocol.{t.name}_preserves_invariants`" in section
        assert f"`protocol.{t.name}_is_live`" in section
        for text in docs_protocol.condition_texts(spec, t):
            assert docs_protocol.prose(text) in section, (t.name, text)


def test_a_deviation_is_named_on_its_rule_and_on_the_overview(generated: dict[str, str]) -> None:
    spec = build_protocol_spec()
    deviating = [t for t in spec.transitions if t.deviation]
    assert deviating
    for t in deviating:
        section = _section(
            generated[f"protocol/{t.component}.md"],
            f"### `{t.name}` {{#r-{t.name.replace('_', '-')}}}",
        )
        assert f'!!! warning "Tolerated deviation: `{t.deviation}`"' in section
    index = generated["protocol/index.md"]
    for name, text in DEVIATIONS.items():
        assert f"`{name}`" in index and docs_protocol.prose(text) in index
    for level in ("conforms", "tolerated deviation", "violation"):
        assert f"**{level}**" in index


def test_ring_rules_have_their_own_section(generated: dict[str, str]) -> None:
    from xbdspec.model.protocol import ring

    for component in ("frontend", "backend"):
        page = generated[f"protocol/{component}.md"]
        ring_part = page.split("## The ring\n", 1)[1].split("## Scenarios\n", 1)[0]
        for t in ring.table.transitions:
            if t.component == component:
                assert f"### `{t.name}`" in ring_part
    assert "## The ring" not in generated["protocol/toolstack.md"]


def test_every_front_end_appears_on_the_frontend_page(generated: dict[str, str]) -> None:
    page = generated["protocol/frontend.md"]
    found = docs_protocol.scenarios()
    assert {s.frontend for s in found} == set(docs_protocol.FRONTENDS)
    for key, name in docs_protocol.FRONTENDS.items():
        assert f"| {name} |" in page, name
        for s in found:
            if s.frontend == key:
                assert docs_protocol.prose(s.source) in page
                assert docs_protocol.prose(s.version) in page


def test_who_takes_a_rule_comes_from_the_scenarios(generated: dict[str, str]) -> None:
    found = docs_protocol.scenarios()
    minios = {s.name for s in found if s.frontend == "minios"}
    assert minios
    section = _section(
        generated["protocol/frontend.md"],
        "### `frontend_publish_transport_connected` {#r-frontend-publish-transport-connected}",
    )
    row = next(ln for ln in section.splitlines() if ln.startswith("| Mini-OS |"))
    for name in minios:
        assert name in row
    freebsd = next(ln for ln in section.splitlines() if ln.startswith("| FreeBSD |"))
    assert freebsd == "| FreeBSD | — |"


def test_the_state_fields_are_on_the_overview(generated: dict[str, str]) -> None:
    index = generated["protocol/index.md"]
    for f in build_protocol_spec().fields:
        row = next(ln for ln in index.splitlines() if ln.startswith(f"| `{f.name}` |"))
        assert f"| {f.group} |" in row


# --------------------------------------------------------------------------- obligations


def test_every_obligation_has_its_doc_quote_and_status(generated: dict[str, str]) -> None:
    spec = build_protocol_spec()
    page = generated["protocol/obligations.md"]
    assert "``" not in page.replace("```", "")
    props = [(i.name, i.doc, i.quote) for i in spec.invariants]
    props += [(p.name, p.doc, p.quote) for p in spec.step_properties]
    for name, doc, quote in props:
        section = _section(page, f"### `{name}` {{#o-{name.lower()}}}")
        assert section.lstrip("\n").startswith(docs_protocol.first_sentence(doc)), name
        if quote is not None:
            assert f"> {docs_protocol.prose(quote.text)}" in section
            assert docs_protocol.prose(quote.cite()) in section
    for inv in spec.invariants:
        assert f"`protocol.initial_satisfies_{inv.name}`" in page
    # the docstrings are dedented: outside code fences only admonition bodies are
    # indented (an indented paragraph would become a code block)
    lines = re.sub(r"```.*?```", "", page, flags=re.DOTALL).splitlines()
    for before, line in itertools.pairwise(lines):
        if line.startswith("    "):
            assert before.startswith(("!!!", "    ")), line


def test_proof_status_comes_from_the_prove_json(tmp_path: Path) -> None:
    prove = json.loads((DOCS / "status" / "prove.json").read_text())
    names = {o["name"] for o in prove["obligations"]}
    if "protocol.backend_connect_preserves_invariants" not in names:
        pytest.skip("the committed prove.json has no protocol obligations")
    for o in prove["obligations"]:
        if o["name"] == "protocol.backend_connect_preserves_invariants":
            o.update(result="refuted", as_expected=False)
    (tmp_path / "prove.json").write_text(json.dumps(prove))
    status = docsgen.load_status(tmp_path)
    spec = build_protocol_spec()
    backend = docs_protocol.component_page(spec, "backend", status)
    section = _section(backend, "### `backend_connect` {#r-backend-connect}")
    assert "refuted" in section and "UNEXPECTED" in section
    obligations = docs_protocol.obligations_page(spec, status)
    assert "not: `backend_connect`" in obligations
    empty = docs_protocol.component_page(spec, "backend", {})
    assert "No proof status is committed" in empty


# --------------------------------------------------------------------------- refinement


def test_the_refinement_page_maps_every_field_and_transition(generated: dict[str, str]) -> None:
    page = generated["protocol/refinement.md"]
    protocol = build_protocol_spec()
    mapped, _ = docs_protocol.abstraction_table()
    assert {m.field for m in mapped} | set(refinement.HIDDEN) == {f.name for f in protocol.fields}
    for m in mapped:
        assert f"| `{m.field}` | `{m.expression}` |" in page
    hidden = page.split("## Hidden fields", 1)[1].split("##", 1)[0]
    for name in refinement.HIDDEN:
        assert f"| `{name}` |" in hidden
    for t in build_spec().transitions:
        row = next(ln for ln in page.splitlines() if ln.startswith(f"| [`{t.name}`]"))
        alternatives = refinement.REFINES[t.name]
        for alternative in alternatives:
            for step in alternative:
                assert f"[`{step}`]" in row
            if not alternative:
                assert "a stutter" in row


# --------------------------------------------------------------------------- the diagrams


def test_the_freebsd_front_end_diagram_draws_only_reachable_states() -> None:
    for path in (DOCS / "diagrams" / "frontend.md", DOCS / "spec" / "machines" / "frontend.md"):
        blocks = _mermaid_blocks(path.read_text())
        assert len(blocks) == 1, path
        nodes, arrows = _nodes_and_arrows(blocks[0])
        assert nodes, path
        for name in NEVER_ENTERED:
            assert name not in nodes, (path, name)
        assert [a for a in arrows if a[0] == a[1]] == [], path
        assert "[internal]" not in blocks[0]


def test_no_diagram_has_a_self_loop(generated: dict[str, str]) -> None:
    pages = {**generated, **{f"diagrams/{k}": v for k, v in diagram.pages().items()}}
    for rel, text in pages.items():
        for block in _mermaid_blocks(text):
            _, arrows = _nodes_and_arrows(block)
            assert [a for a in arrows if a[0] == a[1]] == [], rel


def test_the_committed_diagram_pages_are_fresh() -> None:
    for name, text in diagram.pages().items():
        assert (DOCS / "diagrams" / name).read_text() == text, f"run `xbdspec diagram` ({name})"


def test_reachability_is_explored_at_the_small_sizes() -> None:
    reach = diagram.reachability(build_spec())
    assert reach.sizes == diagram.FREEBSD_SIZES and reach.complete
    assert XenbusState.InitWait not in reach.control["frontend"]
    assert XenbusState.Connected in reach.control["frontend"]
    protocol = diagram.reachability(build_protocol_spec())
    assert protocol.sizes == diagram.PROTOCOL_SIZES and protocol.complete
    assert XenbusState.InitWait not in protocol.control["frontend"]
    assert XenbusState.Unknown in protocol.control["frontend"]  # the tool stack removes it
    page = docsgen.pages()["protocol/frontend.md"]
    assert diagram.sizes_text(diagram.PROTOCOL_SIZES) in page


def test_the_tracked_fields_are_closed_under_what_state_changes_read() -> None:
    spec = diagram.exploration_spec(build_protocol_spec())
    tracked = set(diagram.tracked_fields(spec))
    assert {"fe_state", "be_state", "ts_phase", "fe_transport"} <= tracked
    assert not tracked & {"req_prod", "rsp_cons", "req_stage", "gnt_live"}


def test_removing_a_rule_removes_its_arrow() -> None:
    spec = build_protocol_spec()
    kept = tuple(t for t in spec.transitions if t.name != "frontend_reconnect")
    changed = spec.replace(transitions=kept)
    before = diagram.mermaid_for(spec, "frontend")
    after = diagram.mermaid_for(changed, "frontend")
    assert "frontend_reconnect" in before and "frontend_reconnect" not in after


def test_internal_steps_are_listed_under_the_diagram() -> None:
    spec = build_spec()
    notes = diagram.notes_for(spec, "frontend")
    for name in ("frontend_connect_locked", "open", "close"):
        row = next(ln for ln in notes.splitlines() if f"`{name}`" in ln)
        assert row.startswith("| ")
    assert "never holds Unknown, InitWait, Reconfiguring, Reconfigured" in notes


def test_a_changed_destination_changes_the_diagram() -> None:
    spec = build_spec()
    t = spec.transition("frontend_connect")
    moved = dataclasses.replace(t, dest=XenbusState.Closing)
    changed = spec.replace(transitions=tuple(moved if x is t else x for x in spec.transitions))
    assert "Initialised --> Connected: frontend_connect" in diagram.mermaid_for(spec, "frontend")
    after = diagram.mermaid_for(changed, "frontend")
    assert "Initialised --> Connected" not in after
    assert "frontend_connect" in after
