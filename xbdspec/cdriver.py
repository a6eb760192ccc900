"""The seed's own C source, compiled against the kernel shim and driven from Python.

``blkfront.c`` is compiled *unmodified* with the system C compiler, every kernel
declaration coming from ``shim/include/xbd_shim.h`` (force-included) and the thin headers
under ``shim/include/`` (for a file from a FreeBSD tree, which has its own ``#include``
lines).  ``shim/src/shim.c`` is the environment: xenstore (answered by this module), a
finite grant table with free callbacks, bus_dma with deferred and failing loads, the
event channel, the disk layer, mutexes, ``msleep``, and a ``blkif`` back end serving a RAM
disk.  Both are linked into one shared library loaded with :mod:`ctypes`.

:class:`CPlatform` is the harness: it owns xenstore and the back end's handshake (the key
lists come from :class:`xbdspec.reference.BackendConfig`), and the test decides every event:
watch deliveries, the interrupt, each bus_dma load, grant shortages, the back end's
responses (order and status), ``msleep`` time-outs.  A ``panic``, a ``KASSERT`` failure, a
recursion on the I/O mutex, a detected undefined behaviour (SIGFPE, ``TAILQ_REMOVE`` of an
unlinked element) or a hang comes back as :class:`CDriverFault` with the reference's fault
names (``KernelPanic``, ``KernelAssertion``, ``UndefinedBehaviour``, ``KernelHang``).

``python -m xbdspec.cdriver build [SOURCE]`` compiles and prints the warnings;
``python -m xbdspec.cdriver scenario NAME --lib PATH`` runs one scenario and prints JSON
(how the sanitizer build runs: it needs the sanitizer runtimes preloaded, so it runs in a
child process).  See ``docs/cdriver.md``.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbdspec.errors import XbdspecError
from xbdspec.reference import BackendConfig
from xbdspec.reference.backend import BACKEND_KEYS
from xbdspec.reference.platform import toolstack_nodes
from xbdspec.resources import build_dir, data_dir

__all__ = [
    "BLKIF_OP",
    "DMA_MODES",
    "FAULT_KINDS",
    "SOFTC_FIELDS",
    "BioStatus",
    "BuildError",
    "BuildResult",
    "CDriverFault",
    "CPlatform",
    "build",
    "default_source",
    "sanitizer_preload",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIM_DIR = data_dir("shim")
BUILD_DIR = build_dir("cdriver")

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
FRONT_WATCH = "front"  # xenbus's watch on the back end's state -> xbd_backend_changed
BACK_WATCH = "back"  # the back end's watch on the front end's state
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-omit-frame-pointer")


class BuildError(XbdspecError):
    """``blkfront.c`` could not be compiled against the shim."""


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


# ---------------------------------------------------------------------- building
@dataclass(frozen=True)
class BuildResult:
    """A compiled driver.

    Attributes:
        library: the shared library (driver + shim).
        source: the ``blkfront.c`` compiled.
        warnings: the compiler's warnings about ``source`` (reported, never fatal).
        sanitize: built with AddressSanitizer and UndefinedBehaviorSanitizer.
    """

    library: Path
    source: Path
    warnings: tuple[str, ...]
    sanitize: bool


def default_source() -> Path | None:
    """``$XBD_BLKFRONT`` if set, else ``../shared/seed/blkfront.c`` beside the repo if present."""
    named = os.environ.get("XBD_BLKFRONT")
    if named:
        return Path(named)
    seed = REPO_ROOT.parent / "shared" / "seed" / "blkfront.c"
    return seed if seed.is_file() else None


def _compiler() -> str:
    return os.environ.get("CC") or shutil.which("cc") or "cc"


def _shim_sources() -> list[Path]:
    return sorted((SHIM_DIR / "src").glob("*.c"))


def _digest(source: Path, sanitize: bool) -> str:
    h = hashlib.sha256()
    h.update(source.read_bytes())
    h.update(b"sanitize" if sanitize else b"plain")
    for path in sorted(SHIM_DIR.rglob("*")):
        if path.is_file() and path.suffix in (".c", ".h"):
            h.update(str(path.relative_to(SHIM_DIR)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def build(
    source: Path | str | None = None, *, sanitize: bool = False, out_dir: Path | None = None
) -> BuildResult:
    """Compile ``source`` (default :func:`default_source`) and the shim into a shared library.

    Cached by the contents of the source and the shim; warnings are kept with the build.
    """
    src = Path(source) if source is not None else default_source()
    if src is None or not src.is_file():
        raise BuildError(
            f"no blkfront.c at {src!s}: pass a path, set XBD_BLKFRONT, or put the seed at "
            f"{REPO_ROOT.parent / 'shared' / 'seed' / 'blkfront.c'}"
        )
    key = _digest(src, sanitize)
    out = (out_dir or BUILD_DIR) / key
    library = out / ("libxbd-san.so" if sanitize else "libxbd.so")
    warnings_file = out / "warnings.txt"
    if library.is_file() and warnings_file.is_file():
        warnings = tuple(line for line in warnings_file.read_text().splitlines() if line)
        return BuildResult(library, src, warnings, sanitize)
    out.mkdir(parents=True, exist_ok=True)
    cc = _compiler()
    include = SHIM_DIR / "include"
    common = ["-std=gnu11", "-fPIC", "-g", "-O1", "-Wall", "-Wextra", f"-I{include}"]
    if sanitize:
        common += list(SANITIZE_FLAGS)
    driver_obj = out / "blkfront.o"
    warnings_seen: list[str] = []
    driver_cmd = [
        cc,
        *common,
        "-include",
        str(include / "xbd_shim.h"),
        "-c",
        "-o",
        str(driver_obj),
        str(src),
    ]
    proc = subprocess.run(driver_cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"compiling {src} against the shim failed:\n{proc.stderr}")
    warnings_seen += [line for line in proc.stderr.splitlines() if "warning:" in line]
    objects = [driver_obj]
    for shim_src in _shim_sources():
        obj = out / (shim_src.stem + ".o")
        proc = subprocess.run(
            [cc, *common, "-c", "-o", str(obj), str(shim_src)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise BuildError(f"compiling the shim {shim_src} failed:\n{proc.stderr}")
        objects.append(obj)
    link = [
        cc,
        "-shared",
        "-Wl,-Bsymbolic",
        *(SANITIZE_FLAGS if sanitize else ()),
        "-o",
        str(library),
        *map(str, objects),
    ]
    proc = subprocess.run(link, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"linking {library} failed:\n{proc.stderr}")
    warnings_file.write_text("\n".join(warnings_seen) + "\n")
    return BuildResult(library, src, tuple(warnings_seen), sanitize)


def sanitizer_preload() -> str | None:
    """``LD_PRELOAD`` value for the sanitizer runtimes (None if the compiler lacks them)."""
    libs = []
    for name in ("libasan.so", "libubsan.so"):
        proc = subprocess.run(
            [_compiler(), f"-print-file-name={name}"], capture_output=True, text=True, check=False
        )
        path = proc.stdout.strip()
        if not path or not os.path.isabs(path) or not os.path.exists(path):
            return None
        libs.append(path)
    return ":".join(libs)


# ---------------------------------------------------------------------- the library
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
    "xbd_h_sysctl_features": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_int]),
    "xbd_h_ring_token": (ctypes.c_void_p, []),
    "xbd_h_set_ring_index_start": (None, [ctypes.c_uint]),
}

_LOADED: dict[Path, ctypes.CDLL] = {}
_OWNER: dict[Path, CPlatform] = {}


def _load(library: Path) -> ctypes.CDLL:
    lib = _LOADED.get(library)
    if lib is None:
        lib = ctypes.CDLL(str(library))
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
        _LOADED[library] = lib
    return lib


@dataclass(frozen=True)
class BioStatus:
    """A bio as ``biodone`` left it."""

    done_count: int
    bio_error: int
    bio_flags: int
    bio_resid: int


@dataclass(frozen=True)
class BackendRequest:
    """A request the back end took off the ring (``blkif_request`` as published)."""

    id: int
    operation: int
    io_op: int
    sector_number: int
    nr_segments: int
    handle: int
    grefs: tuple[int, ...]
    malformed: bool


@dataclass
class XenStoreLog:
    """The harness's xenstore: values, successful writes in order, pending watch tokens."""

    values: dict[str, str] = field(default_factory=dict)
    writes: list[tuple[str, str]] = field(default_factory=list)
    watches: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    write_errors: dict[str, int] = field(default_factory=dict)

    def write(self, path: str, value: str) -> int:
        """Write; fire watches (coalesced per token, as the reference does)."""
        error = self.write_errors.pop(path, 0)
        if error:
            return error
        self.values[path] = value
        self.writes.append((path, value))
        for token, watched in self.watches.items():
            if (path == watched or path.startswith(watched + "/")) and token not in self.pending:
                self.pending.append(token)
        return 0

    def register_watch(self, path: str, token: str) -> None:
        """Register; one initial event, as xenstored sends."""
        self.watches[token] = path
        if token not in self.pending:
            self.pending.append(token)


