"""Linux's block front end, from Debian's ``linux-source-6.1``: installed with apt when
absent, and only the driver and the Xen interface headers it needs extracted into
``build/linux/`` (nothing of the kernel is committed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from xbdspec.errors import XbdspecError
from xbdspec.resources import build_dir, staged_build

BUILD_DIR = build_dir("linux")
PACKAGE = "linux-source-6.1"
TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
PREFIX = "linux-source-6.1/"
#: The members extracted: the driver, and the interface headers it (and the shim) include.
MEMBERS = (
    "drivers/block/xen-blkfront.c",
    "include/xen/interface/xen.h",
    "include/xen/interface/grant_table.h",
    "include/xen/interface/event_channel.h",
    "include/xen/interface/io/blkif.h",
    "include/xen/interface/io/ring.h",
    "include/xen/interface/io/xenbus.h",
    "include/xen/interface/io/protocols.h",
)


class SourceError(XbdspecError):
    """The kernel source is not there and cannot be installed."""


def source_dir(out: Path | None = None) -> Path:
    """Where the extracted tree is (``build/linux/linux-source-6.1``)."""
    return (out or BUILD_DIR) / PREFIX.rstrip("/")


def install(tarball: Path = TARBALL) -> Path:
    """``apt-get install linux-source-6.1`` when its tarball is absent."""
    if tarball.is_file():
        return tarball
    apt = shutil.which("apt-get")
    if apt is None:
        raise SourceError(f"{tarball} is absent and there is no apt-get to install {PACKAGE}")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(
        [*sudo, apt, "install", "-y", "--no-install-recommends", PACKAGE],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if proc.returncode != 0 or not tarball.is_file():
        raise SourceError(f"installing {PACKAGE} failed:\n{proc.stdout[-2000:]}{proc.stderr}")
    return tarball


def extract(out: Path | None = None, tarball: Path = TARBALL) -> Path:
    """Install if needed, then extract :data:`MEMBERS` (once) under ``out``; the tree's root."""
    root = source_dir(out)
    if all((root / m).is_file() for m in MEMBERS):
        return root
    install(tarball)
    root.parent.mkdir(parents=True, exist_ok=True)
    wanted = {PREFIX + m for m in MEMBERS}
    with tarfile.open(tarball, "r:xz") as tar:
        members = []
        for info in tar:
            if info.name in wanted:
                members.append(info)
                if len(members) == len(wanted):
                    break
        missing = wanted - {m.name for m in members}
        if missing:
            raise SourceError(f"{tarball} lacks {', '.join(sorted(missing))}")
        # extracted beside, then renamed into place: another process may be extracting too
        for info in members:
            info.name = info.name.removeprefix(PREFIX)
        # the last member in the tarball's order is the last one an extraction writes
        with staged_build(root, members[-1].name) as work:
            tar.extractall(work, members=members, filter="data")
    return root


def available() -> bool:
    """Whether the source is extracted or can be (the tarball is there, or apt is)."""
    if all((source_dir() / m).is_file() for m in MEMBERS) or TARBALL.is_file():
        return True
    try:
        extract()
    except SourceError:
        return False
    return True
