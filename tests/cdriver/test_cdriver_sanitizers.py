"""The seed built with AddressSanitizer and UndefinedBehaviorSanitizer.

The sanitizer runtimes must be loaded before Python's own libraries, so each scenario runs
in a child process (``python -m xbdspec.cdriver scenario NAME --sanitize``) with
``LD_PRELOAD``.  The fault-free workout must be clean; the two arithmetic findings of the
seed (seed-notes #1 and #2) must be reported by UBSan at their lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from xbdspec.cdriver import BuildResult, build, sanitizer_preload


@pytest.fixture(scope="module")
def sanitized(seed_build: BuildResult) -> tuple[BuildResult, str]:
    preload = sanitizer_preload()
    if preload is None:
        pytest.skip("the C compiler has no libasan/libubsan (install gcc's sanitizer runtimes)")
    return build(seed_build.source, sanitize=True), preload


def run(name: str, sanitized: tuple[BuildResult, str]) -> tuple[dict[str, object], list[str]]:
    built, preload = sanitized
    env = dict(
        os.environ,
        LD_PRELOAD=preload,
        ASAN_OPTIONS="detect_leaks=0",
        UBSAN_OPTIONS="print_stacktrace=0",
    )
    env["XBD_BLKFRONT"] = str(built.source)
    proc = subprocess.run(
        [sys.executable, "-m", "xbdspec.cdriver", "scenario", name, "--sanitize"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    reports = [
        line for line in proc.stderr.splitlines() if "runtime error" in line or "Sanitizer" in line
    ]
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), reports


def test_workout_is_clean_under_asan_and_ubsan(sanitized: tuple[BuildResult, str]) -> None:
    result, reports = run("workout", sanitized)
    assert reports == []
    assert result == {"scenario": "workout", "read_ok": True, "suspend": 0, "completed": 49}


def test_finding_1_shift_overflow_is_reported_by_ubsan(sanitized: tuple[BuildResult, str]) -> None:
    result, reports = run("ring-order-31", sanitized)
    assert len(reports) == 1 and "left shift of 1 by 31 places" in reports[0]
    assert "blkfront.c:" in reports[0] and result["ring_pages"] == 32
    result, reports = run("ring-order-32", sanitized)
    assert len(reports) == 1 and "shift exponent 32 is too large" in reports[0]


def test_finding_2_division_by_zero_is_reported_by_ubsan(
    sanitized: tuple[BuildResult, str],
) -> None:
    result, reports = run("huge-sector-size", sanitized)
    assert len(reports) == 1 and "division by zero" in reports[0]
    assert result["fault"] == {
        "kind": "UndefinedBehaviour",
        "message": "SIGFPE: integer division by zero",
        "where": "xbd_backend_changed(4)",
    }


def test_random_campaign_is_clean_under_asan_and_ubsan(sanitized: tuple[BuildResult, str]) -> None:
    """Random conformance programs (suspend's sleeper on its own stack included)."""
    result, reports = run("campaign", sanitized)
    assert reports == []
    assert result["examples"] == 20 and isinstance(result["steps"], int) and result["steps"] > 200
    assert result["twin_differences"] == []