class CPlatform:
    """The compiled driver on a harness-driven platform (one live instance per library).

    The public methods are the environment's events; none runs anything the test did not ask
    for, except what the C driver itself calls synchronously.
    """

    def __init__(
        self,
        built: BuildResult,
        *,
        backend_config: BackendConfig | None = None,
        grant_frames: int = 4,
        vdevice: int | str = 51712,
        devid: int = 51712,
        guest_domid: int = 1,
        backend_domid: int = 0,
        hvm_domain: bool = False,
        pv_disks_disabled: bool = False,
        mutex_recursion_fatal: bool = True,
        maxphys: int = 1024 * 1024,
        max_yields: int = 10_000,
        xbd_enable_indirect: int = 1,
    ) -> None:
        self.built = built
        self.lib = _load(built.library)
        self.config = backend_config if backend_config is not None else BackendConfig()
        self.vdevice = vdevice
        self.devid = devid
        self.guest_domid = guest_domid
        self.backend_domid = backend_domid
        self.front_path = f"device/vbd/{devid}"
        self.back_path = f"/local/domain/{backend_domid}/backend/vbd/{guest_domid}/{devid}"
        self.xenstore = XenStoreLog()
        self.log: list[str] = []
        self.backend_state = 1
        self.backend_errors: list[str] = []
        self.callback_errors: list[BaseException] = []
        #: answers of msleep, in order (0 = woken, EWOULDBLOCK = timed out); default timeout
        self.msleep_answers: list[int] = []
        #: run before each msleep answer (e.g. let the back end answer and interrupt)
        self.on_msleep: Callable[[], None] | None = None
        self.respond_on_yield = True
        self.bios: list[int] = []
        _OWNER[built.library] = self
        self._keep = (
            _XS_READ(self._xs_read),
            _XS_WRITE(self._xs_write),
            _LOG(self._log),
            _MSLEEP(self._msleep),
            _YIELD(self._yield),
        )
        lib = self.lib
        lib.xbd_h_reset(grant_frames * 512)
        lib.xbd_h_set_callbacks(*self._keep)
        lib.xbd_h_set_tunables(
            int(hvm_domain),
            int(pv_disks_disabled),
            int(mutex_recursion_fatal),
            maxphys,
            max_yields,
            0,
        )
        lib.xbd_h_tunable_enable_indirect()[0] = xbd_enable_indirect
        lib.xbd_h_be_configure(
            self.config.sectors, backend_domid, int(self.config.barrier), int(self.config.flush)
        )

    # ------------------------------------------------------------------ callbacks from C
    def _guard(self) -> None:
        if _OWNER.get(self.built.library) is not self:
            raise XbdspecError("this CPlatform was replaced by a newer one on the same library")

    def _xs_read(self, path: bytes, buf: int, buflen: int) -> int:
        try:
            value = self.xenstore.values.get(path.decode())
            if value is None:
                return -1
            data = value.encode()[: buflen - 1]
            ctypes.memmove(buf, data, len(data))
            return len(data)
        except BaseException as exc:
            self.callback_errors.append(exc)
            return -1

    def _xs_write(self, path: bytes, value: bytes) -> int:
        try:
            return self.xenstore.write(path.decode(), value.decode())
        except BaseException as exc:
            self.callback_errors.append(exc)
            return 5

    def _log(self, line: bytes) -> None:
        self.log.append(line.decode(errors="replace"))

    def _msleep(self) -> int:
        try:
            if self.on_msleep is not None:
                self.on_msleep()
            return self.msleep_answers.pop(0) if self.msleep_answers else EWOULDBLOCK
        except BaseException as exc:
            self.callback_errors.append(exc)
            return EWOULDBLOCK

    def _yield(self) -> None:
        try:
            if self.respond_on_yield:
                self.backend_fetch()
                self.respond_all()
        except BaseException as exc:
            self.callback_errors.append(exc)

    # ------------------------------------------------------------------ calling the driver
    def _call(self, where: str, kind: int) -> None:
        if self.callback_errors:
            error = self.callback_errors.pop(0)
            raise XbdspecError(f"a harness callback failed during {where}: {error!r}") from error
        if kind > 0:
            message = (self.lib.xbd_h_fault_message() or b"").decode(errors="replace")
            raise CDriverFault(FAULT_KINDS.get(kind, f"fault{kind}"), message, where)

    @property
    def last_result(self) -> int:
        """The return value of the last driver method called (probe, attach, ...)."""
        return int(self.lib.xbd_h_last_result())

    # ------------------------------------------------------------------ tool stack
    def plug(self) -> None:
        """The tool stack creates both nodes (``Initialising``) and the device."""
        front, back = self.front_path, self.back_path
        for path, value in toolstack_nodes(
            front, back, self.vdevice, self.guest_domid, self.backend_domid
        ).items():
            self.xenstore.write(path, value)
        self.lib.xbd_h_plug(front.encode(), back.encode(), self.backend_domid, b"vbd")

    def probe(self) -> int:
        """``xbd_probe``; its return value."""
        self._call("xbd_probe", self.lib.xbd_h_probe())
        return self.last_result

    def attach(self) -> int:
        """``xbd_attach``; its return value."""
        self._call("xbd_attach", self.lib.xbd_h_attach())
        return self.last_result

    def register_watches(self) -> None:
        """Xenbus watches the back end's state; the back end watches the front end's."""
        self.xenstore.register_watch(f"{self.back_path}/state", FRONT_WATCH)
        self.xenstore.register_watch(f"{self.front_path}/state", BACK_WATCH)

    def deliver_watch(self) -> bool:
        """Deliver the oldest pending watch event; False if none."""
        if not self.xenstore.pending:
            return False
        token = self.xenstore.pending.pop(0)
        if token == FRONT_WATCH:
            self.backend_changed(self._read_state(self.back_path))
        elif token == BACK_WATCH:
            self.on_frontend_changed()
        return True

    def settle(self, limit: int = 1000) -> int:
        """Deliver watch events until none is pending."""
        count = 0
        while self.deliver_watch():
            count += 1
            if count > limit:
                raise CDriverFault("KernelHang", f"more than {limit} watch events", "xenwatch")
        return count

    def boot(self) -> None:
        """Plug, probe, attach, run the handshake to ``Connected`` on both sides."""
        self.plug()
        if self.probe() != 0:
            raise CDriverFault("KernelHang", "xbd_probe declined the device", "boot")
        if self.attach() != 0:
            raise CDriverFault("KernelHang", "xbd_attach failed", "boot")
        self.register_watches()
        self.backend_start()
        self.settle()

    def backend_changed(self, state: int) -> None:
        """``xbd_backend_changed(dev, state)`` (the watch on the back end's state fired)."""
        self._call(f"xbd_backend_changed({state})", self.lib.xbd_h_backend_changed(int(state)))

    def _read_state(self, node: str) -> int:
        text = self.xenstore.values.get(f"{node}/state")
        try:
            return int((text or "").strip())
        except ValueError:
            return 6

    # ------------------------------------------------------------------ the back end's handshake
    def _back_write(self, key: str, value: str | None) -> None:
        path = f"{self.back_path}/{key}"
        if value is None:
            self.xenstore.values.pop(path, None)
        else:
            self.xenstore.write(path, value)

    def backend_set_state(self, state: int) -> None:
        """The back end switches state (writes its ``state`` key)."""
        self.backend_state = int(state)
        self._back_write("state", str(int(state)))

    def backend_start(self) -> None:
        """Publish features and limits, then ``InitWait``."""
        for key, value in self.config.initwait_keys().items():
            self._back_write(key, value)
        self.backend_set_state(2)

    def on_frontend_changed(self) -> None:
        """The back end's watch on the front end's state fired."""
        front = self._read_state(self.front_path)
        if front in (3, 4) and self.backend_state in (1, 2):
            self.backend_connect_ring()
        elif front == 5 and self.backend_state not in (5, 6):
            self.backend_set_state(5)
        elif front == 6 and self.backend_state == 5:
            self.lib.xbd_h_be_disconnect()
            self.backend_set_state(6)

    def _front_uint(self, key: str) -> int | None:
        text = self.xenstore.values.get(f"{self.front_path}/{key}")
        try:
            return int(text) if text is not None else None
        except ValueError:
            return None

    def backend_connect_ring(self) -> None:
        """Read the transport keys, map the ring, publish the disk, ``Connected``."""
        order = self._front_uint("ring-page-order")
        pages = (
            1 << order
            if order is not None and order < 16
            else (self._front_uint("num-ring-pages") or 1)
        )
        ref = self._front_uint("ring-ref") if pages == 1 else self._front_uint("ring-ref0")
        if ref is None:
            ref = self._front_uint("ring-ref0")
        if ref is None or self._front_uint("event-channel") is None:
            self.backend_errors.append("reading ring-ref / event-channel")
            self.backend_set_state(5)
            return
        if self.lib.xbd_h_be_connect(ref, pages) != 0:
            self.backend_errors.append("mapping ring-ref")
            self.backend_set_state(5)
            return
        for key, value in self.config.connected_keys().items():
            self._back_write(key, value)
        self.backend_set_state(4)

    # ------------------------------------------------------------------ the data path
    def strategy(
        self,
        cmd: int = 1,
        pblkno: int = 0,
        nbytes: int = 4096,
        *,
        flags: int = 0,
        data: bytes | None = None,
        page_offset: int = 0,
    ) -> int:
        """A new bio handed to ``xbd_strategy`` (BIO_READ=1, BIO_WRITE=2, BIO_FLUSH=5); its id."""
        bio = self.lib.xbd_h_bio_new(cmd, flags, pblkno, nbytes, page_offset)
        if bio < 0:
            raise XbdspecError("the shim's bio table is full (65536 bios per platform)")
        if data is not None:
            ctypes.memmove(self.lib.xbd_h_bio_data(bio), data[:nbytes], min(len(data), nbytes))
        self.bios.append(bio)
        kind = self.lib.xbd_h_strategy(bio)
        if kind < 0:
            raise XbdspecError("xbd_strategy: the driver has no disk yet (boot first)")
        self._call(f"xbd_strategy(bio={bio})", kind)
        return int(bio)

    def bio_data(self, bio: int, nbytes: int) -> bytes:
        """The bio's buffer."""
        return ctypes.string_at(self.lib.xbd_h_bio_data(bio), nbytes)

    def bio(self, bio: int) -> BioStatus:
        """A bio's completion status."""
        out = (ctypes.c_long * 4)()
        self.lib.xbd_h_bio_status(bio, out)
        return BioStatus(*(int(v) for v in out))

    def completed(self) -> list[int]:
        """Bio ids in the order ``biodone`` saw them."""
        count = int(self.lib.xbd_h_completed(None, 0))
        out = (ctypes.c_int * max(count, 1))()
        self.lib.xbd_h_completed(out, count)
        return [int(out[i]) for i in range(count)]

    def deliver_interrupt(self, force: bool = False) -> bool:
        """Run ``xbd_int`` if the back end notified the front end (or ``force``)."""
        kind = self.lib.xbd_h_deliver_interrupt(int(force))
        if kind < 0:
            return False
        self._call("xbd_int", kind)
        return True

    def backend_fetch(self) -> int:
        """The back end takes every published request; how many."""
        return int(self.lib.xbd_h_be_fetch())

    def pending(self) -> list[BackendRequest]:
        """The requests the back end holds, oldest first."""
        out = (ctypes.c_uint64 * 8)()
        grefs = (ctypes.c_uint32 * 4096)()
        requests = []
        for i in range(self.lib.xbd_h_be_pending()):
            self.lib.xbd_h_be_describe(i, out, grefs, 4096)
            nseg = int(out[6])
            requests.append(
                BackendRequest(
                    int(out[0]),
                    int(out[1]),
                    int(out[2]),
                    int(out[3]),
                    int(out[4]),
                    int(out[5]),
                    tuple(int(grefs[k]) for k in range(min(nseg, 4096))),
                    bool(out[7]),
                )
            )
        return requests

    def respond(self, index: int = 0, status: int | None = None, push: bool = True) -> int:
        """Answer pending request ``index`` (performing it unless ``status`` is forced)."""
        result = self.lib.xbd_h_be_respond(index, int(status is not None), status or 0, int(push))
        if result == -100:
            raise XbdspecError(f"the back end has no pending request {index}")
        return int(result)

    def respond_all(self, order: list[int] | None = None) -> int:
        """Answer every pending request (in ``order`` of indices if given), one push."""
        count = self.lib.xbd_h_be_pending()
        indices = list(range(count)) if order is None else list(order)
        # respond() removes from the pending list: answer by shifting indices
        remaining = list(range(count))
        for index in indices:
            self.respond(remaining.index(index), push=False)
            remaining.remove(index)
        if count:
            self.lib.xbd_h_be_push()
        return int(count)

    def push(self) -> bool:
        """Publish written responses; True if the front end was notified."""
        return bool(self.lib.xbd_h_be_push())

    def raw_response(self, req_id: int, operation: int = 0, status: int = 0) -> None:
        """A hostile back end's response with any id, pushed."""
        self.lib.xbd_h_be_raw_response(req_id, operation, status)

    def disk(self, offset: int, nbytes: int) -> bytes:
        """The back end's RAM disk."""
        return ctypes.string_at(self.lib.xbd_h_be_disk() + offset, nbytes)

    # ------------------------------------------------------------------ environment choices
    def dma_next(self, *modes: str) -> None:
        """The outcomes of the next bus_dma loads, in order (then IMMEDIATE)."""
        for mode in modes:
            self.lib.xbd_h_dma_push_mode(DMA_MODES[mode])

    def run_deferred(self, index: int = 0, error: int = 0) -> bool:
        """Run deferred load ``index``'s callback (``error``: a late failure)."""
        kind = self.lib.xbd_h_run_deferred(index, error)
        if kind < 0:
            return False
        self._call(f"bus_dma callback (deferred load {index})", kind)
        return True

    def deferred_count(self) -> int:
        """Loads waiting for their callback."""
        return int(self.lib.xbd_h_dma_deferred_count())

    def grants_take(self, count: int) -> None:
        """Another user takes ``count`` grant references (a shortage for the driver)."""
        if self.lib.xbd_h_gnttab_take(count) != 0:
            raise XbdspecError(
                f"cannot take {count} grant references: only {self.grant_free_count()} free"
            )

    def grants_give_back(self) -> None:
        """...and returns them (the free callbacks run)."""
        self._call("gnttab_free_grant_references", self.lib.xbd_h_gnttab_give_back())

    def grant_free_count(self) -> int:
        """``gnttab_free_count``."""
        return int(self.lib.xbd_h_gnttab_free_count())

    def counter(self, name: str) -> int:
        """Event-channel and kernel counters."""
        names = [
            "to_backend",
            "to_frontend",
            "delivered",
            "pending",
            "port",
            "wakeups",
            "yields",
            "io_lock_recursions",
        ]
        return int(self.lib.xbd_h_evtchn_counter(names.index(name)))

    # ------------------------------------------------------------------ other entry points
    def open(self) -> int:
        """``xbd_open``."""
        self._call("xbd_open", self.lib.xbd_h_open())
        return self.last_result

    def close(self) -> int:
        """``xbd_close``."""
        self._call("xbd_close", self.lib.xbd_h_close())
        return self.last_result

    def suspend(self) -> int:
        """``xbd_suspend`` (``msleep`` answers from :attr:`msleep_answers`)."""
        self._call("xbd_suspend", self.lib.xbd_h_suspend())
        return self.last_result

    def suspend_start(self) -> int | None:
        """``xbd_suspend`` on its own stack: its result, or ``None`` while it sleeps in
        ``msleep`` (continue it with :meth:`suspend_continue`)."""
        kind = self.lib.xbd_h_sleeper_start()
        if kind == -3:
            raise XbdspecError("xbd_suspend is already sleeping")
        if kind == -2:
            return None
        self._call("xbd_suspend", kind)
        return self.last_result

    def suspend_continue(self, timed_out: bool) -> int | None:
        """The sleeping ``xbd_suspend``'s ``msleep`` returns (woken, or ``EWOULDBLOCK``)."""
        kind = self.lib.xbd_h_sleeper_continue(EWOULDBLOCK if timed_out else 0)
        if kind == -3:
            raise XbdspecError("xbd_suspend is not sleeping")
        if kind == -2:
            return None
        self._call("xbd_suspend (after msleep)", kind)
        return self.last_result

    @property
    def sleeping(self) -> bool:
        """``xbd_suspend`` sleeps in ``msleep``."""
        return bool(self.lib.xbd_h_sleeper_state(0))

    @property
    def sleeper_woken(self) -> bool:
        """A ``wakeup`` reached the sleeper since it went to sleep."""
        return bool(self.lib.xbd_h_sleeper_state(1))

    def backend_reset(self) -> None:
        """A fresh back end (resume on another host): keys gone, ring gone, Initialising."""
        for key in BACKEND_KEYS:
            self.xenstore.values.pop(f"{self.back_path}/{key}", None)
        self.lib.xbd_h_be_disconnect()
        self.backend_set_state(1)

    def resume(self) -> int:
        """``xbd_resume``."""
        self._call("xbd_resume", self.lib.xbd_h_resume())
        return self.last_result

    def sysctl_features(self) -> str:
        """``hw.xbd.N.features``."""
        buf = ctypes.create_string_buffer(80)
        self._call("xbd_sysctl_features", self.lib.xbd_h_sysctl_features(buf, 80))
        return buf.value.decode()

    # ------------------------------------------------------------------ observations
    def softc(self) -> dict[str, int]:
        """The softc's fields (:data:`SOFTC_FIELDS`)."""
        out = (ctypes.c_long * len(SOFTC_FIELDS))()
        if self.lib.xbd_h_softc(out) != 0:
            raise XbdspecError("no device plugged")
        return {name: int(out[i]) for i, name in enumerate(SOFTC_FIELDS)}

    def command_flags(self) -> list[int]:
        """Each command's ``cm_flags`` (its queue in the low byte)."""
        out = (ctypes.c_long * 2048)()
        n = self.lib.xbd_h_commands(out, 2048)
        return [int(out[i]) for i in range(min(n, 2048))]

    def front_writes(self) -> list[tuple[str, str]]:
        """The xenstore writes under the front end's node (and ``error/``)."""
        return [(p, v) for p, v in self.xenstore.writes if not p.startswith(self.back_path)]


