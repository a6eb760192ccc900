"""Campaigns sweep configurations, report the time to the first new divergence, stop there
with ``--first``, and count coverage against declared targets (``--strict`` fails on an
unreached one)."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import pytest
from xbdspec.model.state import Sizes
from xbdspec.reference.platform import Fixes

from xbdspec.cli import main
from xbdspec.conformance.campaign import Campaign
from xbdspec.conformance.cli import sweep_for
from xbdspec.conformance.harness import LockStep, ModelSide
from xbdspec.conformance.program import FULL, random_walk
from xbdspec.conformance.reference_adapter import (
    REFERENCE_SIZES,
    REFUSED,
    ReferenceImplementation,
    abstract_state,
)
from xbdspec.conformance.replay import dumps, loads_configuration
from xbdspec.conformance.sweep import (
    REFERENCE_SWEEP,
    SIZE_SWEEP,
    SIZE_VARIANTS,
    BackendSetup,
    Configuration,
    dimensions_varied,
    pinned,
)
from xbdspec.conformance.targets import DEAD_TRANSITIONS, default_targets, only_through


@pytest.mark.parametrize("configuration", REFERENCE_SWEEP, ids=lambda c: c.name)
def test_the_fixed_reference_agrees_with_the_model_in_every_configuration(
    configuration: Configuration,
) -> None:
    impl = ReferenceImplementation(Fixes.all(), name="reference-fixed")
    impl.configure(configuration.setup)
    lock = LockStep(impl, configuration.sizes)
    steps = 0
    for i in range(6):
        result = random_walk(impl, lock, random.Random(f"sweep:{i}"), 50, FULL)
        assert result.divergence is None, result.divergence.report()
        steps += len(result.steps)
    assert steps > 60


def test_the_sweep_varies_the_dimensions_the_issue_names() -> None:
    varied = dimensions_varied(REFERENCE_SWEEP)
    for key in (
        "backend.indirect_segments",
        "backend.ring_page_order",
        "backend.sector_size",
        "backend.bio_sectors",
        "sizes.grants",
        "sizes.ring_slots",
        "sizes.suspends",
        "sizes.ring_base",
    ):
        assert key in varied, key
    sectors = {s for c in REFERENCE_SWEEP for s in c.setup.bio_sectors}
    assert 1 in sectors and max(sectors) > 11 * 8  # one sector .. past the direct limit
    # --sizes keeps the back-end setups where one segment a request holds
    kept = pinned(REFERENCE_SWEEP, REFERENCE_SIZES["grant-shortage"], "grant-shortage")
    assert kept and all(c.setup.single_segment for c in kept)


def test_a_multi_segment_bio_counts_as_the_models_one_reference() -> None:
    configuration = next(c for c in REFERENCE_SWEEP if c.name == "indirect-segments")
    impl = ReferenceImplementation(Fixes.all(), name="reference-fixed")
    impl.configure(configuration.setup)
    lock = LockStep(impl, configuration.sizes)
    assert lock.start() is None
    for event, params in (
        ("backend_publish", {"barrier": True, "flush": True}),
        ("backend_watch", {}),
        ("frontend_watch", {}),
        ("backend_watch", {}),
        ("open", {}),
    ):
        assert lock.step(event, params) is None
    from xbdspec.model.vocabulary import BioKind

    # bio 1 is twelve pages: an indirect request with twelve segments
    assert lock.step("strategy", {"bio": 0, "kind": BioKind.WRITE}) is None
    assert lock.step("strategy", {"bio": 1, "kind": BioKind.WRITE}) is None
    cm = impl._command(1)
    assert cm.cm_nseg == 12
    fields = abstract_state(impl)
    assert fields["cmd_grants"] == [1, 1]
    assert fields["grants_free"] == configuration.sizes.grants - 2


def test_replay_headers_carry_the_configuration() -> None:
    configuration = next(c for c in REFERENCE_SWEEP if c.name == "ring-pages")
    text = dumps(configuration.sizes, [], configuration)
    again, steps = loads_configuration(text)
    assert again.setup == configuration.setup and again.name == "ring-pages" and steps == []
    plain, _ = loads_configuration(dumps(configuration.sizes, []))
    assert plain.setup == BackendSetup()


def test_targets_leave_out_what_only_refused_events_reach() -> None:
    shadow = only_through(REFUSED)
    assert "backend_follows_closing" in shadow and "frontend_shutdown" in shadow
    spec = ModelSide(REFERENCE_SWEEP[0].sizes).spec
    targets = default_targets(spec, REFUSED)
    assert "startio_send_ready_fails" in targets.transitions
    assert not targets.transitions & (shadow | DEAD_TRANSITIONS.keys())


def _difftest(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["difftest", "--contract", "freebsd", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_the_report_says_what_was_swept_reached_and_when_it_diverged(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, report = _difftest(
        capsys, "--impl", "reference-fixed", "--examples", "11", "--seed", "2",
        "--replay-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0 and report["first_new_divergence"] is None
    assert len(report["sweep"]["configurations"]) == len(REFERENCE_SWEEP)
    assert all(c["examples"] == 1 for c in report["sweep"]["configurations"])
    assert "backend.indirect_segments" in report["sweep"]["dimensions_varied"]
    assert report["sweep"]["varied_within_programs"]
    targets = report["targets"]["transitions"]
    assert targets["declared"] == targets["reached"] + len(targets["unreached"])
    assert report["reference_branches"]["measured"] is False
    # --strict: a declared target not reached fails the run, even with no divergence
    code, report = _difftest(
        capsys, "--impl", "reference-fixed", "--examples", "2", "--seed", "2", "--strict",
        "--replay-dir", str(tmp_path),
    )  # fmt: skip
    assert report["targets"]["ok"] is False and code == 1


def test_first_stops_at_the_first_new_divergence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xbdspec.reference.driver as driver

    monkeypatch.setattr(driver, "cm_thaw", lambda sc, cm: None)
    monkeypatch.setattr("xbdspec.reference.lifecycle.cm_thaw", lambda sc, cm: None, raising=False)
    code, report = _difftest(
        capsys, "--impl", "reference-fixed", "--examples", "300", "--seed", "1", "--first",
        "--replay-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 1 and report["stopped_at_first"] is True
    first = report["first_new_divergence"]
    assert first["events"] > 0 and first["seconds"] > 0
    assert report["examples"] == first["example"] + 1 < 300
    assert [d["finding"] for d in report["divergences"]] == [None]
    replay = Path(report["divergences"][0]["replay"])
    assert replay.exists() and json.loads(replay.read_text().splitlines()[0])["sizes"]


def test_no_sweep_runs_one_configuration() -> None:
    campaign = Campaign(
        lambda: ReferenceImplementation(Fixes.all(), name="reference-fixed"),
        REFERENCE_SWEEP[0].sizes,
        FULL,
        3,
        30,
        None,
    )
    campaign.run(examples=3)
    assert [c.name for c in campaign.sweep] == ["default"]
    assert campaign.summary()["sweep"]["dimensions_varied"] == {}


class _SizesOnly:
    """An adapter without a back-end setup (the part of the contract ``sweep_for`` reads)."""

    def __init__(self, supported: list[Sizes] | None = None) -> None:
        self.supported = supported
        if supported is not None:
            self.sweep_sizes = lambda: list(supported)

    def close(self) -> None:
        pass


def _sweep(
    own: Sizes,
    supported: list[Sizes] | None = None,
    sizes: str | None = None,
    no_sweep: bool = False,
) -> list[tuple[str, Sizes]]:
    args = argparse.Namespace(no_sweep=no_sweep, sizes=sizes)
    factory: Any = lambda: _SizesOnly(supported)  # noqa: E731
    return [(c.name, c.sizes) for c in sweep_for(factory, own, args)]


def test_an_implementation_without_a_setup_is_swept_over_sizes() -> None:
    own = Sizes()
    swept = [(c.name, c.sizes) for c in SIZE_SWEEP]
    assert _sweep(own) == [("default", own), *swept]
    # the reference sweep's configurations at the default back end, and a life cycle
    assert all(c.setup == BackendSetup() for c in SIZE_SWEEP)
    assert {c.name for c in SIZE_SWEEP} >= {"request-path", "suspend-cycles"}
    cycles = next(c for c in SIZE_SWEEP if c.name == "suspend-cycles")
    assert cycles.sizes.suspends == 2 and dict(cycles.weights)["suspend_drained"] > 1
    # the size variants are the reference's --sizes
    assert {c.name: c.sizes for c in SIZE_VARIANTS} == REFERENCE_SIZES
    assert {c.sizes.grants for c in SIZE_VARIANTS} == {11, 12}
    assert {c.sizes.ring_slots for c in SIZE_VARIANTS} == {2, 4}
    # own sizes that are a variant's come first, and are not run twice
    full = REFERENCE_SIZES["ring-full"]
    assert _sweep(full) == [("ring-full", full), *(s for s in swept if s[0] != "ring-full")]
    # an adapter says what it supports: an empty list, its own sizes only
    assert _sweep(own, []) == [("default", own)]
    small = Sizes(commands=1)
    assert _sweep(own, [small]) == [("default", own), ("sizes-1", small)]
    # --sizes and --no-sweep: one configuration
    shortage = REFERENCE_SIZES["grant-shortage"]
    assert _sweep(shortage, sizes="grant-shortage") == [("grant-shortage", shortage)]
    assert _sweep(own, no_sweep=True) == [("default", own)]


def test_the_c_core_default_campaign_reaches_both_shortages(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, c_core: Path
) -> None:
    code, report = _difftest(
        capsys, "--cmd", str(c_core), "--examples", "60", "--seed", "1",
        "--replay-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0 and report["counts"]["new_divergences"] == 0
    names = [c["name"] for c in report["sweep"]["configurations"]]
    assert names == ["default", *(c.name for c in SIZE_SWEEP)]
    assert all(c["examples"] == 10 for c in report["sweep"]["configurations"])
    unreached = set(report["targets"]["transitions"]["unreached"])
    assert not unreached & {"startio_command_shortage", "startio_grant_shortage", "grant_callback"}
