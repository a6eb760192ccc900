"""``xbdspec check``: output, JSON document and exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xbdspec.cli import main

DATA = Path(__file__).parent / "data"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["check", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_document_of_a_valid_log(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, str(DATA / "linux_startup_unplug.log"), "--json")
    doc = json.loads(out)
    assert status == 0
    assert doc["valid"] is True and doc["first_divergence"] is None
    assert doc["events"] == 48 and doc["format"] == "oxenstored"
    assert isinstance(doc["seconds"], float)
    (dev,) = doc["devices"]
    # checked against the protocol model: Linux 6.1's Closed straight after Connected is
    # frontend_closed
    assert dev["device"] == "vbd 51712 of domain 5" and dev["verdict"] == "conforms"
    assert dev["checked_against"] == "protocol" and dev["gaps"] == []
    assert dev["final"]["fe_state"] == "Closed"


def test_against_the_freebsd_model_linux_closing_directly_is_outside_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(
        capsys, str(DATA / "linux_startup_unplug.log"), "--json", "--frontend", "freebsd"
    )
    (dev,) = json.loads(out)["devices"]
    assert status == 0 and dev["verdict"] == "outside-model"
    assert [g["kind"] for g in dev["gaps"]] == ["FrontClosedDirectly"]


def test_json_document_of_a_divergent_log(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, str(DATA / "two_guests.log"), "--json")
    doc = json.loads(out)
    assert status == 1 and doc["valid"] is False
    first = doc["first_divergence"]
    assert first["line"] == 40
    assert first["event"] == "frontend commits {front/state=3}"
    assert "the transport keys are published before Initialised" in first["reason"]
    assert "frontend_publish_transport_initialised" in first["allowed"]
    assert [d["verdict"] for d in doc["devices"]] == ["conforms", "violation"]


def test_text_report_of_a_divergent_jsonl_trace(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, str(DATA / "jsonl" / "skipped_publish.jsonl"))
    assert status == 1
    assert "line 4: divergence: backend_watch()" in out
    assert "the model allowed: unplug(); frontend_watch()" in out
    assert out.rstrip().endswith("DIVERGENT")


def test_unverifiable_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, str(DATA / "cut_value.log"))
    assert status == 3 and "unverifiable" in out


def test_malformed_input_exits_2_with_the_line_and_no_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run(capsys, str(DATA / "malformed.log"), "--json")
    # the verdicts reached before the malformed line are still printed
    doc = json.loads(out)
    assert status == 2 and doc["valid"] is False and doc["stopped_at"].endswith(":12")
    assert doc["events"] == 11 and len(doc["devices"]) == 1
    assert "malformed.log:12: not an oxenstored access-log line" in err
    assert "Traceback" not in err


def test_a_forced_format_that_does_not_fit_is_an_input_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = run(capsys, str(DATA / "two_guests.log"), "--format", "jsonl")
    assert status == 2 and "two_guests.log:1: not a JSON object" in err


def test_an_unknown_kind_of_file_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tmp_path / "odd.txt"
    odd.write_text("hello\n")
    status, _, err = run(capsys, str(odd))
    assert status == 2 and "odd.txt:1: neither a JSON-lines trace" in err


def test_a_missing_file_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, str(tmp_path / "nope.log"))
    assert status == 2 and "cannot open the trace" in err


def test_nb_chars_tells_where_lines_are_cut(capsys: pytest.CaptureFixture[str]) -> None:
    # the same file read as a log whose lines are never cut: the protocol value is
    # then taken as written, and the check goes on to the end
    status, out, _ = run(capsys, str(DATA / "cut_value.log"), "--nb-chars", "0", "--json")
    doc = json.loads(out)
    assert doc["devices"][0]["unverifiable"] is None
    assert status == 0


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ('{"xbdspec_trace": 1, "sizes": {"bios": 100000000}}', "is above 8"),
        ('{"xbdspec_trace": 1, "sizes": {"commands": 1' + "0" * 5000 + "}}", "not a JSON object"),
        ("[" * 50_000, "not an oxenstored access-log line"),
        ("{" + '"a":' * 0 + '"x": ' + "[" * 50_000, "nested too deeply"),
    ],
)
def test_hostile_trace_headers_are_named_errors(
    header: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "hostile.jsonl"
    trace.write_text(header + "\n")
    status, _, err = run(capsys, str(trace))
    assert status == 2 and message in err and "Traceback" not in err


def test_standard_input_and_fifos_are_read_as_streams(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import os
    import threading

    text = (DATA / "netbsd_one_transaction.log").read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    status, out, _ = run(capsys, "-")
    assert status == 0 and "conforms" in out
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(text))
    writer.start()
    status, out, _ = run(capsys, str(fifo))
    writer.join(timeout=10)
    assert status == 0 and "conforms" in out
