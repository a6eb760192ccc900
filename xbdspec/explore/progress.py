"""Progress (leads-to) properties under weak fairness, on the explored graph.

A progress property ``when ~> goal`` (``spec.progress``) fails when some behaviour
reaches a state where ``when`` holds and ``goal`` does not, and from then on
``goal`` never holds although the behaviour is **fair**.  The events named in the
property's ``fairness`` are *weakly fair*: an event that stays enabled (some
instance of it enabled in every state) from some point on is eventually taken.
Other events may happen or not.  A fair behaviour that avoids ``goal`` for ever
ends in one of two ways in a finite graph:

* **terminal**: it stops in a state where no fair event is enabled (every later
  step is stuttering; a state with no enabled event at all is one of these);
* **lasso**: it loops for ever in a cycle of goal-free states in which every fair
  event enabled in *every* state of the cycle is taken somewhere in the cycle.

The check works on the subgraph of goal-free states.  A strongly connected
component ``C`` of that subgraph (Tarjan's algorithm, iterative) contains a fair
cycle exactly when it has an edge inside it and every fair event enabled in all
its states is the label of some edge inside ``C``: a cycle through every state and
every edge of ``C`` is then fair, and any cycle inside ``C`` has at least those
events enabled throughout.  The property fails when a reachable goal-free state
satisfying ``when`` can reach a terminal state or a fair component without leaving
the goal-free states.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from xbdspec.model.declaration import Progress, Spec

from .memo import UnaryMemo
from .search import Finding, Graph


@dataclass(frozen=True)
class FairnessReport:
    """How a progress property's fairness names map to the model's events.

    Attributes:
        unknown: fairness names that are no event of the model (they constrain
            nothing; usually a typo in the declaration).
    """

    unknown: tuple[str, ...]


class ProgressRecorder:
    """Records, for every expanded state, ``when``/``goal`` of each progress property
    and the set of events enabled (as a bit mask over event ids).

    Attributes:
        events: the model's event names; bit ``i`` of a mask is ``events[i]``.
        verdicts: per state, bit ``2 i`` = ``when`` and bit ``2 i + 1`` = ``goal``
            of progress property ``i`` (:meth:`when` and :meth:`goal` unpack them).
        enabled: per state, the mask of enabled events.
    """

    def __init__(self, spec: Spec, field_index: dict[str, int]) -> None:
        self.spec = spec
        self.events: tuple[str, ...] = tuple(spec.events())
        event_id = {e: i for i, e in enumerate(self.events)}
        self._event_bit = [1 << event_id[inst.transition.event] for inst in spec.instances]
        k = spec.sizes
        if len(spec.progress) > 32:
            raise ValueError("at most 32 progress properties (two bits each in a 64-bit word)")

        def code(s: Any) -> int:
            bits = 0
            for i, p in enumerate(spec.progress):
                bits |= (bool(p.when(s, k)) << (2 * i)) | (bool(p.goal(s, k)) << (2 * i + 1))
            return bits

        self._code = UnaryMemo(code, field_index)
        self._masks: dict[tuple[int, ...], int] = {}
        self.verdicts = array("Q")
        self.enabled = array("Q")

    def when(self, number: int) -> bytearray:
        """``when`` of progress property ``number`` in every state (1 or 0)."""
        return bytearray((c >> (2 * number)) & 1 for c in self.verdicts)

    def goal(self, number: int) -> bytearray:
        """``goal`` of progress property ``number`` in every state (1 or 0)."""
        return bytearray((c >> (2 * number + 1)) & 1 for c in self.verdicts)

    def __call__(self, state: Any, enabled: list[int]) -> None:
        self.verdicts.append(self._code(state))
        key = tuple(enabled)
        mask = self._masks.get(key)
        if mask is None:
            mask = 0
            for iid in enabled:
                mask |= self._event_bit[iid]
            self._masks[key] = mask
        self.enabled.append(mask)

    def event_mask(self, names: Iterable[str]) -> int:
        """The mask of the named events (unknown names are ignored)."""
        mask = 0
        for i, e in enumerate(self.events):
            if e in names:
                mask |= 1 << i
        return mask

    def fairness(self, prop: Progress) -> FairnessReport:
        """Which of ``prop``'s fairness names are not events of the model."""
        return FairnessReport(tuple(n for n in prop.fairness if n not in self.events))

    def event_bit_of(self, iid: int) -> int:
        """The event bit of instance ``iid``."""
        return self._event_bit[iid]


