"""Event channels: the front end's interrupt handler and the notifications both ways.

``xen_intr_signal`` from the front end counts a notification to the back end.  The back
end raising the front end's channel only marks it pending; the handler (``xbd_int``) runs
when the test calls :meth:`EventChannels.deliver` -- an interrupt, at a time the test chose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, eq=False)
class IntrHandle:
    """``xen_intr_handle_t``: the local port bound to the handler."""

    port: int


@dataclass(slots=True, eq=False)
class EventChannels:
    """The front end's bound port and the pending/notification counters.

    Attributes:
        handler, arg: the bound interrupt handler and its argument.
        pending: the back end notified the front end and the handler has not run since.
        to_backend: notifications the front end sent (``xen_intr_signal``).
        to_frontend: notifications the back end sent.
        delivered: times the handler ran.
    """

    next_port: int = 5
    port: int | None = None
    handler: Callable[[Any], None] | None = None
    arg: Any = None
    pending: bool = False
    to_backend: int = 0
    to_frontend: int = 0
    delivered: int = 0
    fail_next_bind: int = 0

    def bind(self, handler: Callable[[Any], None], arg: Any) -> tuple[int, IntrHandle | None]:
        """``xen_intr_alloc_and_bind_local_port`` -> (error, handle)."""
        if self.fail_next_bind:
            error, self.fail_next_bind = self.fail_next_bind, 0
            return error, None
        port = self.next_port
        self.next_port += 1
        self.port = port
        self.handler = handler
        self.arg = arg
        return 0, IntrHandle(port)

    def unbind(self) -> None:
        """``xen_intr_unbind``."""
        self.port = None
        self.handler = None
        self.arg = None
        self.pending = False

    def signal_backend(self) -> None:
        """``xen_intr_signal`` from the front end."""
        self.to_backend += 1

    def notify_frontend(self) -> None:
        """The back end's ``notify_remote_via_irq``."""
        self.to_frontend += 1
        self.pending = True

    def deliver(self) -> bool:
        """Run the front end's handler if its channel is pending; True if it ran."""
        if not self.pending or self.handler is None:
            return False
        self.pending = False
        self.delivered += 1
        self.handler(self.arg)
        return True
