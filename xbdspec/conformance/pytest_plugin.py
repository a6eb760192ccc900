"""A pytest plugin: run the conformance suite inside a project's own tests.

Enabled through the ``pytest11`` entry point (``xbdspec = xbdspec.conformance.pytest_plugin``)
wherever xbdspec is installed.  It costs a pytest run that does not use it almost
nothing: this module imports only pytest and the standard library, and the model, the
harness and Hypothesis are imported by the fixtures, when a test asks for them.

Settings, each a command-line option and an ini option of the same name (``[pytest]``
or ``[tool.pytest.ini_options]``); the command line wins:

* ``--xbdspec-impl=NAME`` / ``xbdspec_impl``: an in-process implementation, a built-in
  name (``reference``, ``reference-fixed``, ``c-queue-core``) or
  ``package.module:factory``;
* ``--xbdspec-cmd="PROG ARGS"`` / ``xbdspec_cmd``: an implementation speaking the stdio
  protocol;
* ``--xbdspec-profile=NAME`` / ``xbdspec_profile``: the environment's choices, ``full``
  (default) or ``seed-safe``;
* ``--xbdspec-sizes=NAME=N,...`` / ``xbdspec_sizes``: model sizes over the
  implementation's own (``commands=3,grants=2``);
* ``--xbdspec-examples=N`` / ``xbdspec_examples``: programs per test (default: the
  Hypothesis profile's ``max_examples``);
* ``--xbdspec-steps=N`` / ``xbdspec_steps``: events per program (default 40);
* ``--xbdspec-replay-dir=DIR`` / ``xbdspec_replay_dir``: where a failing test's replay
  is kept (default ``.xbdspec/replays`` under pytest's rootdir; a relative DIR is taken
  from the rootdir).

Hypothesis profiles registered by the plugin (:data:`PROFILES`), chosen the way
Hypothesis users choose any profile (``--hypothesis-profile=xbdspec-ci``, or in
``addopts``): ``xbdspec-quick`` (20 programs), ``xbdspec-ci`` (derandomized, 100
programs, no example database: the same programs on every run) and ``xbdspec-thorough``
(1,000 programs).  Without one, the profile loaded by the project (or Hypothesis's
default) applies.

Fixtures:

* ``xbdspec_factory``: a function returning a fresh implementation (skips the test
  when no implementation was named);
* ``xbdspec_sizes``: the sizes to test at;
* ``xbdspec_check``: ``xbdspec_check()`` runs the hypothesis stateful test against the
  implementation and, if it departs from the model in a way no documented finding
  explains, fails the test with a short message: the minimal program, the fields that
  differ, and the replay file kept in the replay directory (named after the test; a
  passing run removes it), with the commands that run it again and export it as ITF.

A test in the user's project is then one line::

    def test_conforms(xbdspec_check):
        xbdspec_check()

Strategies for hand-written tests are in :mod:`xbdspec.conformance.strategies`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported by the fixtures when used, never when pytest starts
    from xbdspec.conformance.contract import Implementation
    from xbdspec.model.state import Sizes

#: The environment profiles (``xbdspec.conformance.program.PROFILES``; a test checks
#: that the two agree, so that this module need not import the model to list them).
ENV_PROFILES = ("full", "seed-safe")
#: The model's sizes a run may set (``xbdspec.model.state.Sizes`` but ``ring_base``; a test
#: checks that they agree).
SIZE_NAMES = (
    "commands",
    "bios",
    "ring_slots",
    "grants",
    "grants_per_request",
    "suspends",
    "unplugs",
    "max_users",
    "dumps",
)
#: Events per program unless ``xbdspec_steps`` says otherwise.
DEFAULT_STEPS = 40
#: The replay directory under pytest's rootdir unless ``xbdspec_replay_dir`` says otherwise.
DEFAULT_REPLAY_DIR = Path(".xbdspec") / "replays"

#: The Hypothesis profiles the plugin registers: name -> settings.
PROFILES: dict[str, dict[str, Any]] = {
    "xbdspec-quick": {"max_examples": 20, "deadline": None},
    "xbdspec-ci": {
        "max_examples": 100,
        "derandomize": True,
        "database": None,
        "deadline": None,
        "print_blob": True,
    },
    "xbdspec-thorough": {"max_examples": 1000, "deadline": None},
}

#: (command-line option, ini name, help) of every setting.
_SETTINGS = (
    ("--xbdspec-impl", "xbdspec_impl", "implementation: a built-in name or package.module:factory"),
    ("--xbdspec-cmd", "xbdspec_cmd", 'implementation process: "program args" (stdio protocol)'),
    (
        "--xbdspec-profile",
        "xbdspec_profile",
        f"environment choices: {' or '.join(ENV_PROFILES)} (default full)",
    ),
    (
        "--xbdspec-sizes",
        "xbdspec_sizes",
        "model sizes over the implementation's own, as NAME=N,NAME=N (commands=3,grants=2)",
    ),
    (
        "--xbdspec-examples",
        "xbdspec_examples",
        "programs per test (default: the Hypothesis profile's max_examples)",
    ),
    ("--xbdspec-steps", "xbdspec_steps", f"events per program (default {DEFAULT_STEPS})"),
    (
        "--xbdspec-replay-dir",
        "xbdspec_replay_dir",
        f"where a failing test's replay file is kept (default {DEFAULT_REPLAY_DIR} under "
        "the rootdir)",
    ),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's command-line and ini options (one of each per setting)."""
    group = parser.getgroup("xbdspec", "xbdspec conformance")
    for option, ini, help_text in _SETTINGS:
        group.addoption(option, dest=ini, default=None, help=help_text)
        parser.addini(ini, help_text, default=None)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Check the settings (a bad one is a usage error before any test runs) and register
    the plugin's Hypothesis profiles when ``--hypothesis-profile`` names one (before
    Hypothesis's own plugin loads it); otherwise import nothing."""
    chosen = setting(config, "xbdspec_profile")
    if chosen is not None and chosen not in ENV_PROFILES:
        raise pytest.UsageError(
            f"xbdspec_profile = {chosen!r}: the profiles are {', '.join(ENV_PROFILES)}"
        )
    _count(config, "xbdspec_examples")
    _count(config, "xbdspec_steps")
    sizes_given(config)
    wanted = _option(config, "hypothesis_profile")
    if wanted in PROFILES:
        register_profiles()


