"""Where the files the package reads at run time are, in a checkout and once installed.

The C sources (``cimpl/``, ``shim/``) are installed as data packages
``xbdspec.cimpl`` and ``xbdspec.shim``; what the package builds goes under ``build/`` in
a checkout and under the user's cache directory (or ``XBDSPEC_BUILD_DIR``) otherwise,
never into the current directory or the installed tree.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The checkout the package runs from, or None when it is installed.
_HERE = Path(__file__).resolve().parent.parent
CHECKOUT: Path | None = _HERE if (_HERE / "pyproject.toml").exists() else None


def data_dir(name: str) -> Path:
    """The directory of the data package ``xbdspec.<name>`` (``cimpl``, ``shim``,
    ``shim_linux``: the checkout's ``shim-linux/``)."""
    spec = importlib.util.find_spec(f"xbdspec.{name}")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if CHECKOUT is not None:
        return CHECKOUT / name.replace("_", "-")
    raise FileNotFoundError(f"xbdspec.{name} is not installed with the package")


def build_dir(*parts: str) -> Path:
    """Where to put what the package builds (created on demand by the caller)."""
    override = os.environ.get("XBDSPEC_BUILD_DIR")
    if override:
        return Path(override).joinpath(*parts)
    if CHECKOUT is not None:
        return CHECKOUT.joinpath("build", *parts)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache.joinpath("xbdspec", *parts)


@contextmanager
def staged_build(final: Path, complete: str) -> Iterator[Path]:
    """A fresh directory beside ``final`` to build into; when the block ends without an
    error it becomes ``final`` in one rename, so that two processes building the same
    cached directory (two commands at once, the suite's workers) never see each other's
    half-written objects. If another process published ``final`` first, its build is kept
    and this one dropped; a ``final`` without its ``complete`` file (left by an older,
    interrupted build) is replaced. The staging directory never outlives the block."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would make a shared cache one user's
    try:
        yield staging
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / complete).is_file():
                shutil.rmtree(final, ignore_errors=True)
                try:
                    os.rename(staging, final)
                except OSError:  # a third process replaced the leftover first
                    if not (final / complete).is_file():
                        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def staged_file(final: Path) -> Path:
    """A name beside ``final`` to write it under first, then :func:`os.replace` it into
    place (a process running the old file keeps it; none sees a half-written one)."""
    return final.with_name(f".{final.name}.{os.getpid()}.tmp")


def doc(page: str) -> Path:
    """A page of the documentation (``stdio-v2.md``, ``findings/index.md``), for messages
    that cite one: the checkout's ``docs/`` or the copy installed as ``xbdspec/docs/``."""
    return data_dir("docs") / page
