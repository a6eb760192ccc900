"""A front end written in Python, served over the stdio protocol version 2
(``docs/stdio-v2.md``): the child's side of the conversation.

A front end is written exactly as for the in-process harness: a class (or any factory)
taking the environment, with the entry points ``otherend_changed``, ``interrupt``,
``submit(bio)`` and, optionally, ``shutdown`` and ``resume`` (declared in ``calls``).
:func:`serve` runs the conversation: it maps the shared memory the harness names in
``hello``, makes a fresh front end at every ``reset``, calls its entry points, and hands
it a :class:`RemoteEnv`, which has the methods of
:class:`~xbdspec.world.harness.FrontendEnv`, each one ``env`` request::

    from xbdspec.world.client import serve

    class MyFrontend:
        def __init__(self, env):
            self.env = env

        def otherend_changed(self): ...
        def interrupt(self): ...
        def submit(self, bio): ...

    if __name__ == "__main__":
        raise SystemExit(serve(MyFrontend, name="my front end 0.1"))

Pages are :class:`memoryview` slices of the shared memory: ``struct.pack_into``, slice
assignment and :class:`~xbdspec.world.ring.SharedRing` work on them as on a bytearray,
and the harness's back end reads and writes them in place.  An exception out of an entry
point is the front end's failure: its ``done`` says ``ok: false`` with the exception,
and its traceback goes to stderr.

Only the standard library is imported here, so that a child starts fast.
"""

from __future__ import annotations

import json
import mmap
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

PROTOCOL = 2
MAX_LINE = 1 << 20
CALLS = ("otherend_changed", "interrupt", "submit", "shutdown")
OPS = ("read", "write", "flush")