def register_profiles() -> None:
    """Register :data:`PROFILES` with Hypothesis (idempotent; a project's conftest may call
    it to load one with ``settings.load_profile``)."""
    from hypothesis import HealthCheck, settings

    for name, values in PROFILES.items():
        settings.register_profile(name, suppress_health_check=[HealthCheck.too_slow], **values)


def pytest_report_header(config: pytest.Config) -> str | None:
    """One header line when an implementation is named: what is tested, and where a
    failing test's replay goes."""
    impl, cmd = setting(config, "xbdspec_impl"), setting(config, "xbdspec_cmd")
    if impl is None and cmd is None:
        return None
    what = f"--xbdspec-cmd={cmd!r}" if cmd is not None else f"--xbdspec-impl={impl}"
    return f"xbdspec: {what}, replays of failing tests in {replay_dir(config)}"


def _option(config: pytest.Config, dest: str) -> str | None:
    try:
        value = config.getoption(dest)
    except ValueError:  # that plugin is not loaded
        return None
    return None if value is None else str(value)


def setting(config: pytest.Config, name: str) -> str | None:
    """A setting's value: the command line's, else the ini file's, else None."""
    given = _option(config, name)
    if given is not None:
        return given
    ini = config.getini(name)
    return str(ini).strip() or None if ini is not None else None


def _count(config: pytest.Config, name: str) -> int | None:
    raw = setting(config, name)
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise pytest.UsageError(f"{name} = {raw!r}: give a positive whole number")
    return int(raw)


def replay_dir(config: pytest.Config) -> Path:
    """Where failing tests' replays are kept (relative settings from the rootdir)."""
    raw = setting(config, "xbdspec_replay_dir")
    chosen = Path(raw) if raw is not None else DEFAULT_REPLAY_DIR
    return chosen if chosen.is_absolute() else Path(config.rootpath) / chosen


