"""``xbdspec simulate``: boot a disk on the simulated platform and run random I/O through
the reference driver, then report.

Every choice is drawn from ``random.Random(seed)``: the back end's features (barrier,
flush, indirect segments, ring size), the I/O mix (reads, writes, ordered writes, flushes),
sizes and in-page offsets, deferred DMA mappings, grant shortages (another grant user
holding references), the order in which the back end answers, and when interrupts arrive.
Ring indices start just below 2^32 so that they wrap during the run.

Checks: every bio completes exactly once, without error, and with the right data (reads
return what the RAM disk holds; writes leave their data on it).  In-flight requests never
overlap, so the expected content of a region is defined.  Two seed defects are steered
around so that a run can finish (both are in ``docs/seed-notes.md``): flushes are only
submitted when the back end offers flush or barrier (otherwise ``xbd_bio_command``
panics), and a single-stepped ordered write never has its mapping deferred (otherwise it
is never published and the queue stalls).
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field
from typing import Any

from xbdspec import argtypes

from .backend import BackendConfig
from .busdma import MapMode
from .constants import (
    BIO_FLUSH,
    BIO_ORDERED,
    BIO_READ,
    BIO_WRITE,
    PAGE_SIZE,
    XenbusState,
)
from .driver import strategy
from .platform import Platform, Tunables
from .softc import Bio

SECTOR = 512


@dataclass(slots=True)
class SimulationReport:
    """What a run found (``--json`` prints :meth:`as_dict`)."""

    seed: int
    bios_submitted: int = 0
    bios_completed: int = 0
    bios_lost: int = 0
    double_completions: int = 0
    data_mismatches: int = 0
    bios_failed: int = 0
    frontend_state: str = ""
    backend_state: str = ""
    features: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No bio lost, none completed twice, no wrong data, no failed bio."""
        return (
            self.bios_lost == 0
            and self.double_completions == 0
            and self.data_mismatches == 0
            and self.bios_failed == 0
            and self.bios_completed == self.bios_submitted
        )

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able data."""
        return {
            "seed": self.seed,
            "bios_submitted": self.bios_submitted,
            "bios_completed": self.bios_completed,
            "bios_lost": self.bios_lost,
            "double_completions": self.double_completions,
            "data_mismatches": self.data_mismatches,
            "bios_failed": self.bios_failed,
            "frontend_state": self.frontend_state,
            "backend_state": self.backend_state,
            "features": self.features,
            "counters": self.counters,
            "ok": self.ok,
        }


def choose_backend(rng: random.Random) -> BackendConfig:
    """The back end's features for this seed."""
    return BackendConfig(
        sectors=8192,
        barrier=rng.random() < 0.5,
        flush=rng.random() < 0.6,
        max_indirect_segments=rng.choice([None, None, 16, 64, 256]),
        max_ring_page_order=rng.choice([None, 0, 1, 2]),
    )


