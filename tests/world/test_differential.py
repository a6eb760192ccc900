"""The same programs on several front ends (``xbdspec.world.differential``): the disk's
determined sectors and the bios' outcomes agree; a front end that writes past its bio
is caught by the comparison although its own world saw each bio's data in place."""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Any

import pytest

from xbdspec.cdriver import default_source
from xbdspec.world.campaign import load_tutorial
from xbdspec.world.differential import main, run

TUTORIAL = load_tutorial()


class SpillsOver(TUTORIAL.LinuxStyleFrontend):  # type: ignore[misc, name-defined]
    """Writes one sector more than each write bio carries (zeros past its data)."""

    def submit(self, bio: Any) -> None:
        if bio.op == "write" and bio.sectors < 8:
            bio = dataclasses.replace(bio, sectors=bio.sectors + 1, data=bio.data + bytes(512))
        super().submit(bio)


_SEED = default_source()


@pytest.mark.skipif(
    _SEED is None or not _SEED.is_file() or not (os.environ.get("CC") or shutil.which("cc")),
    reason="no blkfront.c or no C compiler: put the seed at ../shared/seed/blkfront.c "
    f"(beside the repo) or set XBD_BLKFRONT=/path/to/blkfront.c (now: {_SEED})",
)
def test_the_tutorial_the_reference_and_the_seed_agree() -> None:
    report = run(["tutorial", "reference", "seed"], programs=30, seed=3)
    assert report.programs == 30 and not report.violations
    assert report.sectors_compared > 0 and report.bios_compared > 0
    assert report.divergences == []


def test_the_tutorial_and_the_reference_agree() -> None:
    """The same comparison without the compiled seed (it runs everywhere)."""
    report = run(["tutorial", "reference"], programs=30, seed=3)
    assert report.programs == 30 and not report.violations
    assert report.sectors_compared > 0 and report.bios_compared > 0
    assert report.divergences == []


def test_a_front_end_that_writes_past_its_bio_diverges(capsys: Any) -> None:
    status = main(
        [
            "--impl",
            "tutorial",
            "--impl",
            f"{__name__}:SpillsOver",
            "--programs",
            "40",
            "--seed",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert status == 1, out
    assert "differs between tutorial and" in out


def test_one_front_end_is_not_a_differential(capsys: Any) -> None:
    assert main(["--impl", "tutorial"]) == 2
