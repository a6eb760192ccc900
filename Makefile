# xbdspec: the whole set-up is `make verify` or `make test` on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv test verify lint bench diagrams clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## make test: bootstrap .venv, then the whole pytest suite (ci hypothesis profile).
test: $(STAMP)
	$(BIN)/python -m pytest -q

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

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