def sizes_given(config: pytest.Config) -> dict[str, int]:
    """The ``xbdspec_sizes`` setting as ``{name: value}`` (a usage error names a bad pair)."""
    text = setting(config, "xbdspec_sizes")
    changes: dict[str, int] = {}
    for pair in re.split(r"[,\s]+", (text or "").strip()):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        name = name.strip().replace("-", "_")
        if name not in SIZE_NAMES or not value.strip().isdigit():
            raise pytest.UsageError(
                f"xbdspec_sizes: {pair!r} is not NAME=N with NAME one of {', '.join(SIZE_NAMES)}"
            )
        changes[name] = int(value)
    return changes


@pytest.fixture
def _xbdspec_resolved(request: pytest.FixtureRequest) -> tuple[Callable[[], Implementation], Sizes]:
    config = request.config
    impl, cmd = setting(config, "xbdspec_impl"), setting(config, "xbdspec_cmd")
    if impl is None and cmd is None:
        pytest.skip(
            "no implementation named: pass --xbdspec-impl=module:factory or --xbdspec-cmd=... "
            "(or set xbdspec_impl / xbdspec_cmd in the ini file)"
        )
    from xbdspec.conformance.builtin import resolve
    from xbdspec.errors import XbdspecError

    try:
        factory, sizes = resolve(impl, cmd)
    except XbdspecError as exc:
        pytest.fail(f"xbdspec: {exc}", pytrace=False)
    import dataclasses

    return factory, dataclasses.replace(sizes, **sizes_given(config))


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


def _replay_name(nodeid: str) -> str:
    """A file name for a test's replay: its node id with path separators flattened."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", nodeid).strip("-") + ".jsonl"


@pytest.fixture
def xbdspec_check(
    request: pytest.FixtureRequest,
    xbdspec_factory: Callable[[], Implementation],
    xbdspec_sizes: Sizes,
) -> Callable[..., None]:
    """Run the stateful conformance test (``max_examples`` overrides the settings'); a
    departure from the model fails the test with a short message and keeps its replay."""
    config = request.config
    chosen = setting(config, "xbdspec_profile") or "full"
    examples, steps = _count(config, "xbdspec_examples"), _count(config, "xbdspec_steps")
    replay_path = replay_dir(config) / _replay_name(request.node.nodeid)
    impl, cmd = setting(config, "xbdspec_impl"), setting(config, "xbdspec_cmd")
    again = f"--cmd {cmd!r}" if cmd is not None else f"--impl {impl}"

    def check(max_examples: int | None = None) -> None:
        from hypothesis import settings
        from hypothesis.stateful import run_state_machine_as_test

        from xbdspec.conformance.program import PROFILES as ENVIRONMENTS
        from xbdspec.conformance.stateful import DivergenceFound, conformance_machine

        replay_path.parent.mkdir(parents=True, exist_ok=True)
        machine = conformance_machine(
            xbdspec_factory,
            xbdspec_sizes,
            profile=ENVIRONMENTS[chosen],
            known_ok=True,
            replay_path=replay_path,
            reuse=True,
        )
        chosen_settings = settings(settings(), stateful_step_count=steps or DEFAULT_STEPS)
        wanted = max_examples if max_examples is not None else examples
        if wanted is not None:
            chosen_settings = settings(chosen_settings, max_examples=wanted)
        found: str | None = None
        try:
            run_state_machine_as_test(machine, settings=chosen_settings)
        except DivergenceFound as exc:
            found = str(exc)
        finally:
            machine.close_shared()  # type: ignore[attr-defined]
        if found is not None:  # failed outside the handler: no chained traceback shown
            pytest.fail(_failure(found, replay_path, again), pytrace=False)
        replay_path.unlink(missing_ok=True)  # a replay of an earlier failure is stale now

    return check


def _failure(report: str, replay_path: Path, again: str) -> str:
    """The failure message: the divergence (minimal program, fields that differ), the
    replay file and the commands that use it, without the plugin's traceback."""
    body = "\n".join(
        line for line in report.splitlines() if not line.strip().startswith("replay file:")
    )
    return (
        f"xbdspec: the implementation departs from the model\n{body}\n"
        f"replay kept in {replay_path}\n"
        f"  run it again: xbdspec difftest --contract freebsd {again} --replay {replay_path}\n"
        f"  as ITF:       xbdspec itf {replay_path}"
    )
