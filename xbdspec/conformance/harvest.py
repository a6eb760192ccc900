"""Deriving the known findings' exact signatures (``python -m xbdspec.conformance.harvest``).

A finding's signatures come from replays, never from a hand-written pattern:

1. **its own replay** (``xbdspec/findings/replays/<finding>.jsonl``) on the seed's
   behaviour, and, for a finding whose fix builds on others, with those fixes alone on
   (the audit replays it both ways);
2. **variants**: campaigns over the default sweep (both profiles, several seeds) and a
   bounded exploration run on the seed; each divergence no signature claims yet is shrunk
   and replayed with one finding's fix at a time (with the fixes it requires).  When
   exactly the fixes of one finding make the program run clean, every event applied,
   the divergence is that finding's in another context: its program is kept as a
   variant replay (``variants/<finding>.<digest>.jsonl``, configuration in the header)
   and its signature is catalogued.  When no single fix does, the fewest findings whose
   fixes together make it clean (up to :data:`MAX_MET`) are known defects met in one
   program: the variant is kept under the first of them whose trigger holds, its entry
   naming every fix it takes (``fixes``).  A divergence no combination of known fixes
   removes stays new and is listed: it is a candidate finding, not something to hide.

The variant replays already kept are examined again first (and any replays given with
``--also``), so a variant once found stays catalogued while its fixes still remove it.
``--write`` rewrites :mod:`.known_signatures` and the variant replays; without it the
tool only reports.  The result is deterministic for the same code and variants.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pprint
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbdspec.model.state import Sizes
from xbdspec.reference.platform import Fixes

from . import findings as findings_module
from . import known_signatures, replay
from .campaign import Campaign
from .contract import Step
from .harness import Divergence, LockStep, ModelSide
from .program import FULL, SEED_SAFE, run_program, shrink
from .reference_adapter import ReferenceImplementation
from .signatures import Signature, signature_of
from .sweep import REFERENCE_SWEEP, Configuration

#: where variant replays are kept
VARIANTS = Path(__file__).resolve().parent / "variants"
#: the generated module
MODULE = Path(known_signatures.__file__).resolve()


_MODELS: dict[Sizes, ModelSide] = {}


def _requires() -> dict[str, tuple[str, ...]]:
    from xbdspec.findings.catalogue import BY_NAME

    return {name: finding.requires for name, finding in BY_NAME.items()}


def run_on(
    configuration: Configuration, steps: list[Step], fixes: Fixes
) -> tuple[Divergence | None, int]:
    """Replay ``steps`` on the reference with ``fixes``; the divergence (if any) and the
    number of events applied."""
    impl = ReferenceImplementation(fixes)
    impl.configure(configuration.setup)
    model = _MODELS.get(configuration.sizes)
    lock = LockStep(impl, configuration.sizes, model=model)
    _MODELS[configuration.sizes] = lock.model
    try:
        divergence = run_program(impl, lock, steps)
    finally:
        impl.close()
    return divergence, len(lock.steps)


def _order(name: str) -> int:
    return [f.name for f in findings_module.FINDINGS].index(name)


def _fix_set(name: str) -> frozenset[str]:
    return frozenset({name, *_requires().get(name, ())})


def _clean_with(configuration: Configuration, steps: list[Step], names: frozenset[str]) -> bool:
    divergence, applied = run_on(configuration, steps, Fixes.only(*names))
    return divergence is None and applied == len(steps)


#: The most known defects a program is searched for meeting at once.
MAX_MET = 5


def explained_by(
    configuration: Configuration, steps: list[Step]
) -> tuple[list[str], str, dict[str, frozenset[str]]]:
    """The conformance findings whose fixes make the program run clean, every event
    applied, and how: one finding's fix alone (a finding whose fixes include another
    explaining finding's is left out: the smaller fix is the explanation), or else the
    fixes of the fewest findings together (known defects met in one program: a bio
    queued while suspended meets the cancelled resume that does not restart the queue,
    then the rejection that stops the loop, then a stale feature...), up to
    :data:`MAX_MET` of them.  A group is tried only when none of its members' fixes is
    already among the others', and only once every known fix together is seen to make the
    program clean (else no group can).  Empty: nothing known explains it.  The last item
    maps each name to the fixes (of its first group) that remove the program."""
    names = [f.name for f in findings_module.FINDINGS]
    found = [n for n in names if _clean_with(configuration, steps, _fix_set(n))]
    if found:
        alone = [n for n in found if not any(_fix_set(m) < _fix_set(n) for m in found)]
        return alone, "its fix alone removes it", {n: _fix_set(n) for n in alone}
    every = frozenset().union(*map(_fix_set, names))
    if not _clean_with(configuration, steps, every):
        return [], "not even every known finding's fix together removes it", {}
    tried: dict[frozenset[str], bool] = {}

    def clean(group: tuple[str, ...]) -> bool:
        fixes = frozenset().union(*map(_fix_set, group))
        if fixes not in tried:
            tried[fixes] = _clean_with(configuration, steps, fixes)
        return tried[fixes]

    def irredundant(group: tuple[str, ...]) -> bool:
        return not any(
            _fix_set(n) <= frozenset().union(*(_fix_set(m) for m in group if m != n)) for n in group
        )

    for size in range(2, MAX_MET + 1):
        groups = [
            group
            for group in itertools.combinations(names, size)
            if irredundant(group) and clean(group)
        ]
        if groups:
            members = sorted({n for g in groups for n in g}, key=_order)
            removing = {
                n: frozenset().union(*map(_fix_set, next(g for g in groups if n in g)))
                for n in members
            }
            return members, f"{size} known defects met together", removing
    return [], f"every known fix together removes it, no {MAX_MET} findings' fixes do", {}


@dataclass
class Harvest:
    """The catalogue being derived.

    Attributes:
        table: finding -> entries (``signature``, ``source``), in discovery order.
        variants: file name -> (configuration, steps) of each variant replay.
        unexplained: divergences no known finding's fix, alone or with others, removes
            (reports); ``unexplained_programs`` holds their programs.
        unclaimed: variants whose explaining finding's trigger predicate does not hold
            (catalogued all the same: the fix is the proof; listed for review).
    """

    table: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    variants: dict[str, tuple[Configuration, list[Step]]] = field(default_factory=dict)
    unexplained: dict[str, str] = field(default_factory=dict)
    unexplained_programs: dict[str, tuple[Configuration, list[Step]]] = field(default_factory=dict)
    unclaimed: dict[str, str] = field(default_factory=dict)

    def install(self) -> None:
        """Make classification use the table as it stands."""
        known_signatures.KNOWN_SIGNATURES.clear()
        known_signatures.KNOWN_SIGNATURES.update({k: tuple(v) for k, v in self.table.items()})
        findings_module.known_signatures.cache_clear()
        findings_module.met_with.cache_clear()
        findings_module.claimants.cache_clear()

    def add(
        self, finding: str, signature: Signature, source: str, fixes: frozenset[str] = frozenset()
    ) -> bool:
        """Catalogue ``signature`` for ``finding`` (``fixes``: what removes its replay)."""
        entries = self.table.setdefault(finding, [])
        if any(Signature.from_json(e["signature"]) == signature for e in entries):
            return False
        entry: dict[str, Any] = {"signature": signature.as_json(), "source": source}
        if fixes:
            entry["fixes"] = sorted(fixes)
        entries.append(entry)
        self.install()
        return True

    def own_replays(self) -> None:
        """Step 1: each finding's own replay, on the seed and with its prerequisites."""
        from xbdspec.findings.replay import program_path

        requires = _requires()
        for finding in findings_module.FINDINGS:
            path = program_path(finding.name)
            configuration, steps = replay.read_configuration(path)
            runs = [("seed", Fixes())]
            if requires.get(finding.name):
                runs.append(("prerequisites", Fixes.only(*requires[finding.name])))
            for label, fixes in runs:
                divergence, _ = run_on(configuration, steps, fixes)
                if divergence is None:
                    raise SystemExit(f"{finding.name}: its own replay runs clean ({label})")
                rel = f"xbdspec/findings/replays/{path.name} ({label})"
                self.add(finding.name, signature_of(divergence), rel)

    def variant(
        self, divergence: Divergence, steps: list[Step], configuration: Configuration
    ) -> None:
        """Step 2 for one shrunk divergence no signature claims."""
        signature = signature_of(divergence)
        label = f"{configuration.name}: {divergence.last.label()}: {signature.describe()}"
        names, how, removing = explained_by(configuration, steps)
        if not names:
            self.unexplained[signature.key()] = f"{label} ({how})\n{divergence.report()}"
            self.unexplained_programs[signature.key()] = (configuration, steps)
            return
        # the first explaining finding whose trigger predicate holds, else the first
        triggered = [n for n in names if findings_module.BY_NAME[n].matches(divergence)]
        finding = (triggered or names)[0]
        if not triggered:
            self.unclaimed[signature.key()] = f"{names}: {label} ({how}; no trigger predicate)"
        digest = signature.key().rsplit("-", 1)[1]
        file = f"{finding}.{digest}.jsonl"
        self.variants[file] = (configuration, steps)
        source = f"xbdspec/conformance/variants/{file} ({how})"
        self.add(finding, signature, source, removing[finding])

    def programs(self, paths: list[Path]) -> None:
        """Step 2 over given replays (files, or folders of ``*.jsonl``): the variant replays
        kept so far, which the harvest examines again first, so that a variant found once
        (by a campaign at another seed, the stateful suite, a user's replay) stays
        catalogued while its fixes still remove it; and any replays named on the command
        line.  Each is run on the seed; a divergence no signature claims yet is shrunk
        and examined as a campaign's is."""
        files: list[Path] = []
        for path in paths:
            files += sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
        for file in files:
            configuration, steps = replay.read_configuration(file)
            divergence, _ = run_on(configuration, steps, Fixes())
            if divergence is None or findings_module.classify(divergence) is not None:
                continue
            key = signature_of(divergence).key()
            if key in self.unexplained:
                continue

            def make_lock(config: Configuration = configuration) -> LockStep:
                impl = ReferenceImplementation(Fixes())
                impl.configure(config.setup)
                return LockStep(impl, config.sizes, model=_MODELS.get(config.sizes))

            def same(d: Any, k: object = key) -> bool:
                return bool(signature_of(d).key() == k)

            small, shrunk = shrink(make_lock, steps, same)
            self.variant(shrunk or divergence, small, configuration)

    def campaigns(self, seeds: list[int], examples: int) -> None:
        """Step 2 over campaigns of the default sweep, both profiles."""
        for profile in (FULL, SEED_SAFE):
            for seed in seeds:
                campaign = Campaign(
                    ReferenceImplementation,
                    REFERENCE_SWEEP[0].sizes,
                    profile,
                    seed,
                    60,
                    None,
                    configurations=REFERENCE_SWEEP,
                )
                self._examine(campaign, examples, REFERENCE_SWEEP, f"{profile.name} seed {seed}")

    def _examine(
        self,
        campaign: Campaign,
        examples: int,
        sweep: Sequence[Configuration],
        label: str,
        on_reference: bool = False,
    ) -> None:
        """Run ``campaign`` and examine each divergence no signature claims (replayed on
        the reference first when the campaign ran another implementation of the seed:
        a divergence the reference does not show is that implementation's own, left
        for its campaign to report)."""
        campaign.run(examples=examples)
        fresh = [d for d, _, _, _ in campaign.divergences.values() if d.finding is None]
        for divergence in fresh:
            config = next(c for c in sweep if c.name == divergence.configuration)
            found = divergence
            if on_reference:
                replayed, _ = run_on(config, list(divergence.steps), Fixes())
                if replayed is None or findings_module.classify(replayed) is not None:
                    continue
                found = replayed
            if signature_of(found).key() in self.unexplained:
                continue
            self.variant(found, list(found.steps), config)
        print(
            f"  {label}: {len(fresh)} unclaimed kinds, {len(self.variants)} variants so far",
            file=sys.stderr,
            flush=True,
        )

    def compiled_seed_campaigns(self, seeds: list[int], examples: int) -> None:
        """Step 2 over campaigns on the compiled seed (``--impl c-driver``, the full
        profile, the seeds ``make verify`` and the user use): its capabilities differ
        from the reference's (no sweep, other events offered), so its programs reach
        contexts the reference's campaigns do not; each fresh divergence is examined on
        the reference, whose behaviour the seed's is.  Left out, with a message, where
        the seed cannot be compiled."""
        from xbdspec.verify import seed_missing

        from .builtin import resolve
        from .cli import sweep_for

        missing = seed_missing()
        if missing:
            print(f"  compiled seed campaigns left out: {missing}", file=sys.stderr)
            return
        factory, sizes = resolve("c-driver")
        sweep = sweep_for(factory, sizes, argparse.Namespace(no_sweep=False, sizes=None))
        for seed in seeds:
            campaign = Campaign(factory, sweep[0].sizes, FULL, seed, 60, None, configurations=sweep)
            self._examine(campaign, examples, sweep, f"compiled seed, seed {seed}", True)

    def exploration(self, max_states: int) -> None:
        """Step 2 over the bounded exploration of the reference (its report names one new
        divergence at a time: explore again until none is new)."""
        from xbdspec.explore.reference import explore_reference

        default = REFERENCE_SWEEP[0]
        for _ in range(50):
            report = explore_reference(max_states=max_states)
            new = [v for v in report.violations.values() if not v.known]
            if not new:
                return
            violation = new[0]
            divergence, _ = run_on(default, violation.steps, Fixes())
            if divergence is None:
                return
            key = signature_of(divergence).key()
            if key in self.unexplained:
                return
            self.variant(divergence, list(divergence.steps), default)

    def write(self) -> None:
        """Rewrite :mod:`.known_signatures` and the variant replays."""
        VARIANTS.mkdir(exist_ok=True)
        for old in VARIANTS.glob("*.jsonl"):
            if old.name not in self.variants:
                old.unlink()
        for file, (configuration, steps) in sorted(self.variants.items()):
            replay.write(VARIANTS / file, configuration.sizes, steps, configuration)
        body = pprint.pformat(
            {k: tuple(v) for k, v in self.table.items()}, width=88, sort_dicts=False
        )
        text = MODULE.read_text(encoding="utf-8")
        head = text[: text.index("KNOWN_SIGNATURES:")]
        MODULE.write_text(
            head + f"KNOWN_SIGNATURES: dict[str, tuple[dict[str, Any], ...]] = {body}\n",
            encoding="utf-8",
        )
        ruff = Path(sys.executable).parent / "ruff"
        if ruff.exists():
            subprocess.run([str(ruff), "format", "-q", str(MODULE)], check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xbdspec.conformance.harvest")
    parser.add_argument("--write", action="store_true", help="rewrite the catalogue")
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 7, 11, 42])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--max-states", type=int, default=1500)
    parser.add_argument(
        "--compiled-examples",
        type=int,
        default=100,
        help="examples of each compiled-seed campaign (0: none)",
    )
    parser.add_argument(
        "--also",
        type=Path,
        nargs="*",
        default=[],
        help="replays (files or folders) to examine as well: divergences a campaign at "
        "another seed, the stateful suite or a user found",
    )
    parser.add_argument(
        "--unexplained-dir",
        type=Path,
        help="write each divergence nothing known explains there as a replay (<key>.jsonl)",
    )
    args = parser.parse_args(argv)
    harvest = Harvest()
    harvest.install()
    harvest.own_replays()
    print(f"own replays: {sum(len(v) for v in harvest.table.values())} signatures", file=sys.stderr)
    harvest.programs([VARIANTS, *args.also])
    print(f"  kept and given replays: {len(harvest.variants)} variants", file=sys.stderr)
    harvest.campaigns(args.seeds, args.examples)
    harvest.compiled_seed_campaigns(args.seeds, args.compiled_examples)
    harvest.exploration(args.max_states)
    print(
        json.dumps(
            {
                "signatures": {k: len(v) for k, v in harvest.table.items()},
                "variants": len(harvest.variants),
                "unexplained": harvest.unexplained,
                "unclaimed": harvest.unclaimed,
            },
            indent=2,
        )
    )
    if args.unexplained_dir is not None:
        args.unexplained_dir.mkdir(parents=True, exist_ok=True)
        for key, (configuration, steps) in sorted(harvest.unexplained_programs.items()):
            path = args.unexplained_dir / f"{key}.jsonl"
            replay.write(path, configuration.sizes, steps, configuration)
    if args.write:
        harvest.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
