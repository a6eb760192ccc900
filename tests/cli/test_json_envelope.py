"""Every command's ``--json`` is one document in the same envelope (issue 20, item 2):
``tool``, ``version``, ``command``, ``ok``, ``counts`` first and in that order, two-space
indentation, valid against the schema shipped in the package."""

from __future__ import annotations

import importlib.resources
import json
import tomllib
from pathlib import Path

import fastjsonschema
import pytest

from xbdspec import output
from xbdspec.cli import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "protocol" / "scenarios" / "linux_startup.jsonl"
FINDING_REPLAY = ROOT / "xbdspec" / "findings" / "replays" / "failed-mapping-leaks.jsonl"
ONE_OF_EACH = [
    "--commands",
    "1",
    "--bios",
    "1",
    "--ring-slots",
    "1",
    "--grants",
    "1",
    "--grants-per-request",
    "1",
    "--suspends",
    "1",
    "--unplugs",
    "1",
]


def arguments(tmp: Path) -> dict[str, list[str]]:
    """Small, fast arguments for every subcommand, each with ``--json``."""
    return {
        "simulate": ["simulate", "--ios", "20", "--seed", "2", "--json"],
        "diagram": ["diagram", "--out", str(tmp / "diagrams"), "--json"],
        "prove": ["prove", "--only", "ring_full_prevents_overrun", "--jobs", "1", "--json"],
        "explore": ["explore", *ONE_OF_EACH, "--json", "--quiet"],
        "difftest": [
            "difftest",
            "--impl",
            "tutorial",
            "--examples",
            "3",
            "--seed",
            "1",
            "--out",
            str(tmp / "divergences"),
            "--json",
        ],
        "check": ["check", str(SCENARIO), "--json"],
        "findings": ["findings", "close-clears-open-flag", "--json"],
        "verify": ["verify", "--only", "diagrams up to date", "--json", "--quiet"],
        "itf": ["itf", str(FINDING_REPLAY), "--json"],
    }


def test_every_subcommand_has_arguments_here() -> None:
    assert set(arguments(Path("/x"))) == set(SUBCOMMANDS)


def test_the_schema_names_every_subcommand_and_ships_in_the_package() -> None:
    assert output.schema()["properties"]["command"]["enum"] == list(SUBCOMMANDS)
    shipped = importlib.resources.files("xbdspec").joinpath("schema/envelope.schema.json")
    assert shipped.is_file()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "schema/*.json" in project["tool"]["setuptools"]["package-data"]["xbdspec"]


@pytest.mark.parametrize("command", list(SUBCOMMANDS))
def test_every_command_prints_one_valid_envelope(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(arguments(tmp_path)[command])
    text = capsys.readouterr().out
    doc = json.loads(text)  # exactly one document, nothing else on standard output
    output.check(doc)
    assert list(doc)[:5] == list(output.ENVELOPE_KEYS)
    assert text.startswith('{\n  "tool": "xbdspec",\n  "version": ')
    assert doc["command"] == command
    assert doc["ok"] is (status == 0), (status, doc.get("error"))
    assert doc["counts"] and all(type(v) is int and v >= 0 for v in doc["counts"].values())


def test_the_old_fields_stay_where_the_stages_read_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(arguments(tmp_path)["explore"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["states"] == doc["states"] > 0
    assert doc["complete"] is True and doc["violations"] == []


def test_a_command_that_fails_before_its_report_still_prints_an_envelope(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(tmp_path / "no-such-trace.jsonl"), "--json"]) == 2
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    output.check(doc)
    assert doc["ok"] is False and doc["command"] == "check"
    assert doc["error"]["kind"] == "input" and doc["error"]["exit_status"] == 2
    assert "no-such-trace.jsonl" in doc["error"]["message"]
    assert "error:" in captured.err


def test_the_schema_refuses_a_document_without_the_envelope() -> None:
    with pytest.raises(fastjsonschema.JsonSchemaException):
        output.check({"states": 3})
    doc = output.envelope("explore", ok=True, counts={"states": 3}, fields={})
    with pytest.raises(fastjsonschema.JsonSchemaException):
        output.check({**doc, "counts": {"states": -1}})


def test_a_field_named_like_an_envelope_key_is_a_bug_of_the_command() -> None:
    with pytest.raises(ValueError, match="collides"):
        output.envelope("explore", ok=True, counts={}, fields={"version": 1})
    same = output.envelope("findings", ok=False, counts={}, fields={"ok": False, "x": 1})
    assert same["ok"] is False and same["x"] == 1
