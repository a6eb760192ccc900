"""Plain-value encoding of model states: what observations and the protocol carry.

Enums become their integer values, arrays become lists, booleans stay booleans, so a
state can be compared with an observation field by field and written as JSON.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

#: the types :func:`plain` returns as they are (checked first: most values are these)
_AS_IS = frozenset({bool, int, str, float, type(None)})


def plain(value: Any) -> Any:
    """``value`` with enums as ints and tuples as lists."""
    if type(value) in _AS_IS:
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return int(value.value)
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value


def encode_state(state: Any) -> dict[str, Any]:
    """A model ``State`` as a plain dict, field by field."""
    return {name: plain(value) for name, value in zip(state._fields, state, strict=True)}


def field_differences(
    expected: Mapping[str, Any], observed: Mapping[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """``field -> (model, implementation)`` for every observed field that differs."""
    return {
        name: (expected.get(name), value)
        for name, value in observed.items()
        if name in expected and plain(expected[name]) != plain(value)
    }