class Simulation:
    """One seeded run: a booted platform and the random I/O engine driving it.

    Attributes:
        platform: the simulated machine (booted by :meth:`boot`).
        outstanding: submitted bios not yet completed, by ``bio_id``.
        shadow: the expected disk content (updated when a write completes).
    """

    def __init__(
        self,
        seed: int,
        *,
        defer_probability: float = 0.1,
        grant_pressure: bool = True,
        max_outstanding: int = 48,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.config = choose_backend(self.rng)
        ring_start = 0x1_0000_0000 - self.rng.randrange(1, 200)
        self.platform = Platform(
            tunables=Tunables(mutex_recursion_fatal=False),
            backend_config=self.config,
            grant_frames=1,
            ring_index_start=ring_start,
        )
        self.platform.busdma.defer_single_stepped = False
        self.defer_probability = defer_probability
        self.grant_pressure = grant_pressure
        self.max_outstanding = max_outstanding
        self.shadow = bytearray(self.config.sectors * SECTOR)
        self.outstanding: dict[int, Bio] = {}
        self.busy_sectors: set[int] = set()
        self.held_grants: list[int] = []
        self.report = SimulationReport(seed)
        self.next_bio_id = 1
        self.checked = 0

    # ------------------------------------------------------------------ set-up
    def boot(self) -> None:
        """Run the handshake; the disk is then ready for I/O."""
        self.platform.boot()
        self.platform.backend.disk[:] = self.shadow  # both start zeroed
        sc = self.platform.softc()
        self.report.features = {
            "barrier": self.config.barrier,
            "flush": self.config.flush,
            "max_indirect_segments": self.config.max_indirect_segments,
            "max_ring_page_order": self.config.max_ring_page_order,
            "ring_pages": sc.xbd_ring_pages,
            "max_requests": sc.xbd_max_requests,
            "max_request_segments": sc.xbd_max_request_segments,
            "flushes_submitted": self.flush_supported,
        }

    @property
    def flush_supported(self) -> bool:
        """Whether a BIO_FLUSH can be sent without the seed panicking."""
        return self.config.flush or self.config.barrier

    # ------------------------------------------------------------------ the work
    def _new_bio(self) -> Bio | None:
        rng = self.rng
        sc = self.platform.softc()
        disk = sc.xbd_disk
        roll = rng.random()
        if roll < 0.05 and self.flush_supported:
            bio = Bio(BIO_FLUSH, bio_disk=disk, bio_id=self.next_bio_id)
            self.next_bio_id += 1
            return bio
        cmd = BIO_READ if roll < 0.5 else BIO_WRITE
        flags = BIO_ORDERED if cmd == BIO_WRITE and rng.random() < 0.15 else 0
        max_bytes = min(sc.xbd_max_request_size, 64 * 1024)
        offset = rng.randrange(0, PAGE_SIZE // SECTOR) * SECTOR
        largest = max(1, (max_bytes - offset) // SECTOR)
        nsectors = rng.randint(1, min(largest, 24)) if rng.random() < 0.8 else largest
        start = rng.randrange(0, self.config.sectors - nsectors)
        wanted = range(start, start + nsectors)
        if any(s in self.busy_sectors for s in wanted):
            return None
        buffer = self.platform.mem.alloc(nsectors * SECTOR, offset)
        if cmd == BIO_WRITE:
            view = buffer.view()
            view[:] = rng.randbytes(nsectors * SECTOR)
        self.busy_sectors.update(wanted)
        bio = Bio(cmd, start, nsectors * SECTOR, flags, buffer, bio_disk=disk)
        bio.bio_id = self.next_bio_id
        self.next_bio_id += 1
        return bio

    def submit(self) -> bool:
        """Send one new bio through ``xbd_strategy``; False if none could be drawn."""
        bio = self._new_bio()
        if bio is None:
            return False
        self.outstanding[bio.bio_id] = bio
        self.report.bios_submitted += 1
        self._pick_mapping_mode()
        strategy(bio)
        return True

    def _pick_mapping_mode(self) -> None:
        busdma = self.platform.busdma
        defer = self.rng.random() < self.defer_probability
        busdma.default_mode = MapMode.DEFERRED if defer else MapMode.IMMEDIATE

    def _check_completions(self) -> None:
        completed = self.platform.completed
        report = self.report
        while self.checked < len(completed):
            bio = completed[self.checked]
            self.checked += 1
            if bio.done_count > 1:
                report.double_completions += 1
                continue
            if self.outstanding.pop(bio.bio_id, None) is None:
                continue
            report.bios_completed += 1
            if bio.bio_error:
                report.bios_failed += 1
            buffer = bio.bio_data
            if buffer is None:
                continue
            start = bio.bio_pblkno * SECTOR
            end = start + bio.bio_bcount
            data = buffer.mem[buffer.offset : buffer.offset + bio.bio_bcount]
            if bio.bio_cmd == BIO_WRITE and not bio.bio_error:
                self.shadow[start:end] = data
                if self.platform.backend.disk[start:end] != data:
                    report.data_mismatches += 1
            elif bio.bio_cmd == BIO_READ and not bio.bio_error and self.shadow[start:end] != data:
                report.data_mismatches += 1
            self.busy_sectors.difference_update(range(bio.bio_pblkno, end // SECTOR))
            self.platform.mem.free(buffer)

    def _backend_step(self) -> None:
        rng = self.rng
        backend = self.platform.backend
        backend.fetch()
        pending = backend.pending
        if not pending:
            return
        count = rng.randint(1, len(pending))
        chosen = rng.sample(pending, count)
        for request in chosen:
            backend.respond(request, push=False)
        backend.push()

    def _grant_step(self) -> None:
        gnttab = self.platform.gnttab
        if self.held_grants and self.rng.random() < 0.5:
            refs, self.held_grants = self.held_grants, []
            gnttab.gnttab_free_grant_references(refs)
        elif not self.held_grants:
            want = self.rng.randint(1, max(1, gnttab.free_count))
            error, refs = gnttab.gnttab_alloc_grant_references(want)
            if not error:
                self.held_grants = refs
                self.report.counters["grant_squeezes"] = (
                    self.report.counters.get("grant_squeezes", 0) + 1
                )

    def step(self, submitting: bool) -> None:
        """One random event."""
        rng = self.rng
        platform = self.platform
        roll = rng.random()
        if submitting and roll < 0.45 and len(self.outstanding) < self.max_outstanding:
            self.submit()
        elif roll < 0.70:
            self._backend_step()
        elif roll < 0.85:
            self._pick_mapping_mode()
            platform.deliver_interrupt()
        elif roll < 0.93:
            if platform.busdma.deferred:
                self._pick_mapping_mode()
                platform.busdma.run_deferred(rng.randrange(len(platform.busdma.deferred)))
        elif self.grant_pressure:
            self._grant_step()
        self._check_completions()

    def _quiet(self) -> bool:
        platform = self.platform
        return not (
            platform.backend.pending
            or platform.busdma.deferred
            or platform.evtchn.pending
            or self.held_grants
        )

    def run(self, ios: int) -> SimulationReport:
        """Submit ``ios`` bios, drain, and return the report."""
        while self.report.bios_submitted < ios:
            self.step(submitting=True)
        idle = 0
        while self.outstanding and idle < 200:
            before = len(self.platform.completed)
            self.platform.backend.fetch()
            if self._quiet() and not self.platform.backend.pending:
                idle += 1
            self.step(submitting=False)
            if self.held_grants and self.rng.random() < 0.5:
                self._grant_step()
            if len(self.platform.completed) != before:
                idle = 0
        self._check_completions()
        return self.finish()

    def finish(self) -> SimulationReport:
        """Fill in the final counters and states."""
        report = self.report
        platform = self.platform
        report.bios_lost = len(self.outstanding)
        dev = platform.dev
        report.frontend_state = XenbusState(dev.state).name if dev is not None else "none"
        report.backend_state = XenbusState(platform.backend.state).name
        sc = platform.softc()
        report.counters.update(
            {
                "ring_req_prod_pvt": sc.xbd_ring.req_prod_pvt,
                "notifications_to_backend": platform.evtchn.to_backend,
                "interrupts_delivered": platform.evtchn.delivered,
                "dma_loads": platform.busdma.loads,
                "deferred_mappings": platform.busdma.deferred_count,
                "grant_callbacks_fired": platform.gnttab.callbacks_fired,
                "io_lock_recursions": sc.xbd_io_lock.recursions,
                "requests_served": platform.backend.served,
            }
        )
        return report


def run_simulation(ios: int, seed: int) -> SimulationReport:
    """Boot and run one simulation; the report."""
    simulation = Simulation(seed)
    simulation.boot()
    return simulation.run(ios)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``simulate`` subcommand's options."""
    parser.add_argument(
        "--ios",
        type=argtypes.int_range(1, 10_000_000, "bios to submit: none tests nothing"),
        default=1000,
        help="bios to submit (default 1000)",
    )
    parser.add_argument("--seed", type=argtypes.seed, default=1, help="seed of every random choice")
    parser.add_argument(
        "--json", action="store_true", help="print the report as one JSON document (docs/output.md)"
    )


def run(args: argparse.Namespace) -> int:
    """Run the simulation; exit 1 if a bio was lost, completed twice or got wrong data."""
    from xbdspec import output

    report = run_simulation(args.ios, args.seed)
    if args.json:
        data = dict(sorted(report.as_dict().items()))
        counts = output.counts_of(
            data,
            "bios_submitted",
            "bios_completed",
            "bios_lost",
            "double_completions",
            "data_mismatches",
            "bios_failed",
        )
        output.emit("simulate", ok=report.ok, counts=counts, fields=data)
    else:
        print(f"xbdspec simulate: seed {report.seed}, {report.bios_submitted} bios submitted")
        print(f"  features: {output.plain(report.features)}")
        print(
            f"  completed {report.bios_completed}, lost {report.bios_lost}, "
            f"completed twice {report.double_completions}, wrong data "
            f"{report.data_mismatches}, failed {report.bios_failed}"
        )
        print(f"  front end {report.frontend_state}, back end {report.backend_state}")
        for name, value in sorted(report.counters.items()):
            print(f"  {name}: {value}")
        print("  result: " + ("ok" if report.ok else "FAILED"))
    return 0 if report.ok else 1
