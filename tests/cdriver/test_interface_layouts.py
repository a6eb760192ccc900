"""blkif's layout as Xen's public headers give it, as both kernel shims see it, and as the
protocol-level harness (``xbdspec/world/ring.py``) packs it, must be one layout.

A small C program printing ``offsetof``/``sizeof`` of every field of ``blkif_request``,
``blkif_request_segment``, ``blkif_request_indirect``, ``blkif_request_discard``,
``blkif_response`` and the ``blkif_sring`` header, with ``RING_SIZE`` of one and sixteen
pages and the operation and status codes, is compiled three times with the system C
compiler: against libxen-dev's ``/usr/include/xen/io/`` alone (the truth), with the
FreeBSD shim force-included as the seed is built, and with the Linux shim force-included
against the kernel's ``include/xen/interface/io/`` as ``xen-blkfront.c`` is built.  The
Linux header spells the same layout differently (a packed ``struct blkif_request`` whose
variants are members of a union ``u``), so its field paths differ; its offsets may not.

Without libxen-dev's headers the test skips, naming ``make xen-headers``; under ``CI`` it
fails (``.ci/run`` installs them).
"""

from __future__ import annotations

import importlib
import os
import re
import struct
import subprocess
from pathlib import Path

import pytest

from xbdspec.resources import data_dir
from xbdspec.world import ring

# the module (xbdspec.cdriver.build is also the name of its function, re-exported)
cbuild = importlib.import_module("xbdspec.cdriver.build")

