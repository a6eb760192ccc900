"""The compiled library as :mod:`ctypes` sees it: the harness callbacks' C types, the
entry points' signatures, the shim's numbering of faults, bus_dma modes and softc fields,
one loaded copy per library path, and the world hooks (:class:`WorldHooks`) through which
the same library runs as a front end of the protocol-level world.

Every ``xbd_h_*`` entry point runs driver code under the shim's fault trap and returns the
fault kind (:data:`FAULT_KINDS`); :class:`CDriverFault` is how a harness reports one.
"""

from __future__ import annotations

import ctypes
import os
import shutil
from pathlib import Path
from typing import Any

from xbdspec.errors import XbdspecError

#: fault kind numbers of shim.c -> the reference's fault class names
FAULT_KINDS = {1: "KernelPanic", 2: "KernelAssertion", 3: "UndefinedBehaviour", 4: "KernelHang"}
#: bus_dma load outcomes (shim.c's DMA_* values)
DMA_MODES = {"IMMEDIATE": 0, "DEFERRED": 1, "FAIL": 2, "FAIL_ENOMEM": 3}
BLKIF_OP = {
    0: "READ",
    1: "WRITE",
    2: "WRITE_BARRIER",
    3: "FLUSH_DISKCACHE",
    5: "DISCARD",
    6: "INDIRECT",
}
#: the order of xbd_h_softc()'s output
SOFTC_FIELDS = (
    "xbd_state",
    "xbd_flags",
    "xbd_qfrozen_cnt",
    "xbd_ring_pages",
    "xbd_max_requests",
    "xbd_max_request_segments",
    "xbd_max_request_size",
    "xbd_max_request_indirectpages",
    "xbd_users",
    "xbd_unit",
    "q_free",
    "q_ready",
    "q_busy",
    "q_complete",
    "q_bio",
    "req_prod_pvt",
    "rsp_cons",
    "sring_req_prod",
    "has_shadow",
    "has_disk",
    "d_mediasize",
    "d_sectorsize",
    "d_flags",
    "disk_destroyed",
    "disk_gone",
    "dev_unit",
    "io_lock_depth",
    "d_stripesize",
    "d_maxsize",
    "ring_size",
)
EWOULDBLOCK = 35


class CDriverFault(XbdspecError):
    """The C driver panicked, failed an assertion, hit undefined behaviour or hung.

    Attributes:
        kind: ``KernelPanic``, ``KernelAssertion``, ``UndefinedBehaviour`` or ``KernelHang``.
        message: the driver's message (``panic``'s or ``KASSERT``'s formatted text).
        where: the harness call that faulted.
    """

    def __init__(self, kind: str, message: str, where: str) -> None:
        super().__init__(f"{kind} in {where}: {message}")
        self.kind = kind
        self.message = message
        self.where = where


_XS_READ = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int)
_XS_WRITE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p)
_LOG = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
_MSLEEP = ctypes.CFUNCTYPE(ctypes.c_int)
_YIELD = ctypes.CFUNCTYPE(None)

_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "xbd_h_fault_message": (ctypes.c_char_p, []),
    "xbd_h_bio_data": (ctypes.c_void_p, [ctypes.c_int]),
    "xbd_h_be_disk": (ctypes.c_void_p, []),
    "xbd_h_tunable_enable_indirect": (ctypes.POINTER(ctypes.c_int), []),
    "xbd_h_bio_new": (
        ctypes.c_int,
        [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_long, ctypes.c_int],
    ),
    "xbd_h_be_configure": (None, [ctypes.c_uint64, ctypes.c_int, ctypes.c_int, ctypes.c_int]),
    "xbd_h_be_connect": (ctypes.c_int, [ctypes.c_uint, ctypes.c_uint]),
    "xbd_h_be_describe": (
        ctypes.c_int,
        [
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_uint64),
            ctypes.POINTER(ctypes.c_uint32),
            ctypes.c_int,
        ],
    ),
    "xbd_h_be_raw_response": (ctypes.c_int, [ctypes.c_uint64, ctypes.c_int, ctypes.c_int]),
    "xbd_h_plug": (None, [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]),
    "xbd_h_set_tunables": (
        None,
        [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_int, ctypes.c_int],
    ),
    "xbd_h_dump": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_long, ctypes.c_long]),
    "xbd_h_dump_polled": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_long, ctypes.c_long]),
    "xbd_h_sysctl_features": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_int]),
    "xbd_h_ring_token": (ctypes.c_void_p, []),
    "xbd_h_set_ring_index_start": (None, [ctypes.c_uint]),
    "xbd_h_set_world": (None, [ctypes.c_void_p]),
    "xbd_h_bio_status": (None, [ctypes.c_int, ctypes.POINTER(ctypes.c_long)]),
    "xbd_h_softc": (ctypes.c_int, [ctypes.POINTER(ctypes.c_long)]),
}

# ---- the world hooks (shim.c's struct xbd_world_hooks)
#: zeroed, page-aligned memory of ``size`` bytes (0: none)
PAGES_ALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_size_t)
#: 1 if the address was such memory (now released), 0 if the shim must free it
PAGES_FREE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
#: (ref, domid, page address, readonly): ``ref`` now grants that page
GRANT = ctypes.CFUNCTYPE(None, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
#: (ref) -> 1 ended, 0 still mapped by the back end
END_GRANT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint)
#: (port): the front end signals the back end
NOTIFY = ctypes.CFUNCTYPE(None, ctypes.c_uint)
#: (bio id): ``biodone``
BIODONE = ctypes.CFUNCTYPE(None, ctypes.c_int)


class WorldHooks(ctypes.Structure):
    """What ``xbd_h_set_world`` takes: the services the world provides instead of the shim
    (a NULL member keeps the shim's own; ``xbd_h_reset`` clears them all)."""

    _fields_ = [
        ("pages_alloc", PAGES_ALLOC),
        ("pages_free", PAGES_FREE),
        ("grant", GRANT),
        ("end_grant", END_GRANT),
        ("notify", NOTIFY),
        ("biodone", BIODONE),
    ]


_LOADED: dict[Path, ctypes.CDLL] = {}


def _load(library: Path) -> ctypes.CDLL:
    lib = _LOADED.get(library)
    if lib is None:
        lib = _bind(ctypes.CDLL(str(library)))
        _LOADED[library] = lib
    return lib


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


_PRIVATE: dict[Path, ctypes.CDLL] = {}


def load_private(library: Path) -> ctypes.CDLL:
    """A copy of ``library`` of this process's own, loaded once (the shim's globals are one
    driver instance: this copy's are not shared with :class:`~.platform.CPlatform`'s)."""
    lib = _PRIVATE.get(library)
    if lib is None:
        # dlopen shares one copy per path: load it from a path of its own
        copy = library.parent / f"private-{os.getpid()}-{library.name}"
        shutil.copyfile(library, copy)
        try:
            lib = _bind(ctypes.CDLL(str(copy), mode=os.RTLD_LOCAL))
        finally:
            copy.unlink()
        _PRIVATE[library] = lib
    return lib
