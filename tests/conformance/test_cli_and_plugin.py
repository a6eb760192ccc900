"""The ``xbdspec difftest`` command, replay files, the pytest plugin and strategies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given

from xbdspec.cli import main
from xbdspec.conformance.contract import Step
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import run_program
from xbdspec.conformance.reference_adapter import REFERENCE_SIZES, ReferenceImplementation
from xbdspec.conformance.replay import dumps, loads
from xbdspec.conformance.strategies import programs
from xbdspec.errors import InputError

pytest_plugins = ["pytester"]

#: The conftest of a pytester project: loads the plugin unless its pytest11 entry point
#: already does.
PLUGIN_CONFTEST = """
import importlib.metadata

if not any(
    ep.value == "xbdspec.conformance.pytest_plugin"
    for ep in importlib.metadata.entry_points(group="pytest11")
):
    pytest_plugins = ["xbdspec.conformance.pytest_plugin"]
"""


def test_difftest_json_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(
        [
            "difftest",
            "--contract",
            "freebsd",
            "--impl",
            "reference",
            "--examples",
            "8",
            "--seed",
            "3",
            "--json",
            "--replay-dir",
            str(tmp_path),
        ]
    )
    report = json.loads(capsys.readouterr().out)
    for key in (
        "examples",
        "steps",
        "seconds",
        "steps_per_second",
        "divergences",
        "coverage",
        "seed",
    ):
        assert key in report
    assert report["examples"] == 8 and report["seed"] == 3 and report["steps"] > 0
    assert code == (1 if any(d["finding"] is None for d in report["divergences"]) else 0)
    assert set(report["coverage"]["transitions"]) >= {"startio_send_bio", "interrupt"}


def test_difftest_text_prints_its_seed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert (
        main(
            [
                "difftest",
                "--contract",
                "freebsd",
                "--impl",
                "reference",
                "--examples",
                "3",
                "--seed",
                "11",
                "--profile",
                "seed-safe",
                "--replay-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "seed 11" in out and "no divergence" in out


def test_difftest_unknown_impl_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["difftest", "--contract", "freebsd", "--impl", "nonsense"]) == 2
    assert "unknown implementation" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty replay file"),
        ('{"xbdspec": "trace"}', "the header must be"),
        ('{"xbdspec": "replay", "version": 9}', "version 9"),
        ('{"xbdspec": "replay", "version": 1, "sizes": {"commands": "2"}}', "sizes must map"),
        (
            '{"xbdspec": "replay", "version": 1}\n{"event": "fly", "params": {}}',
            ":2: unknown event",
        ),
        (
            '{"xbdspec": "replay", "version": 1}\n{"event": "strategy", "params": {"bio": 0}}',
            "takes parameters",
        ),
        (
            '{"xbdspec": "replay", "version": 1}\n'
            '{"event": "strategy", "params": {"bio": 0, "kind": "BIG"}}',
            "'BIG' is not one of",
        ),
        (
            '{"xbdspec": "replay", "version": 1}\n'
            '{"event": "interrupt", "params": {}, "env": {"dma": ["SOON"]}}',
            "env.dma",
        ),
        ('{"xbdspec": "replay", "version": 1}\nnot json', ":2: not JSON"),
    ],
)
def test_bad_replay_files_name_the_line(text: str, expected: str) -> None:
    with pytest.raises(InputError) as info:
        loads(text, "f.jsonl")
    assert expected in str(info.value) and "f.jsonl" in str(info.value)


@given(programs(REFERENCE_SIZES["ring-full"], max_steps=15))
def test_drawn_programs_replay_on_the_reference(steps: list[Step]) -> None:
    sizes = REFERENCE_SIZES["ring-full"]
    again = loads(dumps(sizes, steps))[1]
    assert again == steps
    lock = LockStep(ReferenceImplementation(), sizes)
    divergence = run_program(lock.impl, lock, steps)
    assert divergence is None or divergence.steps  # runs; divergences are findings elsewhere


def test_plugin_runs_the_suite_for_a_named_factory(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PLUGIN_CONFTEST)
    pytester.makepyfile(
        test_mine="""
def test_conforms(xbdspec_check):
    xbdspec_check(max_examples=5)

def test_sizes(xbdspec_sizes):
    assert xbdspec_sizes.grants_per_request == 11
"""
    )
    result = pytester.runpytest_inprocess(
        "--xbdspec-impl=xbdspec.conformance.reference_adapter:ReferenceImplementation",
        "--xbdspec-profile=seed-safe",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=2)


def test_plugin_skips_without_an_implementation(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PLUGIN_CONFTEST)
    pytester.makepyfile(test_mine="def test_conforms(xbdspec_check):\n    xbdspec_check()\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
