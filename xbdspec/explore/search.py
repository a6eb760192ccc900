"""Breadth-first exploration: every reachable state, every edge, shortest counterexamples.

States are numbered in the order they are discovered; because the search is
breadth-first, a state's number never decreases with its depth, and the parent
pointers (``parent[i]``, the instance ``label[i]`` that led to it) give a shortest
path from the initial state.  The graph is kept in compressed rows (one
``array`` of successor numbers and one of event ids per state) for the progress
checks; nothing else but the 64-bit keys is kept per state.
"""

from __future__ import annotations

import sys
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .target import ExplorationTarget

#: the pseudo-property name of a deadlock
DEADLOCK = "Deadlock"


@dataclass
class Finding:
    """The first (hence shortest) witness of one violated property.

    Attributes:
        property: the property's name (``Deadlock`` for a deadlock).
        kind: ``invariant``, ``step``, ``deadlock`` or ``progress``.
        state: the number of the last state of the stem (the violating state, the
            state before a violating step, the deadlocked state).
        instance: for a step property, the id of the violating step.
        cycle: for a progress violation, the state numbers of the cycle (empty for a
            terminal state), starting and ending at its entry state.
        cycle_labels: the instance ids along the cycle.
        stem_extra: for a progress violation, the states after ``state`` leading to
            the cycle's entry (inside the goal-free region), with their labels.
    """

    property: str
    kind: str
    state: int
    instance: int | None = None
    cycle: list[int] = field(default_factory=list)
    cycle_labels: list[int] = field(default_factory=list)
    stem_extra: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Graph:
    """The explored state graph.

    Attributes:
        keys: the key of each state (a fingerprint, or the canonical state).
        parent, label: the BFS tree (``-1`` for the initial state).
        depth: each state's distance from the initial state.
        offsets, targets, labels: the edges in compressed rows: the successors of
            state ``i`` are ``targets[offsets[i]:offsets[i + 1]]``.
        expanded: how many states had their successors computed.
    """

    keys: list[Any] = field(default_factory=list)
    parent: array[int] = field(default_factory=lambda: array("i"))
    label: array[int] = field(default_factory=lambda: array("i"))
    depth: array[int] = field(default_factory=lambda: array("i"))
    offsets: array[int] = field(default_factory=lambda: array("q", [0]))
    targets: array[int] = field(default_factory=lambda: array("i"))
    labels: array[int] = field(default_factory=lambda: array("i"))
    expanded: int = 0

    def successors(self, i: int) -> tuple[array[int], array[int]]:
        """The successor numbers and instance ids of state ``i``."""
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.targets[a:b], self.labels[a:b]

    def path_to(self, i: int) -> list[tuple[int, int]]:
        """The BFS path to ``i``: ``(instance id, state number)`` for every step."""
        steps: list[tuple[int, int]] = []
        while self.parent[i] >= 0:
            steps.append((self.label[i], i))
            i = self.parent[i]
        steps.reverse()
        return steps


@dataclass
class Exploration:
    """The result of a search.

    Attributes:
        graph: the state graph.
        findings: one shortest witness per violated property, in discovery order.
        complete: every reachable state was expanded (no ``max_states`` cut, no Ctrl-C).
        transitions: edges explored.
        seconds: wall-clock time of the search; cpu_seconds: its processor time.
        interrupted: Ctrl-C stopped the search (the findings are those made by then).
    """

    graph: Graph
    findings: list[Finding]
    complete: bool
    transitions: int
    seconds: float
    cpu_seconds: float
    interrupted: bool = False

    @property
    def states(self) -> int:
        """Distinct states (classes, under symmetry) found."""
        return len(self.graph.keys)

    @property
    def depth(self) -> int:
        """The largest distance from the initial state."""
        return max(self.graph.depth) if self.states else 0


Progress = Callable[[dict[str, Any]], None]