if cbuild.xen_headers_missing():
    reason = cbuild.XEN_HEADERS_MISSING.format(
        missing=", ".join(map(str, cbuild.xen_headers_missing()))
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI is set: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

REQ, SEG, RSP, SRING = (
    "struct blkif_request",
    "struct blkif_request_segment",
    "struct blkif_response",
    "struct blkif_sring",
)
IND, DIS = "struct blkif_request_indirect", "struct blkif_request_discard"


#: A row: (key, what Xen's and FreeBSD's header is asked, what Linux's is: ``None`` the
#: same, ``-`` nothing, Linux's header having no counterpart).
Row = tuple[str, str, str | None]


def _offsets_of(key: str, xen: str, linux: str, pairs: str) -> list[Row]:
    """Rows for the fields of one structure: ``pairs`` is ``field[:path]`` words, ``path``
    the field in Linux's structure ``linux`` (its header puts the request variants in a
    union ``u``; ``-``: Linux has no such field)."""
    rows: list[Row] = []
    for pair in pairs.split():
        field, _, path = pair.partition(":")
        lx = "-" if path == "-" else f"offsetof({linux}, {path or field})"
        rows.append((f"{key}.{field}", f"offsetof({xen}, {field})", lx))
    return rows


FIELDS: list[Row] = [
    ("request.size", f"sizeof({REQ})", f"sizeof({REQ})"),
    *_offsets_of(
        "request",
        REQ,
        REQ,
        "operation nr_segments:u.rw.nr_segments handle:u.rw.handle id:u.rw.id "
        "sector_number:u.rw.sector_number seg:u.rw.seg",
    ),
    ("segment.size", f"sizeof({SEG})", f"sizeof({SEG})"),
    *_offsets_of("segment", SEG, SEG, "gref first_sect last_sect"),
    # Linux: the operation byte, then the packed variant
    ("indirect.size", f"sizeof({IND})", f"offsetof({REQ}, u) + sizeof({IND})"),
    *_offsets_of(
        "indirect",
        IND,
        REQ,
        "operation indirect_op:u.indirect.indirect_op nr_segments:u.indirect.nr_segments "
        "id:u.indirect.id sector_number:u.indirect.sector_number handle:u.indirect.handle "
        "indirect_grefs:u.indirect.indirect_grefs",
    ),
    ("discard.size", f"sizeof({DIS})", "-"),
    *_offsets_of(
        "discard",
        DIS,
        REQ,
        "operation flag:u.discard.flag handle:- id:u.discard.id "
        "sector_number:u.discard.sector_number nr_sectors:u.discard.nr_sectors",
    ),
    ("response.size", f"sizeof({RSP})", f"sizeof({RSP})"),
    *_offsets_of("response", RSP, RSP, "id operation status"),
    *_offsets_of("sring", SRING, SRING, "req_prod req_event rsp_prod rsp_event ring"),
    ("sring.entry", "sizeof(union blkif_sring_entry)", "sizeof(union blkif_sring_entry)"),
    ("sring.ring_idx", "sizeof(RING_IDX)", "sizeof(RING_IDX)"),
    ("ring_size.1", "__CONST_RING_SIZE(blkif, 4096)", None),
    ("ring_size.16", "__CONST_RING_SIZE(blkif, 16 * 4096)", None),
    # the macro the drivers call, on a ring in memory
    ("ring_size.1.runtime", f"__RING_SIZE(({SRING} *)pages, 4096)", None),
    ("ring_size.16.runtime", f"__RING_SIZE(({SRING} *)pages, 16 * 4096)", None),
    *(
        (key, name, name)
        for key, name in (
            ("max_segments", "BLKIF_MAX_SEGMENTS_PER_REQUEST"),
            ("max_indirect_pages", "BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST"),
            ("op.read", "BLKIF_OP_READ"),
            ("op.write", "BLKIF_OP_WRITE"),
            ("op.write_barrier", "BLKIF_OP_WRITE_BARRIER"),
            ("op.flush_diskcache", "BLKIF_OP_FLUSH_DISKCACHE"),
            ("op.discard", "BLKIF_OP_DISCARD"),
            ("op.indirect", "BLKIF_OP_INDIRECT"),
            ("rsp.okay", "BLKIF_RSP_OKAY"),
            ("rsp.error", "BLKIF_RSP_ERROR"),
            ("rsp.eopnotsupp", "BLKIF_RSP_EOPNOTSUPP"),
        )
    ),
]
#: FreeBSD's own (sys/xen/blkif.h): the most requests a ring holds in any ABI.
FREEBSD_FIELDS: list[Row] = [
    (f"max_ring_requests.{n}", f"BLKIF_MAX_RING_REQUESTS({n} * 4096)", "-") for n in (1, 16, 32)
]


def _program(linux: bool, rows: list[Row]) -> str:
    """The probe: prints ``key value`` for each row (Linux's expressions with ``linux``)."""
    lines = [
        "#include <stddef.h>",
        "#include <stdint.h>",
        "#include <stdio.h>",
        "#include <string.h>",
    ]
    if linux:
        lines += ["#include <xen/interface/io/blkif.h>", "#include <xen/interface/io/protocols.h>"]
    else:
        lines += [
            "#ifndef XBD_SHIM_H",  # the real headers alone
            "#include <xen/io/blkif.h>",
            "#include <xen/io/protocols.h>",
            "#endif",
        ]
    lines += [
        "static char pages[16 * 4096] __attribute__((aligned(4096)));",
        "int main(void)",
        "{",
    ]
    for key, xen, lx in rows:
        expr = (xen if lx is None else lx) if linux else xen
        if expr != "-":
            # (printf) is the C library's: the FreeBSD shim defines printf(...) as its own
            lines.append(f'\t(printf)("{key} %ld\\n", (long)({expr}));')
    lines += ["\treturn 0;", "}", ""]
    return "\n".join(lines)


def _run(
    tmp: Path, name: str, linux: bool, flags: list[str], rows: list[Row] = FIELDS
) -> dict[str, int]:
    """Compile the probe with the system C compiler and ``flags``, run it, read its output."""
    source = tmp / f"{name}.c"
    source.write_text(_program(linux, rows))
    exe = tmp / name
    cc = cbuild._compiler()
    proc = subprocess.run(
        [cc, "-std=gnu11", "-O0", "-w", *flags, "-o", str(exe), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"{name}: {proc.stderr}"
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """The layout libxen-dev's headers give, with no shim."""
    return _run(tmp_path_factory.mktemp("layout"), "real", False, [])


def _offsets(fmt: struct.Struct, names: str) -> dict[str, int]:
    """The offset of each named field of a ``struct`` format (``<``: no alignment; a
    count before a code other than ``x`` makes one array field, as ``8I``)."""
    fields = names.split()
    out: dict[str, int] = {}
    offset = 0
    for count, code in re.findall(r"(\d*)([a-zA-Z?])", fmt.format.lstrip("<=!>@")):
        n = int(count or 1)
        size = struct.calcsize(f"<{code}")
        if code != "x":
            out[fields[len(out)]] = offset
        offset += n * size
    assert len(out) == len(fields), (fmt.format, names)
    return out


def _ring_py() -> dict[str, int]:
    """What ``xbdspec/world/ring.py`` packs: its constants, and the offsets its ``struct``
    formats put each field at (field names as its comments give them)."""
    got: dict[str, int] = {
        "request.size": ring.ENTRY,
        "sring.entry": ring.ENTRY,
        "sring.ring": ring.HEADER,
        "ring_size.1": ring.ring_size(0),
        "ring_size.16": ring.ring_size(4),
        "max_segments": ring.MAX_SEGMENTS,
        "max_indirect_pages": ring.MAX_INDIRECT_PAGES,
        "op.read": ring.OP_READ,
        "op.write": ring.OP_WRITE,
        "op.write_barrier": ring.OP_WRITE_BARRIER,
        "op.flush_diskcache": ring.OP_FLUSH_DISKCACHE,
        "op.discard": ring.OP_DISCARD,
        "op.indirect": ring.OP_INDIRECT,
        "rsp.okay": ring.RSP_OKAY,
        "rsp.error": ring.RSP_ERROR,
        "rsp.eopnotsupp": ring.RSP_EOPNOTSUPP,
        "request.seg": ring._REQUEST.size,  # segments follow the header (ring.py: 24 + 8*i)
        "segment.size": ring._SEGMENT.size,
        "discard.size": ring._DISCARD.size,
    }
    for prefix, fmt, names in (
        ("request", ring._REQUEST, "operation nr_segments handle id sector_number"),
        ("segment", ring._SEGMENT, "gref first_sect last_sect"),
        (
            "indirect",
            ring._INDIRECT,
            "operation indirect_op nr_segments id sector_number handle indirect_grefs",
        ),
        ("discard", ring._DISCARD, "operation flag handle id sector_number nr_sectors"),
        ("response", ring._RESPONSE, "id operation status"),
        ("sring", ring._INDEXES, "req_prod req_event rsp_prod rsp_event"),
    ):
        got.update({f"{prefix}.{k}": v for k, v in _offsets(fmt, names).items()})
    return got


def test_the_real_headers_give_the_amd64_layout(real: dict[str, int]) -> None:
    """The numbers every comparison below rests on (Xen 4.17, x86-64)."""
    assert real["request.size"] == 112 and real["response.size"] == 16
    assert real["indirect.size"] == 64 and real["discard.size"] == 32
    assert real["sring.ring"] == 64 and real["sring.entry"] == 112
    assert real["ring_size.1"] == 32 and real["ring_size.16"] == 512
    assert real["ring_size.1.runtime"] == 32 and real["ring_size.16.runtime"] == 512
    assert len(real) == len(FIELDS)


def test_the_freebsd_shim_sees_the_real_layout(
    real: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The seed's view (the shim force-included, as build.py compiles blkfront.c) is the
    real headers' to the byte, and so is FreeBSD's own BLKIF_MAX_RING_REQUESTS."""
    include = data_dir("shim") / "include"
    flags = [f"-I{include}", "-include", str(include / "xbd_shim.h")]
    shim = _run(tmp_path_factory.mktemp("layout"), "freebsd", False, flags, FIELDS + FREEBSD_FIELDS)
    own = {k: shim.pop(k) for k, _, _ in FREEBSD_FIELDS}
    assert shim == real
    assert own == {
        f"max_ring_requests.{n}": ring.ring_size(n.bit_length() - 1) for n in (1, 16, 32)
    }


def test_ring_py_packs_the_real_layout(real: dict[str, int]) -> None:
    """``xbdspec/world/ring.py`` (the harness's ring) agrees field by field; its
    ``struct`` formats stop at the last field (no tail padding), so their sizes are
    at most the C sizes."""
    py = _ring_py()
    assert {k: real[k] for k in py} == py
    assert ring._INDIRECT.size <= real["indirect.size"]
    assert ring._RESPONSE.size <= real["response.size"]
    assert ring._INDEXES.size <= real["sring.ring"]


def test_the_linux_shim_sees_the_real_layout(
    real: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``xen-blkfront.c``'s view (the kernel's own interface headers, the Linux shim
    force-included) puts every field where Xen's headers do.  Linux's discard variant
    ends with a pad byte (``_pad3``) inside the 112-byte entry, and it names the handle's
    place ``_pad1``: those two keys have no Linux counterpart."""
    from xbdspec.linux import source

    if not source.available():
        if os.environ.get("CI"):
            pytest.fail("CI is set and linux-source-6.1 cannot be installed", pytrace=False)
        pytest.skip("linux-source-6.1 is not installed (`make linux-frontend`)")
    root = source.extract()
    include = data_dir("shim_linux") / "include"
    flags = [
        f"-I{include}",
        f"-I{root / 'include'}",
        "-include",
        str(include / "linux_shim.h"),
    ]
    linux = _run(tmp_path_factory.mktemp("layout"), "linux", True, flags)
    expected = {k: v for k, v in real.items() if k not in ("discard.size", "discard.handle")}
    assert linux == expected


def test_the_build_names_make_xen_headers_when_they_are_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No libxen-dev: building the seed fails at once, saying what to run."""
    monkeypatch.setattr(cbuild, "XEN_INCLUDE", tmp_path)
    source = tmp_path / "blkfront.c"
    source.write_text("int x;\n")
    with pytest.raises(cbuild.BuildError, match="make xen-headers"):
        cbuild.build(source, out_dir=tmp_path / "out")
