"""A swarm split into shards and merged (``--shard I/N --seed S``, ``--merge``): the
shards' diversification, the merge's union of violations (deduplicated by replaying
them), the states per shard and a coverage statement that does not overclaim; two local
shards on a seeded broken model (both must find its violation) and on the clean model
(both pass).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
from explore_helpers import TINY, model, replace_transition
from xbdspec.model import actions as a
from xbdspec.model.expr import all_of, negate
from xbdspec.model.requests import has_resources, next_bio, rejected
from xbdspec.model.vocabulary import Dma, DriverState

from xbdspec.cli import main
from xbdspec.errors import InputError, XbdspecError
from xbdspec.explore.spin import SpinOptions, check_spin, spin_available
from xbdspec.explore.swarm import (
    Shard,
    ShardFigures,
    coverage_of,
    load_shard,
    merge_shards,
    merge_summary,
    shard_result,
)

needs_spin = pytest.mark.skipif(
    not spin_available() and not os.environ.get("CI"),
    reason="spin or cc is not installed (apt-get install -y spin); under CI this test fails",
)

#: tiny sizes: pan.c unoptimised, safety only, a bit array far larger than the states
SHARD_BASE = SpinOptions(optimize="-O0", timeout=600, progress=False, hash_bits=24)

TINY_ARGS = ["--commands", "2", "--bios", "1", "--ring-slots", "2", "--grants", "3"]
TINY_ARGS += ["--suspends", "0", "--unplugs", "0"]


# --------------------------------------------------------------------------- no SPIN


def test_each_shard_derives_its_own_search_from_the_seed_and_its_index() -> None:
    shards = [Shard(i, 8, seed=3) for i in range(1, 9)]
    assert len({s.order_seed for s in shards}) == 8
    assert len({s.hash_function for s in shards}) == 8
    assert [s.reverse_order for s in shards[:2]] == [False, True]
    # the same shard of the same swarm is the same search; another seed is another
    assert Shard(2, 8, seed=3).options(SpinOptions()) == shards[1].options(SpinOptions())
    assert Shard(2, 8, seed=4).order_seed != shards[1].order_seed
    options = shards[0].options(SpinOptions())
    assert options.bitstate and options.order_seed == shards[0].order_seed
    compact = shards[0].options(SpinOptions(hash_compact=True))
    assert compact.hash_compact and not compact.bitstate
    assert Shard.parse("3/4", 9) == Shard(3, 4, 9)
    for bad in ("3", "0/4", "5/4", "a/b"):
        with pytest.raises(XbdspecError):
            Shard.parse(bad, 1)


def _figures(index: int, states: int, **kw: Any) -> ShardFigures:
    base: dict[str, Any] = {
        "source": f"s{index}.json",
        "seconds": 1.0,
        "finished": True,
        "bitstate": True,
        "hash_compact": False,
        "coverage_estimate": 0.99,
        "collision_probability": None,
        "stopped_by": [],
    }
    base.update(kw)
    return ShardFigures(index=index, states=states, **base)


def test_the_coverage_statement_does_not_overclaim() -> None:
    both = coverage_of([_figures(1, 1000), _figures(2, 800, coverage_estimate=0.9)])
    assert not both.exhaustive
    assert (both.states_at_least, both.states_at_most) == (1000, 1800)
    assert both.estimate_best_shard == 0.99
    assert both.estimate_if_independent == pytest.approx(1 - 0.01 * 0.1)
    assert "not exhaustive" in both.statement[0] and "assumption" in both.statement[2]
    # a shard stopped by its time-out gives no estimate and is named
    cut = coverage_of(
        [
            _figures(1, 1000),
            _figures(2, 5000, finished=False, coverage_estimate=None, stopped_by=["the time-out"]),
        ]
    )
    assert cut.estimate_best_shard == 0.99 and cut.finished == [1]
    assert any("shard 2 was stopped by the time-out" in line for line in cut.statement)
    none = coverage_of([_figures(1, 10, finished=False, stopped_by=["the time-out"])])
    assert none.estimate_best_shard is None and "no coverage estimate" in none.statement[2]
    # an exact (here hash-compact) shard that finished covered everything
    exact = coverage_of(
        [
            _figures(1, 500),
            _figures(
                2,
                700,
                bitstate=False,
                hash_compact=True,
                coverage_estimate=None,
                collision_probability=3e-24,
            ),
        ]
    )
    assert exact.exhaustive and exact.collision_probability == 3e-24
    assert exact.estimate_best_shard is None and "exhaustive" in exact.statement[0]


def test_the_merge_refuses_what_is_not_one_swarm(tmp_path: Path) -> None:
    run = {
        "sizes": {"commands": 2},
        "model_digest": "d",
        "states": 1,
        "violations": [],
        "spin": {"safety": {}},
    }

    def result(index: int, count: int = 2, seed: int = 1, digest: str = "d") -> dict[str, Any]:
        return {
            "xbdspec": "spin-shard",
            "version": 1,
            "shard": {"index": index, "count": count, "seed": seed},
            "runs": [{**run, "model_digest": digest}],
        }

    with pytest.raises(InputError, match="one swarm at a time"):
        merge_shards([("a", result(1)), ("b", result(2, seed=2))])
    with pytest.raises(InputError, match="given already"):
        merge_shards([("a", result(1)), ("b", result(1))])
    with pytest.raises(InputError, match="model_digest"):
        merge_shards([("a", result(1)), ("b", result(2, digest="e"))])
    (tmp_path / "x.json").write_text('{"states": 3}')
    with pytest.raises(InputError, match="not a shard result"):
        load_shard(tmp_path / "x.json")
    assert main(["explore", "--merge", str(tmp_path / "x.json")]) == 2


# --------------------------------------------------------------------------- SPIN


def _ignores_freeze(s: Any, p: Any) -> Any:
    """startio_send_bio's guard with the conjunct ``frozen == 0`` removed."""
    return all_of(
        p.dma != Dma.FAILED,
        s.drv_state == DriverState.CONNECTED,
        negate(a.ring_full(s, p.k)),
        next_bio(s, p.bio),
        negate(rejected(s, p.bio)),
        has_resources(s, p.k, p.cmd),
    )


