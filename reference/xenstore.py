"""Xenstore: string keys and values, watches delivered when the test says, and the
``xs_read`` / ``xs_scanf`` / ``xs_gather`` / ``xs_printf`` calls with FreeBSD's semantics.

* A write queues one event per matching watch (a watch on ``P`` fires for ``P`` and every
  path below it).  Events wait in :attr:`XenStore.pending` until the test delivers them,
  in one queue, oldest first, as ``xenwatch_thread`` takes them.  A watch holds at most
  ``max_pending`` undelivered events (0: no limit); an event past that is dropped, and
  since the watcher reads the current value when it runs, it may never see an
  intermediate one.  This is FreeBSD's ``struct xs_watch`` since the XSA-349 change, the
  tree the seed comes from: ``xs_process_msg`` queues an event only while
  ``pending < max_pending`` (or ``max_pending`` is 0), ``xenwatch_thread`` decrements
  ``pending`` when it dequeues the event, before the callback runs, and
  ``xenbusb_add_device`` gives the other end's ``state`` watch ``max_pending = 1``
  (``sys/dev/xen/xenstore/xenstore.c``, ``sys/xen/xenbus/xenbusb.c``; checked in the
  FreeBSD 14 vendor tree sobomax/freebsd14_vendor at
  0f7ff3427c99afe8b7a0ccf8638dc10aed02c3f8 and at freebsd/freebsd-src
  0279031f358307c4c807dde6be6c08bbb5ec515c).  Both watches of the simulation default to 1
  (the back end's stands for Linux's, whose back-end bus also keeps one pending event on
  the front end's node: 6.1's ``xenbus_probe_backend.c``, ``frontend_will_handle``);
  ``register_watch(..., max_pending=0)`` gives the older trees' behaviour, which queued
  every event.
* ``xs_scanf`` returns ``ENOENT`` for a missing key and ``ERANGE`` when ``sscanf`` assigned
  nothing; when ``sscanf`` returns ``EOF`` (an empty or blank value) it returns 0 *and
  leaves the variable untouched* (``xenstore.c``: only ``ns == 0`` is an error).
* ``xs_gather`` does the same per key with ``EINVAL`` and stops at the first error.
* Numbers are parsed by :func:`~xbdspec.reference.cint.kernel_sscanf_int`.
* ``blank_is_error=True`` is the fix of ``blank-xenstore-value-uninitialised``
  (:class:`~xbdspec.reference.platform.Fixes`): ``xenstore.c`` tests ``ns <= 0`` instead of
  ``ns == 0``, so an ``EOF`` is the same error as a value with no match and no caller reads
  a variable ``sscanf`` left unassigned.  The driver passes it where it calls them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .cint import kernel_sscanf_int
from .constants import EINVAL, ENOENT, ERANGE


@dataclass(slots=True, eq=False)
class Watch:
    """A registered watch: a path, the name of who handles its events, and how many
    undelivered events it may hold (``struct xs_watch``'s ``max_pending``; 0: no limit)."""

    path: str
    token: str
    max_pending: int = 1


@dataclass(slots=True, eq=False)
class XenStore:
    """The store, its watches and the events not yet delivered.

    Attributes:
        values: path -> value.
        watches: registered watches (token -> watch).
        pending: the undelivered events, by token, oldest first (at most a watch's
            ``max_pending`` for each token).
        dropped: events not queued because their watch already held ``max_pending``.
        write_errors: path -> errno that the next write of that path returns (fault
            injection for the driver's error paths).
        writes: every successful write, in order (path, value), for observations.
    """

    values: dict[str, str] = field(default_factory=dict)
    watches: dict[str, Watch] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    write_errors: dict[str, int] = field(default_factory=dict)
    writes: list[tuple[str, str]] = field(default_factory=list)
    dropped: int = 0

    def read(self, path: str) -> str | None:
        """The value at ``path`` or ``None``."""
        return self.values.get(path)

    def exists(self, path: str) -> bool:
        """``xs_exists(XST_NIL, path, "")``: a key at ``path`` or below it."""
        prefix = path + "/"
        return path in self.values or any(key.startswith(prefix) for key in self.values)

    def write(self, path: str, value: str) -> int:
        """Write ``value``; returns an errno (0 on success) and queues watch events."""
        error = self.write_errors.pop(path, 0)
        if error:
            return error
        self.values[path] = value
        self.writes.append((path, value))
        self._fire(path)
        return 0

    def remove(self, path: str) -> None:
        """Delete ``path`` (and everything under it); fires the watches on it, above it
        and, as xenstored does for a removed directory, below it."""
        doomed = [key for key in self.values if key == path or key.startswith(path + "/")]
        for key in doomed:
            del self.values[key]
        if doomed:
            self._fire(path)
            for watch in list(self.watches.values()):
                if watch.path.startswith(path + "/"):
                    self._queue(watch)

    def _fire(self, path: str) -> None:
        for watch in self.watches.values():
            if path == watch.path or path.startswith(watch.path + "/"):
                self._queue(watch)

    def _queue(self, watch: Watch) -> None:
        """``xs_process_msg`` for a watch event: queued unless ``max_pending`` are."""
        if watch.max_pending and self.pending.count(watch.token) >= watch.max_pending:
            self.dropped += 1
            return
        self.pending.append(watch.token)

    def register_watch(self, path: str, token: str, max_pending: int = 1) -> None:
        """``xs_register_watch``: registering fires one initial event, as xenstored does."""
        watch = self.watches[token] = Watch(path, token, max_pending)
        self._queue(watch)

    def unregister_watch(self, token: str) -> None:
        """``xs_unregister_watch``: also cancels its pending events."""
        self.watches.pop(token, None)
        self.pending[:] = [t for t in self.pending if t != token]

    def next_event(self) -> str | None:
        """Pop the oldest pending event's token, or ``None``."""
        return self.pending.pop(0) if self.pending else None


def join(directory: str, node: str) -> str:
    """``dir/node`` as ``xs_join`` builds it (an empty node names the directory)."""
    return f"{directory}/{node}" if node else directory


def xs_read(xs: XenStore, directory: str, node: str) -> tuple[int, str | None]:
    """``xs_read`` -> (error, value); ``ENOENT`` if the key is missing."""
    value = xs.read(join(directory, node))
    if value is None:
        return ENOENT, None
    return 0, value


def xs_scanf(
    xs: XenStore, directory: str, node: str, conversion: str, blank_is_error: bool = False
) -> tuple[int, int | None]:
    """``xs_scanf(XST_NIL, dir, node, NULL, "%<conversion>", &var)`` -> (error, value).

    ``value`` is ``None`` when the variable is left untouched: on any error, and also on
    success when the value was empty or blank (``sscanf`` returned ``EOF``).  With
    ``blank_is_error`` (fix ``blank-xenstore-value-uninitialised``) that ``EOF`` is
    ``ERANGE`` too.
    """
    error, text = xs_read(xs, directory, node)
    if error or text is None:
        return error, None
    result = kernel_sscanf_int(text, conversion)
    if result.returned == 0 or (blank_is_error and result.returned < 0):
        return ERANGE, None
    return 0, result.value


def xs_gather(
    xs: XenStore,
    directory: str,
    fields: list[tuple[str, str]],
    blank_is_error: bool = False,
) -> tuple[int, list[int | None]]:
    """``xs_gather(XST_NIL, dir, node1, fmt1, &v1, ..., NULL)`` -> (error, values).

    Stops at the first error (later values stay ``None``: untouched); a value with no match
    is ``EINVAL``; an ``EOF`` leaves that variable untouched without an error, unless
    ``blank_is_error`` (fix ``blank-xenstore-value-uninitialised``) makes it ``EINVAL``.
    """
    values: list[int | None] = [None] * len(fields)
    for position, (node, conversion) in enumerate(fields):
        error, text = xs_read(xs, directory, node)
        if error or text is None:
            return error, values
        result = kernel_sscanf_int(text, conversion)
        if result.returned == 0 or (blank_is_error and result.returned < 0):
            return EINVAL, values
        values[position] = result.value
    return 0, values


def xs_printf(xs: XenStore, directory: str, node: str, text: str) -> int:
    """``xs_printf`` of an already formatted value -> error."""
    return xs.write(join(directory, node), text)
