"""The six front ends' start-up, detach and reconnect, as their sources write them,
get the verdict the headers give them; subtly wrong behaviour is still a violation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from xbdspec.errors import InputError
from xbdspec.traces.protocol import Commit, Verdict, check_commits, check_scenario, read_commits

SCENARIOS = Path(__file__).parent / "scenarios"
FILES = sorted(SCENARIOS.glob("*.jsonl"))
FRONT_ENDS = {"freebsd", "linux", "netbsd", "openbsd", "minios", "mirageos"}
#: Front ends that write Connected in their key transaction (Mini-OS, MirageOS).
TOLERATED = {"minios", "mirageos"}


def test_every_front_end_has_its_startup_and_detach() -> None:
    names = {p.stem for p in FILES}
    for fe in FRONT_ENDS:
        assert {f"{fe}_startup", f"{fe}_detach"} <= names
    assert {"minios_reconnect", "mirageos_reconnect", "linux_reconnect"} <= names


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_scenario_gets_the_verdict_the_headers_give(path: Path) -> None:
    header, report = check_scenario(str(path))
    # the fixture says which driver source (file and version) it was written from
    assert header["frontend"] in FRONT_ENDS and header["source"] and header["version"]
    assert report.commits > 5 and report.steps
    if header["frontend"] in TOLERATED:
        assert report.verdict == Verdict.TOLERATED, report.violation
        assert report.deviations == ["connected-in-key-transaction"]
    else:
        assert report.verdict == Verdict.CONFORMS, report.violation


def _steps(name: str) -> list[str]:
    _, report = check_scenario(str(SCENARIOS / f"{name}.jsonl"))
    return [s.split("(")[0] for s in report.steps]


def test_the_paths_each_driver_takes() -> None:
    # Linux 6.1 answers the back end's Closing (libxl's detach) with Closed directly
    linux = _steps("linux_detach")
    assert "toolstack_detach" in linux and "frontend_closed" in linux
    assert "frontend_closing" not in linux
    # Linux writes its keys in a transaction, then Initialised outside it
    assert linux[:3] == ["backend_init_wait", "frontend_publish_transport", "frontend_initialised"]
    # FreeBSD closes through Closing
    freebsd = _steps("freebsd_detach")
    assert freebsd.index("frontend_closing") < freebsd.index("frontend_closed")
    # Mini-OS reconnects: Closed, Initialising, the back end back to InitWait
    minios = _steps("minios_reconnect")
    assert "frontend_reconnect" in minios and minios.count("backend_init_wait") == 2
    assert minios.count("frontend_publish_transport_connected") == 2
    # NetBSD and OpenBSD may go Initialised before the back end's InitWait (defaults)
    for early in ("netbsd_startup_early", "openbsd_startup_early"):
        steps = _steps(early)
        assert steps.index("frontend_initialised") < steps.index("backend_init_wait")


# --------------------------------------------------------------------------- variants

BASE = [
    {"by": "toolstack", "writes": {"back/online": "1", "back/state": "1", "front/state": "1"}},
    {
        "by": "backend",
        "writes": {"back/max-ring-page-order": "2", "back/multi-queue-max-queues": "2"},
    },
    {"by": "backend", "writes": {"back/state": "2"}},
]
KEYS = {"front/ring-ref": "8", "front/event-channel": "17", "front/protocol": "x86_64-abi"}
CONNECT = [
    {"by": "frontend", "writes": {**KEYS, "front/state": "3"}},
    {
        "by": "backend",
        "writes": {"back/sectors": "2048", "back/info": "0", "back/sector-size": "512"},
    },
    {"by": "backend", "writes": {"back/state": "4"}},
    {"by": "frontend", "writes": {"front/state": "4"}},
]


def join(*parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The commits of ``parts``, one after the other."""
    return [commit for part in parts for commit in part]


def _check(commits: list[dict[str, Any]]) -> Any:
    lines = [json.dumps({"scenario": "variant"}), *(json.dumps(c) for c in commits)]
    _, parsed = read_commits(lines, "variant")
    return check_commits(parsed)


LEGAL = {
    "the whole start-up": BASE + CONNECT,
    "keys and Initialised in one transaction, then Closed directly": join(
        BASE,
        CONNECT,
        [
            {"by": "toolstack", "writes": {"back/online": "0", "back/state": "5"}},
            {"by": "frontend", "writes": {"front/state": "6"}},
            {"by": "backend", "writes": {"back/state": "6"}},
            {"by": "toolstack", "remove": ["front", "back"]},
        ],
    ),
    "the back end skips InitWait": join(
        BASE[:1], [{"by": "backend", "writes": {"back/state": "3"}}], CONNECT
    ),
    "the front end Initialised before InitWait, with defaults": join(
        BASE[:1],
        [{"by": "frontend", "writes": {**KEYS, "front/state": "3"}}],
        BASE[1:],
        CONNECT[1:],
    ),
    "the back end closes on its own error while Connected": join(
        BASE,
        CONNECT,
        [
            {"by": "backend", "writes": {"back/state": "5"}},
            {"by": "backend", "writes": {"back/state": "6"}},
        ],
    ),
    "four pages in both schemes, agreeing": join(
        BASE,
        [
            {
                "by": "frontend",
                "writes": {
                    "front/ring-page-order": "2",
                    "front/num-ring-pages": "4",
                    **{f"front/ring-ref{i}": str(8 + i) for i in range(4)},
                    "front/event-channel": "17",
                    "front/state": "3",
                },
            }
        ],
        CONNECT[1:],
    ),
    "two queues under queue-N/": join(
        BASE,
        [
            {
                "by": "frontend",
                "writes": {
                    "front/multi-queue-num-queues": "2",
                    "front/queue-0/ring-ref": "8",
                    "front/queue-0/event-channel": "17",
                    "front/queue-1/ring-ref": "9",
                    "front/queue-1/event-channel": "18",
                    "front/state": "3",
                },
            }
        ],
        CONNECT[1:],
    ),
}


