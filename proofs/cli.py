"""``xbdspec prove``: discharge every proof obligation and say what each gave.

Prints a table (obligation, kind, bound, result, seconds), with a progress bar while it
runs when standard error is a terminal; ``--json`` prints the envelope
(:mod:`xbdspec.output`) with ``obligations`` instead.  The exit status is 0 when every
result is the one the project expects (a refutation that documents a known finding of
the seed is expected, and says so), 1 otherwise, 130 when Ctrl-C stopped the run (what
was proved by then is still printed).
"""

from __future__ import annotations

import argparse
import fnmatch
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from xbdspec.argtypes import int_range
from xbdspec.errors import XbdspecError
from xbdspec.terminal import Progress

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
        type=int_range(1, 256, "worker processes"),
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
    """Discharge the chosen obligations; print the table (or the ``--json`` envelope).

    Ctrl-C stops the run: the obligations discharged by then are still printed, marked
    interrupted, and the exit status is 130."""
    from xbdspec import output
    from xbdspec.cli import EXIT_INTERRUPTED

    obligations = _registry()
    chosen = selected(obligations, args.only)
    if not chosen:
        raise XbdspecError(
            f"no obligation matches {', '.join(args.only)}: `xbdspec prove --list` names them"
        )
    if args.list:
        if args.json:
            listed = [
                {"name": o.name, "kind": o.kind, "statement": o.statement}
                for o in (obligations[i] for i in chosen)
            ]
            output.emit(
                "prove",
                ok=True,
                counts={"obligations": len(chosen)},
                fields={"obligations": listed},
            )
            return 0
        for i in chosen:
            o = obligations[i]
            print(f"{o.name}  [{o.kind}]  {o.statement}")
        return 0
    start = time.perf_counter()
    outcomes: dict[int, Outcome] = {}
    interrupted = False
    bar = Progress("prove", total=len(chosen), unit="obligations", json_output=args.json)
    try:
        if args.jobs > 1 and len(chosen) > 1:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
                # the costliest first, so that no worker is left with a long one at the end
                order = sorted(chosen, key=lambda i: -_COST.get(obligations[i].kind, 1.0))
                futures = [pool.submit(_run_one, i) for i in order]
                try:
                    for future in as_completed(futures):
                        index, outcome = future.result()
                        outcomes[index] = outcome
                        _progress(bar, obligations[index], outcome, outcomes)
                except KeyboardInterrupt:
                    for future in futures:
                        future.cancel()
                    raise
        else:
            for index in chosen:
                outcomes[index] = obligations[index].run()
                _progress(bar, obligations[index], outcomes[index], outcomes)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    done = [i for i in chosen if i in outcomes]
    unexpected = [i for i in done if outcomes[i].result is not obligations[i].expected]
    status = EXIT_INTERRUPTED if interrupted else (1 if unexpected else 0)
    if args.json:
        data = _as_json(obligations, done, outcomes, elapsed)
        if interrupted:
            data["interrupted"] = True
            data["not_run"] = [obligations[i].name for i in chosen if i not in outcomes]
        counts = {res.value: sum(1 for i in done if outcomes[i].result is res) for res in Result}
        output.emit(
            "prove",
            ok=status == 0,
            counts={"obligations": len(done), **counts, "unexpected": len(unexpected)},
            fields=data,
        )
    else:
        if done:
            _print_table(obligations, done, outcomes, elapsed, show=args.show)
        if interrupted:
            print(f"INTERRUPTED: {len(chosen) - len(done)} of {len(chosen)} obligations not run")
    if interrupted:
        print("xbdspec prove: interrupted", file=sys.stderr)
    return status


def _progress(bar: Progress, o: Obligation, r: Outcome, outcomes: dict[int, Outcome]) -> None:
    """The bar after one more obligation: how many are done, the last one's name."""
    bar.update(len(outcomes), last=o.name[:48], result=r.result.value)


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
