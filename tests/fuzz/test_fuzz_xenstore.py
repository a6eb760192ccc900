"""Fuzzing xenstore values: the store itself (any request with any path and value), and
the values a hostile back end publishes for a front end to read -- the feature flags, the
disk's size and sector size, the ring's maximum order, the number of queues -- written
over blkback's at the moment the front end reads them.

The store answers or refuses with a xenstore error.  Each front end (the tutorial, the
reference port, Linux's driver when its source is installed, the compiled seed in a child
process) either follows the handshake and the I/O or ends in a named verdict: a violation
the harness reports, a driver fault (``CDriverFault``/``DriverFault``) it contains --
never a Python exception of the harness's own, never a dead process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import hostile
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xbdspec.errors import XbdspecError
from xbdspec.world.backend import BackendConfig
from xbdspec.world.campaign import START, load_tutorial
from xbdspec.world.harness import BACK, FRONT, Frontend, FrontendEnv, World
from xbdspec.world.xenstore import Xenstore, XenstoreError

# ---------------------------------------------------------------------------- the store
TEXT = st.one_of(
    st.text(max_size=16),
    st.sampled_from(["", "/", "//", "a//b", "\x00", "x" * 5000, f"{FRONT}/state", BACK]),
)


def _ops() -> st.SearchStrategy[tuple[Any, ...]]:
    tids = st.one_of(st.integers(-2, 5), st.sampled_from([2**31, 2**64]))
    return st.one_of(
        st.tuples(st.just("read"), TEXT),
        st.tuples(st.just("write"), TEXT, TEXT, tids),
        st.tuples(st.just("rm"), TEXT, tids),
        st.tuples(st.just("start")),
        st.tuples(st.just("end"), tids, st.booleans()),
        st.tuples(st.just("watch"), TEXT, TEXT),
    )


@hostile.examples(200)
@given(ops=st.lists(_ops(), max_size=20))
def test_the_store_answers_any_request_or_refuses_it(ops: list[tuple[Any, ...]]) -> None:
    store = Xenstore()
    for op, *args in ops:
        try:
            if op == "read":
                store.read(args[0])
            elif op == "write":
                store.write("frontend", args[0], args[1], args[2])
            elif op == "rm":
                store.rm("frontend", args[0], args[1])
            elif op == "start":
                store.transaction_start()
            elif op == "end":
                store.transaction_end("frontend", args[0], commit=args[1])
            else:
                store.watch(args[0], args[1])
        except XenstoreError as exc:
            assert exc.code and exc.code.isupper(), exc


# ---------------------------------------------------------------------------- front ends
#: The back end's nodes a front end reads, and when blkback writes them.
KEYS = {
    "probe": ["max-ring-page-order", "multi-queue-max-queues", "feature-max-indirect-segments"],
    "connect": [
        "sectors",
        "sector-size",
        "info",
        "feature-flush-cache",
        "feature-barrier",
        "feature-persistent",
        "physical-sector-size",
    ],
}
#: Values no honest back end writes: out of range, negative, not decimal, not ASCII,
#: past 64 bits, past Python's 4300-digit limit, empty, with a NUL.
HOSTILE_VALUES = [
    "-1",
    "0",
    "4294967295",
    "4294967296",
    "18446744073709551616",
    "9" * 5000,
    "abc",
    "",
    " 7",
    "7 ",
    "0x10",
    "1e3",
    "\u00b2",
    "\u0663",
    "1\x002",
    "x" * 4096,
]
IO = [
    ("submit", {"id": 1, "op": "write", "sector": 0, "sectors": 8, "data": "5a" * 4096}),
    ("submit", {"id": 2, "op": "read", "sector": 0, "sectors": 8}),
    ("settle", {}),
    ("detach", {}),
    ("settle", {}),
]


def _hostile_world(
    make: Callable[[FrontendEnv], Frontend], when: str, key: str, value: str
) -> World:
    """A world whose back end writes ``key = value`` over its own right after its
    ``when`` step (``probe``: limits and features; ``connect``: the disk's properties)."""
    world = World(make, BackendConfig(sectors=2048))
    backend = world.backend
    original = getattr(backend, "probe" if when == "probe" else "_connect")

    def hostile_step() -> None:
        original()
        world.store.write("backend", f"{backend.back}/{key}", value)

    setattr(backend, "probe" if when == "probe" else "_connect", hostile_step)
    return world


def _run(world: World) -> str:
    """Run the start-up and some I/O: ``ok`` or the named verdict's class."""
    try:
        for name, params in [*START, *IO]:
            world.run(name, params)
        world.finish()
    except XbdspecError as exc:
        return type(exc).__name__
    return "ok"


def _makers() -> dict[str, Callable[[FrontendEnv], Frontend]]:
    from xbdspec.world.frontends import reference

    makers: dict[str, Callable[[FrontendEnv], Frontend]] = {
        "tutorial": load_tutorial().LinuxStyleFrontend,
        "reference": reference.make({}),
    }
    from xbdspec.linux import source

    if source.available():
        from xbdspec.linux.adapter import make

        makers["linux"] = make({})
    return makers


MAKERS = _makers()
KEY_CHOICES = [(when, key) for when, keys in KEYS.items() for key in keys]


@hostile.examples(60)
@given(
    name=st.sampled_from(sorted(MAKERS)),
    where=st.sampled_from(KEY_CHOICES),
    value=st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(max_size=8)),
)
def test_a_front_end_reads_any_hostile_back_end_value_to_a_named_end(
    name: str, where: tuple[str, str], value: str
) -> None:
    _run(_hostile_world(MAKERS[name], where[0], where[1], value))


SEED_CHILD = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from test_fuzz_xenstore import HOSTILE_VALUES, KEY_CHOICES, _hostile_world, _run
    from xbdspec.world.frontends.seed import make
    maker = make({})
    outcomes = {}
    for when, key in KEY_CHOICES:
        for value in HOSTILE_VALUES:
            outcomes[f"{key}={value[:12]!r}"] = _run(_hostile_world(maker, when, key, value))
    print(json.dumps(outcomes))
    """
)


def test_the_compiled_seed_reads_every_hostile_back_end_value_to_a_named_end(
    seed_source: str,
) -> None:
    """In a child process: a fault the shim did not contain would kill it (exit 139),
    which this test would see instead of the runner dying."""
    proc = subprocess.run(
        [sys.executable, "-c", SEED_CHILD, str(hostile.REPO / "tests" / "fuzz")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**__import__("os").environ, "XBD_BLKFRONT": seed_source},
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    outcomes: dict[str, str] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(outcomes) == len(KEY_CHOICES) * len(HOSTILE_VALUES)
    assert set(outcomes.values()) <= {"ok", "Violation", "ImplementationFailure", "XbdspecError"}


@pytest.fixture(scope="module")
def seed_source() -> str:
    """The seed's blkfront.c (skipped without it, as the compiled-seed tests are)."""
    from xbdspec.cdriver import default_source

    source = default_source()
    if source is None or not source.is_file():
        pytest.skip("no blkfront.c: put the seed at ../shared/seed/blkfront.c or set XBD_BLKFRONT")
    return str(source)
