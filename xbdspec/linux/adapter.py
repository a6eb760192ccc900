"""Linux 6.1's ``xen-blkfront.c``, compiled unmodified against ``shim-linux/``, as a
front end of the protocol-level harness (:class:`xbdspec.world.harness.World`).

The shim's xenbus, grant-table, event-channel and page-memory calls come here (ctypes
callbacks) and go to the world's :class:`~xbdspec.world.harness.FrontendEnv`; pages are
bytearrays of the world's, so the back end reads the ring and the data as the driver
wrote them.  The block layer is the shim's blk-mq: :meth:`LinuxBlkfront.submit` makes a
request of a bio, and the driver's ``blk_mq_end_request`` comes back as
``FrontendEnv.complete``.

What Linux needs beyond the tutorial front end goes through
:class:`~xbdspec.world.harness.FrontendEnv` too:

* Linux picks its grant references itself (``gnttab_claim_grant_reference``, then
  ``gnttab_grant_foreign_access_ref``): ``FrontendEnv.grant_ref``;
* ``gnttab_try_end_foreign_access`` fails while the back end has the page mapped:
  ``FrontendEnv.grant_mapped``;
* ``xenbus_transaction_end(xbt, 1)`` aborts: ``FrontendEnv.transaction_end(abort=True)``.
"""

from __future__ import annotations

import _ctypes
import contextlib
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from xbdspec.errors import XbdspecError
from xbdspec.resources import data_dir, staged_build
from xbdspec.world.harness import Bio, FrontendEnv
from xbdspec.world.xenstore import XenstoreError

from . import source

SHIM_DIR = data_dir("shim_linux")
PAGE = 4096
SECTOR = 512
EAGAIN, ENOENT = 11, 2
REQ_OP_READ, REQ_OP_WRITE, REQ_OP_FLUSH, REQ_OP_DISCARD = 0, 1, 2, 3
REQ_FUA = 1 << 17
REQ_PREFLUSH = 1 << 18
#: shim_queue_flags: what the driver told the block layer of the device
QUEUE_WRITE_CACHE, QUEUE_FUA, QUEUE_DISCARD = 1, 2, 4
BUG = -1000
#: shim_selftest_fault's kinds: a load from address 16 (SIGSEGV), a read past a heap
#: block (ASan), a shift past the width of int (UBSan)
SELFTEST_FAULTS = {"segv": 1, "heap": 2, "shift": 3}


#: The sanitizers' flags, as :data:`xbdspec.cdriver.build.SANITIZE_FLAGS` builds the seed with.
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-omit-frame-pointer")
#: Code generation as the kernel's Makefile has it (6.1: KBUILD_CFLAGS): no type-based
#: alias analysis, signed overflow wraps, and a NULL check after a dereference is kept.
KERNEL_CFLAGS = ("-fno-strict-aliasing", "-fno-strict-overflow", "-fno-delete-null-pointer-checks")
#: Set to ``1`` in a process whose sanitizer runtimes are preloaded (``LD_PRELOAD``, see
#: :mod:`xbdspec.linux.sanitize`): every driver it loads is the ASan+UBSan build.
SANITIZE_ENV = "XBD_LINUX_SANITIZE"


class BuildError(XbdspecError):
    """Compiling the driver against the shim failed."""


@dataclass(frozen=True)
class Built:
    """A compiled driver.

    Attributes:
        library: the shared library (driver + shim).
        driver: the ``xen-blkfront.c`` compiled.
        warnings: the compiler's warnings (the driver compiles without any).
        sanitize: built with AddressSanitizer and UndefinedBehaviorSanitizer.
    """

    library: Path
    driver: Path
    warnings: tuple[str, ...]
    sanitize: bool = False


def sanitize_requested() -> bool:
    """Whether this process asks for the sanitized driver (:data:`SANITIZE_ENV`)."""
    return os.environ.get(SANITIZE_ENV) == "1"


def sanitizer_runtime_loaded() -> bool:
    """Whether ASan's runtime is in this process (preloaded): a sanitized library may be
    loaded only then (else ASan's check ends the process on ``dlopen``)."""
    return hasattr(ctypes.CDLL(None), "__asan_init")


