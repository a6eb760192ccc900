"""Mutation score of the default differential campaign on the reference.

Each mutant of ``xbdspec.reference``'s driver and life cycle
(:mod:`xbdspec.conformance.mutation`) is installed in process and the default campaign
(``xbdspec difftest --contract freebsd --impl reference --seed 1``: the sweep, the full
profile, 200 programs, stopping at the first new divergence) is run on it.  A mutant is
killed when the campaign reports a new divergence (exit status 1 for a user), or the
harness crashes or hangs; a survivor of it is then tried by the protocol contract's
default campaign and by the findings audit's replays (``mutation.campaign_kill``), as
``make verify`` runs all three.  Fix-only mutants (in a branch only an opt-in fix takes) and
the survivors judged equivalent (``mutation.EQUIVALENT``, with reasons) are counted apart;
the kill rate is over the rest.  The median time and events to the first new divergence
are over the killed mutants (a crash or a hang has no such time).

``XBDSPEC_BENCH_MUTANTS``: ``all``, or a number of mutants drawn (seeded; default 40);
``XBDSPEC_BENCH_MUTANT_MODULES``: ``driver``, ``lifecycle`` or ``driver,lifecycle``
(the default).  The whole set takes tens of minutes on two cores.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from typing import Any

from xbdspec.conformance import mutation


def run() -> dict[str, Any]:
    """The figures recorded in docs/benchmarks.md (## Mutation testing)."""
    wanted = os.environ.get("XBDSPEC_BENCH_MUTANTS", "40")
    modules = tuple(os.environ.get("XBDSPEC_BENCH_MUTANT_MODULES", "driver,lifecycle").split(","))
    return measure(None if wanted == "all" else int(wanted), modules)


def measure(
    count: int | None, modules: tuple[str, ...] = ("driver", "lifecycle")
) -> dict[str, Any]:
    """Run ``count`` mutants drawn at random (``None``: all) and summarise."""
    started = time.perf_counter()
    baseline = mutation.campaign_kill(None)
    pool = mutation.mutants(modules)
    chosen = pool if count is None else random.Random(0).sample(pool, min(count, len(pool)))
    chosen.sort(key=lambda m: (m.module, m.line, m.site))
    fix_only = [m for m in chosen if m.fix_only]
    equivalent = [m for m in chosen if not m.fix_only and m.key in mutation.EQUIVALENT]
    tried = [m for m in chosen if not m.fix_only and m.key not in mutation.EQUIVALENT]
    verdicts = [(m, mutation.campaign_kill(m)) for m in tried]
    killed = [(m, v) for m, v in verdicts if v.killed]
    timed = [v for _, v in killed if v.seconds is not None]
    survivors = [f"{m.key} (line {m.line})" for m, v in verdicts if not v.killed]
    return {
        "modules": list(modules),
        "mutants_in_pool": len(pool),
        "mutants_drawn": len(chosen),
        "fix_only": len(fix_only),
        "equivalent": len(equivalent),
        "non_equivalent": len(tried),
        "killed": len(killed),
        "kill_rate": round(len(killed) / max(1, len(tried)), 3),
        "median_seconds_to_first_divergence": (
            round(statistics.median(v.seconds for v in timed if v.seconds is not None), 3)
            if timed
            else None
        ),
        "median_events_to_first_divergence": (
            statistics.median(v.events for v in timed if v.events is not None) if timed else None
        ),
        "killed_by_crash_or_hang": len(killed) - len(timed),
        # which default check saw it: the FreeBSD refinement's campaign, the protocol
        # contract's, or the findings audit's replays (a mutant that fixes a finding)
        "killed_by_protocol_campaign": sum(v.how.startswith("protocol") for _, v in killed),
        "killed_by_findings_audit": sum(v.how.startswith("findings") for _, v in killed),
        "survivors": survivors,
        "equivalent_reasons": {m.key: mutation.EQUIVALENT[m.key] for m in equivalent},
        "baseline_new_divergence": baseline.how if baseline.killed else None,
        "seconds": round(time.perf_counter() - started, 1),
    }
