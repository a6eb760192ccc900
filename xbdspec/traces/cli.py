"""``xbdspec check TRACE``: validate a recorded trace or an oxenstored access log.

Three formats: a JSON-lines trace of the FreeBSD model's events; an oxenstored access
log (every vbd followed through the FreeBSD model's handshake); and a JSON-lines file
of xenstore *commits* (a header naming the ``frontend`` or ``scenario``, then one
transaction or write per line), checked against the protocol model
(:mod:`xbdspec.traces.protocol`) with its three verdicts.

Exit status: 0 valid or conforming (known gaps and tolerated deviations reported but not
failed), 1 divergence or violation, 2 malformed input (the CLI's error path), 3
unverifiable (a line that matters was cut or refused).
"""

from __future__ import annotations

import argparse
import os
import sys

from xbdspec import argtypes, output
from xbdspec.errors import InputError

from . import check as check_mod
from .check import FORMATS, FRONTENDS, check_file, detect_format
from .oxenstored import DEFAULT_NB_CHARS
from .protocol import check_scenario
from .report import CheckResult


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``xbdspec check``."""
    parser.add_argument(
        "trace",
        metavar="TRACE",
        help="a JSON-lines trace of model events, an oxenstored access log, or a JSON-lines "
        "file of xenstore commits (checked against the protocol model)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="the trace's format (default: from its first line)",
    )
    parser.add_argument(
        "--frontend",
        choices=FRONTENDS,
        default="any",
        help="check an access log against the protocol model (any: the default), or "
        "against the FreeBSD driver model, which refines it (freebsd)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--nb-chars",
        type=argtypes.int_range(0, None, "0: lines are never cut"),
        default=DEFAULT_NB_CHARS,
        metavar="N",
        help="the log's access-log-nb-chars (oxenstored cuts lines at N-1 characters with "
        f"`..`; default {DEFAULT_NB_CHARS}; 0 if lines are never cut)",
    )


def run(args: argparse.Namespace) -> int:
    """Check the trace, print the report, return the exit status."""
    fmt = args.format
    if fmt == "auto" and args.trace != "-":
        fmt = _first_format(args.trace) or "auto"
    if fmt == "commits":
        _, report = check_scenario(args.trace)
        if args.json:
            data = {"source": args.trace, "format": "commits", **report.as_json()}
            counts = {
                "commits": report.commits,
                "steps": len(report.steps),
                "deviations": len(report.deviations),
                "violations": int(bool(report.violation)),
            }
            output.emit("check", ok=report.exit_code == 0, counts=counts, fields=data)
        else:
            print(report.render(args.trace))
        sys.stdout.flush()
        return report.exit_code
    try:
        result = check_file(args.trace, fmt, args.nb_chars, args.frontend)
    except check_mod.PartialCheck as stopped:
        # what was reached before the malformed line, then the error (exit status 2)
        partial = stopped.result
        if args.json:
            from xbdspec.cli import EXIT_INPUT

            data = partial.as_json()
            data["error"] = output.error_field("input", str(stopped), EXIT_INPUT)
            output.emit("check", ok=False, counts=_counts(partial), fields=data)
        else:
            print(partial.render())
        sys.stdout.flush()
        raise
    if args.json:
        output.emit(
            "check", ok=result.exit_code == 0, counts=_counts(result), fields=result.as_json()
        )
    else:
        print(result.render())
    sys.stdout.flush()
    return result.exit_code


def _counts(result: CheckResult) -> dict[str, int]:
    """The envelope's counts: events read, devices, and the devices of each verdict."""
    counts = {"events": result.events, "devices": len(result.devices), "notes": len(result.notes)}
    for device in result.devices:
        counts[device.verdict] = counts.get(device.verdict, 0) + 1
    return counts


def _first_format(path: str) -> str:
    """The format a file's first line shows (a FIFO is read once, by the check)."""
    import stat

    try:
        if stat.S_ISFIFO(os.stat(path).st_mode):
            return ""
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in check_mod.bounded_lines(handle, path):
                if line.strip():
                    return detect_format(line[:4096])
    except OSError as exc:
        raise InputError(path, f"cannot open the trace: {exc.strerror}") from None
    return ""
