"""``xbdspec prove``: discharge every proof obligation and say what each gave.

Prints a table (obligation, kind, bound, result, seconds) with progress while it
runs; ``--json`` prints ``{"obligations": [...]}`` instead.  The exit status is 0
when every result is the one the project expects (a refutation that documents a
known finding of the seed is expected, and says so), 1 otherwise.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from .registry import build_registry
from .results import Obligation, Outcome, Result

_REGISTRY: list[Obligation] | None = None


def _registry() -> list[Obligation]:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = build_registry()
    return _REGISTRY


#: rough relative cost of an obligation of each kind (measured: a bounded check is one
#: solver run over 20 unrolled steps, an arithmetic refutation minimises its
#: counterexample), for the order the worker pool takes them in
_COST = {
    "bounded": 20.0,
    "arithmetic": 4.0,
    "inductive": 3.0,
    "refinement": 3.0,
    "k-induction": 2.0,
}


def _run_one(index: int) -> tuple[int, Outcome]:
    return index, _registry()[index].run()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--only",
        metavar="NAME",
        action="append",
        default=[],
        help="run only obligations whose name matches NAME (a glob; repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--list", action="store_true", help="list the obligations and exit")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes (default: 2)",
    )
    parser.add_argument("--show", action="store_true", help="print every counterexample in full")


def selected(obligations: list[Obligation], patterns: list[str]) -> list[int]:
    """Indices of the obligations ``patterns`` select (all when none are given)."""
    if not patterns:
        return list(range(len(obligations)))
    return [
        i
        for i, o in enumerate(obligations)
        if any(fnmatch.fnmatchcase(o.name, p) or p == o.name for p in patterns)
    ]


def verdict_line(o: Obligation, r: Outcome) -> str:
    """Whether the result is what the project expects, in words."""
    if r.result is o.expected:
        return "expected: finding " + o.finding if o.finding else "ok"
    return f"UNEXPECTED (expected {o.expected.value})"


def run(args: argparse.Namespace) -> int:
    obligations = _registry()
    chosen = selected(obligations, args.only)
    if not chosen:
        print(f"xbdspec prove: no obligation matches {args.only}", file=sys.stderr)
        return 2
    if args.list:
        for i in chosen:
            o = obligations[i]
            print(f"{o.name}  [{o.kind}]  {o.statement}")
        return 0
    start = time.perf_counter()
    outcomes: dict[int, Outcome] = {}
    progress = sys.stderr.isatty() or not args.json
    if args.jobs > 1 and len(chosen) > 1:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
            # the costliest first, so that no worker is left with a long one at the end
            order = sorted(chosen, key=lambda i: -_COST.get(obligations[i].kind, 1.0))
            futures = [pool.submit(_run_one, i) for i in order]
            for future in as_completed(futures):
                index, outcome = future.result()
                outcomes[index] = outcome
                if progress:
                    _progress(len(outcomes), len(chosen), obligations[index], outcome)
    else:
        for index in chosen:
            outcomes[index] = obligations[index].run()
            if progress:
                _progress(len(outcomes), len(chosen), obligations[index], outcomes[index])
    elapsed = time.perf_counter() - start
    if progress:
        print(file=sys.stderr)
    unexpected = [i for i in chosen if outcomes[i].result is not obligations[i].expected]
    if args.json:
        print(json.dumps(_as_json(obligations, chosen, outcomes, elapsed), indent=2))
    else:
        _print_table(obligations, chosen, outcomes, elapsed, show=args.show)
    return 1 if unexpected else 0


def _progress(done: int, total: int, o: Obligation, r: Outcome) -> None:
    mark = "." if r.result is o.expected else "!"
    print(f"\r[{done}/{total}] {mark} {o.name[:60]:60s}", end="", file=sys.stderr, flush=True)


def _as_json(
    obligations: list[Obligation], chosen: list[int], outcomes: dict[int, Outcome], elapsed: float
) -> dict[str, Any]:
    items = []
    for i in chosen:
        o, r = obligations[i], outcomes[i]
        items.append(
            {
                "name": o.name,
                "kind": o.kind,
                "bound": o.bound,
                "statement": o.statement,
                "result": r.result.value,
                "expected": o.expected.value,
                "finding": o.finding,
                "as_expected": r.result is o.expected,
                "seconds": round(r.seconds, 4),
                "detail": r.detail,
                "counterexample": r.counterexample or None,
                "replay": r.replay,
            }
        )
    return {
        "obligations": items,
        "seconds": round(elapsed, 3),
        "unexpected": [
            obligations[i].name for i in chosen if outcomes[i].result is not obligations[i].expected
        ],
    }


def _print_table(
    obligations: list[Obligation],
    chosen: list[int],
    outcomes: dict[int, Outcome],
    elapsed: float,
    *,
    show: bool,
) -> None:
    width = max(len(obligations[i].name) for i in chosen)
    print(f"{'obligation':{width}}  {'kind':12}  {'result':8}  {'seconds':>8}  verdict / bound")
    for i in chosen:
        o, r = obligations[i], outcomes[i]
        print(
            f"{o.name:{width}}  {o.kind:12}  {r.result.value:8}  {r.seconds:8.2f}  "
            f"{verdict_line(o, r)}; {o.bound}"
        )
        if r.result is not Result.PROVED and (show or r.result is not o.expected):
            if r.detail:
                print(f"    {r.detail}")
            for line in r.counterexample if show or r.result is not o.expected else []:
                print(f"  {line}")
        elif r.result is Result.REFUTED and r.detail:
            print(f"    {r.detail}")
    counts = {res: sum(1 for i in chosen if outcomes[i].result is res) for res in Result}
    unexpected = sum(1 for i in chosen if outcomes[i].result is not obligations[i].expected)
    known = sum(
        1 for i in chosen if obligations[i].finding and outcomes[i].result is Result.REFUTED
    )
    print(
        f"\n{len(chosen)} obligations: {counts[Result.PROVED]} proved, "
        f"{counts[Result.REFUTED]} refuted ({known} documenting known findings), "
        f"{counts[Result.UNKNOWN]} unknown; {unexpected} unexpected; {elapsed:.1f} s"
    )
