# xbdspec: the whole set-up is `make verify` or `make test` on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv test verify lint bench diagrams docs docs-check docs-status clean xen-headers xen-tools linux-frontend spin

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,docs]'
	touch $(STAMP)

venv: $(STAMP)

## make test: bootstrap .venv, then the whole pytest suite (ci hypothesis profile), on
## every core (pytest-xdist; each test module stays on one worker, so a module's fixtures
## are built once). A plain `pytest` still runs it in one process.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile

## make xen-headers: Xen 4.17's public headers (Debian's libxen-dev) in /usr/include/xen,
## which the protocol model quotes; installed with apt when absent (needs root).
xen-headers:
	test -f /usr/include/xen/io/blkif.h || { apt-get update && apt-get install -y libxen-dev; }

## make xen-tools: the real xenstore daemon (Debian's oxenstored, xen-utils-4.17) and its
## clients, which the trace tests run as the access log's oracle, and the C compiler the
## daemon's stub needs; installed with apt when absent (needs root).
xen-tools:
	test -x /usr/lib/xen-4.17/bin/oxenstored || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends xen-utils-4.17 xenstore-utils gcc libc6-dev; }

## make linux-frontend: Linux 6.1's xen-blkfront.c, unmodified: installs Debian's
## linux-source-6.1 with apt when absent (needs root), extracts only the driver and the Xen
## interface headers it includes into build/linux/, compiles it against shim-linux/.
linux-frontend: $(STAMP)
	$(BIN)/python tools/linux_frontend.py

## make spin: SPIN (Debian's spin) and the C compiler its pan checkers are built with, for
## `xbdspec explore --engine spin`; installed with apt when absent (needs root).
spin:
	command -v spin >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends spin gcc libc6-dev; }

## make verify: bootstrap .venv, then proofs, exploration and a differential campaign, with a summary.
verify: $(STAMP)
	$(BIN)/xbdspec verify

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks --out benchmarks/results.json

diagrams: $(STAMP)
	$(BIN)/xbdspec diagram

## make docs: regenerate the specification pages from the model (docs/spec, docs/seed-map.md,
## docs/cli.md), then build the site into build/site with no warnings allowed.
docs: $(STAMP)
	$(BIN)/python -m xbdspec.docsgen
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## make docs-check: open the built site in headless Chromium (Debian's chromium); every
## Mermaid block must become an SVG; screenshots in build/docs-screens.
docs-check: docs
	$(BIN)/python tools/docs_check.py --site build/site --screens build/docs-screens

## make docs-status: rerun `xbdspec prove --json` and `xbdspec explore --json` into
## docs/status/ (the invariant catalogue reads them), then regenerate the pages.
## Exit status 1 (an unexpected result) is still recorded; 2 (a usage error) is not.
docs-status: $(STAMP)
	mkdir -p build docs/status
	$(BIN)/xbdspec prove --json > build/prove.json; test $$? -le 1
	mv build/prove.json docs/status/prove.json
	$(BIN)/xbdspec explore --json --quiet > build/explore.json; test $$? -le 1
	mv build/explore.json docs/status/explore.json
	$(BIN)/python -m xbdspec.docsgen

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
