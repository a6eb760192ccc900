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

import dataclasses
import importlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from xbdspec.errors import XbdspecError

from .backend import PROFILES, BackendConfig
from .campaign import MakeFrontend, Shape, linux_dimensions, load_tutorial
from .harness import Frontend, FrontendEnv, World

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
    #: draws each program's back end (the configurations the campaign sweeps)
    vary: Callable[[random.Random], BackendConfig] | None = None
    #: what the campaign varies from program to program, in words (for its report)
    dimensions: tuple[str, ...] = ()
    #: the documented finding a violation is (by its exact signature), or None: new
    known: Callable[[str, BackendConfig], str | None] | None = None


def sweep(
    base: BackendConfig, **choices: tuple[Any, ...]
) -> Callable[[random.Random], BackendConfig]:
    """A ``vary`` drawing each named setting of the back end from its choices, the
    others as in ``base``."""

    def draw(rng: random.Random) -> BackendConfig:
        return dataclasses.replace(base, **{k: rng.choice(v) for k, v in sorted(choices.items())})

    return draw


def describe(**choices: tuple[Any, ...]) -> tuple[str, ...]:
    """The dimensions of a sweep, in words."""
    return tuple(f"{k}: {', '.join(str(v) for v in vs)}" for k, vs in sorted(choices.items()))


#: The back ends every campaign runs against (:data:`~xbdspec.world.backend.PROFILES`):
#: Linux's blkback and QEMU's qdisk, drawn per program.
PROFILE_SWEEP: dict[str, tuple[Any, ...]] = {"profile": PROFILES}

#: What Linux's driver is swept over besides its module parameters: the back end
#: (blkback or qdisk), its cache features (flush, barrier: FUA writes go as
#: WRITE_BARRIER with data when it offers barrier alone), discard, persistent grants and
#: queue count (qdisk offers no barrier and no persistent grants, whatever is drawn).
LINUX_SWEEP: dict[str, tuple[Any, ...]] = {
    **PROFILE_SWEEP,
    "feature_flush": (True, False),
    "feature_barrier": (False, True),
    "feature_discard": (False, True),
    "feature_persistent": (False, True),
    "max_queues": (1, 4),
}

#: What a FreeBSD-shaped or small front end is swept over: the back end (blkback or
#: qdisk), ring pages, indirect segments, the cache features (flush, barrier, both,
#: neither; qdisk offers flush only and no indirect segments, whatever is drawn).
SMALL_SWEEP: dict[str, tuple[Any, ...]] = {
    **PROFILE_SWEEP,
    "max_ring_page_order": (0, 2),
    "max_indirect_segments": (0, 32),
    "feature_flush": (True, False),
    "feature_barrier": (False, True),
}


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

    shape = Shape(events=events, resume=0.2, hostile=0.1)
    base = BackendConfig(sectors=shape.sectors)
    dims = {**PROFILE_SWEEP, "feature_flush": (True, False), "max_ring_page_order": (0, 2)}
    return Target(
        "tutorial" + (f" (broken: {broken})" if broken else ""),
        make,
        base,
        shape,
        options=dict(options),
        vary=sweep(base, **dims),
        dimensions=describe(**dims),
    )


def _linux(options: Mapping[str, str], events: int) -> Target:
    from xbdspec.linux import source

    if not source.available():
        raise UnknownFrontend(
            "the Linux front end needs Linux's source: run `make linux-frontend` "
            "(apt's linux-source-6.1)"
        )
    shape = Shape(
        events=events,
        max_sectors=64,
        sectors=2048,
        resume=0.2,
        hostile=0.1,
        ops=("read", "write", "flush", "fua", "discard"),
    )
    config = BackendConfig(
        sectors=shape.sectors, max_ring_page_order=4, max_queues=4, max_indirect_segments=32
    )
    vary = sweep(config, **LINUX_SWEEP)
    if options:  # fixed module parameters (a replay's)
        from xbdspec.linux.adapter import make

        try:
            params = {k: int(v) for k, v in options.items()}
        except ValueError:
            raise UnknownFrontend("the Linux module parameters are whole numbers") from None
        return Target(
            "linux xen-blkfront.c",
            make(params),
            config,
            shape,
            options=dict(options),
            vary=vary,
            dimensions=describe(**LINUX_SWEEP),
        )
    from xbdspec.findings.linux import claim
    from xbdspec.linux.adapter import make as make_linux

    def known(rule: str, cfg: BackendConfig) -> str | None:
        finding = claim(rule, cfg)
        return None if finding is None else f"linux: {finding.name}"

    return Target(
        "linux xen-blkfront.c",
        linux_dimensions(),
        config,
        shape,
        per_program=True,
        remake=lambda params: make_linux({k: int(v) for k, v in params.items()}),
        vary=vary,
        known=known,
        dimensions=(
            "module parameters: max_queues 1, 4; max_ring_page_order 0, 4; "
            "max_indirect_segments 0, 32; feature_persistent 0, 1",
            *describe(**LINUX_SWEEP),
        ),
    )


def _value(text: str) -> Any:
    """An option's value from its text (a replay's header holds text): a whole number,
    true or false, none, or the text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null", ""):
        return None
    if lowered.lstrip("-").isdigit():
        return int(lowered)
    return text


REFERENCE_OPTIONS = ("fixes", "grant_frames", "buffer_offsets", "invariants", "open", "geom")


def _freebsd_known(rule: str, config: BackendConfig) -> str | None:
    """A documented FreeBSD finding a protocol-level violation is (by its exact
    signature), for the seed's behaviour (the reference and the compiled seed)."""
    from xbdspec.findings.catalogue import claim_protocol

    finding = claim_protocol(rule, config)
    return None if finding is None else finding.name