def instance_dir(library: Path, pid: int) -> Path:
    """Where process ``pid`` keeps its copies of a sanitized ``library`` (one a driver)."""
    return library.parent / f"instances-{pid}"


def _digest(driver: Path, flags: list[str]) -> str:
    """The build's key: the driver, the shim's sources and headers, and the flags."""
    h = hashlib.sha256(driver.read_bytes())
    h.update(" ".join(flags).encode())
    for path in sorted(SHIM_DIR.rglob("*")):
        if path.is_file() and path.suffix in (".c", ".h"):
            h.update(str(path.relative_to(SHIM_DIR)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def build(out_dir: Path | None = None, *, sanitize: bool | None = None) -> Built:
    """Extract the driver (installing ``linux-source-6.1`` if need be) and compile it,
    unmodified, with the shim into ``build/linux/<digest>/libxen-blkfront.so`` (cached by
    the driver, the shim and the flags).

    With ``sanitize`` (default: :func:`sanitize_requested`) it is compiled and linked with
    ``-fsanitize=address,undefined`` (``libxen-blkfront-san.so``), as the FreeBSD seed's
    sanitized build is; such a library loads only in a process with the runtimes
    preloaded (:mod:`xbdspec.linux.sanitize` runs one)."""
    if sanitize is None:
        sanitize = sanitize_requested()
    root = source.extract()
    driver = root / "drivers" / "block" / "xen-blkfront.c"
    include = SHIM_DIR / "include"
    common = [
        "-std=gnu11",
        "-fPIC",
        "-g",
        "-O1",
        *KERNEL_CFLAGS,
        "-Wall",
        "-Wno-pointer-sign",
        f"-I{include}",
        f"-I{root / 'include'}",
        "-include",
        str(include / "linux_shim.h"),
        *(SANITIZE_FLAGS if sanitize else ()),
    ]
    out = (out_dir or source.BUILD_DIR) / _digest(driver, common)
    library = out / ("libxen-blkfront-san.so" if sanitize else "libxen-blkfront.so")
    warnings_file = out / "warnings.txt"
    if library.is_file() and warnings_file.is_file():
        cached = tuple(warnings_file.read_text().splitlines())
        return Built(library, driver, cached, sanitize)
    with staged_build(out, warnings_file.name) as work:
        cc = os.environ.get("CC") or shutil.which("cc") or "cc"
        objects = []
        warnings: list[str] = []
        for src, obj in (
            (driver, work / "xen-blkfront.o"),
            *((s, work / (s.stem + ".o")) for s in sorted((SHIM_DIR / "src").glob("*.c"))),
        ):
            proc = subprocess.run(
                [cc, *common, "-c", "-o", str(obj), str(src)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise BuildError(f"compiling {src} failed:\n{proc.stderr}")
            warnings += [line for line in proc.stderr.splitlines() if "warning:" in line]
            objects.append(str(obj))
        link = [cc, "-shared", "-Wl,-Bsymbolic", "-Wl,--no-undefined"]
        proc = subprocess.run(
            [
                *link,
                *(SANITIZE_FLAGS if sanitize else ()),
                "-o",
                str(work / library.name),
                *objects,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise BuildError(f"linking {library} failed:\n{proc.stderr}")
        (work / warnings_file.name).write_text("\n".join(warnings) + ("\n" if warnings else ""))
    return Built(library, driver, tuple(warnings), sanitize)


_XS_READ = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_uint, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int
)
_XS_WRITE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint, ctypes.c_char_p, ctypes.c_char_p)
_TX_START = ctypes.CFUNCTYPE(ctypes.c_int)
_TX_END = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint, ctypes.c_int)
_PAGES_ALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint)
_PAGES_FREE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_GRANT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint, ctypes.c_void_p, ctypes.c_int)
_END_GRANT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint)
_NOTIFY = ctypes.CFUNCTYPE(None, ctypes.c_uint)
_COMPLETE = ctypes.CFUNCTYPE(None, ctypes.c_ulong, ctypes.c_int)
_LOG = ctypes.CFUNCTYPE(None, ctypes.c_char_p)


