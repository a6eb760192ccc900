"""The run configuration (``xbdspec.toml``, ``[tool.xbdspec]``, ``--config``): a file's
values become the command's option defaults, the command line overrides them, and a key
no option takes is an input error that names the file, the table and the key."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from xbdspec import cli, config


def parse(argv: list[str]) -> argparse.Namespace:
    """The arguments as :func:`xbdspec.cli.main` parses them (configuration applied)."""
    rest, explicit = config.split_option(argv)
    wanted = rest[0] if rest and rest[0] in cli.SUBCOMMANDS else None
    parser = cli.build_parser(only=wanted or "")
    config.apply(parser, wanted, explicit)
    return parser.parse_args(rest)


def test_xbdspec_toml_sets_the_defaults_of_the_command_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "xbdspec.toml").write_text(
        "[sizes]\ncommands = 3\nring-slots = 1\n"
        '[explore]\nengine = "spin"\nmax_states = 500\nno-symmetry = true\n'
        'invariants = ["FreezeAccounting", "NoLostIO"]\n'
        '[difftest]\nimpl = "tutorial"\nexamples = 7\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    args = parse(["explore"])
    assert (args.commands, args.ring_slots, args.bios) == (3, 1, None)
    assert (args.engine, args.max_states, args.no_symmetry) == ("spin", 500, True)
    assert list(args.invariants) == ["FreezeAccounting", "NoLostIO"]
    campaign = parse(["difftest"])
    assert (campaign.impl, campaign.examples) == ("tutorial", 7)


def test_the_command_line_overrides_the_file_lists_included(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "xbdspec.toml").write_text(
        '[prove]\nonly = ["protocol.*"]\njobs = 1\n', encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    assert (parse(["prove"]).only, parse(["prove"]).jobs) == (["protocol.*"], 1)
    given = parse(["prove", "--only", "a*", "--only", "b*", "--jobs", "2"])
    # the command line's --only values replace the file's list, not add to it
    assert (given.only, given.jobs) == (["a*", "b*"], 2)


def test_pyproject_tool_table_and_which_file_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "mine"\n[tool.xbdspec.simulate]\nios = 11\n', encoding="utf-8"
    )
    assert parse(["simulate"]).ios == 11
    (tmp_path / "xbdspec.toml").write_text("[simulate]\nios = 12\n", encoding="utf-8")
    assert parse(["simulate"]).ios == 12
    other = tmp_path / "elsewhere.toml"
    other.write_text("[simulate]\nios = 13\n", encoding="utf-8")
    # --config FILE wins over both, before or after the command's name
    assert parse(["--config", str(other), "simulate"]).ios == 13
    assert parse(["simulate", f"--config={other}"]).ios == 13
    # a pyproject.toml without the table is no configuration
    (tmp_path / "xbdspec.toml").unlink()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "mine"\n', encoding="utf-8")
    assert parse(["simulate"]).ios == 1000


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[simulat]\nios = 5\n", "[simulat]: no command is named 'simulat'"),
        ("[simulate]\nio = 5\n", "[simulate] io: xbdspec simulate has no option 'io'"),
        ('[simulate]\nios = "many"\n', "[simulate] ios: 'many' is not a value of --ios"),
        ('[explore]\nengine = "tlc"\n', "[explore] engine: 'tlc' is not one of python, spin"),
        ("[explore]\nquiet = 1\n", "[explore] quiet: --quiet is a flag: true or false"),
        ('[check]\ntrace = "a.log"\n', "[check] trace: trace is an argument"),
        ("[sizes]\ncomands = 2\n", "[sizes] comands: no size is named 'comands'"),
        ("simulate = 3\n", "[simulate]: must be a table of options"),
        ("[simulate\n", "not valid TOML"),
    ],
)
def test_a_key_no_option_takes_is_a_named_input_error(
    text: str,
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "xbdspec.toml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    command = text.split("]")[0].lstrip("[") if text.startswith("[") else "simulate"
    command = command if command in cli.SUBCOMMANDS else "simulate"
    argv = [command, "x.log"] if command == "check" else [command]
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == cli.EXIT_INPUT == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "xbdspec.toml") in err and said in err, err


def test_a_missing_config_file_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["simulate", "--config", str(tmp_path / "absent.toml")])
    assert stopped.value.code == 2
    assert "absent.toml: no such file" in capsys.readouterr().err


def test_a_configured_run_behaves_as_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "xbdspec.toml").write_text("[simulate]\nios = 4\nseed = 3\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["simulate"]) == 0
    out = capsys.readouterr().out
    assert "seed 3, 4 bios submitted" in out, out
