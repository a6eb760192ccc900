"""blkif.h's rules on the values exchanged: requests as written on the ring and the
back end's device properties."""

from __future__ import annotations

import json

import pytest
from xbdspec.model.protocol.content import (
    PROPERTY_RULES,
    REQUEST_RULES,
    DeviceProperties,
    Offers,
    Request,
    broken_rules,
    request_from_fields,
)
from xbdspec.model.protocol.vocabulary import Operation as Op

from xbdspec.traces.protocol import Verdict, check_commits, read_commits

OFFERS = Offers(barrier=False, flush=True, discard=True, max_indirect_segments=256)


def names(rules: list) -> list[str]:  # type: ignore[type-arg]
    return [r.name for r in rules]


@pytest.mark.parametrize(
    "request_",
    [
        Request(Op.READ, 1, ((0, 7),)),
        Request(Op.WRITE, 11, ((0, 7),) * 11),
        Request(Op.FLUSH_DISKCACHE, 0),
        Request(Op.DISCARD, 0),
        Request(Op.INDIRECT, 256, ((0, 7),) * 256, indirect_op=Op.WRITE, indirect_pages=1),
        Request(Op.INDIRECT, 200, (), indirect_op=Op.READ, indirect_pages=1),
    ],
)
def test_well_formed_requests_keep_every_rule(request_: Request) -> None:
    assert broken_rules(REQUEST_RULES, request_, OFFERS) == []


@pytest.mark.parametrize(
    ("request_", "rule"),
    [
        (Request(Op.WRITE, 12, ((0, 7),) * 12), "DirectSegmentsBounded"),
        (Request(Op.WRITE_BARRIER, 1, ((0, 7),)), "OptionalOperationOffered"),
        (
            Request(Op.INDIRECT, 20, (), indirect_op=Op.FLUSH_DISKCACHE, indirect_pages=1),
            "IndirectOpIsReadOrWrite",
        ),
        (
            Request(Op.INDIRECT, 257, (), indirect_op=Op.READ, indirect_pages=1),
            "IndirectSegmentsWithinOffer",
        ),
        (
            Request(Op.INDIRECT, 200, (), indirect_op=Op.READ, indirect_pages=2),
            "IndirectPagesMatchSegments",
        ),
        (Request(Op.READ, 1, ((3, 2),)), "SegmentWithinItsPage"),
        (Request(Op.READ, 1, ((0, 8),)), "SegmentWithinItsPage"),
    ],
)
def test_each_malformed_request_breaks_its_rule(request_: Request, rule: str) -> None:
    assert names(broken_rules(REQUEST_RULES, request_, OFFERS)) == [rule]


def test_no_indirect_without_the_feature() -> None:
    r = Request(Op.INDIRECT, 20, (), indirect_op=Op.READ, indirect_pages=1)
    assert "OptionalOperationOffered" in names(broken_rules(REQUEST_RULES, r, Offers()))


def test_a_request_from_decoded_fields() -> None:
    r = request_from_fields({"operation": 1, "nr_segments": 1, "segments": [[0, 7]]})
    assert r == Request(Op.WRITE, 1, ((0, 7),))


@pytest.mark.parametrize(
    ("props", "rule"),
    [
        (DeviceProperties(2048, 512), None),
        (DeviceProperties(2048, 4096, large_sector_size=True, physical_sector_size=4096), None),
        (DeviceProperties(2048, 4096), "LargeSectorsOnlyWhenAdvertised"),
        (DeviceProperties(2048, 1000, large_sector_size=True), "SectorSizePowerOfTwo"),
        (DeviceProperties(2048, 256, large_sector_size=True), "SectorSizePowerOfTwo"),
        (DeviceProperties(2048, 512, physical_sector_size=768), "PhysicalSectorMultiple"),
        (DeviceProperties(3, 512, physical_sector_size=4096), "PhysicalSectorMultiple"),
    ],
)
def test_device_properties(props: DeviceProperties, rule: str | None) -> None:
    assert names(broken_rules(PROPERTY_RULES, props)) == ([rule] if rule else [])


def test_the_checker_applies_the_property_rules_when_the_back_end_connects() -> None:
    commits = [
        {"by": "toolstack", "writes": {"back/online": "1", "back/state": "1", "front/state": "1"}},
        {"by": "backend", "writes": {"back/state": "2"}},
        {
            "by": "frontend",
            "writes": {"front/ring-ref": "8", "front/event-channel": "9", "front/state": "3"},
        },
        {"by": "backend", "writes": {"back/sectors": "2048", "back/sector-size": "4096"}},
        {"by": "backend", "writes": {"back/state": "4"}},
    ]
    lines = [json.dumps({"scenario": "x"}), *(json.dumps(c) for c in commits)]
    report = check_commits(read_commits(lines, "props")[1])
    assert report.verdict == Verdict.VIOLATION
    assert "LargeSectorsOnlyWhenAdvertised" in report.violation
    assert report.violation.startswith("props:6:")
