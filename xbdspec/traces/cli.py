"""``xbdspec check TRACE``: validate a recorded trace or an oxenstored access log.

Exit status: 0 valid (known gaps of the model reported but not failed), 1 divergence,
2 malformed input (the CLI's error path), 3 unverifiable (a line that matters was cut
or refused).
"""

from __future__ import annotations

import argparse
import json
import sys

from .check import FORMATS, check_file
from .oxenstored import DEFAULT_NB_CHARS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``xbdspec check``."""
    parser.add_argument(
        "trace",
        metavar="TRACE",
        help="a JSON-lines trace of model events or an oxenstored access log",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="the trace's format (default: from its first line)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--nb-chars",
        type=int,
        default=DEFAULT_NB_CHARS,
        metavar="N",
        help="the log's access-log-nb-chars (oxenstored cuts lines at N-1 characters with "
        f"`..`; default {DEFAULT_NB_CHARS}; 0 if lines are never cut)",
    )


def run(args: argparse.Namespace) -> int:
    """Check the trace, print the report, return the exit status."""
    result = check_file(args.trace, args.format, args.nb_chars)
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        print(result.render())
    sys.stdout.flush()
    return result.exit_code
