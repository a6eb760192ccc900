"""The adapter contract: what an implementation under test offers the harness.

An implementation answers the model's *environment* events (the tool stack, the back
end, xenstore watch deliveries, bios submitted, responses, interrupts, DMA callbacks,
grant references returned, open and close) and reports an :class:`Observation`: the
abstract state the model defines, or the part of it the implementation can show.  The
driver's *internal* steps (``xbd_startio``'s iterations, the locked tail of
``xbd_connect``, ``xbd_closing``'s second half) run inside the implementation's call; the
harness finds the model's internal steps that explain the outcome.

Some choices belong to the environment but are made inside a call: how each ``bus_dma``
load answers (:class:`EnvChoices`).  The harness passes them with the event.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from xbdspec.errors import XbdspecError
from xbdspec.model.state import Sizes
from xbdspec.model.vocabulary import DRIVER_STEPS, Dma

#: The model's internal steps: the implementation performs them inside one call.
INTERNAL_EVENTS: frozenset[str] = DRIVER_STEPS


class ImplementationError(XbdspecError):
    """An implementation could not be driven (it crashed, hung, or answered nonsense)."""


class UnsupportedEvent(ImplementationError):
    """The implementation was asked for an event outside the events it supports."""


@dataclass(frozen=True)
class EnvChoices:
    """Environment decisions the implementation cannot make itself.

    Attributes:
        dma: how the bus_dma loads started during this event answer, in order
            (IMMEDIATE once the list runs out).
    """

    dma: tuple[Dma, ...] = ()

    def dma_at(self, index: int) -> Dma:
        """The answer of the ``index``-th load of this event."""
        return self.dma[index] if index < len(self.dma) else Dma.IMMEDIATE

    def as_json(self) -> dict[str, Any]:
        """The choices with enums by name (the replay and protocol format)."""
        return {"dma": [m.name for m in self.dma]} if self.dma else {}


@dataclass(frozen=True)
class Observation:
    """What an implementation shows after an event.

    Attributes:
        fields: model field name -> plain value (ints, bools, lists for arrays); a field
            that is absent is *not checked* (the implementation cannot show it).
        fault: a description of a crash of the implementation (a kernel panic, an
            assertion, undefined behaviour), or ``None``.
        complete: every model field is present, so the model's invariants can be
            evaluated on this abstract state.
    """

    fields: Mapping[str, Any]
    fault: str | None = None
    complete: bool = False


@dataclass(frozen=True)
class Capabilities:
    """What an implementation can do.

    Attributes:
        name: how reports name it.
        events: the environment events it answers (``None``: every one).
        start: ``"initial"`` (the model's initial state: both ends Initialising) or
            ``"connected"`` (the harness first drives the handshake through the model
            and the implementation starts connected, its disk open).
        features: for ``start == "connected"``: (barrier, flush) the back end offers.
        refuses: environment events it never performs although the model allows them
            (a driver choice it does not make, such as a protocol shortcut).
    """

    name: str
    events: frozenset[str] | None = None
    start: str = "initial"
    features: tuple[bool, bool] = (True, True)
    refuses: frozenset[str] = frozenset()


@runtime_checkable
class Implementation(Protocol):
    """The adapter contract (see ``docs/conformance.md``)."""

    def capabilities(self) -> Capabilities:
        """What this implementation supports."""
        ...

    def reset(self, sizes: Sizes) -> Observation:
        """Start afresh at the start state for ``sizes``; the observation there."""
        ...

    def apply(self, event: str, params: Mapping[str, Any], env: EnvChoices) -> Observation:
        """Perform environment event ``event(**params)`` and run to quiescence."""
        ...

    def observe(self) -> Observation:
        """The current observation, without changing anything."""
        ...

    def close(self) -> None:
        """Release resources (a child process, temporary files)."""
        ...


@dataclass
class Step:
    """One environment event of a program, as replay files and reports write it."""

    event: str
    params: dict[str, Any]
    env: EnvChoices = field(default_factory=EnvChoices)

    def label(self) -> str:
        """``event(name=value, ...)`` with enums by name, plus the environment's choices."""
        inner = ", ".join(f"{k}={_show(v)}" for k, v in self.params.items())
        extra = f" [dma={','.join(m.name for m in self.env.dma)}]" if self.env.dma else ""
        return f"{self.event}({inner}){extra}"


def _show(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return value.name
    return repr(value)
