"""Reading what xbdspec does not control: bounded JSON, short excerpts, sizes that make sense.

Every reader of untrusted input (a replay file, a child's message over stdio, a header's
sizes) decodes it through :func:`load_json` and checks sizes with :func:`check_sizes`,
so that malformed, deeply nested, oversized or nonsensical input is one
:class:`~xbdspec.errors.InputError` naming where it came from -- never a
``RecursionError``, the ``ValueError`` of Python's 4,300-digit limit on integers, a
``UnicodeDecodeError``, nor a run that grows without bound.  :func:`excerpt` shows a
hostile value in a message without echoing all of it.

The hostile inputs tried against these readers, and what each gets, are in
``docs/hostile-inputs.md`` (kept in step with ``tests/fuzz/``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from xbdspec.errors import InputError

#: The deepest nesting of arrays and objects a message or a replay line may have.  The
#: formats nest three or four levels; this leaves room without letting a hostile line
#: reach the interpreter's recursion limit in whatever walks the value next.
MAX_DEPTH = 64
#: Python's limit on the digits of an integer read from text (``sys.int_info``).
MAX_DIGITS = 4300
#: What a message shows of a hostile value at most (characters).
EXCERPT = 80

#: What makes sense for each of the model's sizes (:class:`~xbdspec.model.state.Sizes`),
#: inclusive: below the lower bound the model has nothing to run (no command, no grant:
#: every request waits for ever, which the explorer would report as a deadlock of the
#: model); above the upper one the state grows past what any tool here can hold.
SIZE_BOUNDS: dict[str, tuple[int, int]] = {
    "commands": (1, 64),
    "bios": (1, 64),
    "ring_slots": (1, 64),
    "grants": (1, 4096),
    "grants_per_request": (1, 4096),
    "suspends": (0, 16),
    "unplugs": (0, 16),
    "max_users": (1, 16),
    "ring_base": (0, 0xFFFF_FFFF),
    "dumps": (0, 16),
}


class JSONRefused(InputError):
    """A line or message that is not JSON this project reads.

    Attributes:
        reason: what is wrong, in words that stay the same from run to run (no column
            numbers): ``not UTF-8 text``, ``not JSON``, ``no finite number``, ``nested
            too deeply``, ``a number of more than 4300 digits``.
        detail: the particulars (a column, a byte), or nothing.
    """

    def __init__(self, source: str, reason: str, detail: str = "") -> None:
        super().__init__(source, reason + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.detail = detail


class _Rejected(Exception):
    """A constant JSON allows but no format of ours does (NaN, an infinity)."""


def _constant(name: str) -> Any:
    raise _Rejected(name)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Rejected(text[:20])
    return value


def load_json(data: str | bytes, where: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``data`` decoded as one JSON value, or an :class:`InputError` at ``where``.

    Bytes must be UTF-8; ``NaN``, ``Infinity`` and numbers that overflow a float are
    refused, as are integers of more than :data:`MAX_DIGITS` digits and nesting deeper
    than ``max_depth``."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONRefused(where, "not UTF-8 text", f"byte {exc.start}: {exc.reason}") from None
    else:
        text = data
    deep = f"nested too deeply (at most {max_depth} levels of arrays and objects)"
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_finite)
    except _Rejected as exc:
        raise JSONRefused(where, "no finite number", f"{exc}: JSON has none") from None
    except json.JSONDecodeError as exc:
        raise JSONRefused(where, "not JSON", f"{exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise JSONRefused(where, deep) from None
    except ValueError:  # only the integer-string limit is left: JSONDecodeError is caught
        raise JSONRefused(where, f"a number of more than {MAX_DIGITS} digits") from None
    if _deeper_than(value, max_depth):
        raise JSONRefused(where, deep)
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests arrays and objects more than ``limit`` deep (walked
    without recursion: the point is not to depend on the interpreter's stack)."""
    if not isinstance(value, (dict, list)):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def excerpt(value: object, limit: int = EXCERPT) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how long it was: a message
    names a hostile value without echoing 50 MB of it."""
    if isinstance(value, (dict, list)) and _deeper_than(value, 16):
        return f"a {type(value).__name__} nested more than 16 levels"
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(text) if isinstance(value, str) else text
    shown = text[:limit]
    return f"{shown!r}... ({len(text):,} characters)"


def check_sizes(values: Mapping[str, Any], where: str, *, option: bool = False) -> None:
    """Raise :class:`InputError` at ``where`` unless every size in ``values`` is an
    integer within :data:`SIZE_BOUNDS` and a request's grants fit in the pool
    (``grants_per_request <= grants``; both must be in ``values`` for that check).

    With ``option``, names are spelt as command-line options (``--ring-slots``)."""

    def name(key: str) -> str:
        return f"--{key.replace('_', '-')}" if option else key

    for key, value in values.items():
        if key not in SIZE_BOUNDS:
            known = ", ".join(SIZE_BOUNDS)
            raise InputError(where, f"no size {excerpt(key, 40)}: the sizes are {known}")
        low, high = SIZE_BOUNDS[key]
        if type(value) is not int or not low <= value <= high:
            raise InputError(
                where,
                f"{name(key)} must be a whole number from {low} to {high}, not {excerpt(value)}",
            )
    grants, per_request = values.get("grants"), values.get("grants_per_request")
    if isinstance(grants, int) and isinstance(per_request, int) and per_request > grants:
        raise InputError(
            where,
            f"{name('grants_per_request')} {per_request} exceeds {name('grants')} {grants}: "
            "a command takes its grant references from the pool before it is mapped, so no "
            f"request could ever be sent; give {name('grants_per_request')} at most {grants} "
            f"or {name('grants')} at least {per_request}",
        )
