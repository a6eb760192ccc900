"""The findings: every place the seed's logic departs from the protocol, explained.

Each :class:`Finding` is one divergence the toolkit found, with its severity, the seed
functions involved, why the logic goes wrong there, how it was found, and the fix (an
opt-in field of :class:`xbdspec.reference.Fixes` with the finding's name).  Its minimal
counterexample is its replay (:mod:`xbdspec.findings.replay`): a lock-step program against
the model, or a reference-level scenario.  :data:`REJECTED` lists behaviour that looks wrong
and is not, with the reason.

``docs/findings/`` is generated from this module (``python -m xbdspec.docsgen``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(Enum):
    """How bad a finding is, worst first (the order the index sorts by)."""

    PANIC = "panic"
    UNDEFINED = "undefined behaviour"
    LOST_IO = "lost or duplicated I/O"
    HANG = "hang"
    WRONG = "wrong result"
    COSMETIC = "cosmetic"


class FoundBy(Enum):
    """The tool that found a finding first."""

    DIFFERENTIAL = "differential test against the model (xbdspec difftest)"
    EXPLORER = "exploration of the model, then the differential test (xbdspec explore)"
    PROOF = "z3 proof of the seed's arithmetic (xbdspec prove)"
    REFERENCE = "reference run with hostile or failing platform inputs"
    READING = "reading the seed, then a reference replay"
    PROTOCOL = "the protocol-level harness (xbdspec difftest --impl reference / seed)"


@dataclass(frozen=True)
class Finding:
    """One divergence of the seed from the protocol.

    Attributes:
        name: kebab-case; the fix field (``Fixes.<name with underscores>``), the replay
            and the page (``docs/findings/<name>.md``) are named after it.
        title: one line, what goes wrong.
        severity: see :class:`Severity`.
        seed_functions: the seed functions involved, the faulty one first.
        summary: one sentence for the index.
        explanation: why the logic goes wrong (Markdown paragraphs).
        found_by: see :class:`FoundBy`.
        how_found: how the tool found it, in a sentence or two.
        fix: what the opt-in fix changes (Markdown).
        seed_note: its row in ``docs/seed-notes.md`` (0: none).
        model_change: where the model was wrong on the way and was fixed (empty: it was not).
        proof: the proof obligation refuted by it, if one is.
        requires: findings whose fixes this one's builds on: its replay shows them too on
            the seed, so it runs clean only with theirs on as well (and must still show
            with theirs alone).
        shows: for a scenario replay, text the seed's violation must contain (a program's
            divergence is recognised by the conformance classifier instead), so an
            unrelated fault cannot pass for the finding.
        protocol_rule: the rule the protocol-level harness reports when a campaign
            reaches it (``xbdspec difftest --impl reference``), numbers aside; empty when
            that harness does not reach it.
        protocol_trigger: the back-end settings (``xbdspec.world.backend.BackendConfig``
            fields) a program must have for the rule to be this finding.
        protocol_level: whether the departure breaks the protocol (blkif.h, ring.h,
            xenbus.h: the header sentence) or is FreeBSD-internal (the refinement level
            only), and what the protocol-level harness shows of it (Markdown; empty:
            not stated).
    """

    name: str
    title: str
    severity: Severity
    seed_functions: tuple[str, ...]
    summary: str
    explanation: str
    found_by: FoundBy
    how_found: str
    fix: str
    seed_note: int = 0
    model_change: str = ""
    proof: str = ""
    requires: tuple[str, ...] = ()
    shows: str = ""
    protocol_rule: str = ""
    protocol_trigger: tuple[tuple[str, object], ...] = ()
    protocol_level: str = ""

    @property
    def fix_field(self) -> str:
        """The :class:`~xbdspec.reference.Fixes` field that fixes it."""
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class Rejected:
    """Behaviour that looked wrong, was examined, and is not a defect.

    Attributes:
        name: kebab-case.
        seed_functions: where it is.
        looks_wrong: what made it a candidate.
        why_not: why it is correct (or outside the driver's responsibility).
    """

    name: str
    seed_functions: tuple[str, ...]
    looks_wrong: str
    why_not: str


FINDINGS: tuple[Finding, ...] = (
    Finding(
        name="flush-without-support-panics",
        title="A BIO_FLUSH the back end cannot serve panics the guest",
        severity=Severity.PANIC,
        seed_functions=("xbd_bio_command", "xbd_startio", "xbd_instance_create"),
        summary=(
            "`xbd_bio_command` calls `panic()` on a `BIO_FLUSH` when the back end offered neither "
            "`feature-flush-cache` nor `feature-barrier`, where failing the bio would do."
        ),
        explanation=(
            "`xbd_bio_command` chooses the ring operation for a flush from the softc flags: "
            "`BLKIF_OP_FLUSH_DISKCACHE` when `XBDF_FLUSH` is set, `BLKIF_OP_WRITE_BARRIER` when "
            "only `XBDF_BARRIER` is, and otherwise it panics. Both flags mirror keys the back "
            "end writes (`feature-flush-cache`, `feature-barrier`; absent means 0), so the back "
            "end decides whether a flush that reaches the driver crashes the guest.\n\n"
            "`xbd_instance_create` sets `DISKFLAG_CANFLUSHCACHE` only when one of the two "
            "features is present, so GEOM normally completes flushes itself and the panic needs "
            "a caller that hands a `BIO_FLUSH` to `d_strategy` directly. A resume comes close "
            "to making it ordinary: the disk, and its `DISKFLAG_CANFLUSHCACHE`, survive the "
            "reconnection, so a fix of `stale-features-after-resume` that only cleared the "
            "flags would turn every GEOM flush to a new back end without either feature into "
            "this panic (that fix therefore updates the disk flag too). The driver already "
            "fails commands it cannot pass on with `EOPNOTSUPP` (its default case); the model "
            "does the same here."
        ),
        found_by=FoundBy.DIFFERENTIAL,
        how_found=(
            "The differential campaign's lock-step harness saw the reference panic where the model "
            "fails the flush with `EOPNOTSUPP`; the replay is 6 events (a back end publishing "
            "neither feature, the handshake, `open`, one flush)."
        ),
        fix=(
            "`Fixes.flush_without_support_panics`: when neither `XBDF_FLUSH` nor `XBDF_BARRIER` is "
            "set, `xbd_bio_command` fails the flush with `EOPNOTSUPP`, exactly as its default case "
            "fails a command it does not know, instead of calling `panic()`."
        ),
        seed_note=4,
    ),
    Finding(
        name="stale-features-after-resume",
        title="Barrier and flush support outlive a resume onto a back end without them",
        severity=Severity.WRONG,
        seed_functions=("xbd_connect", "xbd_resume", "xbd_free"),
        summary=(
            "`xbd_connect` only ever sets `XBDF_BARRIER` and `XBDF_FLUSH`, so after a resume onto "
            "a back end that lacks them the driver still sends barriers and cache flushes."
        ),
        explanation=(
            "`xbd_connect` reads `feature-barrier` and `feature-flush-cache` and ORs "
            "`XBDF_BARRIER`/`XBDF_FLUSH` into `xbd_flags` when a value is non-zero; a missing key "
            "or a 0 leaves the bit as it was. `xbd_resume` rebuilds the connection with `xbd_free` "
            "and `xbd_initialize`, but `xbd_free` does not touch `xbd_flags`, so when the new back "
            "end connects, the flags negotiated with the previous one are still set.\n\n"
            "Features belong to a connection: the back end publishes them before `InitWait` of "
            "each handshake, defaulting to 0 (blkif.h, xenstore keys). After a migration to a back "
            "end without them, ordered writes go out as `BLKIF_OP_WRITE_BARRIER` instead of being "
            "single-stepped, and flushes as `BLKIF_OP_FLUSH_DISKCACHE`; such a back end may answer "
            "`BLKIF_RSP_EOPNOTSUPP`, which `xbd_bio_complete` turns into `EIO`, and the ordering "
            "the single-stepping would have given is lost. The `features` sysctl reports the stale "
            "features too."
        ),
        found_by=FoundBy.DIFFERENTIAL,
        how_found=(
            "The differential test found the reference's barrier and flush flags still set after a "
            "resume onto a back end publishing neither, where the model, reading the new keys, has "
            "both clear; 10 events."
        ),
        fix=(
            "`Fixes.stale_features_after_resume`: `xbd_connect` clears `XBDF_BARRIER` and "
            "`XBDF_FLUSH` before it reads `feature-barrier` and `feature-flush-cache`, so the "
            "flags are exactly what the current back end published; on a disk that survived the "
            "resume it also sets or clears `DISKFLAG_CANFLUSHCACHE` to match, so GEOM stops "
            "handing down flushes the new back end cannot do (clearing the flags alone would "
            "turn such a flush into the panic of `flush-without-support-panics`)."
        ),
        seed_note=5,
    ),
    Finding(
        name="resume-loses-ready-write",
        title="A resume drops the single-stepped write waiting on READY, with its bio",
        severity=Severity.LOST_IO,
        seed_functions=("xbd_free", "xbd_resume", "xbd_bio_command"),
        summary=(
            "`xbd_free`, run by `xbd_resume`, re-initialises the READY queue without completing or "
            "requeueing the ordered write parked there for `XBDF_WAIT_IDLE`: its bio never "
            "completes."
        ),
        explanation=(
            "Without barrier support `xbd_bio_command` single-steps an ordered write: it marks the "
            "command `XBDCF_Q_FREEZE` and, while BUSY is not empty, freezes the queue with "
            "`XBDF_WAIT_IDLE` and parks the command, bio attached, at the head of READY. A suspend "
            "then drains BUSY: the last response arrives, `xbd_int` releases `XBDF_WAIT_IDLE`, but "
            "its `xbd_startio` does nothing while the driver is SUSPENDED, so the command is still "
            "on READY when `xbd_resume` calls `xbd_free`.\n\n"
            "`xbd_free` frees the shadow array and calls `xbd_initq_cm` on FREE, READY and "
            "COMPLETE: the command, its `cm_bp` and the grant references reserved in its "
            "`cm_gref_head` are forgotten. Nothing else refers to the bio, so it is never "
            "completed and its writer waits for ever. (`xbd_free` leaves BUSY, the bio queue, "
            "`xbd_qfrozen_cnt` and `xbd_flags` as they were.)"
        ),
        found_by=FoundBy.DIFFERENTIAL,
        how_found=(
            "The differential test found the reference breaking `NoLostIO` at the resume, where "
            "the model puts the bio back on the bio queue; 13 events (a write, an ordered write, "
            "suspend, the write's response, drain, resume)."
        ),
        fix=(
            "`Fixes.resume_loses_ready_write`: under `xbd_io_lock`, and before the shadow array "
            "is freed, `xbd_free` takes every command still on READY, frees its reserved grant "
            "references, puts its bio back at the head of the bio queue (keeping their order) "
            "and drops the `XBDF_WAIT_IDLE` hold if it is still set; the bios go out once the "
            "driver reconnects. At detach, where nothing will reconnect, `xbd_detach` fails the "
            "bios left on the queue with `EIO`."
        ),
        seed_note=7,
    ),
    Finding(
        name="suspend-ignores-deferred-mappings",
        title="A suspend completes while a deferred DMA mapping is still in flight",
        severity=Severity.LOST_IO,
        seed_functions=("xbd_suspend", "xbd_queue_request", "xbd_queue_cb", "xbd_resume"),
        summary=(
            "`xbd_suspend` waits only for BUSY to empty, so a command whose bus_dma mapping was "
            "deferred is in flight unseen: its request reaches the old ring after the drain and is "
            "lost at resume."
        ),
        explanation=(
            "When `bus_dmamap_load_bio` returns `EINPROGRESS`, `xbd_queue_request` freezes the "
            "queue for the command (`XBDCF_ASYNC_MAPPING`) and returns; the command, holding its "
            "bio and grant references, is on no queue until busdma runs `xbd_queue_cb`. The drain "
            "loop of `xbd_suspend` looks only at the length of BUSY: with nothing there it returns "
            "0 at once and the suspend proceeds with the mapping outstanding.\n\n"
            "When the callback runs while SUSPENDED, `xbd_queue_cb` writes the request into the "
            "old ring, puts the command on BUSY and notifies the old back end. `xbd_resume` then "
            "calls `xbd_free`, which frees the ring and the shadow array without looking at BUSY: "
            "the new back end never sees the request, the bio never completes, and BUSY keeps an "
            "entry for a freed command, so it never looks empty again. A callback that runs only "
            "after `xbd_free` works on freed memory."
        ),
        found_by=FoundBy.DIFFERENTIAL,
        how_found=(
            "The differential test: with a write's mapping deferred, the model's suspend keeps "
            "waiting (and may time out) while the reference's has already returned; 8 events."
        ),
        fix=(
            "`Fixes.suspend_ignores_deferred_mappings`: `xbd_suspend` keeps sleeping while a "
            "deferred mapping is outstanding (a command taken off FREE with a bio, on no queue, "
            "whose callback has not run) as well as while BUSY is not empty, and a deferred "
            "mapping that fails while SUSPENDED wakes it (one that succeeds lands on BUSY, which "
            "`xbd_int`'s wake-up already covers)."
        ),
        seed_note=8,
    ),
    Finding(
        name="deferred-single-step-unpublished",
        title="A single-stepped write whose mapping is deferred is never published",
        severity=Severity.HANG,
        seed_functions=("xbd_queue_request", "xbd_cm_freeze", "xbd_queue_cb", "xbd_startio"),
        summary=(
            "For a command already frozen by single-stepping, `xbd_cm_freeze` drops the "
            "`XBDCF_ASYNC_MAPPING` of a deferred mapping, so `xbd_queue_cb` never pushes the "
            "request and the frozen queue stalls for good."
        ),
        explanation=(
            "`xbd_startio` freezes a single-stepped command (`XBDCF_Q_FREEZE`) with "
            "`xbd_cm_freeze` before mapping it. If bus_dma defers the mapping, `xbd_queue_request` "
            "calls `xbd_cm_freeze(sc, cm, XBDCF_ASYNC_MAPPING)`, which returns at once because "
            "`XBDCF_FROZEN` is already set: the `XBDCF_ASYNC_MAPPING` bit is never recorded. "
            "`xbd_startio` counts the command as queued and flushes the ring before the request "
            "has been written.\n\n"
            "When busdma later runs `xbd_queue_cb`, the request is written at `req_prod_pvt` and "
            "the command goes on BUSY, but `xbd_queue_cb` calls `xbd_flush_requests` only for "
            "commands marked `XBDCF_ASYNC_MAPPING`, so `req_prod` is not advanced and the back end "
            "is not notified (ring.h: a request is visible only once pushed). Nobody else will "
            "push it: `xbd_qfrozen_cnt` stays 1 until this command completes, so every later "
            "`xbd_startio` breaks before its own flush. The request is never answered and every "
            "bio waits behind it."
        ),
        found_by=FoundBy.DIFFERENTIAL,
        how_found=(
            "The differential test: after an ordered write on a back end without barriers whose "
            "mapping was deferred, the model's command is marked for asynchronous mapping and the "
            "reference's is not; 6 events."
        ),
        fix=(
            "`Fixes.deferred_single_step_unpublished`: `xbd_queue_request` sets "
            "`XBDCF_ASYNC_MAPPING` on a deferred mapping even when the command is already frozen, "
            "so `xbd_queue_cb` publishes the request when the mapping completes; the freeze count "
            "is unchanged (one hold per command)."
        ),
        seed_note=9,
    ),
    Finding(
        name="failed-mapping-leaks",
        title="A failed DMA mapping leaks its grant references and, if deferred, its freeze",
        severity=Severity.HANG,
        seed_functions=("xbd_queue_cb", "xbd_free_command", "xbd_queue_request"),
        summary=(
            "The error path of `xbd_queue_cb` completes the bio but never frees the command's "
            "reserved grant references, and `xbd_free_command` wipes `XBDCF_FROZEN` without "
            "thawing: a failed deferred mapping leaves the queue frozen for ever."
        ),
        explanation=(
            "On a mapping error `xbd_queue_cb` sets `bio_error` to `EIO`, calls `biodone` and "
            "`xbd_free_command`. The grant references `xbd_bio_command` reserved for the command "
            "(`cm_gref_head`, `xbd_max_request_segments` of them) are never handed back with "
            "`gnttab_free_grant_references`: each failure shrinks the pool until every bio meets "
            "`XBDF_GNT_SHORTAGE`, whose callback then never fires. The bio also gets `bio_error` "
            "without `BIO_ERROR` or a `bio_resid`, unlike the error path of `xbd_strategy`.\n\n"
            "`xbd_free_command` resets `cm_flags` to `XBDCF_INITIALIZER` without `xbd_cm_thaw`. A "
            "command whose mapping was deferred was frozen (`XBDCF_FROZEN | XBDCF_ASYNC_MAPPING`, "
            "one count of `xbd_qfrozen_cnt`), and that count is never given back: from then on "
            "`xbd_startio` breaks at its first test and no bio is sent again."
        ),
        found_by=FoundBy.DIFFERENTIAL,
        how_found=(
            "The differential test: after a write's deferred mapping fails, the reference's queue "
            "stays frozen and its free command holds grants where the model releases both; 7 "
            "events."
        ),
        fix=(
            "`Fixes.failed_mapping_leaks`: the error path of `xbd_queue_cb` marks the bio "
            "`BIO_ERROR` with `bio_resid = bio_bcount`, frees the command's reserved grant "
            "references and releases its freeze (`xbd_cm_thaw`) before `xbd_free_command`."
        ),
        seed_note=10,
    ),
    Finding(
        name="mapping-failure-stops-loop",
        title="A deferred mapping that fails leaves the bios behind it queued",
        severity=Severity.HANG,
        seed_functions=("xbd_queue_cb", "xbd_queue_request", "xbd_startio"),
        summary=(
            "When a deferred bus_dma mapping fails, `xbd_queue_cb` completes its bio and frees "
            "the command but never runs `xbd_startio`: the bios queued behind the frozen "
            "command wait for an unrelated kick. (The `break` of `xbd_startio` on a failed "
            "`xbd_queue_request` is dead code on FreeBSD.)"
        ),
        explanation=(
            "A mapping that `bus_dmamap_load_bio` defers (`EINPROGRESS`: bounce pages or "
            "IOMMU space short) freezes the queue for its command (`XBDCF_ASYNC_MAPPING`), so "
            "the bios submitted meanwhile wait on the bio queue. When busdma later runs "
            "`xbd_queue_cb` with an error, the error path completes the bio with `EIO` and "
            "frees the command (and, with `failed-mapping-leaks` fixed, its freeze), but it "
            "runs outside `xbd_startio`, from busdma's callback with `xbd_io_lock` taken, and "
            "returns without calling it. Nothing else is due to run the loop: with no request "
            "in flight no interrupt comes, and the queued bios wait for the next "
            "`xbd_strategy`.\n\n"
            "A mapping that fails at once does not stop the loop. `xbd_startio` leaves its "
            "loop when `xbd_queue_request` returns non-zero, but `bus_dmamap_load_bio` returns "
            "the callback's error to its caller only for `ENOMEM`, and FreeBSD answers "
            "`ENOMEM` at once only to a caller passing `BUS_DMA_NOWAIT` "
            '(`sys/kern/subr_bus_dma.c`: "This error only happens when NOWAIT is set, so '
            "deferral is disabled\"; `busdma_bounce.c`'s `_bus_dmamap_reserve_pages` "
            "otherwise queues the map and answers `EINPROGRESS`, and the IOMMU back end does "
            "the same). The seed passes flags 0, so a load short of resources is deferred, "
            "any other error (`EFBIG`) completes the bio through the callback and returns 0, "
            "and the loop goes on: the `break` is dead code."
        ),
        found_by=FoundBy.EXPLORER,
        how_found=(
            "The explorer found the model, which then followed the seed, deadlocked with bios "
            "queued after a deferred mapping failed (17 events); with the model restated, the "
            "differential test recognises the seed leaving the bio queued where the model "
            "sends it (8 events). The explorer's other counterexample (15 events, a mapping "
            "failing at once) rested on the model's belief that an immediate failure reaches "
            "the `break`; on FreeBSD it cannot, and it is not part of the finding."
        ),
        fix=(
            "`Fixes.mapping_failure_stops_loop`: the error path of `xbd_queue_cb` for a "
            "deferred mapping runs `xbd_startio` (busdma calls it with `xbd_io_lock` held) so "
            "the queue restarts; it knows the mapping was deferred by `XBDCF_ASYNC_MAPPING`, "
            "which the seed only sets reliably with `deferred-single-step-unpublished` fixed, "
            "hence that prerequisite. Defensively, `xbd_startio` also goes on with the next "
            "bio when `xbd_queue_request` returns an error, whose bio the callback has already "
            "completed: unreachable with the seed's flags, that half is exercised only by a "
            "reference unit test, through the simulated busdma's `assume_nowait` hook."
        ),
        seed_note=25,
        requires=("failed-mapping-leaks", "deferred-single-step-unpublished"),
        model_change=(
            "The model's dispatch had followed the seed as it was then read, stopping at any "
            "failing mapping, deferred or not, which the explorer reported as deadlocks with "
            "bios queued. Its transitions were restated: a deferred mapping that fails "
            "(`dma_callback_error`) frees its command, freeze and grants and restarts the "
            "loop, and a mapping that fails at once completes its bio with `EIO` while the "
            "loop goes on -- which, for the loop, is what the seed does on FreeBSD too (its "
            "immediate failures never reach the `break`)."
        ),
    ),
    Finding(
        name="unsupported-bio-leaks-grants",
        title="A rejected bio's command returns to FREE with its grants and bio pointer",
        severity=Severity.HANG,
        seed_functions=("xbd_bio_command", "xbd_free_command"),
        summary=(
            "The default case of `xbd_bio_command` fails an unknown bio with `EOPNOTSUPP` but puts "
            "its command straight back on FREE with its reserved grant references and a stale "
            "`cm_bp`."
        ),
        explanation=(
            "`xbd_bio_command` takes a free command and reserves `xbd_max_request_segments` grant "
            "references before it looks at `bio_cmd`. For a command it does not handle (anything "
            "but `BIO_READ`, `BIO_WRITE` and `BIO_FLUSH`) it calls `biofinish` with `EOPNOTSUPP` "
            "and then `xbd_enqueue_cm(cm, XBD_Q_FREE)` directly, bypassing `xbd_free_command`: "
            "`cm_gref_head` is never released and `cm_bp` still points at the finished bio.\n\n"
            "Each such bio leaks a request's worth of grant references. Once enough have leaked, "
            "`gnttab_alloc_grant_references` fails for every bio, the queue freezes on "
            "`XBDF_GNT_SHORTAGE`, and the free callback that would thaw it waits for references "
            "that never come back.\n\n"
            "Such a bio gets past GEOM only as `BIO_SPEEDUP`. FreeBSD 14's `g_disk_start` "
            "(`sys/geom/geom_disk.c`) fails `BIO_DELETE`, `BIO_FLUSH` and `BIO_ZONE` itself "
            "with `EOPNOTSUPP` unless `d_flags` has `DISKFLAG_CANDELETE`, "
            "`DISKFLAG_CANFLUSHCACHE` or `DISKFLAG_CANZONE` (of these the seed sets only "
            "`DISKFLAG_CANFLUSHCACHE`, with flush or barrier support), answers "
            "`BIO_GETATTR` itself (the seed has no `d_getattr`) and fails commands it does "
            "not know; but it hands "
            "`BIO_SPEEDUP` to `d_strategy` whatever `d_flags` says. `BIO_SPEEDUP` comes from "
            "`g_io_speedup` (`sys/geom/geom_io.c`), which UFS sends only to a provider that "
            "answers `GEOM::canspeedup` (`ffs_mountfs`), and the seed's disk does not: on a "
            "stock system such a bio needs a consumer that sends `BIO_SPEEDUP` without asking, "
            "or a caller that hands bios to `d_strategy` directly. The replay stands for "
            "either: its bio is the conformance vocabulary's `UNSUPPORTED` kind, which the "
            "reference adapter submits as `BIO_DELETE`, and the default case of "
            "`xbd_bio_command` treats every command it does not know alike "
            "(`xbdspec.reference.geom` models the filter; a reference test takes a "
            "`BIO_SPEEDUP` through it to this leak)."
        ),
        found_by=FoundBy.DIFFERENTIAL,
        how_found=(
            "The differential test: after an unsupported bio is rejected, a FREE command of the "
            "reference still holds grants and a bio, where the model's holds neither; 6 events."
        ),
        fix=(
            "`Fixes.unsupported_bio_leaks_grants`: the rejected command's reserved grant "
            "references are freed and the command goes back through `xbd_free_command`, which "
            "clears `cm_bp` and its flags."
        ),
        seed_note=11,
    ),
    Finding(
        name="unsupported-bio-waits-for-a-command",
        title="A bio the driver can only reject first waits for a free command",
        severity=Severity.COSMETIC,
        seed_functions=("xbd_bio_command", "xbd_startio"),
        summary=(
            "`xbd_bio_command` takes a free command and grants before looking at the bio, so a bio "
            "it will only fail with `EOPNOTSUPP` waits, frozen on `XBDF_CM_SHORTAGE`, until a "
            "command is freed."
        ),
        explanation=(
            "The order in `xbd_bio_command` is: take the bio, take a command from FREE (else "
            "freeze on `XBDF_CM_SHORTAGE` and put the bio back), reserve grant references (else "
            "`XBDF_GNT_SHORTAGE`), and only then switch on `bio_cmd`. A bio that will be rejected "
            "anyway (a command the driver does not handle, or, once `flush-without-support-panics` "
            "is fixed, a flush the back end cannot do) therefore needs resources it never uses, "
            "and when every command is busy it sits at the head of the bio queue until a response "
            "frees one.\n\n"
            "The bio does fail in the end, so the effect is a delayed error. The rejection also "
            "returns `NULL` to `xbd_startio`, which ends its loop: bios queued behind the rejected "
            "one wait for the next kick. Past GEOM, such a bio is a `BIO_SPEEDUP`, the one "
            "command `g_disk_start` hands every disk whatever its `d_flags` (see "
            "`unsupported-bio-leaks-grants`), or a flush from a caller that bypasses GEOM's "
            "`DISKFLAG_CANFLUSHCACHE` test."
        ),
        found_by=FoundBy.DIFFERENTIAL,
        how_found=(
            "The differential test: with both commands busy, an unsupported bio stays queued in "
            "the reference where the model has already failed it; 8 events."
        ),
        fix=(
            "`Fixes.unsupported_bio_waits_for_a_command`: `xbd_bio_command` looks at the bio's "
            "command before taking a free command; a bio it can only reject is failed with "
            "`EOPNOTSUPP` without taking resources, and the next bio on the queue is taken. "
            "This covers a rejectable bio that reaches `xbd_bio_command`: one queued behind a "
            "queue already frozen (for `XBDF_CM_SHORTAGE` or anything else) still waits, since "
            "`xbd_startio` stops before calling it; failing such bios at once would need "
            "`xbd_strategy` to reject them before queueing."
        ),
        seed_note=22,
    ),
    Finding(
        name="rejected-bio-stops-loop",
        title="Failing a bio the back end cannot serve ends the dispatch loop",
        severity=Severity.HANG,
        seed_functions=("xbd_bio_command", "xbd_startio"),
        summary=(
            "After failing an unsupported bio (or, fixed, an unsupported flush) "
            '`xbd_bio_command` returns `NULL`, which `xbd_startio` reads as "nothing to '
            'do": the bios queued behind it wait for an unrelated kick.'
        ),
        explanation=(
            '`xbd_bio_command` has one way to say both "no work" and "I failed this bio '
            'myself": it returns `NULL`. In its default case it finishes the bio with '
            "`EOPNOTSUPP` and returns `NULL`; `xbd_startio` then leaves its loop, although the "
            "queue is not frozen and the ring has room. The bios queued behind the rejected "
            "one stay on the bio queue until the next `xbd_strategy` or interrupt runs "
            "`xbd_startio` again; if nothing is in flight, none will.\n\n"
            "On the seed the first thing to go wrong is the rejected command's leaked grant "
            "references (`unsupported-bio-leaks-grants`), which hides this one: only with that "
            "fixed does the differential test see the loop stop where the model goes on "
            "(blkif.h does not know about the driver's loop; the model's rule is that a bio "
            "the back end cannot serve fails without stalling the queue)."
        ),
        found_by=FoundBy.READING,
        how_found=(
            "Read in the seed while writing the catalogue, then confirmed by the differential "
            "harness: with `unsupported-bio-leaks-grants` fixed, a rejected bio queued between "
            "two writes leaves the second write queued where the model sends it (12 events)."
        ),
        fix=(
            "`Fixes.rejected_bio_stops_loop`: after failing a bio, `xbd_bio_command` goes on "
            "with the next queued bio instead of returning `NULL`, so `xbd_startio` stops only "
            "when there is no work or the queue is frozen."
        ),
        requires=("unsupported-bio-leaks-grants",),
    ),
    Finding(
        name="resume-cancelled-does-not-restart",
        title="After a cancelled suspend the queue is not restarted",
        severity=Severity.HANG,
        seed_functions=("xbd_resume", "xbd_startio", "xbd_strategy"),
        summary=(
            "`xbd_resume` sets CONNECTED after a cancelled suspend but does not run `xbd_startio`, "
            "so bios queued while SUSPENDED wait for an unrelated bio or interrupt."
        ),
        explanation=(
            "While the driver is SUSPENDED, `xbd_strategy` still queues bios and calls "
            "`xbd_startio`, which returns at once because the state is not CONNECTED. When the "
            "suspend is cancelled (`xen_suspend_cancelled`: same back end, same ring), "
            "`xbd_resume` only sets `xbd_state` back to CONNECTED and returns.\n\n"
            "Nothing dispatches the bios queued meanwhile: the suspend drained BUSY, so no "
            "response interrupt is due, and they stay on the bio queue until another bio arrives "
            "or the back end happens to interrupt. `xbd_connect`, by contrast, runs `xbd_startio` "
            "right after it sets CONNECTED."
        ),
        found_by=FoundBy.DIFFERENTIAL,
        how_found=(
            "The differential test: after a suspend, its drain, a write and a cancelled resume, "
            "the model has sent the write and the reference still has it queued; 9 events."
        ),
        fix=(
            "`Fixes.resume_cancelled_does_not_restart`: after a cancelled suspend `xbd_resume` "
            "takes `xbd_io_lock`, runs `xbd_startio` and releases the lock, as `xbd_connect` does "
            "on a new connection."
        ),
        seed_note=23,
    ),
    Finding(
        name="resume-cancelled-connects-unconnected",
        title="A cancelled suspend leaves a never-connected driver CONNECTED",
        severity=Severity.HANG,
        seed_functions=("xbd_resume", "xbd_suspend", "xbd_connect"),
        summary=(
            "After a cancelled suspend `xbd_resume` sets `XBD_STATE_CONNECTED` whatever the "
            "state was before: a driver suspended before it first connected then skips its "
            "connection (`xbd_connect` takes its resize path) and never publishes the disk."
        ),
        explanation=(
            "`xbd_suspend` remembers the state it found only in a local, to restore it when the "
            "drain times out. A cancelled suspend ends in `xbd_resume`, which cannot know that "
            "state and sets CONNECTED unconditionally. For a driver suspended while still "
            "DISCONNECTED (the back end has not reached Connected yet; nothing was in flight, so "
            "the suspend succeeded at once), the handshake that follows reaches `xbd_connect` "
            "with the state already CONNECTED: it takes the path meant for a resize, finds no "
            "disk and returns. The front end stays in Initialised, the disk never appears, and "
            "the driver believes it is connected with no shadow and no ring of requests.\n\n"
            "The model does not suspend a driver that has not connected, so this was found on "
            "the reference, by the independent review of the `resume-cancelled-does-not-restart` "
            "fix (which would otherwise run `xbd_startio` on such a driver)."
        ),
        found_by=FoundBy.READING,
        how_found=(
            "Found by reading `xbd_resume` during a review of the fixes, then replayed on the "
            "reference: plug, attach, suspend before the back end starts, cancelled resume, "
            "handshake (4 events)."
        ),
        fix=(
            "`Fixes.resume_cancelled_connects_unconnected`: `xbd_suspend` keeps the state it "
            "found in the softc (a field the seed does not have), and a cancelled `xbd_resume` "
            "restores it instead of setting CONNECTED; the restart of "
            "`resume-cancelled-does-not-restart` then runs only for a driver that was connected."
        ),
        shows=("the front end reaches Connected"),
    ),
    Finding(
        name="stranded-bios-on-disk-gone",
        title="Bios queued while disconnected never complete when the back end closes",
        severity=Severity.HANG,
        seed_functions=("xbd_backend_changed", "xbd_startio", "xbd_closing"),
        summary=(
            "When the back end goes to Closing under an open disk while the driver is not "
            "CONNECTED, `xbd_backend_changed` only calls `disk_gone`: the bios on the bio queue "
            "are never sent nor failed."
        ),
        explanation=(
            "After a resume the driver is DISCONNECTED until the new back end connects, and bios "
            "submitted meanwhile wait on the bio queue (`xbd_startio` returns at once unless "
            "CONNECTED). If the back end then goes to Closing (xenbus.h: being closed after an "
            "error or an unplug) while the disk is open, `xbd_backend_changed` takes the "
            "pending-users branch and calls `disk_gone`.\n\n"
            "`disk_gone` withers the GEOM provider so that no new I/O arrives, but the bios the "
            "driver already holds are the driver's to finish. This connection will never reach "
            "CONNECTED, so `xbd_startio` never sends them and nothing fails them: their owners "
            "wait for ever, and the last close (`xbd_close`, then `xbd_closing`) destroys the disk "
            "with the bios still queued."
        ),
        found_by=FoundBy.EXPLORER,
        how_found=(
            "The explorer found the model, which then followed the seed, leaving such bios "
            "unfinished for ever (16 events); with the model restated, the differential test "
            "recognises the seed leaving them queued where the model fails them; 12 events."
        ),
        fix=(
            "`Fixes.stranded_bios_on_disk_gone`: in the Closing-with-users case, and only when "
            "`xbd_state` is not CONNECTED, `xbd_backend_changed` takes `xbd_io_lock` and fails "
            "every bio on the bio queue with `EIO` before `disk_gone`. A CONNECTED driver keeps "
            "its queue, since the back end still answers requests on the ring."
        ),
        seed_note=24,
        model_change=(
            "The model's transition for a back end closing under an open disk had followed the "
            "seed (`disk_gone` only), and the explorer reported the bios queued while disconnected "
            "as never completing. It was restated: when the back end closes under an open disk "
            "while the driver is not connected, the bios on the bio queue fail with `EIO`."
        ),
    ),
    Finding(
        name="ring-page-order-shift",
        title="A large max-ring-page-order makes the ring-size shift undefined",
        severity=Severity.UNDEFINED,
        seed_functions=("xbd_initialize",),
        summary=(
            "`xbd_initialize` evaluates `1 << max_ring_page_order` in `int` before any clamp, "
            "which is undefined behaviour for an order of 31 or more."
        ),
        explanation=(
            "`xbd_initialize` reads `max-ring-page-order` with `%u` into a `uint32_t` and at once "
            "sets `xbd_ring_pages = 1 << max_ring_page_order`. The constant 1 is an `int`: a shift "
            "into the sign bit or past the width (an order of 31 or more; `-1` read by `%u` is "
            "4294967295) is undefined in C. The clamp to `XBD_MAX_RING_PAGES` and the power-of-two "
            "rounding come only afterwards. On x86 the hardware masks the count, so an order of 32 "
            "quietly gives one page; a compiler may assume the shift is in range and do anything "
            "else.\n\n"
            "The value is the back end's (written before `InitWait`, default 0), so the front end "
            "has to treat it as untrusted input."
        ),
        found_by=FoundBy.PROOF,
        how_found=(
            "The z3 proof of `ring_page_order_shift_defined` over every 32-bit value was refuted "
            "with `max-ring-page-order = 31`; a reference scenario with that value reaches the "
            "undefined shift."
        ),
        fix=(
            "`Fixes.ring_page_order_shift`: `xbd_initialize` clamps `max-ring-page-order` to "
            "`XBD_MAX_RING_PAGE_ORDER` (5, the order of `XBD_MAX_RING_PAGES` = 32; a new constant, "
            "block.h defines only the page count) before the shift, so a larger order negotiates "
            "32 pages, as the later clamp intends."
        ),
        seed_note=1,
        proof="ring_page_order_shift_defined",
        shows=("UndefinedBehaviour in 1 << max_ring_page_order"),
    ),
    Finding(
        name="sector-size-division-by-zero",
        title="A sector size above 1 MiB divides by zero in the capacity message",
        severity=Severity.UNDEFINED,
        seed_functions=("xbd_connect",),
        summary=(
            "`xbd_connect` prints the capacity as `sectors / (1048576 / sector_size)`, which "
            "divides by zero for any `sector-size` above 1 MiB, since only 0 is rejected."
        ),
        explanation=(
            "On the first connection (no disk yet) `xbd_connect` prints the size in MiB as "
            "`sectors / (1048576 / sector_size)`. The inner quotient is 0 for every `sector_size` "
            "above 1048576, so the outer division divides by zero: undefined in C, a divide trap "
            "and so a kernel panic on amd64. The only check on `sector-size` before it is that it "
            "is not 0.\n\n"
            "blkif.h requires `sector-size` to be a power of two of at least 512 but sets no upper "
            "bound; the value is the back end's."
        ),
        found_by=FoundBy.PROOF,
        how_found=(
            "The z3 proof of `capacity_message_divides_safely` over every 64-bit sector size was "
            "refuted with `sector-size = 1048577`; a reference scenario connects such a disk."
        ),
        fix=(
            "`Fixes.sector_size_division_by_zero`: `xbd_connect` rejects a `sector-size` above 1 "
            "MiB with `xenbus_dev_fatal(EINVAL)` before the message divides, and does not connect."
        ),
        seed_note=2,
        proof="capacity_message_divides_safely",
        shows=("(1048576 / sector_size): division by zero"),
    ),
    Finding(
        name="sector-size-unchecked",
        title="Sector sizes blkif.h forbids are accepted",
        severity=Severity.WRONG,
        seed_functions=("xbd_connect", "xbd_instance_create"),
        summary=(
            "`xbd_connect` rejects only a `sector-size` of 0, so a value that is not a power of "
            "two, or is below 512, becomes the disk's `d_sectorsize`."
        ),
        explanation=(
            "blkif.h defines `sector-size` as the logical block size: a power of two, at least "
            "512. `xbd_connect` checks only that it is not 0, and `xbd_instance_create` copies it "
            "into `d_sectorsize`. GEOM then sizes and aligns I/O by that value, while every "
            "request the driver can build addresses data in 512-byte sectors (`first_sect` and "
            "`last_sect` per segment, `XBD_SECTOR_SHFT`) and `xbd_mksegarray` asserts multiples of "
            "512: a sector size of 1 or 768 gives a disk geometry that is wrong and I/O that the "
            "request format cannot express."
        ),
        found_by=FoundBy.PROOF,
        how_found=(
            "The z3 proof of `sector_size_checked` was refuted with `sector-size = 1`; a reference "
            "scenario shows the disk created with that sector size."
        ),
        fix=(
            "`Fixes.sector_size_unchecked`: where it rejects 0, `xbd_connect` also rejects a "
            "`sector-size` that is not a power of two of at least 512 (`xenbus_dev_fatal`), before "
            "anything is allocated for the connection."
        ),
        proof="sector_size_checked",
        shows=("sector-size = 1 (blkif.h: a power of two, at least 512) is refused"),
    ),
    Finding(
        name="media-size-overflow",
        title="A huge disk's byte size overflows d_mediasize",
        severity=Severity.WRONG,
        seed_functions=("xbd_instance_create", "xbd_connect"),
        summary=(
            "`d_mediasize` is computed as `sectors * sector_size` in unsigned 64-bit arithmetic "
            "and stored in a signed `off_t`, so a large enough disk wraps or turns negative."
        ),
        explanation=(
            "`xbd_instance_create` sets `d_mediasize = sectors * sector_size`, and the resize path "
            "of `xbd_connect` sets `d_sectorsize * sectors`. Both factors come from the back end; "
            "the product is taken modulo 2^64 and then stored in `off_t`, a signed 64-bit type. A "
            "product of 2^63 or more comes out negative, a larger one wraps to an unrelated size, "
            "and GEOM is handed a disk whose size is not the back end's."
        ),
        found_by=FoundBy.PROOF,
        how_found=(
            "The z3 proof of `media_size_fits` was refuted with `sector-size = 1` and `sectors = "
            "2^63` (a negative `off_t`); a reference scenario connects such a disk."
        ),
        fix=(
            "`Fixes.media_size_overflow`: before `d_mediasize` is set, the multiplication is "
            "checked for overflow and for the sign bit of `off_t`; a disk whose size in bytes does "
            "not fit is rejected (`xenbus_dev_fatal` on a connection, the new size refused on a "
            "resize)."
        ),
        proof="media_size_fits",
        shows=("d_mediasize is its true size in bytes"),
    ),
    Finding(
        name="indirect-pages-before-clamp",
        title=("A back end offering 1 to 11 indirect segments costs every command a page"),
        severity=Severity.COSMETIC,
        seed_functions=("xbd_connect",),
        summary=(
            "`xbd_connect` derives the indirection page count before raising the segment limit "
            "to 11, so a limit of 1 to 11 (which only ever needs direct requests) gives every "
            "command a page and a grant no request uses."
        ),
        explanation=(
            "`xbd_connect` clamps `feature-max-indirect-segments` from above "
            "(`XBD_MAX_INDIRECT_SEGMENTS`, `maxphys`), sets `xbd_max_request_indirectpages = "
            "XBD_INDIRECT_SEGS_TO_PAGES(segments)`, and only then raises a limit below "
            "`BLKIF_MAX_SEGMENTS_PER_REQUEST` to 11. For an advertised 1 to 11 the page count "
            "is 1, while the final limit of 11 always fits a direct request (`xbd_queue_cb` "
            "builds an indirect one only above 11 segments).\n\n"
            "Each command then gets a `contigmalloc`'d page and a read-only grant of it that no "
            "request ever names: one page and one grant reference per ring slot, for the life "
            "of the connection."
        ),
        found_by=FoundBy.PROOF,
        how_found=(
            "The z3 proof of `no_unused_indirect_pages` was refuted with "
            "`feature-max-indirect-segments = 1`; a reference scenario shows an indirection page "
            "granted for every command."
        ),
        fix=(
            "`Fixes.indirect_pages_before_clamp`: the indirection page count is computed from the "
            "final, clamped segment limit and is 0 when that limit is "
            "`BLKIF_MAX_SEGMENTS_PER_REQUEST` or less (rounding 11 segments up would still give "
            "one page)."
        ),
        seed_note=14,
        proof="no_unused_indirect_pages",
        shows=("no command holds an indirection page"),
    ),
    Finding(
        name="vdevice-name-collision",
        title="Two virtual devices can attach under the same xbd name",
        severity=Severity.WRONG,
        seed_functions=("xbd_vdevice_to_unit", "xbd_attach", "xbd_instance_create"),
        summary=(
            "The fallback of `xbd_vdevice_to_unit` for unknown majors reuses the xvd units, and "
            "`xbd_attach` ignores `device_set_unit`'s `EEXIST`, so a second disk is created under "
            "a name already in use."
        ),
        explanation=(
            "`xbd_vdevice_to_unit` maps the numbering schemes of xen-vbd-interface.7 (xvd, "
            "extended, hd and sd styles) and, for any other number, falls back to unit `minor >> "
            "4` named `xbd`: exactly what an xvd device (major 202) with the same minor gets. "
            "vdevice 0 and 0xca00 (xvda) both become `xbd0`.\n\n"
            "`xbd_attach` calls `device_set_unit` for `xbd` names and discards its result, which "
            "is `EEXIST` when the unit is taken. `xbd_instance_create` computes the unit again "
            "from the vdevice and creates the GEOM disk with that `d_unit` regardless, so two "
            "disks answer to the same name."
        ),
        found_by=FoundBy.PROOF,
        how_found=(
            "The z3 proof of `any_device_named_apart_from_documented_ones` was refuted with "
            "vdevice 0 against 0xca00 (xvda); a reference scenario attaches both."
        ),
        fix=(
            "`Fixes.vdevice_name_collision`: `xbd_attach` checks `device_set_unit`'s result and, "
            "when the unit is taken, reports it with `xenbus_dev_fatal` and fails the attach "
            "instead of attaching a second disk under the same name.\n\n"
            "It is a partial fix: whichever disk attaches second is refused (xvda itself, if "
            "vdevice 0 came first), and `device_set_unit` is only called for `xbd` names, so "
            "collisions between other schemes (0x380, hd minor 128, and 0x1600 both name "
            "`ada2`) still pass. A complete fix gives the fallback names a range of their own."
        ),
        seed_note=17,
        proof="any_device_named_apart_from_documented_ones",
        shows=("no second disk is published under the name xbd0"),
    ),
    Finding(
        name="blank-xenstore-value-uninitialised",
        title="A blank xenstore value leaves the variable it should set uninitialised",
        severity=Severity.UNDEFINED,
        seed_functions=("xbd_connect", "xbd_attach", "xbd_close"),
        summary=(
            "`xs_scanf` and `xs_gather` treat `sscanf`'s `EOF` on a blank value as success "
            "without assigning, so `xbd_connect`, `xbd_attach` and (through "
            "`xenbus_read_driver_state`) `xbd_close` go on to read unassigned variables."
        ),
        explanation=(
            "FreeBSD's `xs_scanf` and `xs_gather` each read the node and run `sscanf` on it, "
            "and report an error only when the result is 0 (`ERANGE` and `EINVAL` "
            "respectively); any other result counts as success. On an empty string `sscanf` "
            "returns `EOF` (-1) without converting anything, so the caller sees success and its "
            "output is untouched.\n\n"
            "`xbd_connect`'s `sectors`, `binfo`, `sector_size`, `phys_sector_size`, "
            "`feature_barrier` and `feature_flush` have no initial value, so a blank key "
            "written by the back end makes them indeterminate, and they are read at once (the "
            "zero check, the `XBDF_*` tests, `d_mediasize`). `xbd_attach` reads its `vdevice` "
            "the same way from `virtual-device`. `xbd_close` meets the same hole through "
            "`xenbus_get_otherend_state`, whose `result` stays unassigned for a blank back-end "
            "`state`. (`xbd_initialize` initialises what it reads and is not affected.)"
        ),
        found_by=FoundBy.REFERENCE,
        how_found=(
            "Running the reference with hostile xenstore values: a blank `sectors` (and each of "
            "the other keys) leads to a read of an unassigned local, which the reference reports "
            "as undefined behaviour."
        ),
        fix=(
            "`Fixes.blank_xenstore_value_uninitialised`: `xs_scanf` and `xs_gather` (both, "
            "since `xs_gather` has its own `sscanf` test) treat a result of `EOF` as a failed "
            "conversion and return their error, as for a value that matches nothing, so each "
            "caller takes its existing error path: a fatal error for the required keys, the "
            "default for the optional ones, `Closed` for a blank `state` read by "
            "`xenbus_read_driver_state`."
        ),
        seed_note=3,
        shows=("because sscanf returned EOF"),
    ),
    Finding(
        name="response-id-trusted",
        title="A response id from the back end indexes the shadow array unchecked",
        severity=Severity.UNDEFINED,
        seed_functions=("xbd_int",),
        summary=(
            "`xbd_int` indexes `xbd_shadow` with `bret->id` without a bound check and removes that "
            "command from BUSY without checking it is there: a faulty back end can make the guest "
            "read out of bounds or panic."
        ),
        explanation=(
            "blkif.h has a response's `id` echo the `id` of the request it answers, and the front "
            "end put `cm_id` there. `xbd_int` takes `&sc->xbd_shadow[bret->id]` for whatever "
            "64-bit value the back end wrote: beyond `xbd_max_requests` this is an out-of-bounds "
            "access, and the code goes on to treat that memory as a command (grants to end, a bio "
            "to complete). An id inside the array naming a command not on BUSY (a FREE one, or one "
            "answered twice) reaches `xbd_remove_cm`, which panics on the queue mismatch.\n\n"
            "The back end runs in another domain; a driver domain that misbehaves should not be "
            "able to crash or corrupt the guest through the ring."
        ),
        found_by=FoundBy.REFERENCE,
        how_found=(
            "Reference scenarios with a hostile back end: a response with id 10000 reads past a "
            "32-command shadow array, and a response for a FREE command panics in `xbd_remove_cm`."
        ),
        fix=(
            "`Fixes.response_id_trusted`: `xbd_int` checks each response's id before using it "
            "(below `xbd_max_requests`, naming a command on BUSY); a bad one is consumed "
            "without touching any command, and reported with `xenbus_dev_fatal` once `xbd_int` "
            "has dropped `xbd_io_lock` (the report writes xenstore and may sleep, which a mutex "
            "holder must not)."
        ),
        seed_note=18,
        shows=("&sc->xbd_shadow[bret->id] with id 10000 outside"),
    ),
    Finding(
        name="io-lock-recursion",
        title="The grant free callback re-takes xbd_io_lock from inside xbd_int",
        severity=Severity.PANIC,
        seed_functions=("xbd_restart_queue_callback", "xbd_int", "xbd_bio_command"),
        summary=(
            "The grant table runs `xbd_restart_queue_callback` synchronously when references are "
            "returned, and `xbd_int` returns them holding `xbd_io_lock`: the callback locks it "
            "again, which an `INVARIANTS` kernel panics on."
        ),
        explanation=(
            "When `gnttab_alloc_grant_references` fails, `xbd_bio_command` registers "
            "`xbd_restart_queue_callback` and freezes on `XBDF_GNT_SHORTAGE`. The grant table "
            "runs registered callbacks synchronously, with its own lock held "
            "(`check_free_callbacks`), from whichever call returns enough references. "
            "`xbd_int` returns each answered request's references with "
            "`gnttab_end_foreign_access_references` inside its response loop, holding "
            "`xbd_io_lock`: when they cross the callback's threshold, the callback calls "
            "`mtx_lock` on the mutex its thread already owns. `xbd_io_lock` is a plain "
            "`MTX_DEF` mutex, not recursive, so an `INVARIANTS` kernel panics. (The grant-table "
            "calls the callback goes on to make through `xbd_startio` are legal: the grant "
            "table's lock is `MTX_DEF | MTX_RECURSE`.)\n\n"
            "`xbd_queue_cb` also returns references under `xbd_io_lock` (the unclaimed rest of "
            "its command's reservation), but never to the driver's own callback: the callback "
            "is registered only while `XBDF_GNT_SHORTAGE` freezes the queue, and `xbd_queue_cb` "
            "runs either inside an unfrozen `xbd_startio` or, for a deferred mapping, while "
            "that mapping's own freeze (`XBDCF_ASYNC_MAPPING`, or the single-step freeze) "
            "holds the queue until its response, so no shortage can be registered in between. "
            "Runs of the simulated platform under grant pressure agree: every recursion is "
            "inside `xbd_int`. (Under *Noticed*: references freed by another CPU between the "
            "failed allocation and the registration make `gnttab_request_free_callback` run "
            "the callback at once, inside `xbd_bio_command`; and the callback of another grant "
            "user, another disk among them, can run inside this one's `xbd_int` or "
            "`xbd_queue_cb` and take its own lock inside this one's: no recursion, a lock "
            "order.)\n\n"
            "A production kernel lets the recursion through and runs `xbd_startio` nested "
            "inside `xbd_int`'s response loop, before the command being completed is thawed "
            "and its bio finished. The freezes still stop the nested loop where they must (a "
            "single-stepped command being completed still holds its freeze, `XBDF_WAIT_IDLE` "
            "still holds a parked ordered write) and `RING_FULL` still counts the responses "
            "not yet consumed (`rsp_cons` is stored only after the loop), so no ordering is "
            "known to break; the defect is the re-entrance itself, which the lock was meant "
            "to exclude."
        ),
        found_by=FoundBy.REFERENCE,
        how_found=(
            "Running the reference under grant shortage: references returned by a response while "
            "the callback is registered run it inside `xbd_int`, and the reference's lock reports "
            "the recursion as an `INVARIANTS` kernel would."
        ),
        fix=(
            "`Fixes.io_lock_recursion`: when the current thread already owns `xbd_io_lock`, "
            "`xbd_restart_queue_callback` only thaws `XBDF_GNT_SHORTAGE` and returns, leaving "
            "the restart to the driver code it interrupted (`xbd_int` runs `xbd_startio` at its "
            "end; with `resume-loses-ready-write` fixed, `xbd_free` returns references under the "
            "lock too, and the reconnection's `xbd_startio` follows). The callback still takes "
            "`xbd_io_lock` when called from another grant user, inside the grant table's own "
            "lock, which is a lock-order reversal with `xbd_int` (listed under *Noticed*): a "
            "complete fix defers the restart to a taskqueue."
        ),
        seed_note=12,
        shows=("recursed on non-recursive mutex"),
    ),
    Finding(
        name="ring-grant-references-leak",
        title="Every resume leaks the ring's grant references",
        severity=Severity.HANG,
        seed_functions=("xbd_free_ring", "xbd_free", "xbd_resume", "xbd_alloc_ring"),
        summary=(
            "`xbd_free_ring` ends the back end's access to the ring pages but never returns their "
            "grant references to the free list, so each resume loses up to 32 of them."
        ),
        explanation=(
            "`xbd_alloc_ring` grants each ring page with `xenbus_grant_ring`, which takes a "
            "reference from the grant table's free list. `xbd_free_ring` revokes the grants with "
            "`gnttab_end_foreign_access_ref`, which only ends the access: giving the reference "
            "back is a separate step (`gnttab_free_grant_reference`, or "
            "`gnttab_end_foreign_access`, which does both). It then overwrites the slot with "
            "`GRANT_REF_INVALID`, and the reference is lost for good.\n\n"
            "`xbd_resume` runs `xbd_free`, and so `xbd_free_ring`, on every migration or restore: "
            "each one leaks `xbd_ring_pages` references per disk. The grant table is shared by "
            "every Xen driver of the guest; when it runs dry, this driver stalls on "
            "`XBDF_GNT_SHORTAGE` and `xbd_alloc_ring` fails on the next resume."
        ),
        found_by=FoundBy.READING,
        how_found=(
            "Read in the code, then replayed on the reference: the grant table's free count drops "
            "by the ring's page count at each resume and never recovers."
        ),
        fix=(
            "`Fixes.ring_grant_references_leak`: after ending the back end's access, "
            "`xbd_free_ring` returns each ring reference to the free list before marking the slot "
            "`GRANT_REF_INVALID`."
        ),
        seed_note=13,
        shows=("no more grant references than before"),
    ),
    Finding(
        name="indirect-pages-partial-allocation",
        title="An indirection page allocation failing part-way leaves commands without pages",
        severity=Severity.UNDEFINED,
        seed_functions=("xbd_connect", "xbd_queue_cb", "xbd_mksegarray", "xbd_free"),
        summary=(
            "When `contigmalloc` fails for one command, `xbd_connect` zeroes the softc-wide "
            "indirection page count but keeps the segment limit above 11, so a large I/O on a "
            "later command writes segment descriptors through `NULL`."
        ),
        explanation=(
            "`xbd_connect` allocates each command's indirection pages in its shadow loop; when "
            "`contigmalloc` fails it sets `sc->xbd_max_request_indirectpages` to 0 (for every "
            "command, including those already given pages) and carries on, while "
            "`xbd_max_request_segments` keeps the negotiated value above "
            "`BLKIF_MAX_SEGMENTS_PER_REQUEST`. A bio mapped into more than 11 segments on a "
            "command without pages makes `xbd_queue_cb` hand `cm_indirectionpages` = `NULL` to "
            "`xbd_mksegarray`, which writes through it. On a command that has pages, "
            "`xbd_queue_cb` now copies 0 indirect grant references into the request, leaving the "
            "back end to read whatever the ring slot held.\n\n"
            "`xbd_free` uses the same softc count for the earlier commands: it ends 0 of their "
            "indirect grants and frees 0 bytes, so their pages stay granted to the back end and "
            "are never released."
        ),
        found_by=FoundBy.REFERENCE,
        how_found=(
            "Running the reference with `contigmalloc` failing part-way through the shadow loop, "
            "then an I/O of more than 11 segments on a command left without pages: the reference "
            "reports the write through `NULL` as undefined behaviour."
        ),
        fix=(
            "`Fixes.indirect_pages_partial_allocation`: a failure part-way makes every command "
            "fall back to direct requests: the pages and grants already given to earlier "
            "commands are released, `xbd_max_request_indirectpages` is 0, "
            "`xbd_max_request_segments` goes back to `BLKIF_MAX_SEGMENTS_PER_REQUEST`, and the "
            "DMA tag is re-created with those limits. A disk that survived a resume keeps its "
            "larger `d_maxsize` (GEOM cannot shrink it under its consumers; see "
            "*max-size-not-renegotiated-on-resume* under *Noticed*), so a bio above the new "
            "limit now fails to map and completes with `EIO` instead of being built through a "
            "missing page."
        ),
        seed_note=15,
        shows=("writes through NULL cm->cm_indirectionpages"),
    ),
    Finding(
        name="no-commands-after-shadow-failure",
        title="A device with no command connects and never does I/O",
        severity=Severity.HANG,
        seed_functions=("xbd_connect", "xbd_bio_command"),
        summary=(
            "If the shadow loop of `xbd_connect` cannot set up even one command, the driver still "
            "goes Connected, and the first bio freezes the queue on `XBDF_CM_SHORTAGE` for good."
        ),
        explanation=(
            "`xbd_connect`'s shadow loop stops at the first command whose `cm_sg_refs` allocation, "
            "`bus_dmamap_create` or indirection page grant fails, and keeps the commands set up "
            "before it; nothing counts them. When the very first one fails, FREE stays empty, yet "
            "`xbd_connect` creates the disk, switches to Connected and kicks the queue.\n\n"
            "The first bio finds no free command: `xbd_bio_command` freezes on `XBDF_CM_SHORTAGE`, "
            "which only `xbd_free_command` thaws, and no command will ever be freed. Every bio "
            "waits for ever on a device that looks healthy. (A shortfall that leaves at least one "
            "command only costs concurrency: see the rejected `fewer-commands-than-ring-slots`.)"
        ),
        found_by=FoundBy.REFERENCE,
        how_found=(
            "Running the reference with the first command's allocation failing: the disk connects "
            "and the first bio stays queued behind a frozen queue."
        ),
        fix=(
            "`Fixes.no_commands_after_shadow_failure`: `xbd_connect` fails with "
            "`xenbus_dev_fatal(ENOMEM)` when not one command could be set up, instead of "
            "connecting a device that cannot do I/O."
        ),
        seed_note=16,
        shows=("a read submitted to the connected disk completes"),
    ),
    Finding(
        name="close-clears-open-flag",
        title="A close clears XBDF_OPEN while xbd_users counts another open (latent: GEOM "
        "opens the disk once)",
        severity=Severity.COSMETIC,
        seed_functions=("xbd_close", "xbd_open"),
        summary=(
            "`xbd_close` clears `XBDF_OPEN` on every call, although `xbd_users` may still count "
            "other opens; through GEOM, which calls `d_open` once and `d_close` once, the two "
            "never disagree, so only a second caller of `d_open` would see it."
        ),
        explanation=(
            "`xbd_open` sets `XBDF_OPEN` and increments `xbd_users`; `xbd_close` clears "
            "`XBDF_OPEN` first and only then decrements `xbd_users`, acting on the last close. "
            "The code reads as if `d_open` ran once per user, and with two calls of `d_open` "
            "and one of `d_close` the flag says closed while `xbd_users` is 1.\n\n"
            "GEOM does not call it so. `g_disk_access` (`sys/geom/geom_disk.c`) counts the "
            "provider's accesses itself and calls `d_open` only when they go from none to "
            "some, `d_close` only when they go back to none; no other FreeBSD code calls a "
            "disk's `d_open` or `d_close`. Through GEOM `xbd_users` is therefore 0 or 1, and "
            "each `xbd_close` is the last: the flag and the count always agree, however many "
            "users hold the disk. The defect is latent: it would show only to a second caller "
            "of the disk's methods. No code in the seed reads `XBDF_OPEN` either (the Closing "
            "decisions use `xbd_users`). The replay shows both: through GEOM two opens and one "
            "close leave the device open, then two direct `d_open` calls and one `d_close` "
            "leave `xbd_users` at 1 and `XBDF_OPEN` clear."
        ),
        found_by=FoundBy.READING,
        how_found=(
            "Read in the code, then replayed on the reference, calling `xbd_open` twice directly; "
            "checked against GEOM's `g_disk_access` (`reference/geom.py`), which opens the disk "
            "once for all its users."
        ),
        fix=(
            "`Fixes.close_clears_open_flag`: `xbd_close` clears `XBDF_OPEN` only when `xbd_users` "
            "drops to 0."
        ),
        seed_note=6,
        shows=("XBDF_OPEN still set while a user has the disk open"),
    ),
    Finding(
        name="barrier-data-granted-writable",
        title="The data pages of a barrier write are granted writable",
        severity=Severity.WRONG,
        seed_functions=("xbd_queue_cb", "xbd_mksegarray"),
        summary=(
            "`xbd_queue_cb` grants data pages read-only only for `BLKIF_OP_WRITE`, so the data of "
            "a `BLKIF_OP_WRITE_BARRIER` is granted with write access."
        ),
        explanation=(
            "`xbd_queue_cb` passes `cm->cm_operation == BLKIF_OP_WRITE` to `xbd_mksegarray` as the "
            "read-only flag of every data grant. An ordered write on a back end with "
            "`feature-barrier` goes out as `BLKIF_OP_WRITE_BARRIER`, so its pages, the data the "
            "guest is writing out, are granted writable. A back end only needs to read a write's "
            "data; a faulty or hostile one can overwrite the guest's buffers (page cache, file "
            "system metadata) while the write is in flight."
        ),
        found_by=FoundBy.READING,
        how_found=(
            "Read in the code, then replayed on the reference: an ordered write on a back end with "
            "barriers shows its data grants without the read-only flag."
        ),
        fix=(
            "`Fixes.barrier_data_granted_writable`: data pages are granted read-only for "
            "`BLKIF_OP_WRITE_BARRIER` as for `BLKIF_OP_WRITE`."
        ),
        seed_note=19,
        shows=("data pages are granted read-only"),
    ),
    Finding(
        name="ordered-write-indirect-barrier",
        title="A large ordered write goes as an indirect WRITE_BARRIER, which blkif.h does "
        "not allow and blkback refuses",
        severity=Severity.LOST_IO,
        seed_functions=("xbd_bio_command", "xbd_queue_cb"),
        summary=(
            "An ordered write needing more than 11 segments is sent as `BLKIF_OP_INDIRECT` "
            "with `indirect_op` = `BLKIF_OP_WRITE_BARRIER`; blkif.h's `indirect_op` is "
            "`BLKIF_OP_{READ/WRITE}`, and Linux's blkback answers `BLKIF_RSP_ERROR`: the "
            "write fails with EIO."
        ),
        explanation=(
            "`xbd_bio_command` turns a `BIO_ORDERED` write into `BLKIF_OP_WRITE_BARRIER` "
            "whenever the back end offers `feature-barrier`, before the data is mapped. "
            "`xbd_queue_cb` then sends any command with more than "
            "`BLKIF_MAX_SEGMENTS_PER_REQUEST` (11) segments as a `blkif_request_indirect`, "
            "copying the command's operation into `indirect_op`. blkif.h's "
            "`struct blkif_request_indirect` declares `indirect_op` as "
            "`BLKIF_OP_{READ/WRITE}`, and Linux 6.1's blkback (`dispatch_rw_block_io`: "
            '"Invalid indirect operation") answers anything else with `BLKIF_RSP_ERROR` '
            "without performing it. An ordered write larger than 44 KiB (the usual case for "
            "a journal commit with indirect descriptors on) fails with EIO on a Linux back "
            "end, and a permissive back end performs a request the protocol does not define."
        ),
        found_by=FoundBy.PROTOCOL,
        how_found=(
            "The protocol-level harness (`xbdspec difftest --impl reference`), its FUA writes "
            "handed to FreeBSD as `BIO_ORDERED` on back ends offering barrier and indirect "
            "segments: the content rule `IndirectOpIsReadOrWrite` refused the request; the "
            "reference replay runs it against the strict (`LINUX_BLKBACK`) back end."
        ),
        fix=(
            "`Fixes.ordered_write_indirect_barrier`: an ordered write whose data spans more "
            "pages than a direct request carries is single-stepped (the queue frozen until "
            "the ring is idle, as without `feature-barrier`) and sent as an indirect "
            "`BLKIF_OP_WRITE`, keeping its ordering."
        ),
        seed_note=0,
        shows=("indirect_op is BLKIF_OP_READ or BLKIF_OP_WRITE"),
        protocol_rule="breaks IndirectOpIsReadOrWrite (An indirect request's indirect_op is "
        "READ or WRITE.)",
        protocol_trigger=(("feature_barrier", True),),
    ),
    Finding(
        name="barrier-write-not-synced",
        title="A barrier write's data is not synced for the device before it is sent",
        severity=Severity.WRONG,
        seed_functions=("xbd_queue_cb",),
        summary=(
            "`xbd_queue_cb` runs `bus_dmamap_sync(PREWRITE)` only for `BLKIF_OP_WRITE`: a "
            "`WRITE_BARRIER`'s data goes to the back end unsynced (stale through a bounce "
            "buffer), although `xbd_int` syncs it `POSTWRITE` afterwards."
        ),
        explanation=(
            "Before publishing a request, `xbd_queue_cb` picks the `bus_dmamap_sync` operation "
            "from the command's operation: `PREREAD` for a read, `PREWRITE` for "
            "`BLKIF_OP_WRITE`, and nothing for anything else. An ordered write to a back end "
            "offering `feature-barrier` is sent as `BLKIF_OP_WRITE_BARRIER`, which carries data "
            'the back end reads exactly as a write does, so it falls into the "nothing" case. '
            "`xbd_int` treats the two alike on completion (`POSTWRITE` for both), which shows "
            "the asymmetry is an oversight.\n\n"
            "On a platform whose bus_dma bounces (an address the device cannot reach, or "
            "an IOMMU-less guest with a restrictive tag), the bounce page is never filled and "
            "the back end writes whatever the page held before: the barrier write stores wrong "
            "data while reporting success."
        ),
        found_by=FoundBy.READING,
        how_found=(
            "Read in the seed while writing the catalogue; the reference's bus_dma records the "
            "last sync operation per map, and the scenario checks it after a barrier write."
        ),
        fix=(
            "`Fixes.barrier_write_not_synced`: `xbd_queue_cb` syncs `BUS_DMASYNC_PREWRITE` for "
            "`BLKIF_OP_WRITE_BARRIER` as for `BLKIF_OP_WRITE`."
        ),
        seed_note=19,
        shows=("BUS_DMASYNC_PREWRITE"),
    ),
    Finding(
        name="request-sectors-in-device-units",
        title="Requests address a 4 KiB-sector disk in 4 KiB units",
        severity=Severity.WRONG,
        seed_functions=("xbd_bio_command", "xbd_dump"),
        summary=(
            "A request's `sector_number` is `bio_pblkno` (the dump's: `offset / "
            "d_sectorsize`), counted in the disk's sectors; blkif.h counts it in 512-byte "
            "units, so on a disk whose `sector-size` is not 512 every I/O lands at the wrong "
            "place and writes overwrite each other."
        ),
        explanation=(
            "GEOM fills `bio_pblkno` in units of `d_sectorsize`, which `xbd_instance_create` "
            "sets to the back end's `sector-size`. `xbd_bio_command` copies it unchanged into "
            "`cm_sector_number`, and `xbd_dump` divides the byte offset by `d_sectorsize`. The "
            'current blkif.h ("reconcile protocol specification with in-use '
            'implementations") fixes every sector quantity of the protocol in 512-byte units '
            "whatever `sector-size` says: `sectors`, the request's `sector_number` and the "
            "segments' first and last sector. The segments are right (the driver computes them "
            "from byte addresses); the start sector is not.\n\n"
            "On a back end advertising `sector-size` 4096, block 1 (bytes 4096-8191) is sent as "
            "sector 1, which the back end reads as byte 512: the write lands across blocks 0 and "
            "1, and a later read of block 0 returns data the guest never wrote there. Together "
            "with `media-size-in-sector-units` this is the seed's 4 KiB-sector story: the disk "
            "reports the wrong size and addresses the wrong bytes."
        ),
        found_by=FoundBy.READING,
        how_found=(
            "Read in the seed while writing the catalogue, next to `media-size-in-sector-units`; "
            "the scenario writes block 1 of a 4096-byte-sector disk and reads the reference back "
            "end's RAM disk."
        ),
        fix=(
            "`Fixes.request_sectors_in_device_units`: `cm_sector_number` is `bio_pblkno` times "
            "`d_sectorsize / 512`, and the dump path divides the byte offset by 512."
        ),
        seed_note=20,
        shows=("block 1 (bytes 4096-8191) holds the data"),
    ),
    Finding(
        name="media-size-in-sector-units",
        title="A 4 KiB-sector disk is reported eight times too large",
        severity=Severity.WRONG,
        seed_functions=("xbd_instance_create", "xbd_connect"),
        summary=(
            "The seed sets `d_mediasize` to `sectors * sector-size`, but current blkif.h gives "
            "`sectors` in 512-byte units whatever `sector-size` says."
        ),
        explanation=(
            "The current blkif.h (the clarification that reconciled the specification with the "
            "implementations in use) puts every sector quantity of the protocol in 512-byte units: "
            "the `sectors` key, a request's `sector_number`, a segment's first and last sector; "
            "`sector-size` is only the logical block size. `xbd_instance_create` multiplies "
            "`sectors` by `sector_size`, and the resize path of `xbd_connect` by `d_sectorsize`: "
            "with a `sector-size` of 4096 the disk appears 8 times its real size, and I/O past the "
            "real end fails at the back end. Under the older text, which gave `sectors` in units "
            "of `sector-size`, the seed was right; a 512-byte-sector disk is unaffected either "
            "way.\n\n"
            "The requests have the matching question: `cm_sector_number` comes from `bio_pblkno` "
            "(and, in `xbd_dump`, `offset / d_sectorsize`), which is in `d_sectorsize` units; this "
            "finding and its fix cover the reported size only."
        ),
        found_by=FoundBy.READING,
        how_found=(
            "Read in the code against the current blkif.h, then replayed on the reference: a back "
            "end publishing 4 KiB sectors gets a disk 8 times its size."
        ),
        fix=(
            "`Fixes.media_size_in_sector_units`: `d_mediasize` is `sectors * 512`, in "
            "`xbd_instance_create` and on a resize in `xbd_connect`."
        ),
        seed_note=20,
        shows=("d_mediasize is sectors * 512"),
    ),
    Finding(
        name="dump-ebusy-strands-ready",
        title="A dump that gives up part-way leaves its chunks to be written later",
        severity=Severity.WRONG,
        seed_functions=("xbd_dump", "xbd_startio", "xbd_dump_complete"),
        summary=(
            "When `xbd_dump` returns `EBUSY` part-way, the chunks it already put on READY stay "
            "there: if the system goes on, the next `xbd_startio` writes them from the "
            "dumper's buffer, since reused, and their commands end on COMPLETE, off the free "
            "list until another dump."
        ),
        explanation=(
            "`xbd_dump` cuts its write into chunks of at most `xbd_max_request_size`, taking a "
            "free command and `xbd_max_request_segments` grant references for each and putting "
            "it on READY with `cm_data` pointing into the dumper's buffer and `cm_complete = "
            "xbd_dump_complete`; only after the last chunk does it run `xbd_startio`. When the "
            "commands or the grant references run out part-way, it unlocks and returns "
            "`EBUSY` with the chunks queued so far still on READY, holding their references.\n\n"
            "A dump write spans more than one chunk when the dumper's `maxiosize`, which "
            "`g_disk_kerneldump` took from `d_maxsize` when the dump device was configured, "
            "exceeds the current `xbd_max_request_size`: after a resume onto a back end with "
            "fewer indirect segments, since `d_maxsize` is never lowered "
            "(*max-size-not-renegotiated-on-resume* under *Noticed*). A dump at panic ends the "
            "system anyway, but one the system survives (ddb's `dump`, then `continue`) leaves "
            "the chunks behind. The next `xbd_startio` (the next bio or interrupt) takes them "
            "from the head of READY and maps `cm_data` again: the dumper has moved on, so what "
            "reaches the dump area (usually the swap partition, in use again) is whatever that "
            "memory holds now. Their responses run `xbd_dump_complete`, which parks each "
            "command on COMPLETE; only another `xbd_dump` collects them, so until then the "
            "device runs with that many fewer commands."
        ),
        found_by=FoundBy.READING,
        how_found=(
            "Listed at first as rejected (a dump runs on a stopped system); a review of that "
            "rejection followed the stranded chunks on a system that goes on, and a reference "
            "scenario replays it: a resume onto a back end without indirect segments, a grant "
            "shortage, a 64 KiB dump write, then one read. Once the model had the dump path "
            "(the `dump` event, `model/dump.py`), the lock step met it at once: a two-chunk "
            "dump with grant references for one leaves the first chunk on READY where the "
            "model takes it back (`DumpLeavesNothing`); that program is the replay."
        ),
        fix=(
            "`Fixes.dump_ebusy_strands_ready`: before `xbd_dump` returns `EBUSY` it takes the "
            "chunks this call put on READY off it and returns their commands to FREE (under "
            "`xbd_io_lock`), then gives back their reserved grant references once the lock is "
            "dropped (a registered grant callback would take the lock again), so nothing is "
            "sent later from the dumper's buffer and no command is stranded on COMPLETE."
        ),
        seed_note=21,
        shows=("are not written after xbd_dump returned EBUSY"),
    ),
    Finding(
        name="suspend-rollback-frees-ring",
        title="A suspend rolled back by the bus frees a connected ring and never reconnects",
        severity=Severity.HANG,
        seed_functions=("xbd_resume", "xbd_suspend", "xbd_initialize"),
        summary=(
            "When another device's suspend fails, `bus_generic_suspend` resumes the disks it "
            "had suspended; with no hypervisor suspend, `xen_suspend_cancelled` is 0, so "
            "`xbd_resume` frees the ring the back end still has mapped and `xbd_initialize` "
            "returns at once (the xenbus state is still Connected): the disk stays "
            "DISCONNECTED and every later bio waits for ever."
        ),
        explanation=(
            "`xctrl_suspend` calls `DEVICE_SUSPEND(root_bus)`; xenbusb_front's suspend is "
            "FreeBSD's `bus_generic_suspend` (`sys/kern/subr_bus.c`), which suspends the "
            "children last first and, when one fails, calls `DEVICE_RESUME` on the ones it "
            "had already suspended before returning the error; `xctrl_suspend` then gives "
            "up without suspending the domain. `xbd_suspend` fails with `EBUSY` when its "
            "requests do not drain within 30 s, so a slow disk is enough for its siblings "
            "to be resumed this way.\n\n"
            "`xbd_resume` (blkfront.c lines 1188-1194) tells a cancelled suspend from a real "
            "one only by the global `xen_suspend_cancelled`, which the rollback never sets: "
            "it is 0 unless the previous suspend was cancelled. So it runs "
            "`xbd_free(sc); xbd_initialize(sc);`: `xbd_free` sets DISCONNECTED, ends the "
            "ring's grants and frees the ring pages while the back end, never told, is "
            "still Connected to them (its next responses land in freed memory), and "
            "`xbd_initialize` returns at its first test (line 840, `xenbus_get_state(...) != "
            "XenbusStateInitialising`): in a real resume `xenbusb_resume` sets the device's "
            "`xd_state` back to Initialising before calling `DEVICE_RESUME`; the rollback "
            "does not. Nothing reconnects the disk: `xbd_startio` does nothing while "
            "DISCONNECTED, so its bios queue for ever."
        ),
        found_by=FoundBy.READING,
        how_found=(
            "Read while modelling newbus for several devices (`xbdspec.reference.newbus`: "
            "`bus_generic_suspend` with its rollback, as FreeBSD 14 has it); the scenario "
            "suspends two disks, the first of which times out."
        ),
        fix=(
            "`Fixes.suspend_rollback_frees_ring`: `xbd_resume` treats a resume of a device "
            "whose xenbus state is not Initialising (no `xenbusb_resume` ran, so no suspend "
            "reached the hypervisor) as a cancelled suspend: the ring is kept and the state "
            "restored."
        ),
        shows=("serves I/O after the rolled-back suspend"),
        protocol_level=(
            "**FreeBSD-internal (refinement level).** blkif.h, ring.h and xenbus.h say "
            "nothing of a guest's suspend or of its bus rolling one back. On the wire the "
            "resumed disk only stops sending requests: its state stays Connected and its back "
            "end keeps the ring, which no header sentence forbids; the ring page freed under "
            "the back end's mapping is a fault of the guest's memory and grant table, not of "
            "the three headers. The protocol-level harness runs one device per world with no "
            "bus above it, so it does not reach this; the reference scenario and the compiled "
            "seed (`tests/cdriver/test_cdriver_device_life.py`) show it."
        ),
    ),
    Finding(
        name="backend-closed-ignored",
        title="A back end that goes to Closed without Closing, or whose node disappears, "
        "is ignored",
        severity=Severity.HANG,
        seed_functions=("xbd_backend_changed", "xbd_close"),
        summary=(
            "`xbd_backend_changed` does nothing for `XenbusStateClosed` (what "
            "`xenbus_read_driver_state` also returns when the back end's node is gone), and "
            "`xbd_close` closes the device only if the back end is Closing: the disk stays, "
            "requests in flight are never answered nor failed, new bios queue for ever."
        ),
        explanation=(
            "xenbus.h lets a back end leave any state for Closed (the protocol model's "
            "`backend_closed`), and a back end whose directory is removed reads as Closed "
            "(`xenbus_read_driver_state`). The seed lists `case XenbusStateClosed:` with the "
            "states it ignores (blkfront.c line 1207), so the front end stays Connected on a "
            "ring nobody serves: the bios in flight never complete, the bios that follow "
            "queue behind them, and the disk never goes away. The path that handles a "
            "Closing back end with the disk open (`disk_gone`, then the last `xbd_close` "
            "closes the device) is also lost if the back end moves on to Closed before the "
            "last close: `xbd_close` compares the other end's state with "
            "`XenbusStateClosing` only (line 509).\n\n"
            "Linux's blkfront (`blkback_changed`) handles Closed as Closing unless it is "
            "itself Closed; a Closed back end answers nothing more, so what the front end "
            "holds for it can only fail."
        ),
        found_by=FoundBy.READING,
        how_found=(
            "Read while modelling the tool stack's removal of the back end's node "
            "(`Platform.toolstack_remove`); the scenario removes it with the disk open and a "
            "read in flight."
        ),
        fix=(
            "`Fixes.backend_closed_ignored`: `xbd_backend_changed` handles Closed, when the "
            "front end is not Closed itself, as Closing after failing every bio it holds "
            "(in flight, on READY, queued) with `ENXIO`; the last `xbd_close` closes the "
            "device when the back end is Closed as well as Closing."
        ),
        shows=("never answer completes with an error"),
        protocol_rule=(
            "frontend_write_request requires: the back end is connected to the ring "
            "(Connected, or Closing after it; not Closed)"
        ),
        protocol_level=(
            "**A protocol violation**, for a back end that writes Closed. The seed stays "
            "Connected and turns the next bio into a request on a ring the back end has left: "
            "the protocol model's `frontend_write_request` requires the back end on the ring, "
            "Connected or Closing after it. blkif.h's back end joins the ring on its way to "
            'Connected ("o Connect to the request ring and event channel. o Publish backend '
            'device properties. | | V XenbusStateConnected", STATE DIAGRAMS) and a state is '
            '"the current communication status of initialisation across the bus" (xenbus.h, '
            "`enum xenbus_state`): a Closed back end is off the ring. xenbus.h gives Closed no "
            "comment of its own and the headers ask for no particular answer to it, so a "
            "front end that ignores a back end's Closed conforms while it writes no request "
            "(Mini-OS and OpenBSD have no handler; Linux, the C front end and the tutorial "
            "answer with Closed). The protocol-level harness shows the seed's departure on the "
            "reference and on the compiled seed (`xbdspec difftest --impl reference`, "
            "`--impl seed`: campaigns with the environment event `backend_close`) as "
            "`frontend_write_request requires: the back end is connected to the ring "
            "(Connected, or Closing after it; not Closed)`; with the fix the front end gives "
            "the ring up (`frontend_abandon_ring`), fails what it held and closes.\n\n"
            "The other half, a back end whose node disappears, is FreeBSD-internal: the "
            "headers say nothing of a removed directory (Linux's blkfront ignores the "
            "Unknown it reads), so a request then is unanswered, not refused, and the hang "
            "is the driver's (`tests/world/test_device_life_world.py`)."
        ),
    ),
    Finding(
        name="detach-leaves-disk",
        title="xbd_detach leaves the disk behind: a forced removal strands its I/O and "
        "GEOM uses the freed softc",
        severity=Severity.UNDEFINED,
        seed_functions=("xbd_detach", "xbd_free"),
        summary=(
            "`xbd_detach` frees the ring and the commands but neither destroys the disk nor "
            "completes the bios it holds: after a forced removal (xenbusb deletes the child "
            "whose node is gone) the bios in flight and queued never complete, and the disk, "
            "still in GEOM, hands the next `d_strategy`/`d_close` a `d_drv1` newbus has freed."
        ),
        explanation=(
            "`xbd_detach` (blkfront.c lines 1152-1160) is `xbd_free(sc); "
            "mtx_destroy(&sc->xbd_io_lock);`. The disk is destroyed only by `xbd_closing`, "
            "on a back end's Closing. When the tool stack removes the device without that "
            "handshake (`xl block-detach --force`, or a driver domain going away), "
            "FreeBSD's `xenbusb_verify_device` finds the front-end node gone and "
            "`xenbusb_delete_child` deletes the child: `DEVICE_DETACH` runs, then newbus "
            "frees the softc. `xbd_free` forgets the commands on BUSY and READY and the bio "
            "queue with them, so those bios never complete; the disk stays in GEOM with "
            "`d_drv1` pointing at the freed softc, so the next bio (`xbd_strategy` locks "
            "the destroyed mutex of freed memory) or the user's close (`xbd_close`) is a "
            "use after free."
        ),
        found_by=FoundBy.READING,
        how_found=(
            "Read while modelling xenbusb's deletion of a child (`xbdspec.reference.newbus`); "
            "the platform remembers the softcs newbus freed, and GEOM's entry points "
            "(`xbdspec.reference.geom`) report a disk whose `d_drv1` is one of them."
        ),
        fix=(
            "`Fixes.detach_leaves_disk`: `xbd_detach` fails every bio it holds with `ENXIO` "
            "(their grants ended or released, the commands freed) and destroys the disk "
            "before `xbd_free`, so GEOM answers later bios and accesses itself (`d_destroyed`)."
        ),
        shows=("the read in flight at detach completes with an error"),
        protocol_rule=(
            "the front end failed: UndefinedBehaviour: g_disk_start (d_strategy): use after "
            "free: ada0's d_drv1 is the softc newbus freed after xbd_detach"
        ),
        protocol_level=(
            "**FreeBSD-internal (refinement level).** Once the tool stack has removed the "
            "front end's directory the headers give the front end nothing to do (the "
            "protocol model's `toolstack_remove_front` leaves it no step; blkif.h and "
            "xenbus.h do not mention removal), and what becomes of the bios and the disk is "
            "the guest's. The protocol-level harness reaches it with the environment event "
            "`toolstack_remove` on the reference, whose `removed` entry point is "
            "`xenbusb_verify_device`: no protocol rule breaks, and the next bio makes the "
            "reference fail (`the front end failed: UndefinedBehaviour: g_disk_start "
            "(d_strategy): use after free: ...`), an implementation failure that campaigns "
            "claim as this finding by that signature. The compiled seed's harness front end "
            "has no removal entry point, so campaigns do not reach it there."
        ),
    ),
    Finding(
        name="read-only-disk-writable",
        title="A read-only disk is published writable",
        severity=Severity.WRONG,
        seed_functions=("xbd_instance_create", "xbd_connect"),
        summary=(
            "`xbd_connect` reads the back end's `info` and passes it to "
            "`xbd_instance_create`, which never looks at it: a `VDISK_READONLY` disk accepts "
            "write opens, and every write then fails with EIO at the back end."
        ),
        explanation=(
            "blkif.h's `info` is a bitmap of `VDISK_*` attributes of the device; "
            "`VDISK_READONLY` says it cannot be written, and back ends refuse writes to it "
            '(Linux\'s blkback: `dispatch_rw_block_io`, "write to a read-only disk"; '
            "QEMU's qdisk: \"write req for ro device\"). `xbd_instance_create`'s "
            "`vdisk_info` parameter (blkfront.c line 756) is unused, and `d_flags` gets only "
            "`DISKFLAG_UNMAPPED_BIO` and `DISKFLAG_CANFLUSHCACHE` (line 783). GEOM refuses "
            "a write open with `EROFS` only when `DISKFLAG_WRITE_PROTECT` is set "
            "(`g_disk_access`), so a file system mounts the disk read-write and learns of "
            "it one failed write at a time (UFS marks the file system dirty and may panic on "
            "a failed metadata write). FreeBSD's virtio block driver sets "
            "`DISKFLAG_WRITE_PROTECT` for its read-only feature. No request breaks the "
            "protocol: the back end's refusal is what blkif.h provides; the defect is the "
            "disk the guest is shown. `VDISK_CDROM` and `VDISK_REMOVABLE` are ignored too, "
            "which is allowed (see the rejected candidate *info-cdrom-removable-ignored*)."
        ),
        found_by=FoundBy.READING,
        how_found=(
            "Read while auditing what the seed does with `info`; the scenario connects to a "
            "strict (`LINUX_BLKBACK`) back end advertising `VDISK_READONLY` and opens the "
            "disk for writing through GEOM's `g_disk_access`."
        ),
        fix=(
            "`Fixes.read_only_disk_writable`: `xbd_instance_create` sets "
            "`DISKFLAG_WRITE_PROTECT` when `vdisk_info` has `VDISK_READONLY`."
        ),
        shows=("fails with EROFS"),
        protocol_level=(
            "**FreeBSD-internal (refinement level).** blkif.h's `info` is \"A collection of "
            "bit flags describing attributes of the backing device. The VDISK_* macros "
            'define the meaning of each bit location." and `VDISK_READONLY` is only a bit: '
            "no sentence obliges a front end to refuse writes, and a write to a read-only "
            "disk is a request the back end answers with `BLKIF_RSP_ERROR`, which the "
            "protocol provides. Against a read-only world back end of either profile "
            "(blkback, qdisk) the reference's write is answered with an error, its bio fails "
            "and the protocol-level harness finds nothing "
            "(`tests/world/test_device_life_world.py`)."
        ),
    ),
)

REJECTED: tuple[Rejected, ...] = (
    Rejected(
        name="info-cdrom-removable-ignored",
        seed_functions=("xbd_instance_create", "xbd_probe"),
        looks_wrong=(
            "`xbd_instance_create` ignores `VDISK_CDROM` and `VDISK_REMOVABLE` in `info`: a "
            "CD-ROM is published as a disk named after its virtual device."
        ),
        why_not=(
            "blkif.h's `info` bits describe the device; nothing obliges a front end to "
            "present them, and the protocol has no removable media (QEMU's qdisk: \"The "
            "blkif protocol does not deal with removable media\"). GEOM's disk has no flag "
            "for either; `xbd_probe` already declines PV CD-ROMs in HVM guests by "
            "`device-type`. Only `VDISK_READONLY` changes what the guest can do with the "
            "disk (*read-only-disk-writable*)."
        ),
    ),
    Rejected(
        name="resume-keeps-disk-geometry",
        seed_functions=("xbd_connect", "xbd_resume"),
        looks_wrong=(
            "After a resume onto a back end whose `sectors` or `sector-size` differ, "
            "`xbd_connect` builds no new disk (`sc->xbd_disk` exists) and, being "
            "DISCONNECTED, does not take its resize branch either: `d_mediasize` and "
            "`d_sectorsize` keep the old back end's values."
        ),
        why_not=(
            "A resume reconnects the same virtual device to the same disk image on another "
            "host; blkif.h defines a change of size only for a connected device (the back "
            "end rewrites `sectors` and its state, which the seed's CONNECTED branch handles "
            "with `disk_resize`). Linux's blkfront does the same on resume "
            "(`blkfront_connect` in `BLKIF_STATE_SUSPENDED` goes to `blkif_recover` without "
            "reading `sectors`). A back end with another geometry is another disk, which a "
            "tool stack attaches as a new device; the test "
            "`tests/reference/test_device_life.py` shows what the seed does, and that a "
            "strict back end refuses what lies past a shrunk disk instead of serving it."
        ),
    ),
    Rejected(
        name="otherend-state-read-afresh",
        seed_functions=("xbd_close",),
        looks_wrong=(
            "`xbd_close` decides whether to close by reading the back end's `state` node anew "
            "(`xenbus_get_otherend_state`) rather than using the state the last watch delivered: a "
            "last close racing a back-end Closing not yet delivered closes the device before "
            "`xbd_backend_changed` has seen Closing."
        ),
        why_not=(
            "FreeBSD's `xenbus_get_otherend_state` (sys/xen/xenbus/xenbusvar.h) is "
            "`xenbus_read_driver_state` on the other end's path: it reads xenstore afresh, as "
            "the reference's platform does. Closing early is what the back end asked for by "
            "writing Closing. When the watch then delivers Closing, `xbd_backend_changed` finds "
            "no users and runs `xbd_closing` again, which writes the front end's state Closing "
            "and Closed once more (the back end sees the state flap); the end state is the same "
            "and the back end, already closing, ignores it. The model was wrong (its close used "
            "the state it had last seen) and was corrected."
        ),
    ),
    Rejected(
        name="request-handle-low-bits",
        seed_functions=("xbd_queue_cb",),
        looks_wrong=(
            "Each request's `handle` is the low 16 bits of the `struct disk` pointer, not the "
            "virtual device number."
        ),
        why_not=(
            "blkif.h leaves `handle` to the back end (meaningful only for read/write requests), "
            "and back ends identify the device by the connection, not by this field: Linux blkback "
            "ignores it. An odd value, not a protocol violation."
        ),
    ),
    Rejected(
        name="fewer-commands-than-ring-slots",
        seed_functions=("xbd_connect",),
        looks_wrong=(
            "A shadow allocation failing part-way leaves fewer commands than ring slots, without a "
            "word."
        ),
        why_not=(
            "Nothing assumes one command per slot: commands come from FREE, and when none is left "
            "the queue freezes on `XBDF_CM_SHORTAGE` until `xbd_free_command` thaws it. The proofs "
            "show the `CM_SHORTAGE` accounting sound, so such a device runs correctly with less "
            "concurrency. (Failing at the very first command is a finding: "
            "`no-commands-after-shadow-failure`.)"
        ),
    ),
    Rejected(
        name="thaw-panics-when-not-frozen",
        seed_functions=("xbd_thaw", "xbd_cm_thaw"),
        looks_wrong=(
            "`xbd_thaw` panics when `xbd_qfrozen_cnt` is 0, and its callers (`xbd_free_command`, "
            "`xbd_int`'s `XBDF_WAIT_IDLE` thaw, the grant callback) do not check the count first."
        ),
        why_not=(
            "A thaw with a flag returns early unless that flag is set, and the flagless thaw of "
            "`xbd_cm_thaw` is guarded by the command's `XBDCF_FROZEN`. The proofs show "
            "`FreezeAccounting` (the count equals the flags set plus the frozen commands) in "
            "every reachable state of the model; the seed departs from it only in the findings "
            "that leave the count too high (`failed-mapping-leaks` forgets a frozen command "
            "without thawing), never too low, so a thaw that gets past its guard always finds a "
            "count above 0 and the panic is unreachable."
        ),
    ),
    Rejected(
        name="unused-grants-freed-after-mapping",
        seed_functions=("xbd_queue_cb", "xbd_mksegarray"),
        looks_wrong=(
            "Right after building a request, `xbd_queue_cb` calls "
            "`gnttab_free_grant_references(cm->cm_gref_head)`, as if it gave back the grant "
            "references the request has just put on the ring."
        ),
        why_not=(
            "`cm_gref_head` is the command's private list of reserved references. `xbd_mksegarray` "
            "claims one per segment (`gnttab_claim_grant_reference`), which unlinks it from that "
            "list, so only the unclaimed remainder goes back to the pool. The claimed references "
            "stay granted until `xbd_int` ends them when the response arrives."
        ),
    ),
    Rejected(
        name="rsp-event-without-final-check",
        seed_functions=("xbd_int",),
        looks_wrong=(
            "When every request has been answered, `xbd_int` sets `rsp_event = rsp_cons + 1` "
            "directly instead of using `RING_FINAL_CHECK_FOR_RESPONSES`, which re-reads `rsp_prod` "
            "after setting it."
        ),
        why_not=(
            "That branch is taken only when `rsp_cons` equals `req_prod_pvt`: no request is "
            "outstanding, so no response can be produced before the next request is pushed. The "
            "back end's push of that next response notifies, because the event asks for exactly "
            "the next entry (the proved obligation `push_notifies_sleeping_consumer`, across "
            "wrap-around)."
        ),
    ),
    Rejected(
        name="grant-callback-registered-twice",
        seed_functions=("xbd_bio_command", "xbd_restart_queue_callback"),
        looks_wrong=(
            "`xbd_bio_command` registers the grant free callback at every grant shortage, and the "
            "grant table recognises a registered callback by `callback->next != NULL`, which is "
            "false for the last entry of its list: registering it twice would make the list "
            "circular."
        ),
        why_not=(
            "It is never registered twice: the registration comes with `xbd_freeze(sc, "
            "XBDF_GNT_SHORTAGE)`, and while that flag holds, `xbd_startio` breaks before calling "
            "`xbd_bio_command`. Only the callback thaws `XBDF_GNT_SHORTAGE`, and the grant table "
            "unlinks a callback before it runs it."
        ),
    ),
)


@dataclass(frozen=True)
class Noticed:
    """A defect seen in the seed that is not yet a finding: no replay, no fix.

    Attributes:
        name: kebab-case.
        seed_functions: where it is.
        what: what goes wrong.
        why_open: why it has no replay or fix yet (what the toolkit would need).
    """

    name: str
    seed_functions: tuple[str, ...]
    what: str
    why_open: str


NOTICED: tuple[Noticed, ...] = (
    Noticed(
        name="grant-callback-lock-order",
        seed_functions=("xbd_restart_queue_callback", "xbd_int"),
        what=(
            "FreeBSD's grant table runs free callbacks with its own list lock held, so "
            "`xbd_restart_queue_callback` called from another grant user takes `xbd_io_lock` "
            "inside the grant lock, while `xbd_int` returns grant references (taking the grant "
            "lock) inside `xbd_io_lock`: a lock-order reversal that can deadlock two CPUs."
        ),
        why_open=(
            "A two-CPU deadlock: the reference models the grant table's lock (recursive, as "
            "FreeBSD's) but runs one event at a time, so no two holders ever contend. The fix "
            "of `io-lock-recursion` removes the same-thread recursion only; the complete fix "
            "defers the restart to a taskqueue."
        ),
    ),
    Noticed(
        name="suspend-timeout-restores-state-unlocked",
        seed_functions=("xbd_suspend",),
        what=(
            "When the drain times out, `xbd_suspend` drops `xbd_io_lock` before restoring "
            "`xbd_state`: an interrupt on another CPU in that window sees SUSPENDED, completes "
            "its responses and dispatches nothing, so bios queued during the suspend wait for "
            "the next kick."
        ),
        why_open=(
            "A race between CPUs: the reference runs one event at a time under explicit "
            "control, so the window between the unlock and the store is not an event boundary. "
            "Replaying it needs a finer-grained step (the unlock as its own event)."
        ),
    ),
    Noticed(
        name="grant-callback-before-freeze",
        seed_functions=("xbd_bio_command", "xbd_restart_queue_callback"),
        what=(
            "`xbd_bio_command` registers the grant free callback before it freezes the queue "
            "for `XBDF_GNT_SHORTAGE`. If another CPU frees enough references in between, the "
            "grant table runs the callback at once (under `xbd_io_lock`: another path to "
            "`io-lock-recursion`), it thaws a flag not yet set, and the freeze that follows "
            "is never released."
        ),
        why_open=(
            "Also a race between CPUs (another grant user freeing references between two "
            "statements); with `io-lock-recursion` fixed the outcome is a queue frozen for good, "
            "so the fix should register the callback after the freeze."
        ),
    ),
    Noticed(
        name="max-size-not-renegotiated-on-resume",
        seed_functions=("xbd_connect", "xbd_instance_create"),
        what=(
            "`d_maxsize` is set from the first back end's segment limit and never updated: "
            "after migrating to a back end with fewer indirect segments, GEOM still sends bios "
            "the new limit cannot map; they fail `EFBIG` and end as `EIO`."
        ),
        why_open=(
            "The fix belongs with GEOM (a disk cannot shrink its `d_maxsize` under live "
            "consumers; the driver would have to split bios); the model does not track request "
            "sizes, so no program shows it."
        ),
    ),
)

BY_NAME = {f.name: f for f in FINDINGS}


def claim_protocol(rule: str, config: object) -> Finding | None:
    """The finding a protocol-level campaign's violation of the reference or the
    compiled seed is, by its exact signature: the finding's ``protocol_rule`` (numbers
    aside) and every ``protocol_trigger`` setting as the program had it; None: new."""

    def bare(text: str) -> str:
        return "".join(ch for ch in text if not ch.isdigit())

    for finding in FINDINGS:
        if not finding.protocol_rule or bare(finding.protocol_rule) not in bare(rule):
            continue
        if all(getattr(config, k, None) == v for k, v in finding.protocol_trigger):
            return finding
    return None