def strongly_connected(graph: Graph, inside: bytearray) -> tuple[array[int], list[list[int]]]:
    """Tarjan's algorithm (iterative) on the subgraph of states with ``inside[i]``.

    Returns each state's component number (``-1`` outside) and the components, in
    the order Tarjan completes them: every edge leaving a component leads to one
    listed earlier.
    """
    n = len(graph.keys)
    index = array("i", [-1]) * n
    low = array("i", [0]) * n
    comp = array("i", [-1]) * n
    on_stack = bytearray(n)
    stack: list[int] = []
    components: list[list[int]] = []
    offsets, targets = graph.offsets, graph.targets
    counter = 0
    for root in range(n):
        if not inside[root] or index[root] >= 0:
            continue
        work = [(root, offsets[root])]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = 1
        while work:
            v, edge = work[-1]
            end = offsets[v + 1]
            while edge < end:
                w = targets[edge]
                edge += 1
                if not inside[w]:
                    continue
                if index[w] < 0:
                    work[-1] = (v, edge)
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = 1
                    work.append((w, offsets[w]))
                    break
                if on_stack[w] and index[w] < low[v]:
                    low[v] = index[w]
            else:
                work.pop()
                if work:
                    u = work[-1][0]
                    if low[v] < low[u]:
                        low[u] = low[v]
                if low[v] == index[v]:
                    members = []
                    while True:
                        w = stack.pop()
                        on_stack[w] = 0
                        comp[w] = len(components)
                        members.append(w)
                        if w == v:
                            break
                    components.append(members)
    return comp, components


def _bfs_path(graph: Graph, start: int, goal: set[int], allowed: Any) -> list[tuple[int, int]]:
    """A shortest path ``[(instance id, state)]`` from ``start`` to a state of ``goal``
    through states for which ``allowed(state)`` holds (``[]`` if ``start`` is in goal)."""
    if start in goal:
        return []
    parent: dict[int, tuple[int, int]] = {start: (-1, -1)}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        a, b = graph.offsets[v], graph.offsets[v + 1]
        for e in range(a, b):
            w = graph.targets[e]
            if w in parent or not allowed(w):
                continue
            parent[w] = (v, graph.labels[e])
            if w in goal:
                path = []
                while w != start:
                    v2, lab = parent[w]
                    path.append((lab, w))
                    w = v2
                path.reverse()
                return path
            queue.append(w)
    raise AssertionError("no path inside the component: the graph and the SCCs disagree")


def check_progress(graph: Graph, recorder: ProgressRecorder) -> list[Finding]:
    """One finding per violated progress property (see the module docstring)."""
    findings: list[Finding] = []
    for number, prop in enumerate(recorder.spec.progress):
        finding = _check_one(graph, recorder, number, prop)
        if finding is not None:
            findings.append(finding)
    return findings


