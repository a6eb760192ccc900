"""``build_protocol_spec``: the protocol model, assembled from its declaration modules."""

from __future__ import annotations

from functools import lru_cache

from ..declaration import Component, Spec
from . import handshake, ring
from .properties import INVARIANTS, PROGRESS, STEP_PROPERTIES
from .state import ProtocolSizes, fields, initial

COMPONENTS = (
    Component(
        "toolstack",
        "ts_phase",
        "The tool stack: creates the device, unplugs it (online = 0, or libxl's detach), "
        "removes the nodes, and recreates them on resume.",
    ),
    Component(
        "backend",
        "be_state",
        "Any back end (blkback, QEMU's qdisk, FreeBSD's blkback...), as the headers bind it.",
    ),
    Component(
        "frontend",
        "fe_state",
        "Any front end (FreeBSD, Linux, NetBSD, OpenBSD, Mini-OS, MirageOS...), as the "
        "headers bind it.",
    ),
)


@lru_cache(maxsize=16)
def build_protocol_spec(sizes: ProtocolSizes | None = None) -> Spec:
    """The protocol model for ``sizes`` (the defaults when None)."""
    return Spec(
        sizes=sizes or ProtocolSizes(),
        fields=fields(sizes or ProtocolSizes()),
        components=COMPONENTS,
        transitions=(*handshake.table.transitions, *ring.table.transitions),
        initial=initial,
        invariants=INVARIANTS,
        step_properties=STEP_PROPERTIES,
        progress=PROGRESS,
    )