class EnvError(Exception):
    """The world refused an environment request.

    Attributes:
        code: ``EAGAIN`` (a transaction conflicts: retry), ``ENOENT``, ``EINVAL``,
            ``ENOMEM`` or ``EACCES``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class HarnessGone(BaseException):
    """The harness closed the conversation or broke the protocol.  Not an
    :class:`Exception`, so that a front end's ``except Exception`` does not swallow it.

    Attributes:
        status: the exit status :func:`serve` returns (0: the harness just went away).
    """

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Bio:
    """What the block layer asks (the fields of :class:`~xbdspec.world.harness.Bio`):
    read or write ``sectors`` 512-byte sectors at ``sector`` (``data``: a write's
    bytes), or a flush."""

    id: int
    op: str
    sector: int = 0
    sectors: int = 1
    data: bytes = b""


class _Channel:
    """One JSON object a line each way."""

    def __init__(self, rfile: IO[bytes], wfile: IO[bytes]) -> None:
        self.rfile = rfile
        self.wfile = wfile

    def send(self, message: Mapping[str, Any]) -> None:
        self.wfile.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        self.wfile.flush()

    def receive(self) -> dict[str, Any]:
        line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            raise HarnessGone("the harness closed the conversation", status=0)
        if not line.endswith(b"\n"):
            raise HarnessGone("a line from the harness longer than 1 MiB")
        try:
            message = json.loads(line)
        except ValueError:
            raise HarnessGone(f"a line from the harness is not JSON: {line[:80]!r}") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise HarnessGone(f"a message from the harness without a type: {line[:80]!r}")
        return message


class RemoteEnv:
    """The front end's view of the world, served by the harness: the methods of
    :class:`~xbdspec.world.harness.FrontendEnv`.

    Attributes:
        front, back: the two directories' paths.
        options: the implementation's options, as the harness was given them.
    """

    def __init__(
        self,
        channel: _Channel,
        memory: mmap.mmap,
        page_size: int,
        front: str,
        back: str,
        options: Mapping[str, str],
    ) -> None:
        self._channel = channel
        self._memory = memory
        self._page_size = page_size
        self._base = memoryview(memory)
        self.front = front
        self.back = back
        self.options = dict(options)
        #: page number -> its view, and id(view) -> page number, for this device's pages
        self._pages: dict[int, memoryview] = {}
        self._numbers: dict[int, int] = {}

    def _request(self, op: str, **fields: Any) -> Any:
        self._channel.send({"type": "env", "op": op, **fields})
        reply = self._channel.receive()
        if reply["type"] != "result":
            raise HarnessGone(f"the harness answered {op} with a {reply['type']} message")
        if "error" in reply:
            raise EnvError(str(reply["error"]), str(reply.get("message", "")))
        return reply.get("value")

    def _reset(self) -> None:
        """A new device: every page is free."""
        self._pages.clear()
        self._numbers.clear()

    # xenstore
    def read(self, path: str) -> str | None:
        value = self._request("read", path=path)
        return None if value is None else str(value)

    def write(self, path: str, value: str, tid: int = 0) -> None:
        self._request("write", path=path, value=value, tid=tid)

    def remove(self, path: str, tid: int = 0) -> None:
        self._request("remove", path=path, tid=tid)

    def transaction_start(self) -> int:
        return int(self._request("transaction_start"))

    def transaction_end(self, tid: int, abort: bool = False) -> None:
        """Commit (:class:`EnvError` ``EAGAIN`` when it conflicts: retry) or abort."""
        self._request("transaction_end", tid=tid, abort=abort)

    # memory, grants, the event channel
    def alloc_page(self) -> memoryview:
        """A zeroed page of the shared memory, writable in place."""
        number = int(self._request("alloc_page"))
        start = number * self._page_size
        if start + self._page_size > len(self._memory):
            raise HarnessGone(f"the harness gave page {number}, outside the shared memory")
        page = self._base[start : start + self._page_size]
        self._pages[number] = page
        self._numbers[id(page)] = number
        return page

    def page_number(self, page: memoryview | bytearray | bytes) -> int:
        """The number of a page :meth:`alloc_page` gave (or another view of it)."""
        number = self._numbers.get(id(page))
        if number is not None and self._pages.get(number) is page:
            return number
        if (
            isinstance(page, memoryview)
            and page.obj is self._memory
            and page.nbytes == self._page_size
            and page.contiguous
            and not page.readonly
        ):
            offset = _address(page) - _address(self._base)
            if offset % self._page_size == 0:
                return offset // self._page_size
        raise ValueError(
            "not a page of the shared memory: only pages env.alloc_page() gave can be "
            "granted (the back end reads them in place)"
        )

    def free_page(self, page: memoryview) -> None:
        number = self.page_number(page)
        self._request("free_page", page=number)
        view = self._pages.pop(number, None)
        if view is not None:
            self._numbers.pop(id(view), None)

    def grant(self, page: memoryview, readonly: bool) -> int:
        return int(self._request("grant", page=self.page_number(page), readonly=readonly))

    def grant_ref(self, ref: int, page: memoryview, readonly: bool) -> None:
        """Grant ``page`` under a reference the front end chose."""
        self._request("grant_ref", ref=ref, page=self.page_number(page), readonly=readonly)

    def grant_mapped(self, ref: int) -> bool:
        """Whether the back end still has the grant mapped."""
        return bool(self._request("grant_mapped", ref=ref))

    def end_grant(self, ref: int) -> None:
        self._request("end_grant", ref=ref)

    def alloc_evtchn(self) -> int:
        """An event channel to the back end (``xenbus_alloc_evtchn``): its port."""
        return int(self._request("alloc_evtchn"))

    def notify(self, port: int | None = None) -> None:
        """Notify the back end on ``port`` (None: the only event channel)."""
        self._request("notify", port=port)

    # the block layer
    def complete(self, bio_id: int, ok: bool, data: bytes = b"") -> None:
        self._request("complete", bio=bio_id, ok=ok, data=bytes(data).hex())

    # the report
    def log(self, text: str) -> None:
        """A line for the harness's report (not answered)."""
        self._channel.send({"type": "log", "text": text[:65536]})