def _check_one(graph: Graph, rec: ProgressRecorder, number: int, prop: Progress) -> Finding | None:
    n = len(graph.keys)
    fair = rec.event_mask(prop.fairness)
    goal, when, enabled = rec.goal(number), rec.when(number), rec.enabled
    inside = bytearray(1 - g for g in goal)
    comp, components = strongly_connected(graph, inside)
    offsets, targets, labels = graph.offsets, graph.targets, graph.labels
    bad = [False] * len(components)
    fair_component = [False] * len(components)
    reaches = [False] * len(components)
    for c, members in enumerate(components):
        taken = 0
        everywhere = -1
        has_edge = False
        for v in members:
            everywhere &= enabled[v]
            for e in range(offsets[v], offsets[v + 1]):
                w = targets[e]
                if comp[w] == c:
                    has_edge = True
                    taken |= rec.event_bit_of(labels[e])
                elif comp[w] >= 0 and reaches[comp[w]]:
                    reaches[c] = True
        if has_edge and (everywhere & fair & ~taken) == 0:
            bad[c] = fair_component[c] = True
        if any(enabled[v] & fair == 0 for v in members):
            bad[c] = True
        reaches[c] = reaches[c] or bad[c]
    start = next((v for v in range(n) if when[v] and inside[v] and reaches[comp[v]]), None)
    if start is None:
        return None
    # from the first such state, the nearest state that is terminal or in a fair component
    targets_set = {
        v for v in range(n) if inside[v] and (enabled[v] & fair == 0 or fair_component[comp[v]])
    }
    lead = _bfs_path(graph, start, targets_set, lambda w: inside[w] == 1)
    entry = lead[-1][1] if lead else start
    finding = Finding(prop.name, "progress", start, stem_extra=lead)
    if enabled[entry] & fair == 0:
        return finding  # terminal: the behaviour may stop here
    cycle = _fair_cycle(graph, rec, comp, comp[entry], entry, fair)
    finding.cycle = [entry] + [w for _, w in cycle]
    finding.cycle_labels = [lab for lab, _ in cycle]
    return finding


def _fair_cycle(
    graph: Graph, rec: ProgressRecorder, comp: array[int], c: int, entry: int, fair: int
) -> list[tuple[int, int]]:
    """A cycle from ``entry`` back to it inside component ``c`` that takes every fair
    event enabled in all of its states: detours are added, each one taking a
    missing event or visiting a state where it is disabled, until none is missing."""
    inside = lambda w: comp[w] == c  # noqa: E731
    members = [v for v in range(len(graph.keys)) if comp[v] == c]
    path: list[tuple[int, int]] = []
    current = entry
    visited_states = [entry]
    taken = 0
    while True:
        everywhere = -1
        for v in visited_states:
            everywhere &= rec.enabled[v]
        missing = everywhere & fair & ~taken
        if path and path[-1][1] == entry and missing == 0:
            return path
        if missing == 0:
            detour = (
                _bfs_path(graph, current, {entry}, inside)
                if current != entry
                else _one_loop(graph, entry, inside)
            )
        else:
            bit = missing & -missing
            sources = {
                v
                for v in members
                for e in range(graph.offsets[v], graph.offsets[v + 1])
                if comp[graph.targets[e]] == c and rec.event_bit_of(graph.labels[e]) == bit
            }
            if sources:
                detour = _bfs_path(graph, current, sources, inside)
                here = detour[-1][1] if detour else current
                edge = next(
                    e
                    for e in range(graph.offsets[here], graph.offsets[here + 1])
                    if comp[graph.targets[e]] == c and rec.event_bit_of(graph.labels[e]) == bit
                )
                detour = [*detour, (graph.labels[edge], graph.targets[edge])]
            else:
                disabled = {v for v in members if rec.enabled[v] & bit == 0}
                detour = _bfs_path(graph, current, disabled, inside)
        for lab, w in detour:
            taken |= rec.event_bit_of(lab)
            visited_states.append(w)
        path += detour
        current = path[-1][1] if path else entry


def _one_loop(graph: Graph, entry: int, inside: Any) -> list[tuple[int, int]]:
    """A shortest non-empty cycle from ``entry`` back to it."""
    best: list[tuple[int, int]] | None = None
    for e in range(graph.offsets[entry], graph.offsets[entry + 1]):
        w = graph.targets[e]
        if not inside(w):
            continue
        rest = _bfs_path(graph, w, {entry}, inside)
        candidate = [(graph.labels[e], w), *rest]
        if best is None or len(candidate) < len(best):
            best = candidate
    if best is None:
        raise AssertionError("a fair component without an edge from its entry")
    return best