# ---------------------------------------------------------------------- C driver vs the reference
#: a scripted step: (event, arguments); the same script drives both implementations
Script = list[tuple[str, dict[str, Any]]]


@dataclass
class Observed:
    """What one implementation showed after one step (``None`` fields: not checked)."""

    fault: str | None
    front_writes: list[tuple[str, str]]
    requests: list[tuple[int, int, int, int, int, tuple[int, ...]]]
    completions: list[tuple[int, int, int, int]]
    softc: dict[str, int]


def _ref_step(platform: Any, bios: list[Any], event: str, args: dict[str, Any]) -> None:
    from xbdspec.reference import Bio, strategy
    from xbdspec.reference.busdma import MapMode

    if event == "boot":
        platform.boot()
    elif event == "strategy":
        sc = platform.softc()
        nbytes = args.get("nbytes", 4096)
        buffer = platform.mem.alloc(nbytes, args.get("offset", 0)) if nbytes else None
        if buffer is not None and args.get("fill") is not None:
            buffer.view()[:] = bytes([args["fill"]]) * nbytes
        bio = Bio(
            args.get("cmd", 2),
            args.get("sector", 0),
            nbytes,
            args.get("flags", 0),
            buffer,
            bio_disk=sc.xbd_disk,
        )
        bios.append(bio)
        strategy(bio)
    elif event == "dma":
        platform.busdma.next_modes.extend(MapMode[m] for m in args["modes"])
    elif event == "run_deferred":
        platform.busdma.run_deferred(args.get("index", 0), error=args.get("error", 0))
    elif event == "fetch":
        platform.backend.fetch()
    elif event == "respond_all":
        platform.backend.respond_all(args.get("order"))
    elif event == "respond":
        req = platform.backend.pending[args.get("index", 0)]
        platform.backend.respond(req, args.get("status"), push=args.get("push", True))
    elif event == "interrupt":
        platform.deliver_interrupt()
    elif event == "grants_take":
        platform._xbd_stolen = platform.gnttab.get_free_entries(args["count"])
    elif event == "grants_give_back":
        platform.gnttab.gnttab_free_grant_references(platform._xbd_stolen)
    else:
        raise XbdspecError(f"unknown scripted event {event!r}")


