"""How long searches run the cyclic garbage collector.

The explorer's searches and the differential campaigns keep hundreds of thousands of
long-lived objects (visited states, snapshots, the model side's memo tables), which
every full collection of the oldest generation visits and none of which is garbage.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: during a search the oldest generation is collected only after this many collections
#: of the middle one (Python's default is 10): see :func:`old_objects_spared`
OLD_GENERATION_THRESHOLD = 1_000


@contextmanager
def old_objects_spared(*, settle: bool = False) -> Iterator[None]:
    """Collect the oldest generation of objects rarely for the time of a search.

    Full collections visit every long-lived object (six of them took some 0.6 s of a
    4 s reference exploration at the default bound; in a 3,000-program campaign they
    took about a fifth of the time).  The young generations are still collected as
    usual, so the cycles a step leaves behind are freed as soon as before; a full
    collection still comes after ``OLD_GENERATION_THRESHOLD`` collections of the middle
    generation (some seven million allocations), so memory stays bounded.  The
    thresholds are put back afterwards; a caller that disabled the collector (threshold
    0) is left alone.

    ``settle``: on leaving, the youngest generation is collected, which restarts the
    count of allocations to the next collection.  A caller that enters this around
    each of many short runs (:func:`~xbdspec.conformance.program.random_walk`, one
    program) then meets no collection between them (they allocate a few objects), so
    no full collection under the restored thresholds: without it one came between
    programs whenever the middle generation had been collected ten times since the
    last, which is nearly always once the policy had deferred them."""
    thresholds = gc.get_threshold()
    if thresholds[0]:
        gc.set_threshold(thresholds[0], thresholds[1], max(thresholds[2], OLD_GENERATION_THRESHOLD))
    try:
        yield
    finally:
        if settle and thresholds[0]:
            gc.collect(0)
        gc.set_threshold(*thresholds)
