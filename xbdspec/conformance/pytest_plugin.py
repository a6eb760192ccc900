"""A pytest plugin: run the conformance suite inside a project's own tests.

Enabled through the ``pytest11`` entry point (``xbdspec = xbdspec.conformance.pytest_plugin``).
Options:

* ``--xbdspec-impl=package.module:factory`` (or a built-in name): an in-process
  implementation (a factory returning an object with the adapter contract);
* ``--xbdspec-cmd="program args"``: an implementation speaking the stdio protocol;
* ``--xbdspec-profile=full|seed-safe``.

Fixtures:

* ``xbdspec_factory``: a function returning a fresh implementation (skips the test
  when no implementation was named);
* ``xbdspec_sizes``: the sizes to test at;
* ``xbdspec_check``: ``xbdspec_check()`` runs the hypothesis stateful test against the
  implementation (the current hypothesis profile's settings) and fails with the
  minimal program if it departs from the model.

A test in the user's project is then one line::

    def test_conforms(xbdspec_check):
        xbdspec_check()

Strategies for hand-written tests are in :mod:`xbdspec.conformance.strategies`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from xbdspec.model.state import Sizes

from .builtin import resolve
from .contract import Implementation
from .program import PROFILES
from .stateful import conformance_machine


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's command-line options."""
    group = parser.getgroup("xbdspec", "xbdspec conformance")
    group.addoption(
        "--xbdspec-impl",
        default=None,
        help="implementation: built-in name or package.module:factory",
    )
    group.addoption(
        "--xbdspec-cmd",
        default=None,
        help='implementation process: "program args" (stdio protocol)',
    )
    group.addoption(
        "--xbdspec-profile", default="full", choices=sorted(PROFILES), help="environment choices"
    )


@pytest.fixture
def _xbdspec_resolved(request: pytest.FixtureRequest) -> tuple[Callable[[], Implementation], Sizes]:
    impl = request.config.getoption("--xbdspec-impl")
    cmd = request.config.getoption("--xbdspec-cmd")
    if impl is None and cmd is None:
        pytest.skip(
            "no implementation named: pass --xbdspec-impl=module:factory or --xbdspec-cmd=..."
        )
    return resolve(impl, cmd)


@pytest.fixture
def xbdspec_factory(
    _xbdspec_resolved: tuple[Callable[[], Implementation], Sizes],
) -> Callable[[], Implementation]:
    """A function returning a fresh implementation under test."""
    return _xbdspec_resolved[0]


@pytest.fixture
def xbdspec_sizes(_xbdspec_resolved: tuple[Callable[[], Implementation], Sizes]) -> Sizes:
    """The model sizes the implementation is tested at."""
    return _xbdspec_resolved[1]


@pytest.fixture
def xbdspec_check(
    request: pytest.FixtureRequest,
    xbdspec_factory: Callable[[], Implementation],
    xbdspec_sizes: Sizes,
    tmp_path: Path,
) -> Callable[..., None]:
    """Run the stateful conformance test (``max_examples`` overrides the profile's);
    a failing program is written to
    ``tmp_path/xbdspec-failing.jsonl`` and printed."""
    profile = PROFILES[request.config.getoption("--xbdspec-profile")]

    def check(max_examples: int | None = None) -> None:
        machine = conformance_machine(
            xbdspec_factory,
            xbdspec_sizes,
            profile=profile,
            known_ok=True,
            replay_path=tmp_path / "xbdspec-failing.jsonl",
            reuse=True,
        )
        try:
            chosen = settings(settings(), stateful_step_count=40)
            if max_examples is not None:
                chosen = settings(chosen, max_examples=max_examples)
            run_state_machine_as_test(machine, settings=chosen)
        finally:
            machine.close_shared()  # type: ignore[attr-defined]

    return check