def _address(view: memoryview) -> int:
    import ctypes

    return ctypes.addressof(ctypes.c_char.from_buffer(view))


def _map(memory: Mapping[str, Any]) -> tuple[mmap.mmap, int]:
    path, pages, page_size = str(memory["path"]), int(memory["pages"]), int(memory["page_size"])
    fd = os.open(path, os.O_RDWR)
    try:
        size = pages * page_size
        if os.fstat(fd).st_size < size:
            raise HarnessGone(f"the shared memory {path} is smaller than {pages} pages")
        return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE), page_size
    finally:
        os.close(fd)


def _attempt(channel: _Channel, action: Callable[..., object], *args: object) -> Any:
    """Run an entry point (or the factory) and say ``done``: ``ok: false`` with the
    exception it raised.  What it returned, or None."""
    try:
        result = action(*args)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        channel.send({"type": "done", "ok": False, "error": f"{type(exc).__name__}: {exc}"[:4000]})
        return None
    channel.send({"type": "done"})
    return result


def _call(
    channel: _Channel, frontend: Any, message: Mapping[str, Any], calls: tuple[str, ...]
) -> None:
    """One ``call``: the entry point, with its bio for a submit."""
    call = str(message.get("call"))
    entry = getattr(frontend, call, None) if call in calls else None
    if entry is None:
        why = "no front end (no reset yet)" if frontend is None else f"no entry point {call}"
        channel.send({"type": "done", "ok": False, "error": why})
    elif call == "submit":
        b = message["bio"]
        bio = Bio(
            int(b["id"]),
            str(b["op"]),
            int(b["sector"]),
            int(b["sectors"]),
            bytes.fromhex(b["data"]),
        )
        _attempt(channel, entry, bio)
    else:
        _attempt(channel, entry)


def serve(
    factory: Callable[[RemoteEnv], Any],
    *,
    name: str = "a Python front end",
    calls: Iterable[str] = CALLS,
    ops: Iterable[str] = OPS,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
) -> int:
    """Serve the harness until ``bye``; the exit status (0, or 2 when the harness broke
    the protocol).

    ``factory(env)`` makes the front end of each device (at every ``reset``); ``calls``
    and ``ops`` are what ``hello`` declares.  Without ``stdout``, the protocol keeps the
    process's real standard output to itself: ``print`` and anything else writing to
    file descriptor 1 go to stderr instead."""
    if stdout is None:
        sys.stdout.flush()
        stdout = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
    channel = _Channel(stdin if stdin is not None else sys.stdin.buffer, stdout)
    entry_points, operations = tuple(calls), tuple(ops)
    try:
        hello = channel.receive()
        if hello["type"] != "hello" or hello.get("protocol") != PROTOCOL:
            raise HarnessGone(f"expected the harness's hello, protocol {PROTOCOL}: {hello}")
        memory, page_size = _map(hello["memory"])
        env = RemoteEnv(
            channel,
            memory,
            page_size,
            str(hello["front"]),
            str(hello["back"]),
            hello.get("options") or {},
        )
        channel.send(
            {
                "type": "hello",
                "protocol": PROTOCOL,
                "name": name,
                "calls": list(entry_points),
                "ops": list(operations),
            }
        )
        frontend: Any = None
        while True:
            message = channel.receive()
            kind = message["type"]
            if kind == "bye":
                return 0
            if kind == "reset":
                env._reset()
                frontend = None  # the old one goes before the new one is made
                frontend = _attempt(channel, factory, env)
            elif kind == "call":
                _call(channel, frontend, message, entry_points)
            else:
                raise HarnessGone(f"an unexpected {kind} message from the harness")
    except HarnessGone as exc:
        if exc.status:
            print(f"stdio front end: {exc}", file=sys.stderr)
        return exc.status