@needs_spin
def test_two_shards_of_a_broken_model_both_find_its_violation(tmp_path: Path) -> None:
    """Seeded broken model (``startio_send_bio`` dispatches while the queue is frozen,
    two bios: 71,807 states): each of two shards, with its own hash function and search
    order, finds the invariant SingleStepOrdering and the step property
    NoDispatchWhileFrozen broken; the merge reports each once, found by both, confirmed
    by replaying it on the broken model, and not confirmed (but kept) on the unbroken
    one."""
    sizes = dataclasses.replace(TINY, bios=2)
    broken = replace_transition(model(sizes), "startio_send_bio", guard=_ignores_freeze)
    expected = {("invariant", "SingleStepOrdering"), ("step", "NoDispatchWhileFrozen")}
    paths = []
    for index in (1, 2):
        shard = Shard(index, 2, seed=11)
        report = check_spin(spec=broken, options=shard.options(SHARD_BASE))
        found = {(v.counterexample.kind, v.counterexample.property) for v in report.violations}
        assert found == expected
        assert all(v.reproduced for v in report.violations)
        assert report.safety.bitstate and f"-RS{shard.order_seed}" in report.safety.commands[-1]
        path = tmp_path / f"shard{index}.json"
        path.write_text(json.dumps(shard_result([report], shard)))
        paths.append(path)
    results = [(str(p), load_shard(p)) for p in paths]
    merged = merge_shards(results, spec=broken)
    (run,) = merged.runs
    assert {(v.kind, v.property) for v in run.violations} == expected
    assert run.unconfirmed == []
    for violation in run.violations:
        assert violation.found_by == [1, 2]
        assert violation.trace_length == min(
            len(v["replay_lines"]) - 1
            for _, r in results
            for v in r["runs"][0]["violations"]
            if v["property"] == violation.property
        )
    assert [s.states for s in run.shards] == [r["runs"][0]["states"] for _, r in results]
    assert merged.missing == [] and merged.violated
    assert "found by shards 1, 2" in merge_summary(merged)
    # on the unbroken model the replays do not reproduce: listed apart, not dropped
    elsewhere = merge_shards(results, spec=model(sizes))
    assert elsewhere.runs[0].violations == []
    assert len(elsewhere.runs[0].unconfirmed) == 4 and elsewhere.violated


@needs_spin
def test_two_shards_of_the_clean_model_pass_and_merge_by_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``xbdspec explore --engine spin --shard I/2 --seed 5 --out FILE`` twice, then
    ``--merge``: no violation, each shard's states, a coverage statement that calls
    bitstate shards not exhaustive; one shard alone is merged with the other named
    missing."""
    paths = []
    for index in (1, 2):
        path = tmp_path / f"s{index}.json"
        argv = ["explore", "--engine", "spin", *TINY_ARGS, "--spin-no-progress", "--quiet"]
        argv += ["--shard", f"{index}/2", "--seed", "5", "--out", str(path)]
        argv += ["--spin-hash-bits", "22"]
        assert main(argv) == 0
        capsys.readouterr()
        data = json.loads(path.read_text())
        assert data["shard"]["index"] == index and data["runs"][0]["violations"] == []
        paths.append(path)
    assert main(["explore", "--merge", *map(str, paths), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["violations"] == [] and out["shards_present"] == [1, 2] and not out["complete"]
    (run,) = out["runs"]
    assert [s["states"] for s in run["shards"]] == [1395, 1395]
    coverage = run["coverage"]
    assert not coverage["exhaustive"] and coverage["states_at_least"] == 1395
    assert coverage["estimate_best_shard"] > 0.999 and coverage["finished"] == [1, 2]
    assert main(["explore", "--merge", str(paths[0])]) == 0
    text = capsys.readouterr().out
    assert "MISSING: shards 2 of 2" in text and "no violation in any shard" in text


@needs_spin
def test_a_hash_compact_run_states_its_collision_probability() -> None:
    spec = model(TINY)
    report = check_spin(
        spec=spec, options=dataclasses.replace(SHARD_BASE, hash_compact=True, hash_bits=16)
    )
    assert report.complete and report.states == 1395
    assert "-DHC4" in " ".join(report.safety.commands[1])
    assert report.safety.collision_probability is not None
    assert 0 < report.safety.collision_probability < 1e-20
    assert report.as_json()["hash_compact"]
