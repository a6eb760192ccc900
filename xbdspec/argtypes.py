"""Command-line values checked against what can make sense, with messages naming the bound.

The ``type=`` callables of the commands' options (``add_arguments``): each turns the text
into a value or raises :class:`argparse.ArgumentTypeError` saying the bound, so that
``explore --commands 0``, ``prove --jobs -3`` or ``simulate --ios -1`` are refused as
usage errors (exit status 2) instead of running into a deadlock of the model or growing
without end.  :class:`Parser` is the parser every command uses: its error messages show
a hostile value as an excerpt, never 50 MB of it.  The bounds of the model's sizes are
:data:`xbdspec.untrusted.SIZE_BOUNDS`, shared with the readers of replay files.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from xbdspec.untrusted import EXCERPT, SIZE_BOUNDS

#: The longest usage error printed (characters); the rest is said to be cut.
MAX_MESSAGE = 1000
#: A quoted stretch of a message of more than twice an excerpt is shown as its start
#: (one an option's type already cut is left alone).
_QUOTED = re.compile(r"'(?:[^'\\]|\\.){N,}'|\"(?:[^\"\\]|\\.){N,}\"".replace("N", str(2 * EXCERPT)))


def _shown(text: str) -> str:
    """``text`` as a message quotes it: cut to an excerpt, with its length."""
    if len(text) <= EXCERPT:
        return repr(text)
    return f"{text[:EXCERPT]!r}... ({len(text):,} characters)"


def _whole(text: str, what: str) -> int:
    try:
        return int(text.strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not {what}") from None


def int_range(low: int, high: int | None = None, why: str = "") -> Callable[[str], int]:
    """A whole number from ``low`` to ``high`` (no upper bound when None); ``why`` says
    what the bound is for, in the message."""

    def parse(text: str) -> int:
        value = _whole(text, "a whole number")
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(
                f"{value} is out of bounds: give {bound}" + (f" ({why})" if why else "")
            )
        return value

    parse.__name__ = "whole number"  # argparse names the type by it in its own messages
    return parse


def size(name: str) -> Callable[[str], int]:
    """One of the model's sizes (``--commands``...), within :data:`SIZE_BOUNDS`."""
    low, high = SIZE_BOUNDS[name]
    why = {
        "commands": "the model needs a command to send a request",
        "bios": "a run with no bio tests no I/O",
        "ring_slots": "a ring has at least one slot",
        "grants": "a request needs a grant reference from the pool",
        "grants_per_request": "a command allocates at least one grant reference",
        "max_users": "the disk must be openable",
    }.get(name, "")
    return int_range(low, high, why)


def seconds(text: str) -> float:
    """A finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"{text[:40]} s makes no test: give a finite number above 0"
        )
    return value


def seed(text: str) -> int:
    """A seed: any whole number of at most 64 bits (a campaign prints it to replay)."""
    return int_range(-(1 << 63), (1 << 64) - 1, "a seed of at most 64 bits")(text)


def output_dir(text: str) -> Path:
    """A directory to write into: created now (with its parents) if it is not there, so
    that one that cannot be (``/proc/x``, a path through a file) is refused before any
    work, not when the first replay is written."""
    path = Path(text)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise argparse.ArgumentTypeError(
            f"cannot create the directory {_shown(text)}: {exc.strerror or exc}"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write into the directory {_shown(text)}")
    return path


def output_file(text: str) -> Path:
    """A file to write at the end of a run: its directory must exist (and it must not be
    a directory itself), checked now rather than after the run."""
    path = Path(text)
    parent = path.parent
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{_shown(text)} is a directory, not a file to write")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"cannot write {_shown(text)}: its directory {_shown(str(parent))} does not exist"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write into the directory {_shown(str(parent))}")
    return path


def shorten(message: str) -> str:
    """An error message with every long quoted value cut to an excerpt, and at most
    :data:`MAX_MESSAGE` characters in all."""

    def cut(match: re.Match[str]) -> str:
        quoted = match.group(0)
        return f"{quoted[: EXCERPT + 1]}{quoted[0]}... ({len(quoted) - 2:,} characters)"

    short = _QUOTED.sub(cut, message)
    if len(short) > MAX_MESSAGE:
        short = f"{short[:MAX_MESSAGE]}... (the message is cut: {len(short):,} characters)"
    return short


class Parser(argparse.ArgumentParser):
    """The command line's parser: usage errors as argparse says them, a hostile value
    shown as an excerpt (:func:`shorten`); exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(None)
        self.exit(2, f"{self.prog}: error: {shorten(message)}\n")