class _Callbacks(ctypes.Structure):
    _fields_ = [
        ("xs_read", _XS_READ),
        ("xs_write", _XS_WRITE),
        ("xs_transaction_start", _TX_START),
        ("xs_transaction_end", _TX_END),
        ("pages_alloc", _PAGES_ALLOC),
        ("pages_free", _PAGES_FREE),
        ("grant", _GRANT),
        ("end_grant", _END_GRANT),
        ("notify", _NOTIFY),
        ("complete", _COMPLETE),
        ("log", _LOG),
    ]


#: The driver's module parameters, by name, with their C types.
PARAMS = {
    "max_indirect_segments": ctypes.c_uint,
    "max_queues": ctypes.c_uint,
    "max_ring_page_order": ctypes.c_int,
    "trusted": ctypes.c_bool,
    "feature_persistent": ctypes.c_bool,
}
#: The platform's own settings (not the driver's module parameters): ``grant_refs``,
#: the guest's grant table size (Xen 4.17's default 64 frames: 32,768 references).
PLATFORM_PARAMS = ("grant_refs",)
#: What the harness's first slice runs with: one queue, one ring page.
DEFAULT_PARAMS: dict[str, int] = {"max_queues": 1, "max_ring_page_order": 0}


class _Unloaded:
    """What an unloaded instance's library is: every use is a clear error."""

    def __init__(self, kept: int) -> None:
        self._kept = kept

    def __getattr__(self, name: str) -> Any:
        raise XbdspecError(
            f"this driver instance was unloaded ({name}): newer worlds' drivers replaced it "
            f"(at most {self._kept} stay loaded)"
        )


