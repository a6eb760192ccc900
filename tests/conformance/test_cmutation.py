"""The C mutation engine: mutants are where they should be, a freeze-breaking mutant of
the queue core and a segment-limit mutant of the seed are killed, the unmutated core is
not, and a mutant that does not compile is stillborn, not killed."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from xbdspec.conformance import cmutation

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")

SNIPPET = """\
/* a == b in a comment */
static int f(int a, int *p)
{
    const char *s = "x < y";
    if (a == 1 && *p != 0)
        g(a - 1, &a);
    return -a + (a | 2);
}
"""


def test_mutants_are_in_the_code_and_one_change_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cmutation.SUBJECTS, "snippet", ("f",))
    pool = cmutation.mutants_of("snippet", SNIPPET)
    changes = {(m.original, m.replacement) for m in pool}
    assert changes == {
        ("==", "!="),
        ("1", "0"),
        ("&&", "||"),
        ("!=", "=="),
        ("0", "1"),
        ("-", "+"),  # the binary a - 1, not the unary -a
        ("+", "-"),
        ("|", "&"),
        ("g(a - 1, &a);", ";"),
    }
    body_start = SNIPPET.index("{")
    assert all(m.offset > body_start for m in pool)  # the comment and the string untouched
    assert len({m.key for m in pool}) == len(pool)
    for m in pool:
        mutated = m.apply(SNIPPET)
        assert mutated != SNIPPET
        assert mutated[: m.offset] == SNIPPET[: m.offset]


def test_every_subject_function_is_found() -> None:
    text = cmutation.source_of("core").read_text()
    assert set(cmutation.function_bodies(text, cmutation.CORE_FUNCTIONS)) == set(
        cmutation.CORE_FUNCTIONS
    )
    text = cmutation.source_of("frontend").read_text()
    assert {m.function for m in cmutation.mutants_of("frontend")} == set(
        cmutation.FRONTEND_FUNCTIONS
    )


def test_every_equivalent_names_a_mutant_of_the_pool_with_a_reason() -> None:
    """A key of ``EQUIVALENT`` that no longer names a mutant (the C moved) would silently
    stop excluding anything: each must be in its subject's pool (the seed's when its
    source is there)."""
    subjects = {key.split(":", 1)[0] for key in cmutation.EQUIVALENT}
    for subject in sorted(subjects):
        try:
            keys = {m.key for m in cmutation.mutants_of(subject)}
        except FileNotFoundError:
            continue  # no seed blkfront.c here
        named = [key for key in cmutation.EQUIVALENT if key.startswith(f"{subject}:")]
        assert [key for key in named if key not in keys] == []
    assert all(len(why) > 40 for why in cmutation.EQUIVALENT.values())


@needs_cc
def test_the_core_unmutated_survives_and_a_lost_freeze_is_killed() -> None:
    assert cmutation.kill(None, "core").outcome == "survived"
    lost = next(
        m
        for m in cmutation.mutants_of("core")
        if m.function == "freeze" and (m.original, m.replacement) == ("1", "0")
    )
    verdict = cmutation.kill(lost)
    assert verdict.killed, verdict
    assert verdict.seconds is not None and verdict.seconds >= 0


@needs_cc
def test_a_mutant_that_does_not_compile_is_stillborn() -> None:
    some = cmutation.mutants_of("core")[0]
    broken = dataclasses.replace(some, replacement="@@")
    verdict = cmutation.kill(broken)
    assert verdict.outcome == "stillborn" and not verdict.killed


def _seed_pool() -> list[cmutation.CMutant]:
    """The seed's mutants (the test is skipped without the seed or Xen's headers)."""
    try:
        pool = cmutation.mutants_of("seed")
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    from xbdspec.cdriver.build import xen_headers_missing

    if xen_headers_missing():
        pytest.skip("Xen's public headers are absent (make xen-headers)")
    return pool


@needs_cc
def test_a_seed_segment_limit_mutant_is_killed() -> None:
    pool = _seed_pool()
    limit = next(
        m
        for m in pool
        if m.function == "xbd_queue_cb" and (m.original, m.replacement) == ("<=", "<")
    )
    verdict = cmutation.kill(limit)
    assert verdict.killed, verdict


@needs_cc
def test_the_seed_unmutated_passes_the_refinement_and_a_freeze_mutant_fails_it() -> None:
    """The seed's kill check runs the FreeBSD refinement's campaign on the compiled seed
    first (make verify's stage): the unmutated seed shows only known findings there, and
    a mutant of xbd_freeze's test is a new divergence."""
    pool = _seed_pool()
    assert cmutation._freebsd_seed(cmutation.source_of("seed")).outcome == "survived"
    flag = next(m for m in pool if m.key == "seed:xbd_freeze:57:60:0->1")
    verdict = cmutation.kill(flag)
    assert verdict.killed and verdict.how.startswith("freebsd: a new divergence"), verdict


@needs_cc
def test_a_seed_that_sends_no_request_fails_the_protocol_campaign(tmp_path: Path) -> None:
    """xbd_strategy's test made `!=`: every bio fails with EINVAL and none is sent.  The
    protocol allows a front end to fail a bio, but a campaign that compared no I/O does
    not pass (`xbdspec difftest` exits 2), so the protocol kill check counts it too."""
    pool = _seed_pool()
    strategy = next(m for m in pool if m.key == "seed:xbd_strategy:526:8:==->!=")
    source = tmp_path / "blkfront.c"
    source.write_text(strategy.apply(cmutation.source_of("seed").read_text()))
    verdict = cmutation._protocol_verdict(
        cmutation._protocol("seed", source, cmutation.baseline("seed"))
    )
    assert verdict.killed and "compared no requests read from the ring" in verdict.how
