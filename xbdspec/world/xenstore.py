"""Xenstore as both ends see it: nodes, transactions that commit atomically or fail on a
conflict, and watches whose events are queued (one per change, never coalesced: a
watcher reads the current value, so it may see several changes as one).

Every commit is recorded as a :class:`~xbdspec.traces.protocol.Commit` of the vbd's two
directories, so the protocol checker sees exactly what a xenstore log would show.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from xbdspec.errors import XbdspecError


class XenstoreError(XbdspecError):
    """A xenstore request failed (the error name xenstored answers with)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class _Transaction:
    base: int
    writes: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Watch:
    """A registered watch: events for changes at or below ``path``, queued."""

    path: str
    token: str
    events: deque[str] = field(default_factory=deque)


class Xenstore:
    """The store.

    Attributes:
        nodes: path -> value.
        generation: bumped by every commit (a transaction conflicts when a node it read
            or wrote changed after it started: approximated by any commit touching them).
        on_commit: called with ``(who, {path: value or None})`` after each commit.
    """

    MAX_EVENTS = 4096

    def __init__(
        self, on_commit: Callable[[str, dict[str, str | None]], None] | None = None
    ) -> None:
        self.nodes: dict[str, str] = {}
        self.changed_at: dict[str, int] = {}
        self.generation = 0
        self.watches: list[Watch] = []
        self._transactions: dict[int, _Transaction] = {}
        self._next_tid = 1
        self.on_commit = on_commit

    # ---- plain requests
    def read(self, path: str) -> str:
        if path not in self.nodes:
            raise XenstoreError("ENOENT", f"{path} does not exist")
        return self.nodes[path]

    def get(self, path: str, default: str | None = None) -> str | None:
        return self.nodes.get(path, default)

    def paths_under(self, directory: str) -> list[str]:
        """Every node below ``directory`` (not the directory itself)."""
        return [p for p in self.nodes if p.startswith(directory + "/")]

    def write(self, who: str, path: str, value: str, tid: int = 0) -> None:
        if tid:
            self._transaction(tid).writes[path] = value
        else:
            self._commit(who, {path: value})

    def rm(self, who: str, path: str, tid: int = 0) -> None:
        if tid:
            self._transaction(tid).writes[path] = None
        else:
            self._commit(who, {path: None})

    # ---- transactions
    def transaction_start(self) -> int:
        tid = self._next_tid
        self._next_tid += 1
        self._transactions[tid] = _Transaction(self.generation)
        return tid

    def transaction_end(self, who: str, tid: int, commit: bool = True) -> None:
        """Commit (or abort) a transaction; ``EAGAIN`` when a node it wrote changed
        since it started (the caller retries, as every driver does)."""
        tx = self._transactions.pop(tid, None)
        if tx is None:
            raise XenstoreError("ENOENT", f"no transaction {tid}")
        if not commit or not tx.writes:
            return
        if any(self.changed_at.get(p, 0) > tx.base for p in tx.writes):
            raise XenstoreError("EAGAIN", f"transaction {tid} conflicts")
        self._commit(who, tx.writes)

    def _transaction(self, tid: int) -> _Transaction:
        tx = self._transactions.get(tid)
        if tx is None:
            raise XenstoreError("ENOENT", f"no transaction {tid}")
        return tx

    def _commit(self, who: str, writes: dict[str, str | None]) -> None:
        self.generation += 1
        for path, value in writes.items():
            if value is None:
                for existing in [p for p in self.nodes if p == path or p.startswith(path + "/")]:
                    del self.nodes[existing]
            else:
                self.nodes[path] = value
            self.changed_at[path] = self.generation
            for watch in self.watches:
                if (
                    path == watch.path
                    or path.startswith(watch.path + "/")
                    or watch.path.startswith(path + "/")
                ) and len(watch.events) < self.MAX_EVENTS:
                    watch.events.append(path)
        if self.on_commit is not None:
            self.on_commit(who, writes)

    # ---- watches
    def watch(self, path: str, token: str) -> Watch:
        """Register a watch; like xenstored, an event fires at once for ``path``."""
        w = Watch(path, token, deque([path]))
        self.watches.append(w)
        return w