class LinuxBlkfront:
    """The compiled driver as a :class:`~xbdspec.world.harness.Frontend`.

    A fresh copy of the shared library is loaded per instance (its globals are the
    driver's: one device each).

    Attributes:
        log: what the driver printed (``printk``).
        params: the module parameters it was loaded with.
        sanitized: the library is the ASan+UBSan build (:func:`build`'s ``sanitize``).
    """

    def __init__(self, env: FrontendEnv, params: dict[str, int] | None = None) -> None:
        self.env = env
        self.log: list[str] = []
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self._error: BaseException | None = None
        self._pages: dict[int, tuple[bytearray | memoryview, Any]] = {}
        self._bios: dict[int, tuple[Bio, list[int]]] = {}
        self._probed = False
        #: the device was removed (:meth:`removed`): no entry point reaches the driver
        self._removed = False
        built = build()
        if built.sanitize and not sanitizer_runtime_loaded():
            raise XbdspecError(
                f"{built.library} is built with the sanitizers, whose runtimes this process "
                "has not preloaded: run it through xbdspec.linux.sanitize (LD_PRELOAD)"
            )
        self.library_path = built.library
        self.sanitized = built.sanitize
        self._lib = self._load(built.library)
        self._track()
        platform = {k: self.params.pop(k) for k in PLATFORM_PARAMS if k in self.params}
        if "grant_refs" in platform:
            self._lib.shim_grant_refs_addr.restype = ctypes.c_void_p
            address = self._lib.shim_grant_refs_addr()
            ctypes.c_uint.from_address(address).value = int(platform["grant_refs"])
        for name, value in self.params.items():
            ctype: Any = PARAMS[name]
            getter = getattr(self._lib, f"shim_param_{name}")
            getter.restype = ctypes.c_void_p
            ctype.from_address(getter()).value = value
        self._keep = self._callbacks()
        self._lib.shim_set_callbacks(ctypes.byref(self._keep))
        self._call(self._lib.shim_init, what="xlblk_init")

    # ---- loading
    _loaded = 0

    #: driver instances whose library copy is loaded, oldest first
    _live: ClassVar[list[LinuxBlkfront]] = []
    #: how many copies stay loaded: a campaign runs one world at a time (shrinking
    #: too), so older copies are unloaded and memory stays bounded
    KEEP_LOADED: ClassVar[int] = 2

    def _unload(self) -> None:
        """Unload this instance's copy of the library (its signal handlers put back
        first); the instance can no longer be called."""
        lib = self._lib
        if isinstance(lib, _Unloaded):
            return
        # the device goes away first (blkfront_remove: the driver frees what it holds);
        # its world is over, so what the removal does there is not checked
        if self._probed:
            # a driver in a broken state may fail its removal (a fault is contained by
            # this copy's own handler, installed again for it): its memory is what it is
            lib.shim_contain()
            with contextlib.suppress(XbdspecError):
                self._call(lib.shim_remove, what="blkfront_remove")
        self._lib = _Unloaded(self.KEEP_LOADED)  # type: ignore[assignment]
        lib.shim_exit()
        _ctypes.dlclose(lib._handle)
        # the driver's memory (its pages are the harness's: persistent grants on four
        # 16-page rings are 67,584 of them) goes with it, not when a cycle is collected
        self._pages.clear()
        self._bios.clear()

    def _track(self) -> None:
        live = LinuxBlkfront._live
        live.append(self)
        unloaded = False
        while not self.sanitized and len(live) > self.KEEP_LOADED:
            live.pop(0)._unload()
            unloaded = True
        if unloaded:
            self._lib.shim_contain()  # this instance's handler, again the one installed

    def _load(self, library: Path) -> ctypes.CDLL:
        # dlopen shares one copy per path: each instance gets its own file
        LinuxBlkfront._loaded += 1
        if self.sanitized:
            # kept while the process lives, so that a sanitizer's report can name the
            # driver's functions and lines (a deleted file cannot be symbolized); the
            # parent removes the directory (xbdspec.linux.sanitize.run)
            where = instance_dir(library, os.getpid())
            where.mkdir(exist_ok=True)
            copy = where / f"instance-{LinuxBlkfront._loaded}.so"
            shutil.copyfile(library, copy)
            lib = ctypes.CDLL(str(copy), mode=os.RTLD_LOCAL)
        else:
            copy = library.parent / f"instance-{os.getpid()}-{LinuxBlkfront._loaded}.so"
            shutil.copyfile(library, copy)
            try:
                lib = ctypes.CDLL(str(copy), mode=os.RTLD_LOCAL)
            finally:
                copy.unlink()
        lib.shim_probe.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
        lib.shim_submit.argtypes = [
            ctypes.c_ulong,
            ctypes.c_uint,
            ctypes.c_ulonglong,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_uint,
        ]
        lib.alloc_page.restype = ctypes.c_void_p
        lib.alloc_page.argtypes = [ctypes.c_uint]
        self._free_page = lib["__free_page"]
        self._free_page.argtypes = [ctypes.c_void_p]
        lib.page_address.restype = ctypes.c_void_p
        lib.page_address.argtypes = [ctypes.c_void_p]
        lib.shim_bug_where.restype = ctypes.c_char_p
        return lib

    def _guard(self, fn: Any, default: Any = 0) -> Any:
        def wrapped(*args: Any) -> Any:
            try:
                return fn(*args)
            except Exception as exc:  # raised again after the C call returns
                if self._error is None:
                    self._error = exc
                return default

        return wrapped

    def _callbacks(self) -> _Callbacks:
        g = self._guard
        return _Callbacks(
            _XS_READ(g(self._xs_read, -ENOENT)),
            _XS_WRITE(g(self._xs_write, -EAGAIN)),
            _TX_START(g(self.env.transaction_start, -EAGAIN)),
            _TX_END(g(self._xs_transaction_end, -EAGAIN)),
            _PAGES_ALLOC(g(self._pages_alloc, None)),
            _PAGES_FREE(g(self._pages_free, None)),
            _GRANT(g(self._grant, -1)),
            _END_GRANT(g(self._end_grant, 0)),
            _NOTIFY(g(lambda port: self.env.notify(port), None)),
            _COMPLETE(g(self._complete, None)),
            _LOG(g(lambda msg: self.log.append(msg.decode(errors="replace").rstrip()), None)),
        )

    def _take_error(self) -> BaseException | None:
        error, self._error = self._error, None
        return error

    def _call(self, fn: Any, *args: Any, what: str) -> int:
        self._error = None
        ret = fn(*args)
        error = self._take_error()
        if error is not None:
            raise error
        if ret == BUG:
            # the source's path from the kernel tree's root (not this machine's build dir)
            where = re.sub(r"\S*/(drivers/)", r"\1", self._lib.shim_bug_where().decode())
            raise XbdspecError(f"{what}: the driver hit {where}; log: {self.log}")
        return int(ret)

    # ---- xenstore
    def _xs_read(self, tid: int, path: bytes, buf: int, buflen: int) -> int:
        p = path.decode()
        value = self.env.read(p)
        if value is None:
            return -ENOENT
        raw = value.encode()[:buflen]
        ctypes.memmove(buf, raw, len(raw))
        return len(raw)

    def _xs_write(self, tid: int, path: bytes, value: bytes) -> int:
        self.env.write(path.decode(), value.decode(), tid)
        return 0

    def _xs_transaction_end(self, tid: int, abort: int) -> int:
        try:
            self.env.transaction_end(tid, abort=bool(abort))
        except XenstoreError as exc:
            if exc.code == "EAGAIN":
                return -EAGAIN
            raise
        return 0

    # ---- memory and grants
    def _pages_alloc(self, nr: int) -> int:
        block = self.env.alloc_page() if nr == 1 else bytearray(PAGE * nr)
        cbuf = (ctypes.c_char * len(block)).from_buffer(block)
        base = ctypes.addressof(cbuf)
        self._pages[base] = (block, cbuf)
        for i in range(1, nr):
            self._pages[base + i * PAGE] = (memoryview(block)[i * PAGE : (i + 1) * PAGE], cbuf)
        return base

    def _pages_free(self, virt: int) -> None:
        entry = self._pages.pop(virt, None)
        if entry is not None and isinstance(entry[0], bytearray):
            for i in range(1, len(entry[0]) // PAGE):
                self._pages.pop(virt + i * PAGE, None)

    def _grant(self, ref: int, virt: int, readonly: int) -> int:
        page = self._pages[virt][0]
        if len(page) > PAGE:  # the first page of a block of several: grant that page only
            page = memoryview(page)[:PAGE]
        self.env.grant_ref(ref, page, bool(readonly))
        return 0

    def _end_grant(self, ref: int) -> int:
        if self.env.grant_mapped(ref):
            return 0  # still mapped by the back end: gnttab_try_end_foreign_access fails
        self.env.end_grant(ref)
        return 1

    # ---- the block layer
    def _complete(self, cookie: int, status: int) -> None:
        bio, pages = self._bios.pop(cookie)
        data = b""
        if bio.op == "read" and status == 0:
            raw = b"".join(bytes(self._pages[self._lib.page_address(p)][0]) for p in pages)
            data = raw[: bio.sectors * SECTOR]
        for p in pages:
            self._free_page(p)
        self.env.complete(bio.id, status == 0, data)

    # ---- the harness's entry points
    def _probe(self) -> None:
        if self._probed:
            return
        self._probed = True
        back = self.env.read(f"{self.env.front}/backend") or self.env.back
        ret = self._call(
            self._lib.shim_probe, self.env.front.encode(), back.encode(), 0, what="blkfront_probe"
        )
        if ret:
            raise XbdspecError(f"blkfront_probe failed ({ret}); log: {self.log}")

    def otherend_changed(self) -> None:
        """xenbus's ``xenbus_otherend_changed``: probe first (as xenbus does once the
        device's nodes exist), then ``blkback_changed`` with the back end's state."""
        if self._removed:
            return
        self._probe()
        self._call(self._lib.shim_otherend_changed, what="blkback_changed")

    def interrupt(self) -> None:
        """The event channel fires: ``blkif_interrupt`` as the bound irq."""
        if self._removed:
            return
        self._call(self._lib.shim_interrupt, what="blkif_interrupt")

    def submit(self, bio: Bio) -> None:
        """A blk-mq request of the bio, dispatched through ``blkif_queue_rq``."""
        self._probe()
        cookie = bio.id + 1
        pages: list[int] = []
        if bio.op == "flush":
            op, nbytes = REQ_OP_FLUSH | REQ_PREFLUSH, 0
        elif bio.op == "discard":
            op, nbytes = REQ_OP_DISCARD, bio.sectors * SECTOR
        else:
            op = REQ_OP_READ if bio.op == "read" else REQ_OP_WRITE
            if bio.op == "fua" and self._lib.shim_queue_flags() & QUEUE_FUA:
                op |= REQ_FUA  # else the block layer strips it (no FUA, or no cache)
            nbytes = bio.sectors * SECTOR
            for i in range(0, nbytes, PAGE):
                page = self._lib.alloc_page(0)
                if not page:  # every frame of the guest's memory is the driver's now
                    for p in pages:
                        self._free_page(p)
                    raise XbdspecError(
                        f"bio {bio.id}: the guest's memory (the shim's 65,535 pages) is "
                        f"exhausted, {self._lib.shim_pages_live()} pages held; log: "
                        f"{self.log[-5:]}"
                    )
                if bio.op in ("write", "fua"):
                    chunk = bio.data[i : i + PAGE]
                    self._pages[self._lib.page_address(page)][0][: len(chunk)] = chunk
                pages.append(page)
        self._bios[cookie] = (bio, pages)
        array = (ctypes.c_void_p * max(1, len(pages)))(*pages)
        self._call(
            self._lib.shim_submit,
            cookie,
            op,
            bio.sector,
            nbytes,
            array,
            len(pages),
            what="blkif_queue_rq",
        )

    def accepts(self, op: str) -> bool:
        """Whether the block layer would hand the driver a bio of ``op``: none before the
        driver has added its disk (``device_add_disk``; until then there is no block
        device to open, and if the connect fails, as when ``blkfront_setup_indirect`` runs
        out of memory, there never is), then a flush only to a device with a volatile
        cache (else blk-flush completes it at once), a discard only to one with discard
        limits, reads and writes always -- and none once ``blkfront_closing`` has
        killed the disk (``blk_mark_disk_dead``, ``set_capacity(gd, 0)``: the block
        layer's ``__bio_queue_enter`` fails every bio of a dead disk; the shim's capacity
        of 0 is that mark, as a connected disk's ``sectors`` is never 0 here)."""
        if self._removed or not self.disk_added or not self._lib.shim_disk_capacity():
            return False
        flags = int(self._lib.shim_queue_flags())
        if op == "flush":
            return bool(flags & QUEUE_WRITE_CACHE)
        if op == "discard":
            return bool(flags & QUEUE_DISCARD)
        return True

    def resume(self) -> None:
        """The guest was restored or migrated: ``xenbus_dev_resume`` (state
        Initialising), then ``blkfront_resume``."""
        self._probe()
        ret = self._call(self._lib.shim_resume, what="blkfront_resume")
        if ret:
            raise XbdspecError(f"blkfront_resume failed ({ret}); log: {self.log}")

    def shutdown(self) -> None:
        """The guest removes the device: ``blkfront_remove``."""
        self._probe()
        self._call(self._lib.shim_remove, what="blkfront_remove")

    def removed(self) -> None:
        """The tool stack removed the device's directory: xenbus finds the node gone
        (``xenbus_dev_changed``) and unregisters the device, which is
        ``blkfront_remove``; the device is gone, nothing calls the driver for it again
        (its watch and irq went with it; the library's unloading removes it no more)."""
        if self._removed:
            return
        self.shutdown()
        self._removed = True
        self._probed = False

    def selftest_fault(self, kind: str) -> None:
        """For the harness's own tests: a fault inside an entry point, where the driver's
        would be (:data:`SELFTEST_FAULTS`).  Without the sanitizers a ``segv`` is contained
        (an :class:`XbdspecError` naming the address); with them each kind is the
        sanitizers' report."""
        self._call(
            self._lib.shim_selftest_fault, SELFTEST_FAULTS[kind], what=f"selftest_fault({kind})"
        )

    # ---- what the tests look at
    @property
    def state(self) -> int:
        """The xenbus state the driver last switched to (``dev->state``)."""
        return int(self._lib.shim_frontend_state())

    @property
    def disk_added(self) -> bool:
        return bool(self._lib.shim_disk_added())


def make(params: dict[str, int] | None = None) -> Any:
    """A ``make_frontend`` for :func:`xbdspec.world.harness.run_program`; its
    ``options`` are the module parameters (written into replay files)."""

    def maker(env: FrontendEnv) -> LinuxBlkfront:
        return LinuxBlkfront(env, params)

    maker.options = dict(params or {})  # type: ignore[attr-defined]
    return maker
