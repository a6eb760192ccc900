"""``make docs-check``: open the built site in headless Chromium; every Mermaid block
must have become an SVG, and the pages a reader meets first are screenshot.

For each page of the built site (``build/site``) holding Mermaid blocks
(``div.xbd-mermaid``), the page is served from a local ``http.server`` on 127.0.0.1,
loaded by Debian's ``chromium`` (plain command line: ``--dump-dom`` after a virtual
time budget, and ``--screenshot`` into ``build/docs-screens/``), and the rendered
DOM is read back: each block must hold an ``<svg>`` that is not Mermaid's error
picture.  A deliberately broken copy of one page is checked the same way and must
fail, so the check cannot pass by seeing nothing.

The showcase pages (:data:`SHOWCASE`: the landing page, a machine page, the invariant
catalogue and a findings page) are screenshot too, whether or not they hold a diagram;
each must exist and its rendered DOM must hold the page's title and its content.

Exit status: 0 when every block rendered (and the broken probe was caught), 1 when
not, 2 when Chromium or the site is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import html as html_module
import http.server
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

MERMAID_CLASS = "xbd-mermaid"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
BROKEN_PROBE = "_docs_check_broken_probe.html"
#: Pages screenshot on every check, diagram or not: what a reader meets first.
SHOWCASE = (
    "index.html",
    "spec/machines/frontend.html",
    "spec/invariants.html",
    "findings/failed-mapping-leaks.html",
)


@dataclass
class Rendered:
    """What the rendered DOM of one page holds.

    Attributes:
        blocks: Mermaid blocks found (``div.xbd-mermaid``).
        svgs: blocks holding an SVG that is not an error picture.
        errors: blocks holding Mermaid's error picture.
        page_error: the ``data-mermaid-error`` mermaid-init.js set, if any.
    """

    blocks: int = 0
    svgs: int = 0
    errors: int = 0
    page_error: str = ""


class _MermaidDom(HTMLParser):
    """Counts Mermaid blocks in a DOM dump and what each one holds."""

    def __init__(self) -> None:
        super().__init__()
        self.result = Rendered()
        self._depth = 0  # element depth inside the current block (0: outside)
        self._block_svg = False
        self._block_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html" and values.get("data-mermaid-error"):
            self.result.page_error = values["data-mermaid-error"] or ""
        if self._depth:
            self._depth += 1
            if tag == "svg":
                self._block_svg = True
                if values.get("aria-roledescription") == "error":
                    self._block_error = True
            return
        if MERMAID_CLASS in (values.get("class") or "").split():
            self.result.blocks += 1
            self._depth = 1
            self._block_svg = self._block_error = False

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if self._depth:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self._depth:
            return
        self._depth -= 1
        if self._depth == 0:
            if self._block_error:
                self.result.errors += 1
            elif self._block_svg:
                self.result.svgs += 1


def rendered(dom: str) -> Rendered:
    """Count the Mermaid blocks of a DOM dump and the ones that became SVGs."""
    parser = _MermaidDom()
    parser.feed(dom)
    parser.close()
    return parser.result


def mermaid_pages(site: Path) -> dict[Path, int]:
    """Built pages holding Mermaid blocks, with how many each holds (from the HTML)."""
    found = {}
    for page in sorted(site.rglob("*.html")):
        if page.name == BROKEN_PROBE:
            continue
        count = len(re.findall(rf'class="{MERMAID_CLASS}"', page.read_text(errors="replace")))
        if count:
            found[page.relative_to(site)] = count
    return found


@dataclass
class Outcome:
    """The check of one page."""

    page: str
    expected: int
    seen: Rendered
    screenshot: Path | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def judge(page: str, expected: int, seen: Rendered) -> Outcome:
    """Compare what Chromium rendered with the blocks the page has."""
    outcome = Outcome(page, expected, seen)
    if seen.blocks != expected:
        outcome.problems.append(f"{seen.blocks} Mermaid blocks in the DOM, {expected} in the HTML")
    if seen.svgs != expected:
        outcome.problems.append(f"{seen.svgs} of {expected} blocks became an SVG")
    if seen.errors:
        outcome.problems.append(f"{seen.errors} blocks show Mermaid's syntax-error picture")
    if seen.page_error:
        outcome.problems.append(f"mermaid.run failed: {seen.page_error}")
    return outcome


# --------------------------------------------------------------------------- Chromium


def find_chromium() -> str | None:
    """Debian's ``chromium`` (or another name it goes by), if installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium(binary: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="xbd-chromium-") as profile:
        return subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def dump_dom(binary: str, url: str, budget_ms: int) -> str:
    """The page's DOM after ``budget_ms`` of virtual time."""
    done = _chromium(binary, f"--virtual-time-budget={budget_ms}", "--dump-dom", url, timeout=120)
    if done.returncode != 0 and not done.stdout:
        raise RuntimeError(f"chromium --dump-dom {url} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def screenshot(binary: str, url: str, out: Path, budget_ms: int) -> Path:
    """A PNG of the page after ``budget_ms`` of virtual time."""
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _chromium(
        binary,
        f"--virtual-time-budget={budget_ms}",
        "--window-size=1280,2000",
        f"--screenshot={out}",
        url,
        timeout=120,
    )
    if not out.exists():
        raise RuntimeError(f"chromium --screenshot {url} wrote nothing: {done.stderr[-500:]}")
    return out


# --------------------------------------------------------------------------- serving


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve ``site`` on 127.0.0.1 (a free port); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}/"
    finally:
        server.shutdown()
        server.server_close()


