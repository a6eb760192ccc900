"""tools/docs_check.py: counting Mermaid blocks that became SVGs in a DOM dump."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "docs_check.py"


@pytest.fixture(scope="module")
def docs_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_check", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_check"] = module
    spec.loader.exec_module(module)
    return module


GOOD = (
    '<div class="xbd-mermaid" data-processed="true"><svg id="m0"><g><text>x</text></g></svg></div>'
)
UNRENDERED = '<div class="xbd-mermaid">stateDiagram-v2\n  A --&gt; B</div>'
ERROR = '<div class="xbd-mermaid"><svg aria-roledescription="error"><g></g></svg></div>'


def test_rendered_blocks_pass(docs_check: ModuleType) -> None:
    seen = docs_check.rendered(f"<html><body>{GOOD}<p>text</p>{GOOD}</body></html>")
    assert (seen.blocks, seen.svgs, seen.errors) == (2, 2, 0)
    assert docs_check.judge("p.html", 2, seen).ok


def test_an_unrendered_block_fails(docs_check: ModuleType) -> None:
    seen = docs_check.rendered(f"<html><body>{GOOD}{UNRENDERED}</body></html>")
    outcome = docs_check.judge("p.html", 2, seen)
    assert not outcome.ok
    assert "1 of 2 blocks became an SVG" in outcome.problems


def test_an_error_picture_fails(docs_check: ModuleType) -> None:
    seen = docs_check.rendered(f'<html data-mermaid-error="bad"><body>{ERROR}</body></html>')
    outcome = docs_check.judge("p.html", 1, seen)
    assert (seen.svgs, seen.errors, seen.page_error) == (0, 1, "bad")
    assert not outcome.ok


def test_a_page_that_lost_its_blocks_fails(docs_check: ModuleType) -> None:
    outcome = docs_check.judge("p.html", 1, docs_check.rendered("<html><body></body></html>"))
    assert "0 Mermaid blocks in the DOM, 1 in the HTML" in outcome.problems


def test_the_broken_probe_breaks_the_first_block(docs_check: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "p.html").write_text(f"<html><body>{UNRENDERED}</body></html>")
    assert docs_check.mermaid_pages(tmp_path) == {Path("a/p.html"): 1}
    probe = docs_check.write_broken_probe(tmp_path, Path("a/p.html"))
    assert "[not ]] mermaid" in probe.read_text()
    assert docs_check.mermaid_pages(tmp_path) == {Path("a/p.html"): 1}


def test_a_showcase_page_must_render_its_title_and_content(docs_check: ModuleType) -> None:
    html = '<html><body><h1 id="x">Invariant &amp; catalogue<a href="#x">&para;</a></h1></html>'
    good = '<html><div class="md-content"><h1>Invariant &amp; catalogue<a>¶</a></h1></div></html>'
    assert docs_check.page_problems("p.html", html, good) == []
    blank = docs_check.page_problems("p.html", html, "<html><body></body></html>")
    assert "its title 'Invariant & catalogue' is not in the rendered page" in blank
    assert "the rendered page has no content area (md-content)" in blank
    assert docs_check.page_problems("p.html", "<html></html>", good) == [
        "the built page has no <h1>"
    ]


def test_the_showcase_names_the_pages_a_reader_meets_first(docs_check: ModuleType) -> None:
    shown = set(docs_check.SHOWCASE)
    assert "index.html" in shown and "spec/invariants.html" in shown
    assert any(p.startswith("spec/machines/") for p in shown)
    assert any(p.startswith("findings/") and p != "findings/index.html" for p in shown)