def _reference(fixes: str | None) -> Loader:
    def load(options: Mapping[str, str], events: int) -> Target:
        from .frontends.reference import make

        # bios up to 160 sectors: past one direct request (the seed's d_maxsize is 40 KiB
        # without indirect segments: GEOM splits), into indirect ones; a FUA write is an
        # ordered write (BIO_ORDERED)
        shape = Shape(
            events=events, max_sectors=160, sectors=2048, ops=("read", "write", "flush", "fua")
        )
        base = BackendConfig(sectors=shape.sectors)
        name = "reference" if fixes is None else "reference-fixed"
        chosen: dict[str, Any] = {"fixes": fixes}
        chosen.update({k: _value(v) for k, v in options.items()})
        if fixes is not None:
            chosen["fixes"] = fixes
        try:
            maker = make(chosen)
        except ValueError as exc:
            raise UnknownFrontend(str(exc)) from None
        return Target(
            f"{name} (FreeBSD blkfront port)",
            maker,
            base,
            shape,
            options={"fixes": fixes} if fixes else {},
            vary=sweep(base, **SMALL_SWEEP),
            dimensions=describe(**SMALL_SWEEP),
            # with every fix on, nothing counts as known
            known=_freebsd_known if fixes is None else None,
        )

    return load


def _seed(options: Mapping[str, str], events: int) -> Target:
    from xbdspec.cdriver import BuildError

    from .frontends.seed import dimensions, make

    try:
        picker = dimensions()
    except (BuildError, FileNotFoundError) as exc:
        raise UnknownFrontend(f"the compiled seed cannot be built here: {exc}") from None
    shape = Shape(
        events=events, max_sectors=160, sectors=2048, ops=("read", "write", "flush", "fua")
    )
    base = BackendConfig(sectors=shape.sectors)
    return Target(
        "compiled seed (FreeBSD blkfront.c under the kernel shim)",
        picker,
        base,
        shape,
        per_program=True,
        remake=lambda params: make(dict(params)),
        vary=sweep(base, **SMALL_SWEEP),
        known=_freebsd_known,
        dimensions=(
            "driver options: open_disk, buffer_offsets, enable_indirect on and off",
            *describe(**SMALL_SWEEP),
        ),
    )


def _c_frontend(options: Mapping[str, str], events: int) -> Target:
    from xbdspec.conformance.builtin import build_c_frontend

    from .stdio import stdio_target

    broken = options.get("broken", "")
    if broken and broken != "notify":
        raise UnknownFrontend("the C front end's broken build is broken=notify (BREAK_NOTIFY)")
    exe = build_c_frontend(*(("BREAK_NOTIFY",) if broken else ()))
    target = stdio_target(str(exe), {}, events)
    # one request carries 11 pages: 88 sectors
    target.shape = dataclasses.replace(target.shape, max_sectors=88, sectors=2048, hostile=0.1)
    target.config = BackendConfig(sectors=2048)
    sizes = {k: v for k, v in SMALL_SWEEP.items() if k != "max_indirect_segments"}
    target.vary = sweep(target.config, **sizes)
    target.dimensions = describe(**sizes)
    target.name = "C queue core front end (cimpl/frontend.c)" + (
        " (broken: never notifies)" if broken else ""
    )
    target.options = dict(options)
    return target


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
            "reference",
            "the reference port of FreeBSD's blkfront (the seed's behaviour), its platform "
            "backed by the world",
            _reference(None),
            REFERENCE_OPTIONS,
        ),
        Entry(
            "reference-fixed",
            "the reference with every documented finding's fix on",
            _reference("all"),
            REFERENCE_OPTIONS,
        ),
        Entry(
            "seed",
            "the FreeBSD seed driver, compiled unmodified under the kernel shim, its "
            "shim's services backed by the world",
            _seed,
        ),
        Entry(
            "c-frontend",
            "cimpl/frontend.c: the C queue core as a complete front end over the stdio "
            "protocol version 2, built with the system cc (--option broken=notify: its "
            "broken build)",
            _c_frontend,
            ("broken",),
        ),
        Entry(
            "linux",
            "Linux 6.1's drivers/block/xen-blkfront.c, unmodified, under the kernel shim "
            "(make linux-frontend); its module parameters drawn per program",
            _linux,
            ("max_queues", "max_ring_page_order", "max_indirect_segments", "feature_persistent"),
        ),
        Entry(
            "linux-blkfront",
            "the same as linux: Linux 6.1's xen-blkfront.c under the kernel shim",
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

    def make_checked(env: FrontendEnv) -> Frontend:
        """``make(env)``, refused unless it makes a front end (``--impl os:getcwd`` is
        a usage error, not a crash of the harness nor a verdict)."""
        try:
            frontend = make(env)
        except XbdspecError:
            raise
        except Exception as exc:  # the attribute is not a front end's maker
            raise UnknownFrontend(
                f"{name}(env) raised {type(exc).__name__}: {str(exc)[:200]}: a front end is "
                "a class (or function) called with the world's FrontendEnv"
            ) from None
        check_calls(frontend, name)
        return cast(Frontend, frontend)

    config = BackendConfig(sectors=shape.sectors)
    World(make_checked, config)  # one front end made now: a maker that makes none is refused
    return Target(name, make_checked, config, shape, options=options)


def check_calls(frontend: object, name: str) -> None:
    """Refuse a front end without the protocol's required entry points."""
    missing = [c for c in REQUIRED_CALLS if not callable(getattr(frontend, c, None))]
    if missing:
        raise UnknownFrontend(
            f"{name} has no {', '.join(missing)}: a front end needs {', '.join(REQUIRED_CALLS)} "
            "(the protocol's minimum: follow the handshake, be notified, take I/O)"
        )
