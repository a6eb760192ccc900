"""Compiling ``blkfront.c`` against the kernel shim into one shared library.

The driver is compiled *unmodified* with the system C compiler, every kernel declaration
coming from ``shim/include/xbd_shim.h`` (force-included) and the thin headers under
``shim/include/`` (for a file from a FreeBSD tree, which has its own ``#include`` lines);
``shim/src/*.c`` is linked in beside it.  Xen's structures and ring macros are the real
public headers, libxen-dev's ``/usr/include/xen/io/`` (``make xen-headers``), which the
shim's ``xen/interface/...`` headers include; only what FreeBSD adds is the shim's own.
Builds are cached under ``build/cdriver/<hash>`` by the contents of the source, the shim
and those headers, with the compiler's warnings kept beside.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from xbdspec.errors import XbdspecError
from xbdspec.resources import build_dir, data_dir, staged_build

#: The directory that holds the ``xbdspec`` package (the checkout, or site-packages).
REPO_ROOT = Path(__file__).resolve().parents[2]
SHIM_DIR = data_dir("shim")
BUILD_DIR = build_dir("cdriver")
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-omit-frame-pointer")
#: Where the system compiler finds Xen's public headers (Debian's libxen-dev).
XEN_INCLUDE = Path("/usr/include")
#: The public headers the shim takes from there (and what ``blkif.h`` includes in turn).
XEN_HEADERS = (
    "xen/io/blkif.h",
    "xen/io/ring.h",
    "xen/io/xenbus.h",
    "xen/io/protocols.h",
    "xen/grant_table.h",
    "xen/xen.h",
)
XEN_HEADERS_MISSING = (
    "Xen's public headers are absent ({missing}): run `make xen-headers` "
    "(apt's libxen-dev), which the FreeBSD shim takes blkif.h, ring.h, xenbus.h and "
    "protocols.h from"
)


class BuildError(XbdspecError):
    """``blkfront.c`` could not be compiled against the shim."""


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


def xen_headers_missing(include: Path | None = None) -> list[Path]:
    """Those of :data:`XEN_HEADERS` absent under ``include`` (default :data:`XEN_INCLUDE`)."""
    root = include if include is not None else XEN_INCLUDE
    return [root / name for name in XEN_HEADERS if not (root / name).is_file()]


def check_xen_headers() -> None:
    """Raise :class:`BuildError` naming ``make xen-headers`` when Xen's headers are absent
    (the compiler would fail on the shim's ``#error``; this says so before it runs)."""
    missing = xen_headers_missing()
    if missing:
        raise BuildError(XEN_HEADERS_MISSING.format(missing=", ".join(map(str, missing))))


def _digest(source: Path, sanitize: bool) -> str:
    h = hashlib.sha256()
    h.update(source.read_bytes())
    h.update(b"sanitize" if sanitize else b"plain")
    for name in XEN_HEADERS:
        h.update(name.encode())
        h.update((XEN_INCLUDE / name).read_bytes())
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
    check_xen_headers()
    key = _digest(src, sanitize)
    out = (out_dir or BUILD_DIR) / key
    library = out / ("libxbd-san.so" if sanitize else "libxbd.so")
    warnings_file = out / "warnings.txt"
    if library.is_file() and warnings_file.is_file():
        warnings = tuple(line for line in warnings_file.read_text().splitlines() if line)
        return BuildResult(library, src, warnings, sanitize)
    with staged_build(out, warnings_file.name) as work:
        cc = _compiler()
        include = SHIM_DIR / "include"
        common = ["-std=gnu11", "-fPIC", "-g", "-O1", "-Wall", "-Wextra", f"-I{include}"]
        if sanitize:
            common += list(SANITIZE_FLAGS)
        driver_obj = work / "blkfront.o"
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
            obj = work / (shim_src.stem + ".o")
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
            str(work / library.name),
            *map(str, objects),
        ]
        proc = subprocess.run(link, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BuildError(f"linking {library} failed:\n{proc.stderr}")
        (work / warnings_file.name).write_text("\n".join(warnings_seen) + "\n")
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
