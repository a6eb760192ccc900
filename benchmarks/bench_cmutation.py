"""Mutation score of the default campaigns on the C code: the queue core and the seed.

Each mutant (:mod:`xbdspec.conformance.cmutation`: one operator swap, constant flip or
dropped call statement in one request-path function of ``cimpl/queue_core.c``,
``cimpl/frontend.c`` or the seed's ``blkfront.c``, on a copy) is built with the system
``cc`` (the seed through ``xbdspec.cdriver.build``) and its default campaigns are run on
it: the FreeBSD refinement's stdio campaign (``--contract freebsd --cmd``, the queue
core's v1 face) and the protocol contract's (``--cmd`` the v2 face, or ``--impl seed``),
against the unmutated build's divergences.  Stillborn mutants (they do not compile) and
those judged equivalent (``cmutation.EQUIVALENT``) are counted apart; the kill rate is
over the rest, the median time to the first new divergence over the killed ones that
have one.

``XBDSPEC_BENCH_CMUTANTS``: ``all``, or the number of mutants drawn per subject (seeded;
default 3, so ``make bench`` stays short: about 7 s a mutant on the shared box);
``XBDSPEC_BENCH_CMUTANT_SUBJECTS``: some of ``core,frontend,seed`` (the default: all).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from typing import Any

from xbdspec.conformance import cmutation


def run() -> dict[str, Any]:
    """The figures recorded in docs/benchmarks.md (### Mutation testing of the C code)."""
    wanted = os.environ.get("XBDSPEC_BENCH_CMUTANTS", "3")
    subjects = os.environ.get("XBDSPEC_BENCH_CMUTANT_SUBJECTS", "core,frontend,seed").split(",")
    return measure(None if wanted == "all" else int(wanted), tuple(subjects))


def measure(
    count: int | None, subjects: tuple[str, ...] = ("core", "frontend", "seed")
) -> dict[str, Any]:
    """Run ``count`` mutants per subject drawn at random (``None``: all) and summarise."""
    started = time.perf_counter()
    figures: dict[str, Any] = {"subjects": list(subjects)}
    totals = {"tried": 0, "killed": 0}
    times: list[float] = []
    survivors: list[str] = []
    for subject in subjects:
        pool = cmutation.mutants_of(subject)
        chosen = pool if count is None else random.Random(0).sample(pool, min(count, len(pool)))
        chosen.sort(key=lambda m: m.offset)
        equivalent = [m for m in chosen if m.key in cmutation.EQUIVALENT]
        verdicts = [(m, cmutation.kill(m)) for m in chosen if m.key not in cmutation.EQUIVALENT]
        stillborn = [m for m, v in verdicts if v.outcome == "stillborn"]
        tried = [(m, v) for m, v in verdicts if v.outcome != "stillborn"]
        killed = [v for _, v in tried if v.killed]
        times += [v.seconds for v in killed if v.seconds is not None]
        survivors += [m.key for m, v in tried if not v.killed]
        totals["tried"] += len(tried)
        totals["killed"] += len(killed)
        figures[subject] = {
            "mutants_in_pool": len(pool),
            "mutants_drawn": len(chosen),
            "stillborn": len(stillborn),
            "equivalent": len(equivalent),
            "non_equivalent": len(tried),
            "killed": len(killed),
            "killed_by_crash_or_hang": sum(v.seconds is None for v in killed),
            "kill_rate": round(len(killed) / max(1, len(tried)), 3),
        }
    figures.update(
        {
            "non_equivalent": totals["tried"],
            "killed": totals["killed"],
            "kill_rate": round(totals["killed"] / max(1, totals["tried"]), 3),
            "median_seconds_to_first_divergence": (
                round(statistics.median(times), 3) if times else None
            ),
            "survivors": survivors,
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    return figures