def write_broken_probe(site: Path, page: Path) -> Path:
    """A copy of ``page`` whose first Mermaid block is not valid Mermaid."""
    text = (site / page).read_text()
    broken, n = re.subn(
        rf'(<div class="{MERMAID_CLASS}">)(.*?)(</div>)',
        r"\1stateDiagram-v2\n  this is --> [not ]] mermaid {{\3",
        text,
        count=1,
        flags=re.DOTALL,
    )
    if n != 1:
        raise RuntimeError(f"{page}: no Mermaid block to break")
    probe = (site / page).parent / BROKEN_PROBE
    probe.write_text(broken)
    return probe


# --------------------------------------------------------------------------- main


def _shot_name(page: str) -> str:
    return page.replace("/", "_").removesuffix(".html") + ".png"


def _text(markup: str) -> str:
    """The text of some HTML: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def page_problems(page: str, html: str, dom: str) -> list[str]:
    """What is wrong with a showcase page's rendering: its title (the built page's
    ``<h1>``) and Material's content area must be in the DOM Chromium rendered."""
    problems = []
    title = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.DOTALL)
    if title is None:
        problems.append("the built page has no <h1>")
    else:
        text = _text(title.group(1)).removesuffix("¶").strip()
        if not text or text not in _text(dom):
            problems.append(f"its title {text!r} is not in the rendered page")
    if 'class="md-content"' not in dom:
        problems.append("the rendered page has no content area (md-content)")
    return problems


def check_showcase(site: Path, screens: Path, budget_ms: int, binary: str) -> list[Outcome]:
    """Screenshot every showcase page and check it rendered (a missing one fails)."""
    outcomes = []
    with serve(site) as base:
        for page in SHOWCASE:
            outcome = Outcome(page, 0, Rendered())
            if not (site / page).exists():
                outcome.problems.append("missing from the built site")
                outcomes.append(outcome)
                continue
            url = base + page
            dom = dump_dom(binary, url, budget_ms)
            outcome.problems += page_problems(page, (site / page).read_text(), dom)
            outcome.screenshot = screenshot(binary, url, screens / _shot_name(page), budget_ms)
            outcomes.append(outcome)
    return outcomes


def check_site(
    site: Path, screens: Path, budget_ms: int, binary: str
) -> tuple[list[Outcome], Outcome]:
    """Check every Mermaid page, and the broken probe (which must fail)."""
    pages = mermaid_pages(site)
    if not pages:
        raise RuntimeError(f"no page of {site} holds a Mermaid block: nothing to check")
    first = next(iter(pages))
    probe = write_broken_probe(site, first)
    outcomes = []
    try:
        with serve(site) as base:
            for page, expected in pages.items():
                url = base + page.as_posix()
                outcome = judge(
                    page.as_posix(), expected, rendered(dump_dom(binary, url, budget_ms))
                )
                shot = screens / _shot_name(page.as_posix())
                outcome.screenshot = screenshot(binary, url, shot, budget_ms)
                outcomes.append(outcome)
            probe_rel = probe.relative_to(site).as_posix()
            probe_outcome = judge(
                probe_rel, pages[first], rendered(dump_dom(binary, base + probe_rel, budget_ms))
            )
    finally:
        probe.unlink(missing_ok=True)
    return outcomes, probe_outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=Path("build/site"))
    parser.add_argument("--screens", type=Path, default=Path("build/docs-screens"))
    parser.add_argument("--budget-ms", type=int, default=10000, help="virtual time per page")
    args = parser.parse_args(argv)
    binary = find_chromium()
    if binary is None:
        print(
            "docs-check: chromium is not installed (apt-get install -y chromium)", file=sys.stderr
        )
        return 2
    if not (args.site / "index.html").exists():
        print(f"docs-check: no built site in {args.site} (run `make docs`)", file=sys.stderr)
        return 2
    try:
        outcomes, probe = check_site(args.site, args.screens, args.budget_ms, binary)
        showcase = check_showcase(args.site, args.screens, args.budget_ms, binary)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"docs-check: {exc}", file=sys.stderr)
        return 1
    failed = 0
    for o in outcomes:
        status = "ok" if o.ok else "FAIL: " + "; ".join(o.problems)
        print(
            f"{o.page}: {o.seen.svgs}/{o.expected} Mermaid blocks rendered as SVG; "
            f"screenshot {o.screenshot}; {status}"
        )
        failed += not o.ok
    if probe.ok:
        print(f"FAIL: the deliberately broken page {probe.page} passed: the check sees nothing")
        failed += 1
    else:
        print(f"broken probe caught as expected ({'; '.join(probe.problems)})")
    for o in showcase:
        status = "ok" if o.ok else "FAIL: " + "; ".join(o.problems)
        print(f"{o.page}: showcase; screenshot {o.screenshot}; {status}")
        failed += not o.ok
    total = sum(o.expected for o in outcomes)
    print(
        f"docs-check: {len(outcomes)} pages, {total} Mermaid blocks, "
        f"{len(showcase)} showcase pages, {failed} failures"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
