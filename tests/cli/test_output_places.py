"""Output where the user says, else one documented place; tables with names, not
numbers; a bounded stage reports itself as bounded, a skipped one as skipped with the
reason (issue 20, item 2)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
from xbdspec.model import diagram

from xbdspec import output, verify
from xbdspec.cli import main
from xbdspec.conformance.harness import named_value
from xbdspec.resources import CHECKOUT


def test_difftest_writes_its_replays_under_the_build_directory_not_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("XBDSPEC_BUILD_DIR", str(tmp_path / "build"))
    argv = ["difftest", "--impl", "tutorial", "--option", "broken=reuses-id"]
    assert main([*argv, "--examples", "5", "--seed", "1", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    replays = [Path(v["replay_file"]) for v in doc["violations"]]
    assert replays and all(p.parent == tmp_path / "build" / "divergences" for p in replays)
    assert all(p.exists() for p in replays)
    assert list(here.iterdir()) == []


def test_difftest_out_names_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["difftest", "--impl", "tutorial", "--option", "broken=reuses-id", "--seed", "1"]
    assert main([*argv, "--examples", "5", "--out", str(tmp_path / "mine")]) == 1
    assert "replay" in capsys.readouterr().out
    assert list((tmp_path / "mine").glob("*.jsonl"))


def test_diagram_check_in_a_folder_without_diagrams_says_missing_not_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diagram", "--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "missing" in err and "stale" not in err
    assert main(["diagram", "--out", str(tmp_path)]) == 0
    (tmp_path / "backend.md").write_text("changed\n")
    capsys.readouterr()
    assert main(["diagram", "--check", "--out", str(tmp_path), "--json"]) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["stale"] == [str(tmp_path / "backend.md")] and doc["missing"] == []
    assert "stale" in captured.err and "missing" not in captured.err


def test_diagram_writes_into_the_checkout_wherever_it_runs_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert CHECKOUT is not None
    assert diagram.default_out() == CHECKOUT / "docs" / "diagrams"
    monkeypatch.setattr("xbdspec.resources.CHECKOUT", None)
    monkeypatch.setenv("XBDSPEC_BUILD_DIR", str(tmp_path / "b"))
    assert diagram.default_out() == tmp_path / "b" / "diagrams"


def test_divergence_tables_name_enum_values() -> None:
    assert named_value("cmd_place", [0, 2]) == "[FREE, BUSY]"
    assert named_value("bio_stage", 3).isalpha()
    assert named_value("grants_free", 11) == "11"  # a number stays a number
    assert named_value("cmd_place", [99]) == "[99]"  # outside the domain: as it is


def test_human_output_has_no_python_reprs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--ios", "20"]) == 0
    text = capsys.readouterr().out
    assert "{" not in text and "'" not in text and "features: barrier=" in text
    small = ["--commands", "1", "--bios", "1", "--ring-slots", "1", "--grants", "2"]
    assert main(["explore", *small, "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "Sizes(" not in text and "explored the model for commands=1, bios=1" in text


def test_plain_renders_records_enums_and_mappings() -> None:
    import enum

    class Colour(enum.IntEnum):
        RED = 1

    assert output.plain(Colour.RED) == "RED"
    assert output.plain({"a": None, "b": True}) == "a=none, b=true"
    assert output.plain([Colour.RED, 2]) == "[RED, 2]"


def test_a_stage_cut_by_its_bound_is_bounded_not_ok(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    document = '{"complete": false, "max_states": 1500, "states": 1500}'
    stages = [
        verify.Stage("cut", [sys.executable, "-c", f"print({document!r})"], lambda out: "1500"),
    ]
    monkeypatch.setattr(verify, "stages", lambda: stages)
    assert verify.run(argparse.Namespace(skip=[], json=True)) == 0
    doc = json.loads(capsys.readouterr().out)
    output.check(doc)
    (stage,) = doc["stages"]
    assert stage["status"] == "bounded" and "1,500 states" in stage["reason"]
    assert doc["counts"]["bounded"] == 1 and doc["ok"] is True
    assert verify.run(argparse.Namespace(skip=[])) == 0
    text = capsys.readouterr().out
    assert "bounded" in text and "(1 within a bound, said above)" in text


def test_the_compiled_seed_stage_says_it_is_skipped_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify, "ROOT", tmp_path / "checkout")
    monkeypatch.setattr(verify, "CHECKOUT", tmp_path / "checkout")
    monkeypatch.delenv("XBD_BLKFRONT", raising=False)
    by_name = {s.name: s for s in verify.stages()}
    seed = by_name["differential campaign (compiled seed)"]
    assert not seed.argv and seed.skipped.startswith("skipped: no seed driver at ")
    assert "XBD_BLKFRONT" in seed.skipped
    assert by_name["mypy"].skipped.startswith("skipped: ")  # no checkout there


def test_a_skipped_stage_is_in_the_json_summary_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stages = [verify.Stage("absent", [], lambda out: "", "skipped: no seed driver at /x")]
    monkeypatch.setattr(verify, "stages", lambda: stages)
    assert verify.run(argparse.Namespace(skip=[], json=True)) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["stages"] == [
        {
            "name": "absent",
            "status": "skipped",
            "reason": "skipped: no seed driver at /x",
            "figures": "",
            "seconds": 0.0,
            "exit_status": None,
        }
    ]
