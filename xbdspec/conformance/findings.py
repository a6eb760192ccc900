"""Known findings: divergences already understood, each claimed by exact signatures.

The seed reference behaves as the seed does, defects included, so some divergences
are expected.  Each :class:`Finding` names one and cites the seed note it stands for
(``docs/seed-notes.md``).  It claims a divergence only by an exact
:class:`~xbdspec.conformance.signatures.Signature` (its kind, the failing event and its
qualifiers, the model transition, every differing field with the shape of its difference,
the invariants broken, a fault's type and function) that is one of the finding's
:data:`~xbdspec.conformance.known_signatures.KNOWN_SIGNATURES`.  Those are derived, never
written by hand: from the finding's own replay (``xbdspec/findings/replays``), and from
variant replays (``xbdspec/conformance/variants``) that the finding's fix is shown to
remove (:mod:`.harvest`; ``tests/conformance/test_signatures.py`` checks both again).

A divergence no finding claims is new, whichever finding's trigger it follows.  Each
finding also keeps a *trigger* predicate (:attr:`Finding.matches`: what its text says is
seen); it claims nothing, it only lets a report say which known finding's path a new
divergence is on (:func:`near_findings`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from xbdspec.model.vocabulary import BioKind, BioResult, BioStage, Dma, DriverState, Place

from .harness import Divergence
from .known_signatures import KNOWN_SIGNATURES
from .signatures import Signature, signature_of


@dataclass(frozen=True)
class Finding:
    """A known divergence of the seed from the model.

    Attributes:
        name: a short kebab-case name (reports and replay file names use it).
        seed_note: the row of ``docs/seed-notes.md`` it stands for (0: none yet).
        summary: one sentence: what the seed does where the model says otherwise.
        matches: ``matches(divergence) -> bool``: the finding's trigger predicate (what
            its text says is seen); it names near misses, it does not claim.
    """

    name: str
    seed_note: int
    summary: str
    matches: Callable[[Divergence], bool]

    @property
    def signatures(self) -> frozenset[Signature]:
        """The exact signatures this finding claims."""
        return known_signatures(self.name)

    def claims(self, divergence: Divergence) -> bool:
        """Whether this finding explains ``divergence``: one of its exact signatures."""
        return signature_of(divergence) in self.signatures

    def met_with(self, signature: Signature) -> tuple[str, ...]:
        """The other known findings ``signature`` shows together with this one: the
        conformance findings whose fixes its variant also takes to run clean (empty for
        the finding alone)."""
        return met_with(self.name).get(signature, ())


@functools.cache
def known_signatures(name: str) -> frozenset[Signature]:
    """The signatures catalogued for finding ``name`` (:mod:`.known_signatures`)."""
    return frozenset(
        Signature.from_json(entry["signature"]) for entry in KNOWN_SIGNATURES.get(name, ())
    )


@functools.cache
def met_with(name: str) -> dict[Signature, tuple[str, ...]]:
    """For each signature of finding ``name`` that is known defects met in one program
    (a variant whose ``fixes`` name other findings' fixes as well), those other findings,
    in catalogue order."""
    order = [f.name for f in FINDINGS]
    out: dict[Signature, tuple[str, ...]] = {}
    for entry in KNOWN_SIGNATURES.get(name, ()):
        others = set(entry.get("fixes", ())) - {name} - set(_requires(name))
        if others:
            out[Signature.from_json(entry["signature"])] = tuple(n for n in order if n in others)
    return out


def _requires(name: str) -> tuple[str, ...]:
    from xbdspec.findings.catalogue import BY_NAME as CATALOGUE

    finding = CATALOGUE.get(name)
    return finding.requires if finding is not None else ()


def _obs(d: Divergence, name: str) -> Any:
    return d.observed.get(name)


def _free_command_holds_something(d: Divergence) -> bool:
    places, grants, bios = _obs(d, "cmd_place"), _obs(d, "cmd_grants"), _obs(d, "cmd_bio")
    if places is None or grants is None or bios is None:
        return False
    no_bio = len(_obs(d, "bio_stage") or [])
    return any(
        p == Place.FREE and (g > 0 or b != no_bio)
        for p, g, b in zip(places, grants, bios, strict=True)
    )


def _any_dma(d: Divergence, mode: Dma) -> bool:
    return mode in d.last.env.dma


def _unsupported_rejected(d: Divergence) -> bool:
    kinds, results = _obs(d, "bio_kind") or [], _obs(d, "bio_result") or []
    return any(
        k == BioKind.UNSUPPORTED and r == BioResult.EOPNOTSUPP
        for k, r in zip(kinds, results, strict=True)
    )


def _unservable(d: Divergence, kind: int) -> bool:
    """A bio of ``kind`` is one the back end cannot serve (the model rejects it)."""
    no_flush = not _obs(d, "fe_flush") and not _obs(d, "fe_barrier")
    return kind == BioKind.UNSUPPORTED or (kind == BioKind.FLUSH and no_flush)


def _differs(d: Divergence, *names: str) -> bool:
    return any(n in d.differences for n in names)


def _more_frozen(d: Divergence) -> bool:
    """The implementation holds the queue for more reasons than the model."""
    diff = d.differences.get("frozen")
    return diff is not None and diff[1] > diff[0]


def _queued_where_model_sends(d: Divergence) -> bool:
    """A bio the model has attached to a command (HELD) is still on the bio queue."""
    diff = d.differences.get("bio_stage")
    if diff is None:
        return False
    model, impl = diff
    return any(
        m == BioStage.HELD and i == BioStage.QUEUED for m, i in zip(model, impl, strict=True)
    )


def _dump_chunk_on_ready(d: Divergence) -> bool:
    """A command waits on READY carrying no bio: a dump's chunk left behind."""
    places, bios = _obs(d, "cmd_place") or [], _obs(d, "cmd_bio") or []
    no_bio = len(_obs(d, "bio_stage") or [])
    return any(p == Place.READY and b == no_bio for p, b in zip(places, bios, strict=True))


FINDINGS: tuple[Finding, ...] = (
    Finding(
        "flush-without-support-panics",
        4,
        "A BIO_FLUSH reaching xbd_bio_command when the back end offers neither flush nor "
        "barrier panics the guest; the model fails the bio with EOPNOTSUPP.",
        lambda d: d.fault is not None and "no flush support" in d.fault,
    ),
    Finding(
        "stale-features-after-resume",
        5,
        "xbd_connect only sets XBDF_BARRIER/XBDF_FLUSH, never clears them: after a resume on "
        "a back end without them the driver still claims them.",
        lambda d: (
            any(s.event == "resume" and s.params.get("cancelled") is False for s in d.steps)
            and any(
                n in d.differences and d.differences[n][1] is True and d.differences[n][0] is False
                for n in ("fe_barrier", "fe_flush")
            )
        ),
    ),
    Finding(
        "resume-loses-ready-write",
        7,
        "xbd_free re-initialises READY without completing or requeueing the single-stepped "
        "write waiting there: its bio is lost.",
        lambda d: d.last.event == "resume" and "NoLostIO" in d.invariants,
    ),
    Finding(
        "suspend-ignores-deferred-mappings",
        8,
        "xbd_suspend waits for BUSY only; a command whose mapping is deferred is in flight "
        "but the suspend completes (or cannot time out) regardless.",
        lambda d: (
            d.last.event in ("suspend", "suspend_drained", "suspend_timeout")
            and (Place.NONE in (_obs(d, "cmd_place") or []) or _differs(d, "drv_state", "susp_pc"))
        ),
    ),
    Finding(
        "deferred-single-step-unpublished",
        9,
        "A single-stepped write whose mapping is deferred never gets XBDCF_ASYNC_MAPPING "
        "(the command is already FROZEN), so xbd_queue_cb does not publish it: the queue stalls.",
        lambda d: (
            _differs(d, "cmd_async")
            and any(
                q and model and not impl
                for q, model, impl in zip(
                    _obs(d, "cmd_qfreeze") or [], *d.differences["cmd_async"], strict=True
                )
            )
        ),
    ),
    Finding(
        "failed-mapping-leaks",
        10,
        "A failed bus_dma mapping completes the bio with EIO but keeps the command's grant "
        "references (the next command finds the pool short) and, for a deferred mapping, "
        "its freeze: the queue stays frozen.",
        lambda d: (
            (d.last.event == "dma_callback_error" or _any_dma(d, Dma.FAILED))
            and (_free_command_holds_something(d) or _more_frozen(d))
        ),
    ),
    Finding(
        "mapping-failure-stops-loop",
        25,
        "A deferred mapping that fails completes its bio but does not restart the queue: the "
        "bios queued behind it wait for an unrelated kick; the model sends them.",
        lambda d: d.last.event == "dma_callback_error" and _queued_where_model_sends(d),
    ),
    Finding(
        "unsupported-bio-leaks-grants",
        11,
        "An unsupported bio is finished with EOPNOTSUPP, but its command goes back to FREE "
        "still holding the bio pointer and its grant references.",
        lambda d: _unsupported_rejected(d) and _free_command_holds_something(d),
    ),
    Finding(
        "rejected-bio-stops-loop",
        0,
        "After failing a bio it cannot serve, xbd_bio_command returns NULL and xbd_startio's "
        "loop ends: the bios queued behind wait for an unrelated kick; the model sends them.",
        lambda d: _unsupported_rejected(d) and _queued_where_model_sends(d),
    ),
    Finding(
        "resume-cancelled-does-not-restart",
        23,
        "xbd_resume after a cancelled suspend sets CONNECTED but does not run xbd_startio: "
        "bios submitted while suspended wait for an unrelated interrupt or bio.",
        lambda d: (
            d.last.event == "resume"
            and d.last.params.get("cancelled") is True
            and (
                _queued_where_model_sends(d)
                or _differs(d, "req_prod_pvt", "bio_result", "cmd_place")
            )
        ),
    ),
    Finding(
        "unsupported-bio-waits-for-a-command",
        22,
        "xbd_bio_command takes a free command (and grants) before looking at the bio's "
        "command, so a bio it will only reject (an unsupported command, or a flush the "
        "back end cannot do) waits, frozen for CM_SHORTAGE, until a command is freed; "
        "the model fails it at once.",
        lambda d: (
            _differs(d, "bio_stage")
            and any(
                _unservable(d, k) and model == BioStage.DONE and impl == BioStage.QUEUED
                for k, model, impl in zip(
                    _obs(d, "bio_kind") or [], *d.differences["bio_stage"], strict=True
                )
            )
        ),
    ),
    Finding(
        "stranded-bios-on-disk-gone",
        24,
        "When the back end closes under an open disk while the driver is not connected, "
        "the seed only calls disk_gone: the bios on its queue can never be sent and stay "
        "there for ever; the model fails them with EIO.",
        lambda d: (
            d.last.event == "backend_watch"
            and _obs(d, "drv_state") != DriverState.CONNECTED
            and _differs(d, "bio_stage")
            and any(
                model == BioStage.DONE and impl == BioStage.QUEUED
                for model, impl in zip(*d.differences["bio_stage"], strict=True)
            )
        ),
    ),
    Finding(
        "dump-ebusy-strands-ready",
        21,
        "When xbd_dump runs out of commands or grant references part-way it returns EBUSY "
        "with the chunks it queued still on READY, holding their references: the next "
        "xbd_startio writes them from the dumper's buffer; the model takes them back.",
        lambda d: d.last.event == "dump" and _dump_chunk_on_ready(d),
    ),
)

BY_NAME: Mapping[str, Finding] = {f.name: f for f in FINDINGS}


#: The findings are the seed's: they classify divergences of the seed's port and of the
#: seed compiled from C (whose names start with these).  Another implementation's
#: divergences are all new.
APPLIES_TO_PREFIX = "reference"
SEED_IMPLEMENTATIONS = (APPLIES_TO_PREFIX, "c-driver", "xbdspec.cdriver")
#: the reference with every fix on: none of its divergences is a known finding
FIXED_PROFILE = "reference-fixed"


def _applies(implementation: str) -> bool:
    return not implementation.startswith(FIXED_PROFILE) and implementation.startswith(
        SEED_IMPLEMENTATIONS
    )


def classify(divergence: Divergence, implementation: str = APPLIES_TO_PREFIX) -> Finding | None:
    """The known finding that claims ``divergence`` of ``implementation`` by its exact
    signature, or ``None`` (a new divergence)."""
    if not _applies(implementation):
        return None
    signature = signature_of(divergence)
    finding = claimants().get(signature)
    if finding is not None:
        divergence.finding = finding.name
        divergence.met_with = finding.met_with(signature)
    return finding


@functools.cache
def claimants() -> dict[Signature, Finding]:
    """Each catalogued signature with the finding that claims it: the first in
    :data:`FINDINGS` order among those whose :attr:`Finding.signatures` hold it.

    :func:`classify` looks a signature up here once, not in each finding's set (a
    signature's hash is computed in Python, and the reference explorer classifies
    every divergence it meets, some 2,600 at the default bound); cleared with
    :func:`known_signatures` (:meth:`xbdspec.conformance.harvest.Harvest.install`)."""
    out: dict[Signature, Finding] = {}
    for finding in FINDINGS:
        for signature in finding.signatures:
            out.setdefault(signature, finding)
    return out


def near_findings(divergence: Divergence, implementation: str = APPLIES_TO_PREFIX) -> list[str]:
    """Findings whose trigger predicate ``divergence`` meets although no signature of
    theirs is its own: a new divergence on a known finding's path (reports name them)."""
    if not _applies(implementation) or divergence.finding is not None:
        return []
    signature = signature_of(divergence)
    return [f.name for f in FINDINGS if f.matches(divergence) and signature not in f.signatures]
