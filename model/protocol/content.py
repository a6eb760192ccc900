"""What blkif.h requires of the *values* the two ends exchange: a request's fields as
the front end wrote them on the ring, and the back end's device properties.

The state machine (:mod:`.handshake`, :mod:`.ring`) says when an end may write; these
rules say what a written request or property must hold.  Each rule is a record with the
header sentence it rests on and a predicate on plain values, so whatever reads requests
off the ring or properties out of xenstore (the commit checker here; a harness reading
an implementation's ring) applies the same definition.

Sector units follow Xen 4.17's text: ``sector_number`` and a segment's
``first_sect``/``last_sect`` are 512-byte sectors unless the front end advertises
``feature-large-sector-size``; ``sectors`` is in units of ``sector-size``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..declaration import Quote
from ..expr import all_of, any_of, implies, one_of
from .quotes import BLKIF
from .vocabulary import Operation

#: ``BLKIF_MAX_SEGMENTS_PER_REQUEST``
MAX_SEGMENTS = 11
#: ``BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST``
MAX_INDIRECT_PAGES = 8
#: ``PAGE_SIZE / sizeof(struct blkif_request_segment)`` on a 4 KiB page (8-byte segments)
SEGMENTS_PER_INDIRECT_PAGE = 4096 // 8
#: 512-byte sectors in a 4 KiB page: a segment's last sector is at most 7
SECTORS_PER_PAGE = 8
#: ``VDISK_CDROM | VDISK_REMOVABLE | VDISK_READONLY``
VDISK_BITS = 0x1 | 0x2 | 0x4


@dataclass(frozen=True)
class Request:
    """A request as the front end wrote it in a ring slot (``blkif_request`` or, for
    ``BLKIF_OP_INDIRECT``, ``blkif_request_indirect``; segments are those of the
    indirect pages).

    Attributes:
        operation: ``operation``.
        indirect_op: ``indirect_op`` (for an indirect request).
        nr_segments: ``nr_segments``.
        indirect_pages: the indirect page references used (for an indirect request).
        segments: ``(first_sect, last_sect)`` of each segment.
    """

    operation: int
    nr_segments: int
    segments: tuple[tuple[int, int], ...] = ()
    indirect_op: int = 0
    indirect_pages: int = 0


@dataclass(frozen=True)
class Offers:
    """What the back end published (its keys; absent keys are 0)."""

    barrier: bool = False
    flush: bool = False
    discard: bool = False
    max_indirect_segments: int = 0


@dataclass(frozen=True)
class ContentRule:
    """One rule on exchanged values.

    Attributes:
        name: what it says, as a name (``IndirectOpIsReadOrWrite``).
        holds: ``holds(value, context)``.
        doc: the rule in a sentence.
        quote: the header sentences it rests on.
    """

    name: str
    holds: Callable[[Any, Any], Any]
    doc: str
    quote: Quote


def _indirect_pages_needed(segments: Any) -> Any:
    return (segments + SEGMENTS_PER_INDIRECT_PAGE - 1) // SEGMENTS_PER_INDIRECT_PAGE


REQUEST_RULES: tuple[ContentRule, ...] = (
    ContentRule(
        "DirectSegmentsBounded",
        lambda r, o: implies(r.operation != Operation.INDIRECT, r.nr_segments <= MAX_SEGMENTS),
        "A request that is not indirect carries at most BLKIF_MAX_SEGMENTS_PER_REQUEST (11) "
        "segments.",
        Quote(
            BLKIF,
            "BLKIF_MAX_SEGMENTS_PER_REQUEST",
            "Maximum scatter/gather segments per request.",
        ),
    ),
    ContentRule(
        "OptionalOperationOffered",
        lambda r, o: all_of(
            implies(r.operation == Operation.WRITE_BARRIER, o.barrier),
            implies(r.operation == Operation.FLUSH_DISKCACHE, o.flush),
            implies(r.operation == Operation.DISCARD, o.discard),
            implies(r.operation == Operation.INDIRECT, o.max_indirect_segments > 0),
        ),
        "Barrier, flush, discard and indirect requests only when the back end's feature "
        "key offers them.",
        Quote(
            BLKIF,
            "Backend XenBus Nodes: feature-barrier",
            'A value of "1" indicates that the backend can process requests containing the '
            "BLKIF_OP_WRITE_BARRIER request opcode.",
        ),
    ),
    ContentRule(
        "IndirectOpIsReadOrWrite",
        lambda r, o: implies(
            r.operation == Operation.INDIRECT,
            one_of(r.indirect_op, (Operation.READ, Operation.WRITE)),
        ),
        "An indirect request's indirect_op is READ or WRITE.",
        Quote(
            BLKIF,
            "struct blkif_request_indirect",
            "uint8_t indirect_op; /* BLKIF_OP_{READ/WRITE} */",
        ),
    ),
    ContentRule(
        "IndirectSegmentsWithinOffer",
        lambda r, o: implies(
            r.operation == Operation.INDIRECT, r.nr_segments <= o.max_indirect_segments
        ),
        "An indirect request has at most feature-max-indirect-segments segments (the header "
        'says "less than"; every back end accepts the number itself, which is what the node '
        '"contains the maximum number of segments allowed" means).',
        Quote(
            BLKIF,
            "BLKIF_OP_INDIRECT",
            'The "feature-max-indirect-segments" node contains the maximum number of segments '
            "allowed by the backend per request.",
        ),
    ),
    ContentRule(
        "IndirectPagesMatchSegments",
        lambda r, o: implies(
            r.operation == Operation.INDIRECT,
            all_of(
                r.indirect_pages == _indirect_pages_needed(r.nr_segments),
                r.indirect_pages <= MAX_INDIRECT_PAGES,
            ),
        ),
        "An indirect request names ceil(segments / 512) indirect pages, at most 8.",
        Quote(
            BLKIF,
            "BLKIF_OP_INDIRECT",
            "so to calculate the number of indirect pages to use we have to do "
            "ceil(indirect_segments / (PAGE_SIZE / sizeof(struct blkif_request_segment))).",
        ),
    ),
    ContentRule(
        "SegmentWithinItsPage",
        lambda r, o: all_of(
            *(all_of(first <= last, last < SECTORS_PER_PAGE) for first, last in r.segments)
        ),
        "Each segment's first and last sector lie in its page, first before last.",
        Quote(
            BLKIF,
            "struct blkif_request_segment",
            "/* @first_sect: first sector in frame to transfer (inclusive). */ /* @last_sect: "
            "last sector in frame to transfer (inclusive). */",
        ),
    ),
)


@dataclass(frozen=True)
class DeviceProperties:
    """The back end's device properties (``sector-size`` and ``physical-sector-size`` in
    bytes; ``sectors`` in units of ``sector-size``), and whether the front end wrote
    ``feature-large-sector-size`` = 1."""

    sectors: int
    sector_size: int
    info: int = 0
    physical_sector_size: int | None = None
    large_sector_size: bool = False


def _power_of_two(n: Any) -> Any:
    return all_of(n > 0, (n & (n - 1)) == 0)


PROPERTY_RULES: tuple[ContentRule, ...] = (
    ContentRule(
        "SectorSizePowerOfTwo",
        lambda d, _: all_of(_power_of_two(d.sector_size), d.sector_size >= 512),
        "sector-size is a power of two, at least 512.",
        Quote(
            BLKIF,
            "Backend Device Properties: sector-size",
            "This must be a power of two with a minimum value of 512.",
        ),
    ),
    ContentRule(
        "LargeSectorsOnlyWhenAdvertised",
        lambda d, _: any_of(d.sector_size == 512, d.large_sector_size),
        "sector-size is 512 unless the front end advertised feature-large-sector-size.",
        Quote(
            BLKIF,
            "Backend Device Properties: sector-size",
            "NOTE: Because of implementation bugs in some frontends this must be set to 512, "
            'unless the frontend advertizes a non-zero value in its "feature-large-sector-size" '
            "xenbus node.",
        ),
    ),
    ContentRule(
        "PhysicalSectorMultiple",
        lambda d, _: implies(
            d.physical_sector_size is not None,
            all_of(
                (d.physical_sector_size or 0) > 0,
                (d.physical_sector_size or 0) % max(d.sector_size, 1) == 0,
                (d.sectors * d.sector_size) % max(d.physical_sector_size or 1, 1) == 0,
            ),
        ),
        "physical-sector-size is a multiple of sector-size, and the device's size a multiple "
        "of physical-sector-size.",
        Quote(
            BLKIF,
            "Backend Device Properties: physical-sector-size",
            'This must be an integer multiple of "sector-size".',
        ),
    ),
)


def broken_rules(
    rules: tuple[ContentRule, ...], value: Any, context: Any = None
) -> list[ContentRule]:
    """The rules ``value`` breaks (concretely)."""
    return [rule for rule in rules if not rule.holds(value, context)]


def request_from_fields(fields: Mapping[str, Any]) -> Request:
    """A :class:`Request` from a decoded ring slot's fields (names as in blkif.h)."""
    return Request(
        operation=int(fields["operation"]),
        nr_segments=int(fields["nr_segments"]),
        segments=tuple((int(a), int(b)) for a, b in fields.get("segments", ())),
        indirect_op=int(fields.get("indirect_op", 0)),
        indirect_pages=int(fields.get("indirect_pages", 0)),
    )
