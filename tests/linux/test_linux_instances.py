"""Each world's Linux driver is its own copy of the library; a campaign runs one world
at a time, so older copies are removed (``blkfront_remove``) and unloaded, and memory
stays bounded however many programs run.  An unloaded instance says so when used."""

from __future__ import annotations

import os

import pytest

from xbdspec.linux import source

if not source.available():
    if os.environ.get("CI"):
        pytest.fail("CI is set and linux-source-6.1 cannot be installed", pytrace=False)
    pytest.skip("linux-source-6.1 is not installed", allow_module_level=True)

from xbdspec.errors import XbdspecError
from xbdspec.linux.adapter import LinuxBlkfront, make
from xbdspec.world.backend import BackendConfig
from xbdspec.world.harness import World, run_program

PROGRAM = [
    ("attach", {}),
    ("backend_probe", {}),
    ("settle", {}),
    ("submit", {"id": 1, "op": "write", "sector": 0, "sectors": 8, "data": "ab" * 4096}),
    ("settle", {}),
]


def test_only_the_newest_instances_stay_loaded_and_an_old_one_says_it_is_gone() -> None:
    first = World(make({}), BackendConfig(sectors=256))
    for name, params in PROGRAM:
        first.run(name, params)
    for _ in range(LinuxBlkfront.KEEP_LOADED + 3):
        world = run_program(make({}), PROGRAM, BackendConfig(sectors=256))
        assert world.completed == {1: 1}
    loaded = [f for f in LinuxBlkfront._live if not f.sanitized]
    assert len(loaded) <= LinuxBlkfront.KEEP_LOADED
    with pytest.raises(XbdspecError, match="was unloaded"):
        first.frontend.interrupt()


def test_unloading_a_driver_in_a_broken_state_is_contained() -> None:
    # a driver stopped by BUG() (resume-after-error-hits-bug-on) is removed and unloaded
    # when newer worlds come: a fault in its removal is its own, the process goes on
    from xbdspec.findings.linux import BY_NAME
    from xbdspec.world.harness import Violation

    finding = BY_NAME["resume-after-error-hits-bug-on"]
    with pytest.raises(Violation):
        run_program(make(dict(finding.params)), finding.program, finding.config)
    for _ in range(LinuxBlkfront.KEEP_LOADED + 2):
        world = run_program(make({}), PROGRAM, BackendConfig(sectors=256))
        assert world.completed == {1: 1}
