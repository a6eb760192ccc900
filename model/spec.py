"""``build_spec``: the blkfront model, assembled from its declaration modules."""

from __future__ import annotations

from functools import lru_cache

from . import dump, handshake, requests
from .declaration import Component, Spec
from .properties import INVARIANTS, PROGRESS, STEP_PROPERTIES
from .state import Sizes, fields, initial

COMPONENTS = (
    Component(
        "toolstack", "susp_pc", "The tool stack: unplug, suspend and resume (with migration)."
    ),
    Component("backend", "be_state", "The back end (blkback), as blkif.h describes it."),
    Component("frontend", "fe_state", "The front end's XenBus handlers and disk entry points."),
    Component("io", "io_pc", "The request path, under the I/O lock."),
    Component("dump", "dump_pc", "The kernel dumper's call xbd_dump, on a stopped system."),
)


@lru_cache(maxsize=16)
def build_spec(sizes: Sizes | None = None) -> Spec:
    """The model for ``sizes`` (the defaults when None)."""
    k = sizes or Sizes()
    return Spec(
        sizes=k,
        fields=fields(k),
        components=COMPONENTS,
        transitions=(
            *handshake.table.transitions,
            *requests.table.transitions,
            *dump.table.transitions,
        ),
        initial=initial,
        invariants=INVARIANTS,
        step_properties=STEP_PROPERTIES,
        progress=PROGRESS,
    )
