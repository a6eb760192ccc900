"""Weak fairness on hand-built graphs: which cycles count as counterexamples."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

from xbdspec.model.declaration import Progress

from xbdspec.explore.progress import _check_one, strongly_connected
from xbdspec.explore.search import Graph

A, B, C = 1, 2, 4  # event bits: a, b, c


def _graph(edges: dict[int, list[tuple[int, int]]], n: int) -> Graph:
    g = Graph()
    g.keys = list(range(n))
    for v in range(n):
        for w, label in edges.get(v, []):
            g.targets.append(w)
            g.labels.append(label)
        g.offsets.append(len(g.targets))
    return g


@dataclass
class _Recorder:
    """What the progress check reads: when/goal bytes, enabled masks, event bits."""

    whens: list[bytearray]
    goals: list[bytearray]
    enabled: array[int]
    bits: dict[str, int] = field(default_factory=lambda: {"a": A, "b": B, "c": C})

    def when(self, number: int) -> bytearray:
        return self.whens[number]

    def goal(self, number: int) -> bytearray:
        return self.goals[number]

    def event_mask(self, names: Any) -> int:
        return sum(bit for name, bit in self.bits.items() if name in names)

    def event_bit_of(self, label: int) -> int:
        return [A, B, C][label]


PROP = Progress("P", lambda s, k: True, lambda s, k: False, "", "", ("a", "c"))


def _run(enabled: list[int], goal: list[int]) -> Any:
    # 0 -a-> 1, 1 -b-> 0, 1 -c-> 2; state 0 satisfies `when`
    g = _graph({0: [(1, 0)], 1: [(0, 1), (2, 2)]}, 3)
    rec = _Recorder([bytearray([1, 0, 0])], [bytearray(goal)], array("Q", enabled))
    return _check_one(g, rec, 0, PROP)  # type: ignore[arg-type]


def test_a_cycle_that_starves_a_continuously_enabled_fair_event_is_not_a_counterexample() -> None:
    # c is enabled in both cycle states and never taken inside the cycle: unfair
    assert _run(enabled=[A | C, B | C, 0], goal=[0, 0, 1]) is None


def test_a_cycle_where_the_fair_event_is_sometimes_disabled_is_a_lasso() -> None:
    finding = _run(enabled=[A, B | C, 0], goal=[0, 0, 1])
    assert finding is not None and finding.cycle[0] == finding.cycle[-1]
    assert set(finding.cycle) == {0, 1}


def test_a_state_without_fair_events_is_terminal() -> None:
    # state 1 enables only b, which is not fair: the behaviour may stop there
    g = _graph({0: [(1, 0)]}, 3)
    rec = _Recorder([bytearray([1, 0, 0])], [bytearray([0, 0, 1])], array("Q", [A, B, 0]))
    finding = _check_one(g, rec, 0, PROP)  # type: ignore[arg-type]
    assert finding is not None and finding.cycle == [] and finding.stem_extra == [(0, 1)]


def test_tarjan_orders_components_sinks_first() -> None:
    g = _graph({0: [(1, 0)], 1: [(2, 0)], 2: [(1, 0), (3, 0)]}, 4)
    comp, components = strongly_connected(g, bytearray([1, 1, 1, 1]))
    assert sorted(map(sorted, components)) == [[0], [1, 2], [3]]
    assert comp[3] < comp[1] < comp[0] and comp[1] == comp[2]
