"""``Draft``: write an effect as a sequence of assignments, like the seed's C code.

An effect must say every changed field's new value as a function of the state
*before* the step.  Seed functions, though, update the same field several times in
one locked section (``xbd_qfrozen_cnt`` goes up in ``xbd_cm_freeze`` and down in
``xbd_thaw``).  A draft records assignments in order and lets later reads see earlier
writes, so an effect reads like the code it models; ``changes`` is the result.  It
works on plain values and on solver terms alike, because it only stores what the
operators compute.
"""

from __future__ import annotations

from typing import Any


class Draft:
    """The state being updated by one step.

    Attributes:
        changes: the fields assigned so far and their latest values.
    """

    __slots__ = ("_before", "changes")
    changes: dict[str, Any]

    def __init__(self, before: Any) -> None:
        object.__setattr__(self, "_before", before)
        object.__setattr__(self, "changes", {})

    def __getattr__(self, name: str) -> Any:
        changes = object.__getattribute__(self, "changes")
        if name in changes:
            return changes[name]
        return getattr(object.__getattribute__(self, "_before"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        before = object.__getattribute__(self, "_before")
        if not hasattr(before, name):
            raise AttributeError(f"the state has no field {name!r}")
        self.changes[name] = value

    def set_at(self, name: str, index: int, value: Any) -> None:
        """Assign element ``index`` of the array field ``name``."""
        items = getattr(self, name)
        self.changes[name] = (*items[:index], value, *items[index + 1 :])
