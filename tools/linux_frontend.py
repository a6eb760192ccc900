"""``make linux-frontend``: install Debian's linux-source-6.1 when it is absent, extract
xen-blkfront.c and the Xen interface headers into build/linux/, and compile the driver,
unmodified, against shim-linux/ (cached)."""

from __future__ import annotations

import sys

from xbdspec.linux.adapter import build
from xbdspec.linux.source import SourceError


def main() -> int:
    try:
        built = build()
    except SourceError as exc:
        print(f"linux-frontend: {exc}", file=sys.stderr)
        return 1
    print(f"linux-frontend: {built.driver} -> {built.library}")
    for line in built.warnings:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