def _c_step(p: CPlatform, event: str, args: dict[str, Any]) -> None:
    if event == "boot":
        p.boot()
    elif event == "strategy":
        nbytes = args.get("nbytes", 4096)
        fill = args.get("fill")
        p.strategy(
            args.get("cmd", 2),
            args.get("sector", 0),
            nbytes,
            flags=args.get("flags", 0),
            data=bytes([fill]) * nbytes if fill is not None else None,
            page_offset=args.get("offset", 0),
        )
    elif event == "dma":
        p.dma_next(*args["modes"])
    elif event == "run_deferred":
        p.run_deferred(args.get("index", 0), args.get("error", 0))
    elif event == "fetch":
        p.backend_fetch()
    elif event == "respond_all":
        p.respond_all(args.get("order"))
    elif event == "respond":
        p.respond(args.get("index", 0), args.get("status"), args.get("push", True))
    elif event == "interrupt":
        p.deliver_interrupt()
    elif event == "grants_take":
        p.grants_take(args["count"])
    elif event == "grants_give_back":
        p.grants_give_back()
    else:
        raise XbdspecError(f"unknown scripted event {event!r}")


def _ref_observe(
    platform: Any, bios: list[Any], fault: str | None, seen_writes: int, seen_reqs: int
) -> Observed:
    writes = [
        (p, v)
        for p, v in platform.xenstore.writes[seen_writes:]
        if not p.startswith(platform.back_path)
    ]
    reqs = [
        (
            r.id,
            r.operation,
            r.io_op,
            r.sector_number,
            r.nr_segments,
            tuple(g for g, _, _ in r.segments),
        )
        for r in platform.backend.pending[seen_reqs:]
    ]
    comps = [
        (bios.index(b), b.bio_error, b.bio_flags, b.bio_resid)
        for b in platform.completed
        if b in bios
    ]
    softc: dict[str, int] = {}
    if platform.dev is not None and platform.dev.softc is not None:
        sc = platform.dev.softc
        softc = {
            "xbd_state": int(sc.xbd_state),
            "xbd_flags": int(sc.xbd_flags),
            "xbd_qfrozen_cnt": sc.xbd_qfrozen_cnt,
            **{
                f"q_{n}": q.q_length
                for n, q in zip(("free", "ready", "busy", "complete"), sc.xbd_cm_q, strict=False)
            },
            "q_bio": len(sc.xbd_bioq),
            "grants_free": platform.gnttab.free_count,
        }
    return Observed(fault, writes, reqs, comps, softc)


