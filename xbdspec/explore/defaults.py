"""The explorer's default sizes, and sizes from command-line options.

With two bios, a ring that fills and a grant shortage cannot both be reached in one
configuration: the ring fills only when both requests are in flight, which needs
``grants >= grants_per_request + 1`` (the first request keeps one reference), and
the second request meets a grant shortage only when ``grants < grants_per_request
+ 1``.  (Three bios would cover both, but the state space grows past ten million
classes.)  So ``xbdspec explore`` without size options runs two configurations,
both with three interchangeable commands, two bios, a two-slot ring, one suspend
and one unplug:

* ``grants=2``: the second request meets a grant shortage (``XBDF_GNT_SHORTAGE``,
  the free-callback, ``grants_returned``);
* ``grants=3``: both requests are in flight and the ring is full (``RING_FULL``),
  and an ordered write without barrier support waits for the ring to drain
  (``XBDF_WAIT_IDLE``).

docs/explorer.md gives the measured figures.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from xbdspec.errors import XbdspecError
from xbdspec.model.state import Sizes
from xbdspec.untrusted import check_sizes

#: the sizes every default run shares, and the first default run
DEFAULT_SIZES = Sizes(
    commands=3,
    bios=2,
    ring_slots=2,
    grants=2,
    grants_per_request=2,
    suspends=1,
    unplugs=1,
    max_users=1,
    dumps=0,
)

#: what ``xbdspec explore`` runs when no size option is given
DEFAULT_RUNS: tuple[Sizes, ...] = (DEFAULT_SIZES, dataclasses.replace(DEFAULT_SIZES, grants=3))


def sizes_from(options: dict[str, Any]) -> Sizes:
    """The default sizes with the options that are not None replaced."""
    given = {k: v for k, v in options.items() if v is not None}
    for name, value in given.items():
        if value < 0:
            raise XbdspecError(f"--{name.replace('_', '-')} must not be negative (got {value})")
    if given.get("commands", 1) < 1 or given.get("ring_slots", 1) < 1:
        raise XbdspecError("--commands and --ring-slots must be at least 1")
    sizes = dataclasses.replace(DEFAULT_SIZES, **given)
    # the bounds the options' types check, and a request's grants within the pool
    check_sizes(dataclasses.asdict(sizes), "the size options", option=True)
    return sizes


def runs_from(options: dict[str, Any]) -> tuple[Sizes, ...]:
    """The configurations to explore: :data:`DEFAULT_RUNS` when no size option is
    given, else the one configuration the options describe."""
    if all(v is None for v in options.values()):
        return DEFAULT_RUNS
    return (sizes_from(options),)
