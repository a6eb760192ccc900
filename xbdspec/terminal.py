"""Progress of a long run, on the terminal only (tqdm).

A long stage (an exploration, a campaign, the proofs, each stage of ``xbdspec verify``)
shows one progress bar on standard error, drawn by tqdm, when and only when standard
error is a terminal: in a pipe, a file or a CI log nothing is written (no ``\\r`` lines),
and under ``--json`` the bar is left out too when standard output is the same terminal,
so the document is never interleaved with it.  ``--quiet`` turns it off.

One more mode serves a parent process: with ``XBDSPEC_PROGRESS=relay`` in the
environment, every update (at most one every half second) is one line on standard
error, ``xbdspec-progress {"what": ..., "done": ..., "total": ..., "figures": {...}}``,
which ``xbdspec verify`` reads from the stage it runs to draw its own bar
(:func:`parse_relay`).  ``XBDSPEC_PROGRESS=off`` turns every bar off.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

#: The prefix of a relayed progress line.
RELAY_PREFIX = "xbdspec-progress "


def mode(*, enabled: bool = True, json_output: bool = False) -> str:
    """``bar``, ``relay`` or ``off``: how progress is shown (see the module docstring)."""
    wanted = os.environ.get("XBDSPEC_PROGRESS", "")
    if not enabled or wanted == "off":
        return "off"
    if wanted == "relay":
        return "relay"
    if not _isatty(sys.stderr):
        return "off"
    if json_output and _isatty(sys.stdout):
        return "off"
    return "bar"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _figures_text(figures: Mapping[str, Any]) -> str:
    parts = []
    for name, value in figures.items():
        if isinstance(value, float):
            value = f"{value:,.0f}"
        elif isinstance(value, int):
            value = f"{value:,}"
        parts.append(f"{name} {value}")
    return ", ".join(parts)


class Progress:
    """One progress display on standard error; a context manager.

    Attributes:
        what: what is progressing (``explore``, ``prove``, a stage's name).
        total: how many units make the whole (``None``: unknown; the bar counts up).
        unit: what a unit is (``states``, ``programs``, ``obligations``).
        mode: ``bar``, ``relay`` or ``off`` (:func:`mode`).
    """

    def __init__(
        self,
        what: str,
        *,
        total: int | None = None,
        unit: str = "",
        enabled: bool = True,
        json_output: bool = False,
        ticking: bool = False,
    ) -> None:
        self.what = what
        self.total = total
        self.unit = unit
        self.mode = mode(enabled=enabled, json_output=json_output)
        self.done = 0
        self.figures: dict[str, Any] = {}
        self._bar: Any = None
        self._last_relay = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=what,
                unit=f" {unit}" if unit else "it",
                file=sys.stderr,
                dynamic_ncols=True,
                leave=False,
                mininterval=0.25,
            )
            if ticking:
                self._ticker = threading.Thread(target=self._tick, daemon=True)
                self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if self._bar is not None:
                    self._bar.refresh()

    def update(self, done: int | None = None, *, what: str | None = None, **figures: Any) -> None:
        """Set the count to ``done`` (``None``: as it is), the description to ``what``
        and the figures shown beside the bar."""
        if self.mode == "off":
            return
        with self._lock:
            if what is not None:
                self.what = what
            previous = self.done
            self.done = done if done is not None else self.done
            if figures:
                self.figures = dict(figures)
            if self._bar is not None:
                if what is not None:
                    self._bar.set_description_str(what, refresh=False)
                if self.figures:
                    self._bar.set_postfix_str(_figures_text(self.figures), refresh=False)
                self._bar.update(self.done - previous)
            elif self.mode == "relay":
                self._relay()

    def set_total(self, total: int | None) -> None:
        """A new total (a sweep learnt its size)."""
        with self._lock:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
                self._bar.refresh()

    def _relay(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_relay < 0.5:
            return
        self._last_relay = now
        line = json.dumps(
            {"what": self.what, "done": self.done, "total": self.total, "figures": self.figures},
            default=str,
        )
        try:
            print(RELAY_PREFIX + line, file=sys.stderr, flush=True)
        except (OSError, ValueError):
            self.mode = "off"

    def write(self, text: str) -> None:
        """A line of text on standard error, above the bar (the bar is redrawn)."""
        if self._bar is not None:
            with self._lock:
                self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def out(self, text: str) -> None:
        """A line of the command's report on standard output, the bar kept below it."""
        if self._bar is not None:
            with self._lock:
                self._bar.write(text, file=sys.stdout)
        else:
            print(text, flush=True)

    def close(self) -> None:
        """Take the bar off the terminal."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2.0)
            self._ticker = None
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            elif self.mode == "relay":
                self._relay(force=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def parse_relay(line: str) -> dict[str, Any] | None:
    """A relayed progress line's content, or ``None`` for any other line."""
    if not line.startswith(RELAY_PREFIX):
        return None
    try:
        data = json.loads(line[len(RELAY_PREFIX) :])
    except (json.JSONDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def relayed_text(data: Mapping[str, Any]) -> str:
    """A relayed update in words: ``17/200 programs, events 1,234``."""
    done, total, figures = data.get("done"), data.get("total"), data.get("figures")
    parts = []
    if isinstance(done, int) and not isinstance(done, bool) and done:
        parts.append(f"{done:,}/{total:,}" if isinstance(total, int) and total else f"{done:,}")
    if isinstance(figures, dict) and figures:
        parts.append(_figures_text(figures))
    return ", ".join(parts)
