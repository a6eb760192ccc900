"""``xbdspec.explore.snapshots``: object graphs restored by their states, exactly."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest

from xbdspec.explore.snapshots import PageTrackedBuffer, Snapshot, Unsupported, take


@dataclass(slots=True, eq=False)
class Node:
    """A slotted object of the kind the reference is made of."""

    name: str
    items: list[Any] = field(default_factory=list)
    peer: Node | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """A frozen record holding a mutable list (walked, its slots not restored)."""

    limits: list[int]


class Pair(NamedTuple):
    left: Any
    right: Any


class Plain:
    """An object with a ``__dict__``."""

    def __init__(self) -> None:
        self.counter = 0
        self.log: list[str] = []

    def note(self, text: str) -> None:
        self.log.append(text)


def _graph() -> dict[str, Any]:
    shared = [1, 2, 3]
    first, second = Node("a", shared), Node("b", shared)
    first.peer, second.peer = second, first
    plain = Plain()
    return {
        "nodes": [first, second],
        "shared": shared,
        "queue": deque([first]),
        "taken": {1, 2},
        "table": {"x": first, 7: [plain]},
        "pair": Pair(first, [4]),
        "config": Config([5]),
        "plain": plain,
        "callback": plain.note,
        "buffer": bytearray(b"abc"),
        "disk": PageTrackedBuffer(3 * 4096),
    }


def _mutate(root: dict[str, Any]) -> None:
    """Change every kind of object, replace some by equal ones, make new ones."""
    first, second = root["nodes"]
    root["shared"].append(4)  # seen through both nodes
    first.items = [1, 2, 3, 4]  # an equal but new list: no longer the shared one
    second.peer = Node("c")
    root["nodes"].append(Node("d"))
    root["queue"].popleft()
    root["taken"].add(3)
    root["table"]["x"] = second
    root["table"][7][0].counter += 1
    root["pair"].right.append(5)
    root["config"].limits.append(6)
    root["callback"]("noted")
    root["buffer"][0:1] = b"z"
    root["disk"][4096:4099] = b"xyz"
    root["new"] = Plain()


def _shape(root: dict[str, Any]) -> Any:
    """The graph's values and its sharing, as comparable data (a deep copy keeps both)."""
    first, second = root["nodes"][:2]
    return (
        repr({k: v for k, v in root.items() if k not in ("disk", "callback", "plain", "table")}),
        [n.name for n in root["nodes"]],
        [n.items for n in root["nodes"]],
        first.items is root["shared"] and second.items is root["shared"],
        first.peer is second and second.peer is first,
        root["table"]["x"] is first,
        root["table"][7][0] is root["plain"],
        root["plain"].counter,
        list(root["plain"].log),
        root["callback"].__self__ is root["plain"],
        bytes(root["disk"][4096:4099]),
        sorted(root["disk"].written),
        "new" in root,
    )


def test_a_restore_gives_back_values_and_sharing() -> None:
    root = _graph()
    before = _shape(root)
    objects = {id(v) for v in (root["nodes"][0], root["nodes"][1], root["shared"])}
    snapshot = take(root)
    _mutate(root)
    assert _shape(root) != before
    snapshot.restore()
    assert _shape(root) == before
    # the same objects, not copies of them
    assert {id(root["nodes"][0]), id(root["nodes"][1]), id(root["shared"])} == objects
    _mutate(root)  # and the snapshot stays usable
    snapshot.restore()
    assert _shape(root) == before


def test_a_snapshot_on_top_of_another_walks_only_what_changed_and_is_exact() -> None:
    root = _graph()
    base = take(root)
    original = _shape(root)
    _mutate(root)
    after = _shape(root)
    on_top = take(root, base)
    assert on_top.generation == 1
    full = take(root)
    base.restore()
    assert _shape(root) == original
    on_top.restore()
    assert _shape(root) == after
    base.restore()
    full.restore()
    assert _shape(root) == after
    # the objects made since the base were found (the new Plain, the new nodes)
    assert on_top.objects >= full.objects


