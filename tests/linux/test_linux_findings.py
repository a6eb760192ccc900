"""The Linux findings (``docs/findings/linux.md``): each replay shows its rule on the
compiled driver and runs clean with the trigger off; a fault inside the driver is the
driver's failure, reported, and the tool goes on."""

from __future__ import annotations

import os

import pytest

from xbdspec.linux import source

if not source.available():
    if os.environ.get("CI"):
        pytest.fail("CI is set and linux-source-6.1 cannot be installed", pytrace=False)
    pytest.skip("linux-source-6.1 is not installed", allow_module_level=True)

from xbdspec.findings import linux
from xbdspec.world.backend import BackendConfig
from xbdspec.world.harness import World


@pytest.mark.parametrize("finding", linux.FINDINGS, ids=lambda f: f.name)
def test_each_linux_finding_shows_on_the_driver_and_its_control_is_clean(
    finding: linux.LinuxFinding,
) -> None:
    outcome = linux.audit_finding(finding)
    assert outcome.ok, outcome.problems
    assert outcome.rule is not None and outcome.control_rule is None


def test_the_linux_page_names_every_finding_and_its_replay() -> None:
    page = linux.page()
    for finding in linux.FINDINGS:
        assert f"{{#{finding.name}}}" in page
        assert finding.lines in page


def test_a_null_dereference_in_the_driver_is_its_failure_not_the_tools() -> None:
    # connect-continues-after-setup-indirect-failure: past the protocol violation, the
    # next bio dereferences the freed ring; the shim's SIGSEGV handler unwinds it
    finding = linux.BY_NAME["connect-continues-after-setup-indirect-failure"]
    from xbdspec.linux.adapter import make

    world = World(make(dict(finding.params)), finding.config)
    rules: list[str] = []
    world._fail = rules.append  # type: ignore[method-assign]  # go on past violations
    for name, params in [
        *finding.program,
        ("submit", {"id": 1, "op": "read", "sector": 0, "sectors": 8}),
    ]:
        world.run(name, params)
    assert any("frontend_connected is a step from Initialised only" in r for r in rules)
    assert any("SIGSEGV at address" in r and "inside the driver" in r for r in rules), rules
    # the process goes on: a fresh copy of the driver runs a clean program
    from xbdspec.world.harness import run_program

    clean = run_program(
        make({}),
        [*finding.program, ("submit", {"id": 1, "op": "read", "sector": 0, "sectors": 8})],
        BackendConfig(sectors=2048),
    )
    assert clean.completed == {1: 1}
