"""``xbdspec explore``: the JSON summary, the exit status, the errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xbdspec.cli import main

TINY_ARGS = [
    "explore",
    "--commands",
    "2",
    "--bios",
    "1",
    "--suspends",
    "0",
    "--unplugs",
    "0",
    "--quiet",
]


def test_json_summary_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main([*TINY_ARGS, "--json", "--replay-dir", str(tmp_path)])
    out = json.loads(capsys.readouterr().out)
    for key in (
        "states",
        "transitions",
        "depth",
        "seconds",
        "states_per_second",
        "bytes_per_state",
        "violations",
        "sizes",
    ):
        assert key in out
    assert out["sizes"]["commands"] == 2 and out["complete"]
    assert status == (1 if out["violations"] else 0)
    for v in out["violations"]:
        assert {"property", "kind", "trace_length", "replay"} <= set(v)
        assert Path(v["replay"]).exists()


def test_symmetry_off_explores_more_states(capsys: pytest.CaptureFixture[str]) -> None:
    main([*TINY_ARGS, "--json"])
    reduced = json.loads(capsys.readouterr().out)["states"]
    main([*TINY_ARGS, "--json", "--no-symmetry"])
    assert json.loads(capsys.readouterr().out)["states"] > reduced


def test_max_states_cuts_the_search(capsys: pytest.CaptureFixture[str]) -> None:
    main([*TINY_ARGS, "--json", "--max-states", "50"])
    out = json.loads(capsys.readouterr().out)
    assert out["states"] == 50 and not out["complete"] and not out["progress_checked"]


def test_human_summary(capsys: pytest.CaptureFixture[str]) -> None:
    main(TINY_ARGS)
    assert "states" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["explore", "--target", "reference", "--max-states", "0"],
        ["explore", "--commands", "0"],
        ["explore", "--bios", "-1"],
    ],
)
def test_usage_errors_are_messages(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # refused by the options' types (xbdspec.argtypes): argparse's exit, status 2
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "xbdspec explore: error:" in err and "is out of bounds: give" in err


def test_public_names_are_exported() -> None:
    import xbdspec.explore as explore

    assert all(hasattr(explore, name) for name in explore.__all__)
    # the SPIN engine and the swarm are part of the public surface
    for name in ("check_spin", "SpinOptions", "SpinReport", "Shard", "merge_shards"):
        assert name in explore.__all__
    from xbdspec.explore import spin

    assert explore.check_spin is spin.check_spin and explore.SpinOptions is spin.SpinOptions


def test_several_runs_combine_into_one_summary() -> None:
    from explore_helpers import TINY, model

    from xbdspec.explore.checker import check_model
    from xbdspec.explore.cli import combined_json
    from xbdspec.explore.defaults import DEFAULT_RUNS, runs_from

    assert len(DEFAULT_RUNS) == 2 and runs_from({"grants": None}) == DEFAULT_RUNS
    assert runs_from({"grants": 3})[0].grants == 3
    reports = [check_model(spec=model(TINY)), check_model(spec=model(TINY), symmetry=False)]
    out = combined_json(reports)
    assert out["states"] == sum(r.exploration.states for r in reports)
    assert len(out["runs"]) == 2 and len(out["sizes"]) == 2
