"""The ``xbdspec`` command line.

Each subcommand lives in the module that owns its work and exposes two functions,
``add_arguments(parser)`` and ``run(args) -> int``; this module only maps names to
modules and imports the one that is asked for, so ``xbdspec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
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
    "diagram": (
        "xbdspec.model.diagram",
        "write the model's state diagrams (the checkout's docs/diagrams/, or --out DIR)",
    ),
    "prove": ("xbdspec.proofs.cli", "discharge the proof obligations with z3"),
    "explore": ("xbdspec.explore.cli", "explore every interleaving of the model or the reference"),
    "difftest": ("xbdspec.conformance.cli", "test an implementation against the specification"),
    "check": (
        "xbdspec.traces.cli",
        "check a recorded trace or xenstore access log against the model",
    ),
    "findings": (
        "xbdspec.findings.audit",
        "replay every documented finding of the seed, with and without its fix",
    ),
    "verify": ("xbdspec.verify", "run everything the project can check, with a summary"),
    "itf": ("xbdspec.itf", "write a replay or counterexample as an ITF trace (Apalache, Quint)"),
}


class _Subcommand(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> _Subcommand:
    module_name, _ = SUBCOMMANDS[name]
    return cast(_Subcommand, importlib.import_module(module_name))


#: The exit statuses every command uses: 0 ok, 1 a verdict (a divergence, a violation, a
#: refuted obligation that was not expected), 2 a usage or input error, 3 unverifiable
#: (a trace line that matters was cut or refused), 4 a crash of xbdspec itself.
EXIT_OK, EXIT_VERDICT, EXIT_INPUT, EXIT_UNVERIFIABLE, EXIT_CRASH = 0, 1, 2, 3, 4
#: Stopped by Ctrl-C (128 + SIGINT, as a shell reports it), after printing and writing
#: what had been found.
EXIT_INTERRUPTED = 130


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
    from xbdspec.argtypes import Parser  # usage errors show a hostile value as an excerpt

    parser = Parser(prog="xbdspec", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"xbdspec {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            _load(name).add_arguments(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xbdspec`` console script; returns the exit status.

    With ``--json``, a command that stops before printing its own document (an input
    error, Ctrl-C, a crash) still prints one: the envelope with its ``error``
    (:mod:`xbdspec.output`)."""
    from xbdspec import config, output  # config: the run configuration file

    argv, config_file = config.split_option(sys.argv[1:] if argv is None else argv)
    wanted = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    parser = build_parser(only=wanted if wanted else "")
    config.apply(parser, wanted, config_file)  # the file's values as the parser's defaults
    args = parser.parse_args(argv)
    output.reset()
    as_json = bool(getattr(args, "json", False))

    def fallback(kind: str, message: str, status: int) -> int:
        if as_json and not output.emitted():
            with contextlib.suppress(Exception):  # the message on stderr is the one said
                output.emit_error(args.command, kind, message, status)
        return status

    try:
        return _load(args.command).run(args)
    except XbdspecError as exc:
        print(f"xbdspec {args.command}: error: {str(exc)[:2000]}", file=sys.stderr)
        return fallback("input", str(exc), EXIT_INPUT)
    except KeyboardInterrupt:
        print(f"xbdspec {args.command}: interrupted", file=sys.stderr)
        return fallback("interrupted", "interrupted (Ctrl-C)", EXIT_INTERRUPTED)
    except BrokenPipeError:
        if _stdout_is_a_pipe():
            # the reader went away (`xbdspec explore | head`): not an error of ours
            sys.stderr.close()
            return EXIT_OK
        return _crash(args.command)
    except Exception as exc:  # the tool's own bug: said as such, never a verdict
        status = _crash(args.command)
        return fallback("crash", f"{type(exc).__name__}: {str(exc)[:300]}", status)


def _stdout_is_a_pipe() -> bool:
    import stat

    try:
        return stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode)
    except (OSError, ValueError):
        return False


def _crash(command: str) -> int:
    """A bug in xbdspec itself: a distinct exit status and a request for a report (the
    traceback only with ``XBDSPEC_TRACEBACK=1``)."""
    import traceback

    kind, value, _ = sys.exc_info()
    name = kind.__name__ if kind is not None else "error"
    print(
        f"xbdspec {command}: internal error ({name}: {str(value)[:300]}): this is a bug in "
        "xbdspec, not a verdict; please report it with the command line"
        + ("" if os.environ.get("XBDSPEC_TRACEBACK") else " (XBDSPEC_TRACEBACK=1 shows where)"),
        file=sys.stderr,
    )
    if os.environ.get("XBDSPEC_TRACEBACK"):
        traceback.print_exc()
    return EXIT_CRASH