@pytest.mark.parametrize("name", sorted(LEGAL))
def test_legal_behaviour_conforms(name: str) -> None:
    report = _check(LEGAL[name])
    assert report.verdict == Verdict.CONFORMS, report.violation


WRONG = {
    "Connected before the back end published": (
        BASE + CONNECT[:1] + [{"by": "frontend", "writes": {"front/state": "4"}}],
        "the back end is Connected",
    ),
    "a transport key written after Initialised": (
        BASE + CONNECT[:1] + [{"by": "frontend", "writes": {"front/ring-ref": "9"}}],
        "frontend_publish_transport is a step from Initialising only",
    ),
    "the back end Connected before the front end's keys": (
        [*BASE, {"by": "backend", "writes": {"back/state": "4"}}],
        "the front end's transport keys are published",
    ),
    "Connected then Initialised without Closed": (
        BASE + CONNECT + [{"by": "frontend", "writes": {"front/state": "3"}}],
        "frontend_initialised is a step from Initialising only",
    ),
    "a transport rewrite while Connected": (
        BASE + CONNECT + [{"by": "frontend", "writes": {**KEYS, "front/event-channel": "19"}}],
        "frontend_publish_transport is a step from Initialising only",
    ),
    "more queues than offered": (
        join(
            BASE,
            [
                {
                    "by": "frontend",
                    "writes": {
                        "front/multi-queue-num-queues": "3",
                        **{f"front/queue-{q}/ring-ref": "8" for q in range(3)},
                        **{f"front/queue-{q}/event-channel": "17" for q in range(3)},
                        "front/state": "3",
                    },
                }
            ],
        ),
        "multi-queue-num-queues is at most",
    ),
    "a higher ring order than offered": (
        join(
            BASE,
            [
                {
                    "by": "frontend",
                    "writes": {
                        "front/ring-page-order": "3",
                        **{f"front/ring-ref{i}": "8" for i in range(8)},
                        "front/event-channel": "17",
                        "front/state": "3",
                    },
                }
            ],
        ),
        "ring-page-order is at most",
    ),
    "a top-level ring-ref beside queues": (
        join(
            BASE,
            [
                {
                    "by": "frontend",
                    "writes": {
                        "front/multi-queue-num-queues": "2",
                        "front/ring-ref": "7",
                        **{f"front/queue-{q}/ring-ref": "8" for q in range(2)},
                        **{f"front/queue-{q}/event-channel": "17" for q in range(2)},
                        "front/state": "3",
                    },
                }
            ],
        ),
        "top-level ring-ref and event-channel are written exactly when one queue",
    ),
    "the two ring schemes disagree": (
        join(
            BASE,
            [
                {
                    "by": "frontend",
                    "writes": {
                        "front/ring-page-order": "1",
                        "front/num-ring-pages": "4",
                        **{f"front/ring-ref{i}": "8" for i in range(2)},
                        "front/event-channel": "17",
                    },
                }
            ],
        ),
        "disagree",
    ),
    "a multi-page ring before the back end's InitWait": (
        join(
            BASE[:1],
            [
                {
                    "by": "frontend",
                    "writes": {
                        "front/ring-page-order": "1",
                        **{f"front/ring-ref{i}": "8" for i in range(2)},
                        "front/event-channel": "17",
                        "front/state": "3",
                    },
                }
            ],
        ),
        "hold their defaults",
    ),
    "a front end state no step writes": (
        [*BASE, {"by": "frontend", "writes": {"front/state": "2"}}],
        "which no protocol step writes",
    ),
}


@pytest.mark.parametrize("name", sorted(WRONG))
def test_subtly_wrong_behaviour_is_a_violation(name: str) -> None:
    commits, why = WRONG[name]
    report = _check(commits)
    assert report.verdict == Verdict.VIOLATION
    assert why in report.violation, report.violation
    # the report names the commit (its line) that broke the rule
    assert report.violation.startswith(f"variant:{len(commits) + 1}:")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"by": "guest", "writes": {}}', "'by' must be"),
        ('{"by": "frontend", "writes": {"front/state": "３"}}', "not a decimal number"),
        ('{"by": "frontend", "writes": {"front/state": "٢"}}', "not a decimal number"),
        ('{"by": "frontend", "writes": {"elsewhere/state": "1"}}', "neither front/ nor back/"),
        ("[" * 60_000, "not a JSON object"),
        ("x" * 70_000, "longer than"),
    ],
)
def test_hostile_commits_are_named_errors(line: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        _, commits = read_commits(['{"scenario": "x"}', line], "hostile")
        check_commits(commits)
    assert caught.value.source.startswith("hostile:")


def test_a_commit_is_a_frozen_record() -> None:
    commit = Commit("frontend", {"front/state": "1"}, (), "x:1")
    with pytest.raises(AttributeError):
        commit.by = "backend"  # type: ignore[misc]


def test_check_reads_commits_and_exits_with_the_verdict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from xbdspec.cli import main

    assert main(["check", str(SCENARIOS / "minios_startup.jsonl")]) == 0
    assert "tolerated deviation connected-in-key-transaction" in capsys.readouterr().out
    assert main(["check", "--json", str(SCENARIOS / "linux_detach.jsonl")]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "conforms"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"scenario": "x"}\n{"by": "backend", "writes": {"back/state": "4"}}\n')
    assert main(["check", str(bad)]) == 1
    assert f"{bad}:2: backend commits" in capsys.readouterr().out
