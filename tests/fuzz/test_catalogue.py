"""The hand-made hostile inputs (:mod:`catalogue`): each gets the status and the message
``docs/hostile-inputs.md`` says, never a traceback nor exit status 4; and the page's
table is the catalogue's (regenerate it with ``python tests/fuzz/catalogue.py``)."""

from __future__ import annotations

import importlib
from pathlib import Path

import catalogue
import hostile
import pytest


@pytest.mark.parametrize("case", catalogue.CASES, ids=lambda c: f"{c.reader}: {c.given[:50]}")
def test_each_hostile_input_gets_what_the_page_says(case: catalogue.Case, tmp_path: Path) -> None:
    if case.needs == "seed":
        from xbdspec.cdriver import default_source

        source = default_source()
        if source is None or not source.is_file():
            pytest.skip("no blkfront.c: put the seed at ../shared/seed/blkfront.c")
    outcome = catalogue.run(case, tmp_path)
    assert "Traceback" not in outcome.output and "internal error" not in outcome.output
    assert outcome.status == case.status, outcome.output[-3000:]
    assert case.says in outcome.output, outcome.output[-3000:]


def test_the_page_shows_the_catalogue() -> None:
    page = catalogue.PAGE.read_text(encoding="utf-8")
    assert catalogue.BEGIN in page and catalogue.END in page
    assert catalogue.page_with(catalogue.render(), page) == page, (
        "docs/hostile-inputs.md is not the catalogue's: run python tests/fuzz/catalogue.py"
    )


def test_every_suite_the_page_names_exists() -> None:
    for module, test, _, _ in catalogue.SUITES:
        assert callable(getattr(importlib.import_module(module), test, None)), (module, test)


def test_the_page_is_in_the_docs_index_and_the_site_nav() -> None:
    """Linked from docs/index.md, and in the site's navigation (which the mkdocs.yml
    hook, xbdspec.docsgen.on_config, builds from xbdspec.docsgen.NAV)."""
    from xbdspec.docsgen import site_nav

    docs = hostile.REPO / "docs"
    assert "(hostile-inputs.md)" in (docs / "index.md").read_text(encoding="utf-8")
    pages: list[str] = []
    stack: list[object] = list(site_nav(docs))
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            pages.append(item)
    assert "hostile-inputs.md" in pages
