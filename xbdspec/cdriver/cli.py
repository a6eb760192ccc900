"""``python -m xbdspec.cdriver build [SOURCE] | scenario NAME [--source S] [--sanitize]``:
compile and print the warnings, or run one scenario and print its JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator

from .build import BuildError, BuildResult, build
from .scenarios import SCENARIOS, run_scenario


def _iter_warnings(result: BuildResult) -> Iterator[str]:
    yield from result.warnings


def main(argv: list[str] | None = None) -> int:
    """``python -m xbdspec.cdriver build [SOURCE] | scenario NAME [--source S] [--sanitize]``."""
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