def test_generations_are_bounded_by_a_fresh_walk() -> None:
    from xbdspec.explore.snapshots import REWALK_AFTER

    root = _graph()
    snapshot = take(root)
    for _ in range(REWALK_AFTER + 1):
        snapshot.restore()
        root["nodes"][0].name += "!"
        snapshot = take(root, snapshot)
    assert snapshot.generation == 0


def test_an_equal_replacement_is_still_a_change() -> None:
    """Identity, not equality: a list replaced by an equal one is put back, so the
    sharing of the snapshot's list returns."""
    root = _graph()
    snapshot = take(root)
    first = root["nodes"][0]
    first.items = list(first.items)
    assert first.items == root["shared"] and first.items is not root["shared"]
    snapshot.restore()
    assert first.items is root["shared"]
    on_top = take(root, snapshot)
    first.items = list(first.items)
    on_top.restore()
    assert first.items is root["shared"]


def test_functions_without_a_closure_are_kept_by_reference() -> None:
    def free(x: int) -> int:
        return x + 1

    root: dict[str, Any] = {"f": free, "g": len}
    snapshot = take(root)
    root["f"] = root["g"] = None
    snapshot.restore()
    assert root["f"] is free and root["g"] is len


def _closure() -> Any:
    cell: list[int] = []

    def inner() -> None:
        cell.append(1)

    return inner


def _generator() -> Any:
    yield 1


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(_closure(), id="closure"),
        pytest.param(_generator(), id="generator"),
        pytest.param(threading.Lock(), id="lock"),
    ],
)
def test_what_cannot_be_restored_by_its_state_is_refused(value: Any) -> None:
    with pytest.raises(Unsupported):
        take({"held": [value]})


def test_a_snapshot_counts_its_objects() -> None:
    root = {"a": [1], "b": {"c": 2}}
    snapshot = take(root)
    assert isinstance(snapshot, Snapshot)
    assert snapshot.objects == 3  # the root, the list, the inner dict


def test_the_compiled_slot_comparison_is_identity_slot_by_slot() -> None:
    """``_Plan.differs`` (compiled from the slots' names) says what ``not all(map(is_,
    get(obj), values))`` says, for every slot changed on its own, an equal replacement
    included; a name that cannot be written as an attribute keeps the generic form."""
    from operator import attrgetter, is_

    from xbdspec.explore.snapshots import _differs_of, _Plan

    plan = _Plan(Node)
    assert plan.names == ("name", "items", "peer")
    node = Node("a", [1], None)
    values = plan.get(node)  # type: ignore[misc]
    assert not plan.differs(node, values)
    for slot in ("items", "peer", "name"):
        changed = Node(node.name, node.items, node.peer)
        before = plan.get(changed)  # type: ignore[misc]
        replacement = {"items": list(node.items), "peer": changed, "name": "b"}[slot]
        setattr(changed, slot, replacement)
        generic = not all(map(is_, plan.get(changed), before))  # type: ignore[misc]
        assert plan.differs(changed, before) is generic is True
    odd = _differs_of(("class", "x"), attrgetter("x", "x"))  # a keyword: not compiled

    class Holder:
        x = 1

    holder = Holder()
    assert not odd(holder, (1, 1)) and odd(holder, (1, 2))


def test_a_page_buffer_loads_nothing_when_unchanged_since_its_pages() -> None:
    """``pages`` gives the same dict again while nothing was written, and ``load`` of
    that dict writes nothing; any write makes both do their work again, exactly."""
    buffer = PageTrackedBuffer(3 * 4096)
    buffer[10:12] = b"ab"
    first = buffer.pages()
    assert buffer.pages() is first and set(first) == {0}
    buffer.load(first)
    assert buffer[10:12] == b"ab"
    buffer[5000:5002] = b"cd"
    second = buffer.pages()
    assert second is not first and set(second) == {0, 1}
    buffer.load(first)  # back: page 1 zeroed, the dict known again
    assert buffer[5000:5002] == b"\0\0" and buffer.written == {0} and buffer.pages() is first
    buffer[10] = ord("z")
    buffer.load(first)
    assert buffer[10:12] == b"ab"
