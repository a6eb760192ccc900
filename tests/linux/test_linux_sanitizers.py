"""Linux 6.1's xen-blkfront.c and the shim built with AddressSanitizer and
UndefinedBehaviorSanitizer (:mod:`xbdspec.linux.sanitize`).

The runtimes must be loaded before Python's own libraries, so each run is a child
process (``python -m xbdspec.linux.sanitize ...``) with ``LD_PRELOAD``, stopping at its
first report (``halt_on_error``).  A seeded campaign of the registry's ``linux`` target,
module parameters and back-end features drawn per program, must finish without one; and
the sanitized build must really report: a deliberate fault inside an entry point (a load
from address 16, a read past a heap block, an oversized shift) stops the child with the
report, which the shim's crash containment does not swallow (it is off in this build).
"""

from __future__ import annotations

import os

import pytest

from xbdspec.linux import source

if not source.available():
    if os.environ.get("CI"):
        pytest.fail("CI is set and linux-source-6.1 cannot be installed", pytrace=False)
    pytest.skip("linux-source-6.1 is not installed", allow_module_level=True)

from xbdspec.findings import linux as findings
from xbdspec.linux import sanitize
from xbdspec.linux.adapter import build

if sanitize.sanitizer_preload() is None:
    if os.environ.get("CI"):
        pytest.fail("CI is set and the C compiler has no libasan/libubsan", pytrace=False)
    pytest.skip(
        "the C compiler has no libasan/libubsan (install gcc's sanitizer runtimes)",
        allow_module_level=True,
    )

#: The campaign: its seed and size (about 0.2 s a program sanitized, on one core).
SEED, PROGRAMS = 20261202, 100
MODULE_PARAMETERS = {
    "max_queues": ("1", "4"),
    "max_ring_page_order": ("0", "4"),
    "max_indirect_segments": ("0", "32"),
    "feature_persistent": ("0", "1"),
}
BACKEND_FEATURES = ("feature_flush", "feature_barrier", "feature_discard", "feature_persistent")


def test_the_sanitized_driver_compiles_unmodified_without_warnings() -> None:
    built = build(sanitize=True)
    assert built.sanitize and built.library.name == "libxen-blkfront-san.so"
    assert built.driver.name == "xen-blkfront.c"
    assert not built.warnings, built.warnings
    assert build().library != built.library  # the plain build is another


def test_a_seeded_campaign_is_clean_under_asan_and_ubsan() -> None:
    run = sanitize.run(["campaign", "--seed", str(SEED), "--programs", str(PROGRAMS)])
    assert run.reports == [], run.stderr[-4000:]
    assert run.returncode == 0, run.stderr[-4000:]
    result = run.result
    assert result is not None and result["sanitized"] is True
    assert result["programs"] == PROGRAMS and result["ios"] > 500
    # (protocol violations are the campaign tests' business: here, memory and UB)
    # every module parameter and back-end feature took each of its values
    for name, values in MODULE_PARAMETERS.items():
        for value in values:
            assert result["params"].get(f"{name}={value}", 0) > 0, (name, value)
    for feature in BACKEND_FEATURES:
        for value in ("True", "False"):
            assert result["features"].get(f"{feature}={value}", 0) > 0, (feature, value)
    for step in ("frontend_write_request", "backend_respond", "toolstack_resume"):
        assert result["coverage"].get(step, 0) > 0, step


@pytest.mark.parametrize(
    ("kind", "report"),
    [
        ("segv", "ERROR: AddressSanitizer: SEGV on unknown address 0x000000000010"),
        ("heap", "shim.c"),  # UBSan's object-size check or ASan's heap-buffer-overflow
        ("shift", "runtime error: shift exponent 40 is too large for 32-bit type 'int'"),
    ],
)
def test_a_fault_inside_an_entry_point_is_the_sanitizers_report(kind: str, report: str) -> None:
    run = sanitize.run(["selftest", kind])
    assert run.returncode != 0 and run.result is None, run.stderr[-2000:]
    assert len(run.reports) == 1 and report in run.reports[0], run.reports
    assert "in shim_selftest_fault" in run.stderr  # symbolized: the driver's copy is kept


def test_a_linux_findings_replay_shows_it_with_no_memory_error_under_the_sanitizers() -> None:
    """``resume-after-error-hits-bug-on`` under ASan and UBSan: the driver's BUG() is the
    finding (an assertion of the kernel's, unwound by the shim), and no sanitizer report
    comes with it: the path to it touches no freed or out-of-bounds memory."""
    name = "resume-after-error-hits-bug-on"
    assert name in findings.BY_NAME
    run = sanitize.run(["finding", name])
    assert run.reports == [] and run.returncode == 0, run.stderr[-4000:]
    assert run.result is not None
    assert any("xen-blkfront.c:1081" in rule for rule in run.result["rules"])
