"""A minimal xenstore client: the xs_wire protocol over oxenstored's unix socket.

Every message is a 16-byte header (``struct xsd_sockmsg`` in ``xen/io/xs_wire.h``:
type, req_id, tx_id, len, each a little-endian uint32) followed by ``len`` bytes of
payload whose strings are NUL-separated.  A request is answered by a message of the
same type (or ``XS_ERROR`` with the errno name, ``"EAGAIN\\0"``); watch events
(``XS_WATCH_EVENT``) arrive in between and are queued.

Payloads, as libxenstore sends them and oxenstored's ``process.ml`` splits them:

* ``XS_READ``, ``XS_MKDIR``, ``XS_RM``: ``<path>\\0``;
* ``XS_WRITE``: ``<path>\\0<value>`` (the value has no NUL of its own);
* ``XS_TRANSACTION_START``: ``\\0``, answered by ``<tx_id>\\0``;
* ``XS_TRANSACTION_END``: ``T\\0`` to commit, ``F\\0`` to abort; the commit of a
  transaction that conflicts (and whose replay fails) is answered ``EAGAIN``;
* ``XS_WATCH``, ``XS_UNWATCH``: ``<path>\\0<token>\\0``.
"""

from __future__ import annotations

import socket
import struct
from collections import deque
from dataclasses import dataclass
from types import TracebackType

# enum xsd_sockmsg_type (xen/io/xs_wire.h); checked against the header when it is
# installed (tests/traces/test_oxenstored_daemon.py).
XS_CONTROL = 0
XS_DIRECTORY = 1
XS_READ = 2
XS_GET_PERMS = 3
XS_WATCH = 4
XS_UNWATCH = 5
XS_TRANSACTION_START = 6
XS_TRANSACTION_END = 7
XS_INTRODUCE = 8
XS_RELEASE = 9
XS_GET_DOMAIN_PATH = 10
XS_WRITE = 11
XS_MKDIR = 12
XS_RM = 13
XS_SET_PERMS = 14
XS_WATCH_EVENT = 15
XS_ERROR = 16
XS_IS_DOMAIN_INTRODUCED = 17
XS_RESUME = 18
XS_SET_TARGET = 19
XS_RESET_WATCHES = 21
XS_DIRECTORY_PART = 22

#: XENSTORE_PAYLOAD_MAX: a longer payload desynchronises the stream (oxenstored answers
#: E2BIG and reads the rest as the next header), so the client refuses it.
PAYLOAD_MAX = 4096

_HEADER = struct.Struct("<IIII")

#: Every message type above, by its name in xs_wire.h.
MESSAGE_TYPES = {name: value for name, value in globals().items() if name.startswith("XS_")}

__all__ = [
    "MESSAGE_TYPES",
    "PAYLOAD_MAX",
    "WatchEvent",
    "XsConnection",
    "XsError",
    "XsProtocolError",
    *MESSAGE_TYPES,
]


class XsError(Exception):
    """xenstored answered a request with ``XS_ERROR``.

    Attributes:
        errno: the error's name as xenstored sent it (``EAGAIN``, ``EINVAL``, ``E2BIG``...).
        op: the request's type.
        payload: the request's payload.
    """

    def __init__(self, errno: str, op: int, payload: bytes) -> None:
        self.errno = errno
        self.op = op
        self.payload = payload
        shown = payload.replace(b"\0", b" ").decode("utf-8", "replace")
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"xenstored answered {errno} to request type {op} ({shown.strip()!r})")


class XsProtocolError(Exception):
    """The socket closed, timed out or carried a message the client did not expect."""


@dataclass(frozen=True)
class WatchEvent:
    """One ``XS_WATCH_EVENT``: the path that changed and the watch's token."""

    path: str
    token: str


class XsConnection:
    """One socket connection to xenstored (oxenstored logs it as ``A<n>``).

    Requests are synchronous: each call sends one message and waits for its answer.
    """

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(path)
        except OSError:
            self._sock.close()
            raise
        self._req_id = 0
        self.events: deque[WatchEvent] = deque()

    # ---- plumbing
    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> XsConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _recv_exact(self, n: int) -> bytes:
        chunks: list[bytes] = []
        while n:
            try:
                chunk = self._sock.recv(n)
            except TimeoutError:
                raise XsProtocolError(f"no answer from xenstored on {self.path}") from None
            if not chunk:
                raise XsProtocolError(f"xenstored closed the connection on {self.path}")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _read_message(self) -> tuple[int, int, int, bytes]:
        op, req_id, tx_id, length = _HEADER.unpack(self._recv_exact(_HEADER.size))
        if length > PAYLOAD_MAX:
            raise XsProtocolError(f"an answer of {length} bytes (the maximum is {PAYLOAD_MAX})")
        return op, req_id, tx_id, self._recv_exact(length)

    def request(self, op: int, payload: bytes, tx_id: int = 0) -> bytes:
        """Send one request and return its answer's payload.

        Raises:
            XsError: xenstored answered ``XS_ERROR``.
            XsProtocolError: no answer, or an answer that is not this request's.
        """
        if len(payload) > PAYLOAD_MAX:
            raise ValueError(f"a payload of {len(payload)} bytes (the maximum is {PAYLOAD_MAX})")
        self._req_id += 1
        req_id = self._req_id
        self._sock.sendall(_HEADER.pack(op, req_id, tx_id, len(payload)) + payload)
        while True:
            r_op, r_id, _r_tx, body = self._read_message()
            if r_op == XS_WATCH_EVENT:
                parts = body.split(b"\0")
                self.events.append(WatchEvent(parts[0].decode(), parts[1].decode()))
                continue
            if r_id != req_id:
                raise XsProtocolError(f"answer to request {r_id} while waiting for {req_id}")
            if r_op == XS_ERROR:
                raise XsError(body.rstrip(b"\0").decode("ascii", "replace"), op, payload)
            if r_op != op:
                raise XsProtocolError(f"answer of type {r_op} to a request of type {op}")
            return body

    # ---- operations
    def read(self, path: str, tx_id: int = 0) -> str:
        return self.request(XS_READ, _z(path), tx_id).decode()

    def write(self, path: str, value: str, tx_id: int = 0) -> None:
        self.request(XS_WRITE, _z(path) + value.encode(), tx_id)

    def mkdir(self, path: str, tx_id: int = 0) -> None:
        self.request(XS_MKDIR, _z(path), tx_id)

    def rm(self, path: str, tx_id: int = 0) -> None:
        self.request(XS_RM, _z(path), tx_id)

    def watch(self, path: str, token: str) -> None:
        """Watch ``path``; xenstored fires the watch once at once."""
        self.request(XS_WATCH, _z(path) + _z(token))

    def transaction_start(self) -> int:
        return int(self.request(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))

    def transaction_end(self, tx_id: int, commit: bool = True) -> None:
        """End a transaction: commit (``T``) or abort (``F``).

        Raises:
            XsError: ``EAGAIN`` when the commit conflicts and oxenstored's replay fails.
        """
        self.request(XS_TRANSACTION_END, b"T\0" if commit else b"F\0", tx_id)


def _z(text: str) -> bytes:
    return text.encode() + b"\0"
