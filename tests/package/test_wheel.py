"""The installed package is the product: a wheel built from the checkout, installed in a
fresh virtual environment, carries everything it reads at run time, and its commands
work from an empty directory."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (found,) = out.glob("xbdspec-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv with the wheel (no dependencies: those come from this test's
    environment through PYTHONPATH, which does not read the checkout's editable link)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"])
    env.pop("XBD_BLKFRONT", None)
    return python, env


def test_the_wheel_carries_the_runtime_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    replays = [
        n for n in names if n.startswith("xbdspec/findings/replays/") and n.endswith(".jsonl")
    ]
    assert len(replays) >= 12
    assert "xbdspec/cimpl/queue_core.c" in names
    assert "xbdspec/shim/src/shim.c" in names and any(
        n.startswith("xbdspec/shim/include/") for n in names
    )
    assert "xbdspec/model/protocol/spec.py" in names and "xbdspec/world/harness.py" in names
    assert any(n.endswith("LICENSE") for n in names)


def _run(
    installed: tuple[Path, dict[str, str]], cwd: Path, *argv: str
) -> subprocess.CompletedProcess[str]:
    python, env = installed
    return subprocess.run(
        [str(python), "-m", "xbdspec", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_installed_commands_work_from_an_empty_directory(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    done = _run(installed, tmp_path, "--version")
    assert done.returncode == 0 and done.stdout.startswith("xbdspec ")
    # the package it runs is the installed one, not the checkout
    python, env = installed
    where = subprocess.run(
        [str(python), "-c", "import xbdspec, sys; print(xbdspec.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(ROOT) not in where
    findings = _run(installed, tmp_path, "findings", "--json")
    assert findings.returncode == 0, findings.stderr[-2000:]
    assert "no replay" not in findings.stdout
    prove = _run(
        installed,
        tmp_path,
        "prove",
        "--only",
        "protocol.initial_*",
        "--only",
        "initial_refines_protocol",
    )
    assert prove.returncode == 0, prove.stdout[-2000:]
    difftest = _run(
        installed,
        tmp_path,
        "difftest",
        "--contract",
        "freebsd",
        "--impl",
        "c-queue-core",
        "--examples",
        "3",
        "--seed",
        "1",
        "--replay-dir",
        str(tmp_path / "r"),
    )
    assert difftest.returncode in (0, 1), difftest.stderr[-2000:]
    # nothing was written into the empty directory but what was asked for
    assert {p.name for p in tmp_path.iterdir()} <= {"r"}


def test_a_crash_of_the_tool_is_its_own_status_never_a_verdict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from xbdspec import cli
    from xbdspec.traces import cli as traces_cli

    def broken(args: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(traces_cli, "run", broken)
    assert cli.main(["check", "x"]) == cli.EXIT_CRASH == 4
    err = capsys.readouterr().err
    assert "internal error (RuntimeError: a bug)" in err and "please report" in err
    assert "Traceback" not in err
