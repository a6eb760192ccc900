"""Symmetry reduction over interchangeable commands, and state fingerprints.

**Which states are equivalent.**  Commands (the shadow array ``sc->xbd_shadow``) are
interchangeable: nothing in the model depends on a command's index except the
position of its values in the per-command arrays (``cmd_*``, the fields of group
``"command"``), and no field holds a command index (``cmd_bio`` holds a *bio*
number).  Permuting the command columns of a state therefore gives a state with
the same behaviour up to the same permutation of the ``cmd`` parameters.  Bios are
*not* interchangeable: a bio's number is its submission order, which the model
uses (the head of the bio queue is the lowest-numbered queued bio).

**Canonical form.**  The representative of a state is the one whose command
columns, read as tuples ``(cmd_place[c], cmd_stage[c], ...)``, are sorted: that is
the lexicographically least arrangement of the columns.  Sorting is ``O(n log n)``
instead of trying the ``n!`` permutations.

**Fingerprints.**  A visited state is remembered by ``hash`` of its canonical
tuple, a 64-bit integer.  CPython hashes ``int``/``bool``/``IntEnum`` values
deterministically (no per-process salt), but ``hash(-1) == hash(-2)``; in a state
where a field whose domain contains ``-1`` (``cmd_status``: ``BLKIF_RSP_ERROR``)
holds ``-1``, that field is mixed in again after remapping to positions in the
domain, so the states that differ only there do not collide systematically.
docs/explorer.md gives the collision bound.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from xbdspec.model.declaration import Spec

#: the group of the per-command array fields in the declaration (model/state.py)
COMMAND_GROUP = "command"


class CommandSymmetry:
    """The canonical form of states under permutations of the commands.

    Attributes:
        positions: the positions in the state tuple of the per-command arrays.
    """

    def __init__(self, spec: Spec) -> None:
        fields = spec.State._fields
        self.positions: tuple[int, ...] = tuple(
            fields.index(f.name)
            for f in spec.fields
            if f.group == COMMAND_GROUP and f.length == spec.sizes.commands
        )
        self._State = spec.State
        self._arrays = itemgetter(*self.positions) if len(self.positions) > 1 else None
        self._commands = spec.sizes.commands

    def canonical(self, state: Any) -> Any:
        """The representative of ``state``: its command columns in sorted order."""
        if self._arrays is None:
            return state
        columns = list(zip(*self._arrays(state), strict=True))
        # most states are already in order: check that first (C-level tuple comparisons)
        n = self._commands
        if (n == 2 and columns[0] <= columns[1]) or (
            n == 3 and columns[0] <= columns[1] <= columns[2]
        ):
            return state
        ordered = sorted(columns)
        if ordered == columns:
            return state
        values = list(state)
        for position, array in zip(self.positions, zip(*ordered, strict=True), strict=True):
            values[position] = array
        return tuple.__new__(self._State, values)

    def permute(self, state: Any, order: tuple[int, ...]) -> Any:
        """``state`` with command ``order[i]`` moved to position ``i`` (for tests)."""
        values = list(state)
        for position in self.positions:
            array = state[position]
            values[position] = tuple(array[j] for j in order)
        return tuple.__new__(self._State, values)


class Fingerprinter:
    """64-bit fingerprints of states (``hash`` of the tuple, see the module doc)."""

    def __init__(self, spec: Spec) -> None:
        fields = spec.State._fields
        self._remapped: list[tuple[int, bool, dict[Any, int]]] = []
        for f in spec.fields:
            if f.domain.kind in ("bool", "u32"):
                continue
            values = f.domain.values()
            if any(int(v) == -1 for v in values):
                mapping = {v: i for i, v in enumerate(values)}
                self._remapped.append((fields.index(f.name), f.length is not None, mapping))

    def __call__(self, state: Any) -> int:
        if not self._remapped:
            return hash(state)
        if len(self._remapped) == 1:
            position, is_array, mapping = self._remapped[0]
            value = state[position]
            # only -1 hashes like another value (-2): remix only the states holding it
            if is_array and -1 not in value:
                return hash(state)
            if is_array:
                return hash((state, tuple(map(mapping.__getitem__, value))))
        extra = []
        for position, is_array, mapping in self._remapped:
            value = state[position]
            extra.append(tuple(mapping[v] for v in value) if is_array else mapping[value])
        return hash((state, *extra))