def _c_observe(p: CPlatform, fault: str | None, seen_writes: int, seen_reqs: int) -> Observed:
    writes = [
        (path, v) for path, v in p.xenstore.writes[seen_writes:] if not path.startswith(p.back_path)
    ]
    reqs = [
        (r.id, r.operation, r.io_op, r.sector_number, r.nr_segments, r.grefs)
        for r in p.pending()[seen_reqs:]
    ]
    comps = []
    for bio in p.completed():
        status = p.bio(bio)
        comps.append((p.bios.index(bio), status.bio_error, status.bio_flags, status.bio_resid))
    softc: dict[str, int] = {}
    try:
        raw = p.softc()
        softc = {
            k: raw[k]
            for k in (
                "xbd_state",
                "xbd_flags",
                "xbd_qfrozen_cnt",
                "q_free",
                "q_ready",
                "q_busy",
                "q_complete",
                "q_bio",
            )
        }
        softc["grants_free"] = p.grant_free_count()
    except XbdspecError:
        pass
    return Observed(fault, writes, reqs, comps, softc)


@dataclass
class Difference:
    """The first step where the C driver and the reference disagree."""

    step: int
    event: str
    field: str
    reference: Any
    c_driver: Any

    def __str__(self) -> str:
        return (
            f"step {self.step} {self.event}: {self.field}: "
            f"reference={self.reference!r} C={self.c_driver!r}"
        )


