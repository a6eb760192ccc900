"""``xbdspec difftest`` never passes on a test that tested nothing: arguments that make no
test are refused, a child that dies is an error, and a child that reports no field
makes the campaign refuse to pass."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from xbdspec.cli import main

CHILD = Path(__file__).parent / "children" / "reports_nothing.py"


@pytest.mark.parametrize(
    "argv",
    [
        ["--impl", "reference", "--examples", "0"],
        ["--impl", "reference", "--examples", "-5"],
        ["--impl", "reference", "--length", "0"],
        ["--impl", "reference", "--minutes", "-1"],
        ["--impl", "reference", "--minutes", "nan"],
        ["--impl", "reference", "--minutes", "inf"],
    ],
)
def test_arguments_that_make_no_test_are_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["difftest", "--contract", "freebsd", *argv])
    assert caught.value.code == 2
    assert "makes no test" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["true", "sh -c 'exit 3'", "sh -c 'kill -SEGV $$'"])
def test_a_child_that_dies_is_an_error_never_a_pass(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["difftest", "--contract", "freebsd", "--cmd", command, "--examples", "3", "--seed", "1"]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "the process" in err and ("exit status" in err or "signal" in err)


def test_a_child_that_reports_no_field_compares_nothing_and_cannot_pass(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status = main(
        [
            "difftest",
            "--contract",
            "freebsd",
            "--cmd",
            f"{sys.executable} {CHILD}",
            "--examples",
            "5",
            "--seed",
            "1",
            "--replay-dir",
            str(tmp_path),
        ]
    )
    assert status == 2
    assert "compared nothing" in capsys.readouterr().err
