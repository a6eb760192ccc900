"""Naming implementations: the built-in ones, ``module:factory`` and commands.

Built-in names:

* ``reference``: the reference driver, the seed's behaviour (defects included);
* ``reference-fixed``: the reference with every opt-in fix of
  ``xbdspec.reference.Fixes`` switched on (``docs/findings/``): it must agree with the
  model everywhere;
* ``c-queue-core``: ``cimpl/queue_core.c``, built with the system ``cc`` into a
  temporary directory, driven over the stdio protocol.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from xbdspec.model.state import Sizes
from xbdspec.reference.platform import Fixes
from xbdspec.resources import build_dir, data_dir, staged_file

from .contract import Implementation, ImplementationError
from .findings import FIXED_PROFILE
from .reference_adapter import ReferenceImplementation, reference_sizes
from .subprocess_impl import SubprocessImplementation

BUILTIN = ("reference", "reference-fixed", "c-queue-core")

#: ``cimpl/`` in the source tree.
CIMPL = data_dir("cimpl")

_built: dict[tuple[str, ...], Path] = {}


class CompilerMissing(ImplementationError):
    """No C compiler (``cc``) is on PATH."""


def build_c_core(*defines: str, out_dir: Path | None = None) -> Path:
    """Compile ``cimpl/queue_core.c`` (with ``-D`` ``defines``); the executable's path.

    Built once per process and set of defines, into a temporary directory unless
    ``out_dir`` is given.
    """
    key = tuple(sorted(defines))
    if key in _built and _built[key].exists() and out_dir is None:
        return _built[key]
    cc = shutil.which("cc")
    if cc is None:
        raise CompilerMissing(
            "no C compiler: `cc` is not on PATH, so the C queue core cannot be built"
        )
    source = CIMPL / "queue_core.c"
    if not source.exists():
        raise ImplementationError(f"{source} is missing: the C queue core's source ships in cimpl/")
    directory = out_dir or Path(tempfile.mkdtemp(prefix="xbdspec-cimpl-"))
    name = "queue_core" + "".join(f"_{d.lower()}" for d in key)
    exe = directory / name
    argv = [cc, "-std=c99", "-O2", "-Wall", *(f"-D{d}" for d in key), "-o", str(exe), str(source)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ImplementationError(
            f"building the C queue core failed ({' '.join(argv)}):\n{result.stderr}"
        )
    if out_dir is None:
        _built[key] = exe
    return exe


_built_frontends: dict[tuple[str, ...], Path] = {}


def build_c_frontend(*defines: str, out_dir: Path | None = None) -> Path:
    """Compile ``cimpl/frontend.c`` (the C queue core as a complete blkif front end over
    the stdio protocol version 2, ``docs/stdio-v2.md``; it includes ``queue_core.c``)
    with ``-D`` ``defines`` (``BREAK_NOTIFY``: the broken build); the executable's path.

    Built once per process and set of defines, into a temporary directory unless
    ``out_dir`` is given.
    """
    key = tuple(sorted(defines))
    if key in _built_frontends and _built_frontends[key].exists() and out_dir is None:
        return _built_frontends[key]
    cc = shutil.which("cc")
    if cc is None:
        raise CompilerMissing(
            "no C compiler: `cc` is not on PATH, so the C front end cannot be built"
        )
    source = CIMPL / "frontend.c"
    for needed in (source, CIMPL / "queue_core.c"):
        if not needed.exists():
            raise ImplementationError(
                f"{needed} is missing: the C front end's source ships in cimpl/"
            )
    directory = out_dir or build_dir("cimpl")
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / ("frontend" + "".join(f"_{d.lower()}" for d in key))
    # built under another name, then renamed: another process may be running ``exe``
    staged = staged_file(exe)
    argv = [
        cc,
        "-std=c99",
        "-O2",
        "-Wall",
        "-Wextra",
        *(f"-D{d}" for d in key),
        "-o",
        str(staged),
        str(source),
    ]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ImplementationError(
                f"building the C front end failed ({' '.join(argv)}):\n{result.stderr}"
            )
        os.replace(staged, exe)
    finally:
        staged.unlink(missing_ok=True)
    if out_dir is None:
        _built_frontends[key] = exe
    return exe


#: What an implementation of the adapter contract must have (docs/conformance.md).
CONTRACT_METHODS = ("capabilities", "reset", "apply", "observe", "close")


def resolve(
    impl: str | None = None, cmd: str | None = None
) -> tuple[Callable[[], Implementation], Sizes]:
    """A factory of fresh implementations and the sizes to test them at."""
    if cmd is not None:
        return (lambda: SubprocessImplementation(cmd)), Sizes()
    if impl is None or impl == "reference":
        return (lambda: ReferenceImplementation()), reference_sizes()
    if impl == "reference-fixed":
        return (lambda: ReferenceImplementation(Fixes.all(), name=FIXED_PROFILE)), reference_sizes()
    if impl == "c-driver":
        # the seed's own C source compiled against the kernel shim (docs/cdriver.md)
        return resolve("xbdspec.cdriver:implementation")
    if impl == "c-queue-core":
        exe = build_c_core()
        return (lambda: SubprocessImplementation([str(exe)])), Sizes()
    if ":" in impl:
        module_name, _, attr = impl.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ImplementationError(
                f"cannot load implementation factory {impl!r}: {exc}"
            ) from None
        if not callable(factory):
            raise ImplementationError(
                f"{impl!r} is not callable: give a function returning an Implementation"
            )
        try:
            sample = factory()
        except Exception as exc:  # not a factory of implementations (os:getcwd...)
            raise ImplementationError(
                f"{impl!r}() raised {type(exc).__name__}: {str(exc)[:200]}: give a function "
                "of no arguments returning an Implementation"
            ) from None
        missing = [m for m in CONTRACT_METHODS if not callable(getattr(sample, m, None))]
        if missing:
            raise ImplementationError(
                f"{impl!r}() returned {type(sample).__name__!r}, not an Implementation: it has "
                f"no {', '.join(missing)} (the adapter contract: {', '.join(CONTRACT_METHODS)})"
            )
        preferred = getattr(sample, "preferred_sizes", None)
        sizes = preferred() if callable(preferred) else Sizes()
        sample.close()
        return factory, sizes
    raise ImplementationError(
        f"unknown implementation {impl!r}: use one of {', '.join(BUILTIN)}, "
        "a package.module:factory, or --cmd"
    )