def compare_with_reference(
    built: BuildResult,
    script: Script,
    *,
    backend_config: BackendConfig | None = None,
    mutex_recursion_fatal: bool = True,
) -> tuple[list[tuple[Observed, Observed]], Difference | None]:
    """Run ``script`` on the reference and on the C driver; every step's observations and
    the first difference (``None``: they agree on every observation)."""
    import copy

    from xbdspec.reference import DriverFault, Platform, Tunables

    config = backend_config if backend_config is not None else BackendConfig()
    ref = Platform(
        backend_config=copy.deepcopy(config),
        tunables=Tunables(mutex_recursion_fatal=mutex_recursion_fatal),
    )
    cp = CPlatform(
        built, backend_config=copy.deepcopy(config), mutex_recursion_fatal=mutex_recursion_fatal
    )
    ref_bios: list[Any] = []
    trail: list[tuple[Observed, Observed]] = []
    rw = cw = 0
    for index, (event, args) in enumerate(script):
        ref_fault = c_fault = None
        try:
            _ref_step(ref, ref_bios, event, args)
        except DriverFault as fault:
            ref_fault = type(fault).__name__
        try:
            _c_step(cp, event, args)
        except CDriverFault as fault:
            c_fault = fault.kind
        ro = _ref_observe(ref, ref_bios, ref_fault, rw, 0)
        co = _c_observe(cp, c_fault, cw, 0)
        rw, cw = len(ref.xenstore.writes), len(cp.xenstore.writes)
        trail.append((ro, co))
        for name in ("fault", "front_writes", "requests", "completions", "softc"):
            if getattr(ro, name) != getattr(co, name):
                return trail, Difference(index, event, name, getattr(ro, name), getattr(co, name))
        if ref_fault is not None:
            break
    return trail, None


# ---------------------------------------------------------------------- child-process scenarios
def _scenario_io(p: CPlatform) -> dict[str, Any]:
    p.boot()
    bio = p.strategy(2, 8, 8192, data=bytes(range(256)) * 32)
    p.backend_fetch()
    p.respond_all()
    p.deliver_interrupt()
    rd = p.strategy(1, 8, 8192)
    p.backend_fetch()
    p.respond_all()
    p.deliver_interrupt()
    return {"ok": p.bio_data(rd, 8192) == bytes(range(256)) * 32, "write": p.bio(bio).bio_error}


def _serve(p: CPlatform) -> None:
    p.backend_fetch()
    p.respond_all()
    p.deliver_interrupt()


def _scenario_workout(p: CPlatform) -> dict[str, Any]:
    """Most driver paths without a fault: I/O (direct and indirect), reordered responses,
    deferred and failed mappings, a grant shortage, a single-stepped write, a flush, a
    suspend drained through msleep, the back end closing."""
    p.boot()
    big = bytes(range(256)) * 256
    p.strategy(2, 0, len(big), data=big)
    _serve(p)
    rd = p.strategy(1, 0, len(big))
    _serve(p)
    for i in range(40):
        p.strategy(1, 8 * i, 4096, page_offset=512 * (i % 8) if i % 3 == 0 else 0)
    p.backend_fetch()
    p.respond_all(list(reversed(range(32))))
    p.deliver_interrupt()
    _serve(p)
    p.dma_next("DEFERRED")
    p.strategy(1, 0, 4096)
    p.strategy(1, 8, 4096)
    p.run_deferred()
    _serve(p)
    _serve(p)
    p.dma_next("FAIL")
    p.strategy(2, 0, 4096)
    p.grants_take(p.grant_free_count() - 5)
    p.strategy(1, 0, 4096)
    p.grants_give_back()
    _serve(p)
    p.strategy(2, 0, 4096, flags=0x08)
    p.strategy(5, 0, 0)
    _serve(p)
    _serve(p)
    p.strategy(1, 0, 4096)
    p.on_msleep = lambda: _serve(p)
    p.msleep_answers = [0]
    suspended = p.suspend()
    p.backend_set_state(5)
    p.settle()
    return {
        "read_ok": p.bio_data(rd, len(big)) == big,
        "suspend": suspended,
        "completed": len(p.completed()),
    }


def _scenario_boot(p: CPlatform) -> dict[str, Any]:
    p.boot()
    return {"ring_pages": p.softc()["xbd_ring_pages"]}


def _scenario_campaign(p: CPlatform) -> dict[str, Any]:
    """A short random conformance campaign on this build (through the adapter)."""
    from xbdspec.conformance import FULL, Campaign
    from xbdspec.conformance.reference_adapter import reference_sizes

    built = p.built
    campaign = Campaign(lambda: CDriverImplementation(built), reference_sizes(), FULL, 3, 60, None)
    campaign.run(examples=20)
    twins = [
        d.fault
        for d, _s, _p, _n in campaign.divergences.values()
        if d.fault and "differs from the reference" in d.fault
    ]
    return {"examples": campaign.examples, "steps": campaign.steps, "twin_differences": twins}


#: name -> (the back end's configuration, what to run)
SCENARIOS: dict[str, tuple[Callable[[], BackendConfig], Callable[[CPlatform], dict[str, Any]]]] = {
    "io": (BackendConfig, _scenario_io),
    "campaign": (BackendConfig, _scenario_campaign),
    "workout": (lambda: BackendConfig(max_indirect_segments=64), _scenario_workout),
    "ring-order-31": (
        lambda: BackendConfig(overrides={"max-ring-page-order": "31"}),
        _scenario_boot,
    ),
    "ring-order-32": (
        lambda: BackendConfig(overrides={"max-ring-page-order": "32"}),
        _scenario_boot,
    ),
    "huge-sector-size": (lambda: BackendConfig(sector_size=2 * 1048576), _scenario_boot),
}


def run_scenario(name: str, built: BuildResult) -> dict[str, Any]:
    """Run scenario ``name``; its result, with ``fault`` if the driver faulted."""
    config, body = SCENARIOS[name]
    p = CPlatform(built, backend_config=config())
    result: dict[str, Any] = {"scenario": name}
    try:
        result.update(body(p))
    except CDriverFault as fault:
        result["fault"] = {"kind": fault.kind, "message": fault.message, "where": fault.where}
    return result


def _iter_warnings(result: BuildResult) -> Iterator[str]:
    yield from result.warnings


def main(argv: list[str] | None = None) -> int:
    """``python -m xbdspec.cdriver build [SOURCE] | scenario NAME --lib PATH``."""
    parser = argparse.ArgumentParser(prog="python -m xbdspec.cdriver")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compile a blkfront.c against the shim")
    b.add_argument("source", nargs="?")
    b.add_argument("--sanitize", action="store_true")
    s = sub.add_parser("scenario", help="run one scenario and print JSON")
    s.add_argument("name", choices=sorted(SCENARIOS))
    s.add_argument("--source")
    s.add_argument("--sanitize", action="store_true")
    args = parser.parse_args(argv)
    try:
        built = build(args.source, sanitize=args.sanitize)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command == "build":
        for line in _iter_warnings(built):
            print(line)
        print(f"built {built.library} ({len(built.warnings)} warnings)")
        return 0
    print(json.dumps(run_scenario(args.name, built)))
    sys.stdout.flush()
    return 0