def explore(
    target: ExplorationTarget,
    *,
    max_states: int | None = None,
    keep_graph: bool = True,
    per_state: Callable[[Any, list[int]], Any] | None = None,
    progress: Progress | None = None,
    progress_every: float = 2.0,
) -> Exploration:
    """Explore ``target`` breadth-first, checking every property on the way.

    Args:
        max_states: stop once this many states are known and one more was found
            (the result is then not ``complete``: the states still queued are not
            expanded, and no deadlock or progress verdict is final).
        keep_graph: keep the edges (needed for the progress checks).
        per_state: called on each expanded state, in state-number order, with its
            model observation and the ids of its enabled instances (the progress
            checks record ``when``/``goal`` and the enabled events this way).
        progress: called every ``progress_every`` seconds with the counters.
    """
    started, cpu_started = time.monotonic(), time.process_time()
    graph = Graph()
    findings: list[Finding] = []
    reported: set[str] = set()
    broken_states: set[int] = set()
    visited: dict[Any, int] = {}

    def add(key: Any, parent: int, label: int, depth: int) -> int:
        number = len(graph.keys)
        visited[key] = number
        graph.keys.append(key)
        graph.parent.append(parent)
        graph.label.append(label)
        graph.depth.append(depth)
        return number

    def report(name: str, kind: str, state: int, instance: int | None = None) -> None:
        if name not in reported:
            reported.add(name)
            findings.append(Finding(name, kind, state, instance))

    first = target.canonical(target.initial())
    add(target.key(first), -1, -1, 0)
    for name in target.violated_invariants(target.observe(first)):
        broken_states.add(0)
        report(name, "invariant", 0)
    queue: deque[tuple[int, Any]] = deque([(0, first)])
    transitions = 0
    complete = True
    next_report = time.monotonic() + progress_every
    identity = getattr(target, "observe_is_identity", False)
    observe = target.observe
    expand = target.expand
    invariants_after, invariants = target.violated_invariants_after, target.violated_invariants
    targets_append, labels_append = graph.targets.append, graph.labels.append
    visited_get = visited.get
    keys, keys_append = graph.keys, graph.keys.append
    parent_append, label_append = graph.parent.append, graph.label.append
    depth_append = graph.depth.append
    interrupted = False
    try:
        while queue:
            number, state = queue.popleft()
            steps = expand(state)
            graph.expanded += 1
            observed = state if identity else observe(state)
            if per_state is not None:
                per_state(observed, [step[0] for step in steps])
            if not steps and target.work_pending(observed):
                report(DEADLOCK, "deadlock", number)
            depth = graph.depth[number] + 1
            parent_broken = number in broken_states
            for iid, after, hint, bad_step, representative, key in steps:
                transitions += 1
                observed_after = after if identity else observe(after)
                if bad_step:
                    for name in bad_step:
                        report(name, "step", number, iid)
                known = visited_get(key)
                if known is None:
                    if max_states is not None and len(graph.keys) >= max_states:
                        complete = False
                        continue
                    known = len(keys)
                    visited[key] = known
                    keys_append(key)
                    parent_append(number)
                    label_append(iid)
                    depth_append(depth)
                    broken = (
                        invariants(observed_after)
                        if parent_broken
                        else invariants_after(observed_after, hint)
                    )
                    if broken:
                        broken_states.add(known)
                        for name in broken:
                            report(name, "invariant", known)
                    queue.append((known, representative))
                if keep_graph:
                    targets_append(known)
                    labels_append(iid)
            if keep_graph:
                graph.offsets.append(len(graph.targets))
            if not complete:
                break  # the states still queued are known but not expanded
            if progress is not None and time.monotonic() >= next_report:
                next_report = time.monotonic() + progress_every
                elapsed = time.monotonic() - started
                progress(
                    {
                        "states": len(graph.keys),
                        "transitions": transitions,
                        "depth": depth - 1,
                        "queue": len(queue),
                        "seconds": elapsed,
                        "states_per_second": len(graph.keys) / elapsed if elapsed else 0.0,
                    }
                )
    except KeyboardInterrupt:
        # Ctrl-C: the states found so far and their findings are the result; the state
        # being expanded is left unexpanded (its edges are not all in the graph)
        interrupted = True
        complete = False
    return Exploration(
        graph=graph,
        findings=findings,
        complete=complete,
        transitions=transitions,
        seconds=time.monotonic() - started,
        cpu_seconds=time.process_time() - cpu_started,
        interrupted=interrupted,
    )


def print_progress(counters: dict[str, Any]) -> None:
    """The progress line on stderr: states, states/s, depth, queue."""
    print(
        f"explore: {counters['states']:,} states, {counters['states_per_second']:,.0f} states/s, "
        f"depth {counters['depth']}, queue {counters['queue']:,}",
        file=sys.stderr,
        flush=True,
    )
