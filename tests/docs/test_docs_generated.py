"""The generated specification pages: current, caught when stale, and read from the model."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from xbdspec.model.declaration import Spec
from xbdspec.model.spec import COMPONENTS, build_spec

from xbdspec import docsgen

DOCS = docsgen.DOCS_DIR


def _docs_copy(tmp_path: Path) -> Path:
    """A docs folder holding the committed status and freshly generated pages."""
    out = tmp_path / "docs"
    shutil.copytree(DOCS / "status", out / "status")
    docsgen.generate(out)
    return out


def _spec_with(transitions: tuple[Any, ...]) -> Spec:
    base = build_spec()
    return Spec(
        sizes=base.sizes,
        fields=base.fields,
        components=COMPONENTS,
        transitions=transitions,
        initial=base._initial,
        invariants=base.invariants,
        step_properties=base.step_properties,
        progress=base.progress,
    )


def _without_diagram(page: str) -> str:
    head, _, rest = page.partition("## Diagram\n")
    return head + rest.partition("## States\n")[2]


def test_committed_pages_are_the_ones_the_model_gives() -> None:
    stale = docsgen.check(DOCS)
    assert stale == [], f"stale generated pages (run `make docs`): {[str(p) for p in stale]}"


def test_a_page_that_was_not_regenerated_is_caught(tmp_path: Path) -> None:
    out = _docs_copy(tmp_path)
    assert docsgen.check(out) == []
    page = out / "spec" / "machines" / "io.md"
    page.write_text(page.read_text().replace("xbd_startio", "xbd_startio_old", 1))
    (out / "seed-map.md").unlink()
    assert set(docsgen.check(out)) == {page, out / "seed-map.md"}


def test_changing_a_guard_changes_the_generated_table(tmp_path: Path) -> None:
    out = _docs_copy(tmp_path)
    spec = build_spec()
    target = spec.transition("backend_connect")

    def guard_without_publication(s: Any, p: Any) -> Any:
        return s.be_online  # the front end's transport is no longer required

    changed = tuple(
        dataclasses.replace(t, guard=guard_without_publication) if t is target else t
        for t in spec.transitions
    )
    before = docsgen.pages(spec, status_dir=out / "status")
    after = docsgen.pages(_spec_with(changed), status_dir=out / "status")
    differing = sorted(p for p in before if before[p] != after[p])
    assert "spec/machines/backend.md" in differing
    # elsewhere only the diagrams differ: they are drawn from the reachable states,
    # which a guard of any machine may change
    for page in differing:
        if page != "spec/machines/backend.md":
            assert page.startswith("spec/machines/"), page
            assert _without_diagram(before[page]) == _without_diagram(after[page]), page
    assert "guard_without_publication" in after["spec/machines/backend.md"]
    assert "guard_without_publication" not in before["spec/machines/backend.md"]
    # the committed page is stale for the changed model
    assert set(docsgen.check(out, _spec_with(changed))) == {out / page for page in differing}


def test_every_transition_has_its_guard_and_effect_on_its_machine_page() -> None:
    spec = build_spec()
    generated = docsgen.pages(spec)
    for t in spec.transitions:
        page = generated[f"spec/machines/{t.component}.md"]
        assert f"### `{t.name}`" in page
        assert docsgen._source(t.guard).strip() in page
        assert docsgen._source(t.effect).strip() in page


def test_every_field_and_invariant_is_documented() -> None:
    spec = build_spec()
    generated = docsgen.pages(spec)
    for f in spec.fields:
        assert f"| `{f.name}` |" in generated["spec/state.md"]
    for inv in spec.invariants:
        assert f"### `{inv.name}`" in generated["spec/invariants.md"]
    for name in ("commands", "bios", "ring_slots", "ring_base"):
        assert f"| `{name}` |" in generated["spec/state.md"]


def test_invariant_status_comes_from_the_prove_json(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.mkdir()
    prove = json.loads((DOCS / "status" / "prove.json").read_text())
    for o in prove["obligations"]:
        if o["name"] == "initial_satisfies_RingBounds":
            o.update(result="refuted", as_expected=False)
    (status / "prove.json").write_text(json.dumps(prove))
    page = docsgen.pages(status_dir=status)["spec/invariants.md"]
    ring_row = next(ln for ln in page.splitlines() if ln.startswith("| [`RingBounds`]"))
    assert "refuted" in ring_row and "UNEXPECTED" in ring_row
    no_status = docsgen.pages(status_dir=tmp_path / "absent")["spec/invariants.md"]
    assert "No proof status is committed" in no_status


def test_xenstore_keys_name_the_transitions_that_write_them() -> None:
    page = docsgen.pages()["spec/xenstore.md"]
    section = page.split("### `fe_published`", 1)[1].split("###", 1)[0]
    assert "frontend_initialise" in section
    writes = docsgen.written_values(build_spec())
    assert writes["frontend_initialise"]["fe_published"] == ["True"]
    assert "fe_published" not in writes["backend_publish"]


def test_seed_map_covers_every_seed_function() -> None:
    ports = docsgen.reference_ports()
    seed = docsgen.REPO_ROOT.parent / "shared" / "seed" / "blkfront.c"
    if seed.exists():
        functions = docsgen.seed_functions_in(seed.read_text())
        assert len(functions) > 30
        missing = [f for f in functions if f not in ports]
        assert missing == [], f"seed functions without a reference port: {missing}"
    page = docsgen.pages()["seed-map.md"]
    for name, refs in ports.items():
        row = next(ln for ln in page.splitlines() if ln.startswith(f"| `{name}` |"))
        assert all(r in row for r in refs)
    startio = next(ln for ln in page.splitlines() if ln.startswith("| `xbd_startio` |"))
    assert "startio_send_bio" in startio


def test_seed_functions_are_read_from_c_definitions() -> None:
    source = "static int\nxbd_open(struct disk *dp)\n{\n\txbd_close(dp);\n}\n"
    assert docsgen.seed_functions_in(source) == ["xbd_open"]


def test_navigation_keeps_only_existing_pages(tmp_path: Path) -> None:
    (tmp_path / "index.md").write_text("# Home\n")
    (tmp_path / "findings").mkdir()
    (tmp_path / "findings" / "f1.md").write_text("# First finding\n")
    nav = docsgen.site_nav(tmp_path)
    assert nav == [
        {"Home": "index.md"},
        {"Findings": [{"Every finding": [{"First finding": "findings/f1.md"}]}]},
    ]
    (tmp_path / "findings" / "index.md").write_text("# Findings\n")
    assert docsgen.site_nav(tmp_path)[1] == {
        "Findings": [
            {"Overview": "findings/index.md"},
            {"Every finding": [{"First finding": "findings/f1.md"}]},
        ]
    }


@pytest.mark.parametrize("name", ["not json", "{"])
def test_a_corrupt_status_file_is_an_input_error(tmp_path: Path, name: str) -> None:
    from xbdspec.errors import XbdspecError

    (tmp_path / "prove.json").write_text(name)
    with pytest.raises(XbdspecError, match=r"prove\.json"):
        docsgen.load_status(tmp_path)