# ---------------------------------------------------------------------- the adapter contract
#: Model events the C adapter does not offer (none: ``xbd_suspend`` sleeps on its own stack).
C_UNSUPPORTED_EVENTS: frozenset[str] = frozenset()
_EVENTS: frozenset[str] = frozenset(
    {
        "unplug",
        "backend_publish",
        "backend_skip_initwait",
        "frontend_watch",
        "backend_offline",
        "backend_consume",
        "backend_respond",
        "backend_watch",
        "open",
        "close",
        "strategy",
        "interrupt",
        "dma_callback",
        "dma_callback_error",
        "grants_returned",
        "suspend",
        "suspend_drained",
        "suspend_timeout",
        "resume",
    }
)


class CDriverImplementation:
    """The compiled seed behind ``xbdspec.conformance``'s :class:`Implementation` contract.

    The C driver runs in lock-step with the reference driver under the same environment
    (the same size restrictions as ``ReferenceImplementation``: commands cut by
    ``bus_dmamap_create`` failing, the ring's entries set to the model's slots, a grant
    pool of the model's size with the ring granted from a reserve, free callbacks deferred
    to the ``grants_returned`` event, one page a bio).  After every event the two must show
    the same concrete observations (:func:`concrete_view`); the model's abstract state is
    then the reference's refinement mapping.  A difference is reported as a fault naming
    the first differing field, so the harness stops on it.
    """

    def __init__(self, built: BuildResult | None = None) -> None:
        from xbdspec.conformance.reference_adapter import ReferenceImplementation

        self.built = built if built is not None else build()
        self.ref = ReferenceImplementation(name="reference (twin of the C driver)")
        self.c: CPlatform | None = None
        self.sizes: Any = None
        self.taken: set[int] = set()
        self.ring_token = 0
        self.bio_ids: dict[int, int] = {}
        self.fault: str | None = None
        self.steps = 0

    def capabilities(self) -> Any:
        import dataclasses as dc

        caps = self.ref.capabilities()
        return dc.replace(caps, name="c-driver", events=_EVENTS - caps.refuses)

    def preferred_sizes(self) -> Any:
        """The reference's sizes (the C driver runs under the same restrictions)."""
        return self.ref.preferred_sizes()

    def reset(self, sizes: Any) -> Any:
        from xbdspec.reference.constants import NR_RESERVED_ENTRIES

        self.ref.reset(sizes)
        self.sizes = sizes
        config = BackendConfig(barrier=False, flush=False)
        c = CPlatform(self.built, backend_config=config)
        reserve = 1 + sizes.suspends
        c.lib.xbd_h_gnttab_configure(NR_RESERVED_ENTRIES + sizes.grants + reserve, reserve, 1)
        c.lib.xbd_h_dma_fail_create(0, sizes.commands)
        c.lib.xbd_h_set_ring_index_start(sizes.ring_base & 0xFFFF_FFFF)
        self.c = c
        self.taken = set()
        self.ring_token = 0
        self.bio_ids = {}
        self.fault = None
        self.steps = 0
        c.plug()
        if c.probe() != 0 or c.attach() != 0:
            raise XbdspecError("the C driver did not attach: " + "; ".join(c.log))
        c.register_watches()
        self._front_watch()
        self._back_watch()
        return self._compare("reset")

    def apply(self, event: str, params: Any, env: Any) -> Any:
        from xbdspec.conformance.contract import UnsupportedEvent

        if self.c is None:
            raise XbdspecError("apply before reset")
        if event not in _EVENTS:
            raise UnsupportedEvent(f"the C driver adapter does not offer event {event!r}")
        if self.fault is not None:
            return self.observe()
        self.ref.apply(event, params, env)
        c = self.c
        c.lib.xbd_h_dma_clear_modes()
        c.dma_next(*(m.name if m.name != "FAILED" else "FAIL" for m in env.dma))
        c_fault = None
        try:
            getattr(self, f"_on_{event}")(**params)
        except CDriverFault as fault:
            c_fault = fault
        finally:
            c.lib.xbd_h_dma_clear_modes()
        self._after_event()
        self.steps += 1
        return self._compare(f"{event}({params})", c_fault)

    def observe(self) -> Any:
        from xbdspec.conformance.contract import Observation

        base = self.ref.observe()
        return Observation(
            fields=base.fields, fault=self.fault or base.fault, complete=base.complete
        )

    def close(self) -> None:
        self.c = None
        self.ref.close()

    # ------------------------------------------------------------------ the comparison
    def _compare(self, where: str, c_fault: CDriverFault | None = None) -> Any:
        ref_fault = self.ref.fault
        c_kind = c_fault.kind if c_fault is not None else None
        ref_kind = ref_fault.split(":", 1)[0] if ref_fault else None
        if c_kind != ref_kind:
            self.fault = (
                f"C driver differs from the reference at {where}: fault "
                f"reference={ref_kind} C={c_kind} ({c_fault.message if c_fault else ''})"
            )
        elif ref_fault is None:
            ref_view = concrete_view_reference(self.ref)
            c_view = concrete_view_c(self)
            for key in ref_view:
                if ref_view[key] != c_view.get(key):
                    self.fault = (
                        f"C driver differs from the reference at {where}: {key}: "
                        f"reference={ref_view[key]!r} C={c_view.get(key)!r}"
                    )
                    break
        return self.observe()

    # ------------------------------------------------------------------ restrictions
    def _after_event(self) -> None:
        c = self._c
        token = int(c.lib.xbd_h_ring_token() or 0)
        sc = c.softc()
        if token and token != self.ring_token:
            self.ring_token = token
            if sc["req_prod_pvt"] == self.sizes.ring_base & 0xFFFF_FFFF:
                c.lib.xbd_h_set_ring_entries(self.sizes.ring_slots, 0)
        if not sc["has_shadow"]:
            c.lib.xbd_h_dma_fail_create(0, self.sizes.commands)

    @property
    def _c(self) -> CPlatform:
        if self.c is None:
            raise XbdspecError("the C driver adapter was used before reset")
        return self.c

    def _take_watch(self, token: str) -> bool:
        pending = self._c.xenstore.pending
        if token not in pending:
            return False
        pending.remove(token)
        return True

    def _front_watch(self) -> None:
        c = self._c
        if self._take_watch(FRONT_WATCH):
            c.backend_changed(c._read_state(c.back_path))

    def _back_watch(self) -> None:
        c = self._c
        if not self._take_watch(BACK_WATCH):
            return
        values = c.xenstore.values
        front = int(values.get(f"{c.front_path}/state") or 6)
        back = c.backend_state
        online = values.get(f"{c.back_path}/online") == "1"
        if back in (2, 3) and front in (3, 4) and online:
            c.backend_connect_ring()
            c.lib.xbd_h_set_ring_entries(0, self.sizes.ring_slots)
        elif back in (1, 2, 3, 4) and front == 5:
            c.backend_set_state(5)
        elif back != 6 and front == 6:
            c.lib.xbd_h_be_disconnect()
            c.backend_set_state(6)

    # ------------------------------------------------------------------ events
    def _on_unplug(self) -> None:
        self._c.xenstore.write(f"{self._c.back_path}/online", "0")

    def _publish_features(self, barrier: bool, flush: bool) -> None:
        import dataclasses as dc

        c = self._c
        c.config = dc.replace(c.config, barrier=barrier, flush=flush)
        c.lib.xbd_h_be_features(int(barrier), int(flush))
        for key, value in c.config.initwait_keys().items():
            c._back_write(key, value)
        if BACK_WATCH not in c.xenstore.pending:
            c.xenstore.pending.append(BACK_WATCH)

    def _on_backend_publish(self, barrier: bool, flush: bool) -> None:
        self._publish_features(barrier, flush)
        self._c.backend_set_state(2)

    def _on_backend_skip_initwait(self, barrier: bool, flush: bool) -> None:
        self._publish_features(barrier, flush)
        self._c.backend_set_state(3)

    def _on_frontend_watch(self) -> None:
        self._back_watch()

    def _on_backend_offline(self) -> None:
        self._c.backend_set_state(5)

    def _on_backend_consume(self, cmd: int) -> None:
        c = self._c
        c.backend_fetch()
        if any(r.id == cmd for r in c.pending()):
            self.taken.add(cmd)

    def _on_backend_respond(self, cmd: int, status: Any) -> None:
        c = self._c
        for index, request in enumerate(c.pending()):
            if request.id == cmd and cmd in self.taken:
                c.respond(index, status=int(status))
                self.taken.discard(cmd)
                return

    def _on_backend_watch(self) -> None:
        self._front_watch()

    def _on_open(self) -> None:
        if self._c.softc()["has_disk"]:
            self._c.open()

    def _on_close(self) -> None:
        if self._c.softc()["has_disk"]:
            self._c.close()

    def _on_strategy(self, bio: int, kind: Any) -> None:
        from xbdspec.conformance.reference_adapter import _BIO_COMMAND

        command, flags = _BIO_COMMAND[kind]
        self.bio_ids[bio] = self._c.strategy(command, bio * 8, 4096, flags=flags)

    def _on_interrupt(self) -> None:
        c = self._c
        if not c.deliver_interrupt():
            c.lib.xbd_h_evtchn_clear()

    def _deferred(self, cmd: int) -> int:
        index = int(self._c.lib.xbd_h_dma_find_command(cmd))
        if index < 0:
            raise XbdspecError(f"command {cmd} has no deferred mapping to complete")
        return index

    def _on_dma_callback(self, cmd: int) -> None:
        self._c.run_deferred(self._deferred(cmd))

    def _on_dma_callback_error(self, cmd: int) -> None:
        self._c.run_deferred(self._deferred(cmd), error=27)  # EFBIG

    def _on_suspend(self) -> None:
        self._c.suspend_start()

    def _on_suspend_drained(self) -> None:
        c = self._c
        if c.sleeping and c.sleeper_woken:
            c.suspend_continue(timed_out=False)

    def _on_suspend_timeout(self) -> None:
        c = self._c
        if c.sleeping:
            c.suspend_continue(timed_out=True)

    def _on_resume(self, cancelled: bool) -> None:
        c = self._c
        c.lib.xbd_h_set_suspend_cancelled(int(cancelled))
        if not cancelled:
            c.config = BackendConfig(barrier=False, flush=False)
            c.lib.xbd_h_be_features(0, 0)
            c.backend_reset()
            self.taken = set()
            # xenbusb_resume: the watch goes, the front end is Initialising, xbd_resume,
            # the watch comes back (and fires its initial event)
            c.xenstore.watches.pop(FRONT_WATCH, None)
            if FRONT_WATCH in c.xenstore.pending:
                c.xenstore.pending.remove(FRONT_WATCH)
            if c._read_state(c.front_path) != 1:
                c.xenstore.write(f"{c.front_path}/state", "1")
            c.resume()
            c.xenstore.register_watch(f"{c.back_path}/state", FRONT_WATCH)
            self._front_watch()
        else:
            c.resume()

    def _on_grants_returned(self) -> None:
        c = self._c
        kind = c.lib.xbd_h_gnttab_fire_ready_callback()
        if kind > 0:
            c._call("gnttab free callback", kind)


