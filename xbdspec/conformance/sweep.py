"""Configurations a campaign sweeps: model sizes and the back end's offer around them.

A campaign's programs are drawn event by event against the model, so the model's own
parameters (the features a back end publishes, the DMA answers, the order and status of
responses, when a suspend or an unplug comes) vary within every program.  What a program
cannot vary is fixed per :class:`Configuration`:

* the model's :class:`~xbdspec.model.state.Sizes` (commands, bios, ring slots, grants,
  suspends, opens, where the ring indices start);
* the back end's limits, which the model abstracts away (:class:`BackendSetup`): ring
  pages offered (``max-ring-page-order``), indirect segments
  (``feature-max-indirect-segments``, which sets the grants a command allocates), the
  sector size, and the size of each bio the disk layer sends, from one sector to past the
  eleven direct segments of a request.

Example ``i`` of a campaign runs under configuration ``i mod n`` of its sweep, so a sweep
shards by seed or by example range like one configuration does.  An implementation opts
into the back-end dimensions by offering ``configure(setup)`` (the reference does); one
without it is swept over sizes alone (:data:`SIZE_SWEEP`, or the sizes it says it
supports: ``sweep_sizes()``; an empty list, its own sizes only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xbdspec.errors import InputError
from xbdspec.model.state import Sizes

#: 512-byte units: what ``blkif.h`` counts sectors in.
SECTOR = 512
#: sectors in a page
PAGE_SECTORS = 8
#: the segments of a direct request (``BLKIF_MAX_SEGMENTS_PER_REQUEST``)
DIRECT_SEGMENTS = 11


#: The largest bio a setup may ask for, in 512-byte sectors (1 MiB: the seed's maxphys).
MAX_BIO_SECTORS = 2048
#: Bounds on a setup read from a file (a replay's header): what the back end can publish
#: (xenstore's unsigned values; orders up to 64 reach the seed's shift findings), one
#: page for the data's offset, and a bounded list of bio lengths.
SETUP_LIMITS = {
    "ring_page_order": 64,
    "max_ring_pages": 0xFFFF_FFFF,
    "indirect_segments": 0xFFFF_FFFF,
    "sector_size": 0xFFFF_FFFF,
    "bio_offset": 4095,
    "bio_sectors": 1024,
}


#: The FreeBSD front end's ring limit (``XBD_MAX_RING_PAGES``).
MAX_RING_PAGES = 32


def negotiated_ring_pages(order: int | None, legacy: int | None) -> int | None:
    """The ring pages a FreeBSD front end uses for a back end that offers
    ``max-ring-page-order`` ``order`` and the legacy ``max-ring-pages`` ``legacy``
    (``None``: not written): ``2**order`` pages, or ``legacy`` when written, at least one,
    at most :data:`MAX_RING_PAGES`, rounded down to a power of two (``xbd_initialize``;
    blkif.h asks for a power of two).  ``None`` for an order of 31 or more, which the
    seed shifts past its ``int`` (finding ``ring-page-order-shift``)."""
    if order is not None and order >= 31:
        return None
    pages = 1 << (order or 0)
    if legacy is not None:
        pages = legacy
    pages = min(max(pages, 1), MAX_RING_PAGES)
    return 1 << (pages.bit_length() - 1)


@dataclass(frozen=True)
class BackendSetup:
    """What the back end offers beyond the model's features, and the bios' sizes.

    Attributes:
        ring_page_order: ``max-ring-page-order`` written (``None``: not written, one page).
        max_ring_pages: the legacy ``max-ring-pages`` written (``None``: not written); it
            overrides the order, and a count that is not a power of two is rounded down.
        indirect_segments: ``feature-max-indirect-segments`` written (``None``: not).
        sector_size: the ``sector-size`` the back end publishes.
        bio_sectors: each bio's length in 512-byte sectors, by bio number (cycled).
        bio_offset: where each bio's data starts within its first page (bytes).
    """

    ring_page_order: int | None = None
    max_ring_pages: int | None = None
    indirect_segments: int | None = None
    sector_size: int = SECTOR
    bio_sectors: tuple[int, ...] = (PAGE_SECTORS,)
    bio_offset: int = 0

    def bio_bytes(self, bio: int) -> int:
        """The length of bio number ``bio``."""
        return self.bio_sectors[bio % len(self.bio_sectors)] * SECTOR

    @property
    def single_segment(self) -> bool:
        """Every bio's data lies in one page: each request has one segment, as the model
        abstracts it, whatever the grant pool (a multi-segment bio needs a pool that never
        runs short, or the shortage would count segments the model does not)."""
        return all(self.bio_offset + s * SECTOR <= 4096 for s in self.bio_sectors)

    @property
    def ring_pages(self) -> int:
        """The ring pages the seed negotiates (it takes what is offered, up to 32)."""
        return negotiated_ring_pages(self.ring_page_order, self.max_ring_pages) or 1

    @property
    def request_segments(self) -> int:
        """``xbd_max_request_segments`` as the seed negotiates it: the grant references a
        command allocates (the model's ``grants_per_request``)."""
        if self.indirect_segments is None:
            return DIRECT_SEGMENTS
        # XBD_MAX_INDIRECT_SEGMENTS (8 pages of 512) and XBD_SIZE_TO_SEGS(maxphys = 1 MiB)
        return max(DIRECT_SEGMENTS, min(self.indirect_segments, 8 * 512, 1024 * 1024 // 4096 + 1))

    @property
    def indirect_pages(self) -> int:
        """Indirection pages a command keeps granted (512 segments a page)."""
        if self.request_segments <= DIRECT_SEGMENTS:
            return 0
        return -(-self.request_segments // 512)

    def dimensions(self) -> dict[str, Any]:
        """Plain values, for reports and replay headers."""
        return {
            "ring_page_order": self.ring_page_order,
            "max_ring_pages": self.max_ring_pages,
            "indirect_segments": self.indirect_segments,
            "sector_size": self.sector_size,
            "bio_sectors": list(self.bio_sectors),
            "bio_offset": self.bio_offset,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "<setup>") -> BackendSetup:
        """The inverse of :meth:`dimensions` (an :class:`InputError` on bad values)."""
        known = {f.name for f in dataclasses.fields(cls)}
        if set(data) - known:
            raise InputError(where, f"the back-end setup takes {sorted(known)}")
        values = dict(data)
        if "bio_sectors" in values:
            sectors = values["bio_sectors"]
            if (
                not isinstance(sectors, list)
                or not 0 < len(sectors) <= SETUP_LIMITS["bio_sectors"]
                or not all(type(s) is int and 0 < s <= MAX_BIO_SECTORS for s in sectors)
            ):
                raise InputError(
                    where,
                    f"bio_sectors must be a list of 1 to {SETUP_LIMITS['bio_sectors']} whole "
                    f"numbers from 1 to {MAX_BIO_SECTORS} (a bio of at most 1 MiB)",
                )
            values["bio_sectors"] = tuple(sectors)
        for name in ("ring_page_order", "max_ring_pages", "indirect_segments"):
            limit = SETUP_LIMITS[name]
            if values.get(name) is not None and (
                type(values[name]) is not int or not 0 <= values[name] <= limit
            ):
                raise InputError(where, f"{name} must be a whole number from 0 to {limit}, or null")
        for name in ("sector_size", "bio_offset"):
            limit = SETUP_LIMITS[name]
            if name in values and (type(values[name]) is not int or not 0 <= values[name] <= limit):
                raise InputError(where, f"{name} must be a whole number from 0 to {limit}")
        return cls(**values)


DEFAULT_SETUP = BackendSetup()


@dataclass(frozen=True)
class Configuration:
    """One point of a sweep.

    Attributes:
        name: how reports name it.
        sizes: the model's sizes.
        setup: the back end's offer and the bios' sizes (``DEFAULT_SETUP``: one page a
            bio, a one-page ring, no indirect segments, 512-byte sectors).
        weights: event weights of its programs (see
            :attr:`~xbdspec.conformance.program.Profile.weights`): how often suspends,
            unplugs and closes come.
        dma_weights: DMA answer name -> weight, for the answers the profile draws at all
            (a profile that avoids failed mappings still avoids them).
        dma_chance: how often an event comes with DMA answers (``None``: the profile's).
    """

    name: str
    sizes: Sizes
    setup: BackendSetup = field(default=DEFAULT_SETUP)
    weights: tuple[tuple[str, float], ...] = ()
    dma_weights: tuple[tuple[str, float], ...] = ()
    dma_chance: float | None = None

    def dimensions(self) -> dict[str, Any]:
        """The configuration as plain values."""
        out: dict[str, Any] = {
            "name": self.name,
            "sizes": dataclasses.asdict(self.sizes),
            "setup": self.setup.dimensions(),
        }
        if self.weights:
            out["weights"] = dict(self.weights)
        if self.dma_weights:
            out["dma_weights"] = dict(self.dma_weights)
        return out


def _sizes(segments: int, **changes: int) -> Sizes:
    """Command-shortage sizes for commands of ``segments`` grants, with ``changes``."""
    base = {
        "commands": 2,
        "bios": 4,
        "ring_slots": 4,
        "grants": segments + 1,
        "grants_per_request": segments,
    }
    base.update(changes)
    return Sizes(**base)


#: Indirect segments offered: a command allocates 32 grants.  A request's largest bio
#: is ``(segments - 1)`` pages (``xbd_max_request_size``, GEOM's ``d_maxsize``), so that
#: an unaligned one still fits in the segments.
_INDIRECT = 32
_BIG_BIOS = (PAGE_SECTORS, 12 * PAGE_SECTORS, (_INDIRECT - 1) * PAGE_SECTORS, 1)

#: Event weights of the life-cycle configuration: suspend and unplug timing.
LIFE_CYCLE_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("suspend", 3.0),
    ("suspend_drained", 3.0),
    ("suspend_timeout", 4.0),
    ("resume", 3.0),
    ("unplug", 1.5),
    ("backend_offline", 3.0),
    ("close", 2.0),
    ("strategy", 3.0),
)

#: Event weights of the request-path configuration.
REQUEST_PATH_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("strategy", 8.0),
    ("backend_consume", 6.0),
    ("backend_respond", 6.0),
    ("interrupt", 6.0),
    ("suspend", 0.2),
    ("unplug", 0.05),
    ("close", 0.3),
)

#: The reference's default sweep.  Every configuration keeps the model's abstraction
#: (see :mod:`.reference_adapter`); between them they reach a command shortage, a grant
#: shortage with its callback, a full ring, the ring indices' wrap and the seed's start
#: at 0, two suspend cycles, two users, multi-page rings (an order of 2, an order past
#: the front end's 32-page limit, the legacy ``max-ring-pages`` with a count that is not
#: a power of two), indirect requests, 4 KiB sectors and bios from one sector to 32
#: pages.
REFERENCE_SWEEP: tuple[Configuration, ...] = (
    Configuration("command-shortage", _sizes(11)),
    Configuration("grant-shortage", _sizes(11, grants=11)),
    Configuration("ring-full", _sizes(11, ring_slots=2)),
    # from one sector to ten pages at an offset: eleven segments, the direct limit; the
    # pool holds every command's references (a grant shortage would count segments)
    Configuration(
        "multi-page-bios",
        _sizes(11, grants=22),
        BackendSetup(
            bio_sectors=(PAGE_SECTORS, 2 * PAGE_SECTORS, 10 * PAGE_SECTORS, 1), bio_offset=SECTOR
        ),
    ),
    Configuration(
        "indirect-segments",
        _sizes(_INDIRECT, grants=2 * _INDIRECT),
        BackendSetup(indirect_segments=_INDIRECT, bio_sectors=_BIG_BIOS),
    ),
    Configuration(
        "indirect-grant-shortage",
        _sizes(_INDIRECT, grants=_INDIRECT),
        BackendSetup(indirect_segments=_INDIRECT, bio_sectors=(PAGE_SECTORS, 1)),
    ),
    Configuration(
        "ring-pages",
        _sizes(11, ring_base=0),
        BackendSetup(ring_page_order=2, bio_sectors=(1, PAGE_SECTORS)),
    ),
    Configuration(
        "4k-sectors",
        _sizes(11, suspends=2),
        BackendSetup(sector_size=4096, bio_sectors=(PAGE_SECTORS,)),
    ),
    # the legacy max-ring-pages key with a count that is not a power of two (the seed
    # rounds it down to a two-page ring)
    Configuration(
        "two-users",
        _sizes(11, max_users=2, ring_slots=2, grants=11),
        BackendSetup(max_ring_pages=3),
    ),
    # the life cycle often: suspends, unplugs, closes, responses while suspended; an
    # order past the front end's 32-page limit
    Configuration(
        "life-cycle",
        _sizes(11, suspends=2),
        BackendSetup(ring_page_order=6),
        weights=LIFE_CYCLE_WEIGHTS,
    ),
    # the request path often, with deferred and failed mappings: single-stepped writes
    # waiting on READY, their mapping failing when they are finally sent
    Configuration(
        "request-path",
        _sizes(11, ring_base=0, bios=8),
        weights=REQUEST_PATH_WEIGHTS,
        dma_weights=(("IMMEDIATE", 3.0), ("DEFERRED", 2.0), ("FAILED", 2.0)),
        dma_chance=0.8,
    ),
)


#: The reference sweep's configurations that differ in sizes alone (a command shortage, a
#: grant shortage with its callback, a full ring): ``--sizes`` names one of them.
SIZE_VARIANTS: tuple[Configuration, ...] = tuple(
    c for c in REFERENCE_SWEEP if c.setup == DEFAULT_SETUP and not c.weights and not c.dma_weights
)

#: The sweep of an implementation that takes no back-end setup (no ``configure``): every
#: configuration of the reference sweep at the default back end (the three size variants
#: and the request path, with its deferred and failed mappings), and the life cycle at
#: the default back end (the reference's has a ring order past the front end's limit):
#: suspends with requests in flight, drained or timed out, unplugs and closes.  The
#: implementation's own sizes come first; one that supports fewer offers
#: ``sweep_sizes()``.
SIZE_SWEEP: tuple[Configuration, ...] = (
    *(c for c in REFERENCE_SWEEP if c.setup == DEFAULT_SETUP),
    Configuration("suspend-cycles", _sizes(11, suspends=2), weights=LIFE_CYCLE_WEIGHTS),
)


def sizes_sweep(own: Sizes, offered: Sequence[Sizes] | None = None) -> list[Configuration]:
    """The configurations an implementation without a back-end setup is swept over:
    ``own`` (its preferred sizes, named ``default`` unless a size variant has them),
    then :data:`SIZE_SWEEP` (or, when the implementation says what it supports, each of
    ``offered`` with the default weights), none twice."""
    named = {c.sizes: c for c in SIZE_VARIANTS}
    first = named.get(own) or Configuration("default", own)
    rest = (
        list(SIZE_SWEEP)
        if offered is None
        else [named.get(s) or Configuration(f"sizes-{i + 1}", s) for i, s in enumerate(offered)]
    )
    out = [first]
    for c in rest:
        if all(c.name != o.name for o in out):
            out.append(c)
    return out


def pinned(sweep: Sequence[Configuration], sizes: Sizes, name: str) -> list[Configuration]:
    """``sweep`` with every configuration's sizes replaced by ``sizes`` where its back
    end allows them (``--sizes``: the sizes are fixed, the back end still varies where
    one segment a request keeps the model's abstraction)."""
    out = [
        dataclasses.replace(c, name=f"{name}/{c.name}", sizes=sizes)
        for c in sweep
        if c.setup.request_segments == sizes.grants_per_request and c.setup.single_segment
    ]
    unique: list[Configuration] = []
    for c in out:
        if all(c.setup != u.setup for u in unique):
            unique.append(c)
    return unique or [Configuration(name, sizes)]


def dimensions_varied(sweep: Sequence[Configuration]) -> dict[str, list[Any]]:
    """Each dimension that takes more than one value across ``sweep``, with its values."""
    values: dict[str, list[Any]] = {}
    for c in sweep:
        flat = {**{f"sizes.{k}": v for k, v in dataclasses.asdict(c.sizes).items()}}
        flat.update({f"backend.{k}": v for k, v in c.setup.dimensions().items()})
        for key, value in flat.items():
            seen = values.setdefault(key, [])
            if value not in seen:
                seen.append(value)
    return {k: v for k, v in sorted(values.items()) if len(v) > 1}


#: Dimensions every program varies through the model's own parameters and the
#: environment's choices, whatever the configuration.
PROGRAM_DIMENSIONS: tuple[str, ...] = (
    "back-end features (feature-barrier, feature-flush-cache: backend_publish)",
    "DMA outcomes (IMMEDIATE, DEFERRED, FAILED; deferred callbacks and their errors)",
    "response order (backend_consume / backend_respond of any request in flight)",
    "response status (OKAY, ERROR, EOPNOTSUPP)",
    "bio kinds (read, write, ordered write, flush, unsupported)",
    "suspend timing (suspend, drained, time-out, resume cancelled or not)",
    "unplug timing (unplug, back end offline, Closing delivered)",
)
