"""What the adapters observe of the kernel dumper's ``dump``: the bytes on the disk.

A dump that returns 0 must have covered exactly the dumper's bytes with its chunks and
left them on the back end's disk at its offset (``check_dump_written``); the dumper's
buffer is a 251-byte cycle, so a chunk taken from the wrong place shows."""

from __future__ import annotations

import dataclasses

import pytest
from xbdspec.model.vocabulary import DumpResult
from xbdspec.reference.backend import Backend

from xbdspec.conformance import LockStep, run_program
from xbdspec.conformance.contract import Step
from xbdspec.conformance.harness import Divergence
from xbdspec.conformance.reference_adapter import (
    DumpFailed,
    ReferenceImplementation,
    check_dump_written,
    dump_layout,
    dump_pattern,
    reference_sizes,
)

CONNECT = [
    Step("backend_publish", {"barrier": False, "flush": False}),
    Step("backend_watch", {}),
    Step("frontend_watch", {}),
    Step("backend_watch", {}),
]


def _dump(impl: ReferenceImplementation) -> Divergence | None:
    """Connect and dump one chunk; the divergence, if any."""
    sizes = dataclasses.replace(reference_sizes("command-shortage"), dumps=1)
    return run_program(impl, LockStep(impl, sizes), [*CONNECT, Step("dump", {"chunks": 1})])


def test_the_layout_is_whole_sectors_with_a_short_last_chunk() -> None:
    offset, length = dump_layout(3, 45056, 512, 8 << 20)
    assert (offset, length) == (512, 3 * 45056 - 512)
    assert dump_layout(1, 4096, 4096, 8 << 20) == (4096, 4096)  # one sector: kept whole
    assert dump_layout(1, 45056, 512, 45000)[0] == 0  # no room behind a sector: at 0


def test_the_pattern_differs_under_any_shift_by_a_sector() -> None:
    data = dump_pattern(8192)
    assert data[512:1024] != data[:512] and data[1:513] != data[:512]


def test_a_dump_lands_on_the_disk_at_its_offset() -> None:
    impl = ReferenceImplementation()
    assert _dump(impl) is None and impl.dump_result == DumpResult.OK
    sc = impl._p.softc()
    offset, length = dump_layout(1, sc.xbd_max_request_size, 512, len(impl._p.backend.disk))
    assert impl._p.backend.disk[offset : offset + length] == dump_pattern(length)


def test_a_dump_whose_bytes_never_reach_the_disk_is_a_fault(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Backend, "_perform", lambda self, request: 0)  # OKAY, no I/O
    divergence = _dump(ReferenceImplementation())
    assert divergence is not None and divergence.kind == "fault"
    assert "DumpFailed: xbd_dump: returned 0 but byte 512 of the disk" in (divergence.fault or "")


def test_check_dump_written_names_the_first_byte_that_differs() -> None:
    disk = bytearray(4096)
    data = dump_pattern(1024)
    disk[512 : 512 + 1024] = data
    check_dump_written(disk, 512, memoryview(data))
    disk[700] ^= 0xFF
    with pytest.raises(DumpFailed, match="byte 700 of the disk is not the dump's byte 188"):
        check_dump_written(disk, 512, memoryview(data))