def concrete_view_reference(impl: Any) -> dict[str, Any]:
    """What the twin compares, read off the reference adapter's platform."""
    p = impl._p
    sc = p.softc()
    pending = [
        (
            r.id,
            r.operation,
            r.io_op,
            r.sector_number,
            r.nr_segments,
            tuple(g for g, _, _ in r.segments),
        )
        for r in p.backend.pending
    ]
    bios = {}
    for index, bio in enumerate(impl.bios):
        if bio is not None:
            bios[index] = (bio.done_count, bio.bio_error, bio.bio_flags, bio.bio_resid)
    writes = [(k, v) for k, v in p.xenstore.writes if not k.startswith(p.back_path)]
    return {
        "xbd_state": int(sc.xbd_state),
        "xbd_flags": int(sc.xbd_flags),
        "xbd_qfrozen_cnt": sc.xbd_qfrozen_cnt,
        "queues": (*tuple(q.q_length for q in sc.xbd_cm_q[:4]), len(sc.xbd_bioq)),
        "grants_free": p.gnttab.free_count,
        "backend_pending": pending,
        "bios": bios,
        "front_writes": writes,
        "xbd_users": sc.xbd_users,
        "commands": [cm.cm_flags for cm in sc.xbd_shadow] if sc.xbd_shadow is not None else [],
    }


def concrete_view_c(impl: CDriverImplementation) -> dict[str, Any]:
    """The same view, read off the compiled driver."""
    c = impl._c
    sc = c.softc()
    pending = [
        (r.id, r.operation, r.io_op, r.sector_number, r.nr_segments, r.grefs) for r in c.pending()
    ]
    bios = {}
    for index, bio in impl.bio_ids.items():
        s = c.bio(bio)
        bios[index] = (s.done_count, s.bio_error, s.bio_flags, s.bio_resid)
    flags = c.command_flags() if sc["has_shadow"] else []
    return {
        "xbd_state": sc["xbd_state"],
        "xbd_flags": sc["xbd_flags"],
        "xbd_qfrozen_cnt": sc["xbd_qfrozen_cnt"],
        "queues": (sc["q_free"], sc["q_ready"], sc["q_busy"], sc["q_complete"], sc["q_bio"]),
        "grants_free": c.grant_free_count(),
        "backend_pending": pending,
        "bios": bios,
        "front_writes": c.front_writes(),
        "xbd_users": sc["xbd_users"],
        "commands": flags,
    }


def implementation() -> CDriverImplementation:
    """``xbdspec difftest --impl xbdspec.cdriver:implementation``: the compiled seed."""
    return CDriverImplementation()


if __name__ == "__main__":
    raise SystemExit(main())
