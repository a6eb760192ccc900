"""``python -m xbdspec.cdriver ...``: see :mod:`xbdspec.cdriver.cli`."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
