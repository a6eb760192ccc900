"""The front ends the protocol-level harness can run, by name.

``xbdspec difftest --impl NAME`` (the protocol contract) looks the name up here; each
entry says what the front end is, and gives the campaign its front end (in-process, or
a child over the stdio protocol version 2), the back end it is run against and the
shape of its programs.  ``package.module:attribute`` names any other in-process front
end (a class or function taking a :class:`~xbdspec.world.harness.FrontendEnv`);
``--cmd`` any program speaking the stdio protocol.

The harness never asks a front end for its internal state: every entry here is tested
through the same world, by what it writes to xenstore and the ring.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xbdspec.errors import XbdspecError

from .backend import BackendConfig
from .campaign import MakeFrontend, Shape, linux_dimensions, load_tutorial

#: The entry points the protocol needs of any front end: it follows the handshake
#: (``otherend_changed``), takes notifications (``interrupt``) and takes I/O (``submit``).
REQUIRED_CALLS = ("otherend_changed", "interrupt", "submit")


class UnknownFrontend(XbdspecError):
    """No front end of that name, or it cannot run here."""


@dataclass
class Target:
    """A front end ready for a campaign.

    Attributes:
        name: what reports call it.
        maker: makes the front end of a world (``per_program``: first called with the
            program's random generator, to draw the front end's own parameters).
        config: the back end it runs against.
        shape: the programs it is given.
        options: the options it was made with (written into replay files).
        close: releases what it holds (a child process, a built library).
    """

    name: str
    maker: MakeFrontend | Callable[[random.Random], MakeFrontend]
    config: BackendConfig
    shape: Shape
    per_program: bool = False
    options: dict[str, str] = field(default_factory=dict)
    close: Callable[[], None] = lambda: None
    #: with ``per_program``: the maker for the parameters a program drew (a replay's)
    remake: Callable[[Mapping[str, Any]], MakeFrontend] | None = None


Loader = Callable[[Mapping[str, str], int], Target]


@dataclass(frozen=True)
class Entry:
    """A front end the registry knows: ``load(options, events)`` makes its target."""

    name: str
    describe: str
    load: Loader
    options: tuple[str, ...] = ()


def _tutorial(options: Mapping[str, str], events: int) -> Target:
    module = load_tutorial()
    broken = options.get("broken", "")
    if broken and broken not in module.BROKEN:
        raise UnknownFrontend(
            f"the tutorial has no broken variant {broken!r}; variants: {', '.join(module.BROKEN)}"
        )

    def make(env: Any) -> Any:
        return module.LinuxStyleFrontend(env, broken=broken)

    shape = Shape(events=events, resume=0.2)
    return Target(
        "tutorial" + (f" (broken: {broken})" if broken else ""),
        make,
        BackendConfig(sectors=shape.sectors),
        shape,
        options=dict(options),
    )


def _linux(options: Mapping[str, str], events: int) -> Target:
    from xbdspec.linux import source

    if not source.available():
        raise UnknownFrontend(
            "the Linux front end needs Linux's source: run `make linux-frontend` "
            "(apt's linux-source-6.1)"
        )
    shape = Shape(events=events, max_sectors=64, sectors=2048, resume=0.2)
    config = BackendConfig(
        sectors=shape.sectors, max_ring_page_order=4, max_queues=4, max_indirect_segments=32
    )
    if options:  # fixed module parameters (a replay's)
        from xbdspec.linux.adapter import make

        try:
            params = {k: int(v) for k, v in options.items()}
        except ValueError:
            raise UnknownFrontend("the Linux module parameters are whole numbers") from None
        return Target("linux xen-blkfront.c", make(params), config, shape, options=dict(options))
    from xbdspec.linux.adapter import make as make_linux

    return Target(
        "linux xen-blkfront.c",
        linux_dimensions(),
        config,
        shape,
        per_program=True,
        remake=lambda params: make_linux({k: int(v) for k, v in params.items()}),
    )


ENTRIES: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            "tutorial",
            "the tutorial front end, examples/linux_style_frontend.py (--option broken=NAME: "
            "one of its broken variants)",
            _tutorial,
            ("broken",),
        ),
        Entry(
            "linux",
            "Linux 6.1's drivers/block/xen-blkfront.c, unmodified, under the kernel shim "
            "(make linux-frontend); its module parameters drawn per program",
            _linux,
            ("max_queues", "max_ring_page_order", "max_indirect_segments", "feature_persistent"),
        ),
    )
}


def register(entry: Entry) -> None:
    """Add a front end to the registry."""
    ENTRIES[entry.name] = entry


def load(name: str, options: Mapping[str, str] | None = None, events: int = 24) -> Target:
    """The target of a registry name or of ``package.module:attribute``."""
    options = dict(options or {})
    entry = ENTRIES.get(name)
    if entry is not None:
        unknown = sorted(set(options) - set(entry.options))
        if unknown:
            known = ", ".join(entry.options) or "none"
            raise UnknownFrontend(f"{name} takes no option {unknown[0]!r} (its options: {known})")
        return entry.load(options, events)
    if ":" not in name:
        raise UnknownFrontend(
            f"no front end {name!r}: give one of {', '.join(ENTRIES)} or package.module:attribute"
        )
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownFrontend(f"cannot import {module_name!r}: {exc}") from None
    make = getattr(module, attribute, None)
    if not callable(make):
        raise UnknownFrontend(f"{module_name} has no callable {attribute!r}")
    missing = [c for c in REQUIRED_CALLS if not callable(getattr(make, c, None))]
    if isinstance(make, type) and missing:
        raise UnknownFrontend(
            f"{name} has no {', '.join(missing)}: a front end needs {', '.join(REQUIRED_CALLS)}"
        )
    shape = Shape(events=events, resume=0.2 if callable(getattr(make, "resume", None)) else 0.0)
    return Target(name, make, BackendConfig(sectors=shape.sectors), shape, options=options)


def check_calls(frontend: object, name: str) -> None:
    """Refuse a front end without the protocol's required entry points."""
    missing = [c for c in REQUIRED_CALLS if not callable(getattr(frontend, c, None))]
    if missing:
        raise UnknownFrontend(
            f"{name} has no {', '.join(missing)}: a front end needs {', '.join(REQUIRED_CALLS)} "
            "(the protocol's minimum: follow the handshake, be notified, take I/O)"
        )
