"""The reference's layers: the platform (the kernel and Xen services a driver runs on,
with the bus that calls the driver's methods) sits below the driver and imports nothing
of it; the driver registers its methods with the bus (the seed's ``xbd_methods[]`` and
``DRIVER_MODULE``), and the world's front end (``xbdspec.world.frontends.reference``)
calls the driver from above."""

from __future__ import annotations

import ast
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "reference"
#: the driver: the seed's blkfront.c, split as the port is
DRIVER = {"driver", "lifecycle", "queues"}
#: what the driver runs on: kernel services, Xen's, the bus, the simulated back end
PLATFORM = {
    "platform",
    "xenstore",
    "xenbus",
    "grants",
    "memory",
    "evtchn",
    "busdma",
    "backend",
    "faults",
    "constants",
    "cint",
    "locks",
    "geom",
    "newbus",
    "softc",
    "ring",
}


def _runtime_imports(path: Path) -> set[str]:
    """The sibling modules ``path`` imports when it runs (at module level or in a
    function), leaving out ``if TYPE_CHECKING:`` blocks (types only)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if (
                isinstance(child, ast.If)
                and isinstance(child.test, ast.Name)
                and child.test.id == "TYPE_CHECKING"
            ):
                continue
            if isinstance(child, ast.ImportFrom) and child.level == 1:
                if child.module:
                    found.add(child.module.split(".")[0])
                else:
                    found.update(alias.name for alias in child.names)
            visit(child)

    visit(tree)
    return found


def test_every_reference_module_is_in_a_layer() -> None:
    modules = {p.stem for p in REFERENCE.glob("*.py")} - {"__init__", "simulate"}
    assert modules == DRIVER | PLATFORM, (modules - DRIVER - PLATFORM, DRIVER | PLATFORM - modules)


def test_the_platform_imports_nothing_of_the_driver() -> None:
    back = {name: sorted(_runtime_imports(REFERENCE / f"{name}.py") & DRIVER) for name in PLATFORM}
    assert {k: v for k, v in back.items() if v} == {}


def test_the_driver_registers_its_methods_with_the_bus() -> None:
    from xbdspec.reference import lifecycle
    from xbdspec.reference.platform import DRIVERS

    methods = DRIVERS["xbd"]
    assert methods.probe is lifecycle.probe
    assert methods.attach is lifecycle.attach
    assert methods.otherend_changed is lifecycle.backend_changed
    assert methods.resume is lifecycle.resume
