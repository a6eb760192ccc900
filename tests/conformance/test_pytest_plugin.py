"""The pytest plugin as pytest users expect it: ini options under command-line ones,
sizes and examples, Hypothesis profiles of its own, nothing heavy imported by a run that
does not use it, and a short failure whose replay stays where the user can find it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from xbdspec.model.state import Sizes

from xbdspec.conformance import pytest_plugin
from xbdspec.conformance.program import PROFILES
from xbdspec.conformance.reference_adapter import reference_sizes

pytest_plugins = ["pytester"]

#: Loads the plugin in a pytester project unless its pytest11 entry point already does.
CONFTEST = """
import importlib.metadata

if not any(
    ep.value == "xbdspec.conformance.pytest_plugin"
    for ep in importlib.metadata.entry_points(group="pytest11")
):
    pytest_plugins = ["xbdspec.conformance.pytest_plugin"]
"""

#: An implementation that departs from the model: the reference with every fix (which
#: agrees with the model) reporting a wrong count of users after ``backend_publish``, the
#: first event of every program (a departure found at once, so the test is quick).
BROKEN = """
import dataclasses

from xbdspec.conformance.reference_adapter import ReferenceImplementation
from xbdspec.reference.platform import Fixes


class Broken(ReferenceImplementation):
    def __init__(self):
        super().__init__(Fixes.all(), name="broken")

    def apply(self, event, params, env):
        seen = super().apply(event, params, env)
        if event != "backend_publish":
            return seen
        return dataclasses.replace(seen, fields={**seen.fields, "users": 7})


def make():
    return Broken()
"""


def test_the_names_listed_without_the_model_are_the_models() -> None:
    assert sorted(pytest_plugin.ENV_PROFILES) == sorted(PROFILES)
    sizes = [f.name for f in dataclasses.fields(Sizes) if f.name != "ring_base"]
    assert list(pytest_plugin.SIZE_NAMES) == sizes


def test_ini_options_configure_the_run_and_the_command_line_overrides_them(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(
        "[pytest]\n"
        "xbdspec_impl = reference-fixed\n"
        "xbdspec_examples = 3\n"
        "xbdspec_steps = 5\n"
        "xbdspec_sizes = commands=5, grants=9\n"
    )
    pytester.makepyfile(
        test_mine="""
import json
import hypothesis.stateful

def test_sizes(xbdspec_sizes, request):
    seen = {"commands": xbdspec_sizes.commands, "grants": xbdspec_sizes.grants}
    (request.config.rootpath / "sizes.json").write_text(json.dumps(seen))
    # the outer test compares the values; here, the fixture gives sizes at all
    assert seen["commands"] > 0 and seen["grants"] > 0

def test_runs(xbdspec_check, monkeypatch):
    seen = []
    monkeypatch.setattr(
        hypothesis.stateful, "run_state_machine_as_test",
        lambda machine, settings: seen.append(settings),
    )
    xbdspec_check()
    assert [(s.max_examples, s.stateful_step_count) for s in seen] == [(3, 5)]
"""
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    sizes = pytester.path / "sizes.json"
    assert json.loads(sizes.read_text()) == {"commands": 5, "grants": 9}
    pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--xbdspec-sizes=commands=4", "-k", "sizes"
    ).assert_outcomes(passed=1)
    # the command line's setting replaces the ini file's as a whole
    assert json.loads(sizes.read_text()) == {"commands": 4, "grants": reference_sizes().grants}


def test_a_bad_setting_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_mine="def test_c(xbdspec_check):\n    xbdspec_check()\n")
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--xbdspec-impl=reference-fixed", "--xbdspec-examples=many"
    )
    assert result.ret != 0
    assert "xbdspec_examples = 'many': give a positive whole number" in result.stderr.str()
    sizes = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--xbdspec-impl=reference-fixed", "--xbdspec-sizes=cmds=2"
    )
    assert "'cmds=2' is not NAME=N" in sizes.stderr.str()


def test_the_plugins_hypothesis_profiles_are_registered_and_loadable(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_mine="""
from hypothesis import settings

def test_profile():
    assert settings.default.max_examples == 100 and settings.default.derandomize
    assert settings.default.database is None
"""
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--hypothesis-profile=xbdspec-ci"
    )
    result.assert_outcomes(passed=1)


def test_a_pytest_run_that_does_not_use_it_imports_nothing_heavy(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        CONFTEST
        + """
import json, sys

def pytest_collection_finish(session):
    heavy = sorted(
        m for m in sys.modules
        if m.split(".")[0] in ("hypothesis", "z3", "transitions")
        or (m.startswith("xbdspec.") and m != "xbdspec.conformance.pytest_plugin")
    )
    (session.config.rootpath / "imported.json").write_text(json.dumps(heavy))
"""
    )
    pytester.makepyfile(test_empty="def test_nothing():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("--co", "-q", "-p", "no:cacheprovider")
    assert result.ret == 0
    imported = json.loads((pytester.path / "imported.json").read_text())
    # the packages holding the plugin, and the error type the package root exports
    allowed = {"xbdspec", "xbdspec.errors", "xbdspec.conformance"}
    assert set(imported) <= allowed, imported


def test_a_failure_is_short_and_its_replay_is_kept_beside_the_project(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(broken_impl=BROKEN)
    pytester.makepyfile(test_mine="def test_conforms(xbdspec_check):\n    xbdspec_check()\n")
    result = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "--xbdspec-impl=broken_impl:make",
        "--xbdspec-examples=60",
        "--hypothesis-profile=xbdspec-ci",
    )
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    replay = pytester.path / ".xbdspec" / "replays" / "test_mine.py-test_conforms.jsonl"
    assert replay.exists(), text
    assert "xbdspec: the implementation departs from the model" in text
    assert f"replay kept in {replay}" in text
    assert f"xbdspec itf {replay}" in text and "--replay" in text
    assert "users" in text  # the field that differs
    failure = text[text.index("_ test_conforms _") : text.index("short test summary")]
    assert "pytest_plugin.py" not in failure and "Traceback" not in failure
    assert "During handling" not in failure  # no chained exception either
    assert len(failure.splitlines()) < 15, failure
    header = json.loads(replay.read_text(encoding="utf-8").splitlines()[0])
    assert header["xbdspec"] == "replay"
    # once the implementation conforms, the test passes and the stale replay goes
    fixed = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--xbdspec-impl=reference-fixed", "--xbdspec-examples=2"
    )
    fixed.assert_outcomes(passed=1)
    assert not replay.exists()


def test_the_replay_directory_is_a_setting(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(broken_impl=BROKEN)
    pytester.makeini("[pytest]\nxbdspec_replay_dir = failures\n")
    pytester.makepyfile(test_mine="def test_conforms(xbdspec_check):\n    xbdspec_check()\n")
    elsewhere = tmp_path / "kept"
    header = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--co", "--xbdspec-impl=reference-fixed"
    )
    # a relative directory is taken from the rootdir; the command line's wins
    assert f"replays of failing tests in {pytester.path / 'failures'}" in header.stdout.str()
    header = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--co", "--xbdspec-impl=x:y", f"--xbdspec-replay-dir={elsewhere}"
    )
    assert f"replays of failing tests in {elsewhere}" in header.stdout.str()
    result = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "--xbdspec-impl=broken_impl:make",
        "--xbdspec-examples=60",
        "--hypothesis-profile=xbdspec-ci",
    )
    result.assert_outcomes(failed=1)
    assert (pytester.path / "failures" / "test_mine.py-test_conforms.jsonl").exists()
