"""Which seed the findings are about: the copy of FreeBSD's ``blkfront.c`` they were
found in, identified by its digest, and where the driver lives upstream.

The copy (``../shared/seed/blkfront.c`` beside the checkout, or ``$XBD_BLKFRONT``)
carries no upstream commit: its ``__FBSDID("$FreeBSD$")`` keyword is unexpanded.  So the
revision is stated as the copy's SHA-256 and length, and the pages link FreeBSD's file
and its history, where a reader finds the commit whose text the digest matches.  A test
checks the digest against the copy whenever the copy is present, so a changed seed is
caught before a page describes a driver it no longer is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SeedRevision:
    """One revision of the seed driver.

    Attributes:
        path: the file in FreeBSD's source tree.
        sha256: the SHA-256 of the copy the findings were found in.
        lines: its number of lines (newline characters, as `wc -l` counts).
        upstream: FreeBSD's file (cgit, the main branch).
        history: the file's commit log upstream.
    """

    path: str
    sha256: str
    lines: int
    upstream: str
    history: str

    def markdown(self) -> str:
        """One sentence for a page: the revision and its links."""
        return (
            f"Seed revision: the copy of FreeBSD's [`{self.path}`]({self.upstream}) with "
            f"SHA-256 `{self.sha256[:16]}…` ({self.lines:,} lines; its `$FreeBSD$` keyword "
            f"is unexpanded, so the copy names no commit: see the file's "
            f"[history]({self.history}))."
        )

    def matches(self, copy: Path) -> bool:
        """Whether ``copy`` is this revision."""
        return hashlib.sha256(copy.read_bytes()).hexdigest() == self.sha256


#: The seed every finding page describes.
SEED = SeedRevision(
    path="sys/dev/xen/blkfront/blkfront.c",
    sha256="df60305d0370980c674d276dcb1fc41544c96261fca7966977f33107735c13d5",
    lines=1245,
    upstream="https://cgit.freebsd.org/src/tree/sys/dev/xen/blkfront/blkfront.c",
    history="https://cgit.freebsd.org/src/log/sys/dev/xen/blkfront/blkfront.c",
)
