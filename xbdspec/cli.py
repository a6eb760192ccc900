"""The ``xbdspec`` command line.

Each subcommand lives in the module that owns its work and exposes two functions,
``add_arguments(parser)`` and ``run(args) -> int``; this module only maps names to
modules and imports the one that is asked for, so ``xbdspec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from xbdspec.errors import XbdspecError

#: subcommand name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "simulate": (
        "xbdspec.reference.simulate",
        "boot a disk on the simulated platform and run random I/O through the reference",
    ),
    "diagram": ("xbdspec.model.diagram", "write the model's state diagrams into docs/"),
    "prove": ("xbdspec.proofs.cli", "discharge the proof obligations with z3"),
    "explore": ("xbdspec.explore.cli", "explore every interleaving of the model or the reference"),
    "difftest": ("xbdspec.conformance.cli", "test an implementation against the model"),
    "check": (
        "xbdspec.traces.cli",
        "check a recorded trace or xenstore access log against the model",
    ),
    "findings": (
        "xbdspec.findings.audit",
        "replay every documented finding of the seed, with and without its fix",
    ),
    "verify": ("xbdspec.verify", "run everything the project can check, with a summary"),
}


class _Subcommand(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> _Subcommand:
    module_name, _ = SUBCOMMANDS[name]
    return cast(_Subcommand, importlib.import_module(module_name))


def version() -> str:
    """The installed distribution's version (the checkout's when not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("xbdspec")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that subcommand's module is imported."""
    parser = argparse.ArgumentParser(prog="xbdspec", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"xbdspec {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            _load(name).add_arguments(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xbdspec`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    wanted = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    parser = build_parser(only=wanted if wanted else "")
    args = parser.parse_args(argv)
    try:
        return _load(args.command).run(args)
    except XbdspecError as exc:
        print(f"xbdspec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xbdspec {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`xbdspec explore | head`): not an error of ours
        sys.stderr.close()
        return 0
