"""The generated pages read as documentation: rationales as prose, not code blocks of
docstring markup; key-value facts without an empty table header; the exploration table
narrow enough for the page; every findings page naming the seed revision it is about."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xbdspec import docsgen
from xbdspec.findings.catalogue import FINDINGS
from xbdspec.findings.seed import SEED

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return docsgen.pages()


def _outside_fences(text: str) -> list[str]:
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside:
            lines.append(line)
    return lines


def test_no_page_shows_docstring_markup_or_an_empty_header(pages: dict[str, str]) -> None:
    for path, text in pages.items():
        for line in _outside_fences(text):
            assert "``" not in line, (path, line[:120])
            assert not re.fullmatch(r"\|\s*\|\s*\|", line), (path, "an empty table header")


def test_invariant_rationales_are_dedented_prose(pages: dict[str, str]) -> None:
    page = pages["spec/invariants.md"]
    section = page.split("### `FreezeAccounting`", 1)[1].split("```python", 1)[0]
    # the rationale's second paragraph is a paragraph, not an indented code block
    assert "\n`xbd_startio` dispatches only while `xbd_qfrozen_cnt` is zero" in section
    assert not any(line.startswith("    ") for line in section.splitlines())
    assert "- **kind**: main" in section


def test_the_exploration_table_fits(pages: dict[str, str]) -> None:
    page = pages["spec/invariants.md"]
    table = page.split("## Exploration", 1)[1].split("## Summary", 1)[0]
    assert "Sizes of every run: commands=3" in table
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert rows and all(len(row) < 100 for row in rows), rows


def test_every_findings_page_names_the_seed_revision(pages: dict[str, str]) -> None:
    for name in ["index", *(f.name for f in FINDINGS)]:
        page = pages[f"findings/{name}.md"]
        assert SEED.upstream in page and SEED.history in page, name
        assert SEED.sha256[:16] in page, name


def test_the_recorded_seed_revision_is_the_seed_present() -> None:
    import os

    copy = Path(os.environ.get("XBD_BLKFRONT") or ROOT.parent / "shared" / "seed" / "blkfront.c")
    if not copy.is_file():
        pytest.skip(f"no seed driver at {copy} (set XBD_BLKFRONT to check its revision)")
    assert SEED.matches(copy), (
        f"{copy} is not the seed revision the findings pages describe "
        f"(xbdspec/findings/seed.py); re-check the findings and record its SHA-256"
    )
    assert copy.read_bytes().count(b"\n") == SEED.lines
