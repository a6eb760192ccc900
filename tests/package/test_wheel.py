"""The installed package is the product: a wheel built from the checkout, installed in a
fresh virtual environment, carries everything it reads at run time, and every command
works from an empty directory, writing nothing there it was not asked to; the sdist
carries the sources and builds the same wheel; the metadata states ranges, not pins."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SEED = Path(os.environ.get("XBD_BLKFRONT") or ROOT.parent / "shared" / "seed" / "blkfront.c")

#: checkout folder -> where the wheel installs it (pyproject's package-dir)
LAYOUT = {
    "xbdspec": "xbdspec",
    "model": "xbdspec/model",
    "reference": "xbdspec/reference",
    "proofs": "xbdspec/proofs",
    "cimpl": "xbdspec/cimpl",
    "shim": "xbdspec/shim",
    "shim-linux": "xbdspec/shim_linux",
    "examples": "xbdspec/examples",
}


def _pip_wheel(source: Path, out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (found,) = out.glob("xbdspec-*.whl")
    return found


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, built as a release is (``python -m build`` does the same): in a fresh
    venv holding only the project's build requirement."""
    where = tmp_path_factory.mktemp("sdist")
    builder = where / "builder"
    subprocess.run([sys.executable, "-m", "venv", str(builder)], check=True, timeout=120)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    subprocess.run(
        [str(builder / "bin" / "python"), "-m", "pip", "install", "-q", *requires],
        check=True,
        capture_output=True,
        timeout=600,
    )
    subprocess.run(
        [
            str(builder / "bin" / "python"),
            "-c",
            "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])",
            str(where),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    (found,) = where.glob("xbdspec-*.tar.gz")
    return found


@pytest.fixture(scope="module")
def wheel(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from the sdist, as a release's is.  (A wheel built in the checkout
    would also hold whatever a former build left in ``build/lib``.)"""
    return _pip_wheel(sdist, tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv with the wheel (no dependencies: those come from this test's
    environment through PYTHONPATH, which does not read the checkout's editable link);
    what the package builds goes to a temporary build directory, not the user's cache."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = dict(
        os.environ,
        PYTHONPATH=sysconfig.get_paths()["purelib"],
        XBDSPEC_BUILD_DIR=str(tmp_path_factory.mktemp("build")),
    )
    env.pop("XBD_BLKFRONT", None)
    return python, env


def _package_files() -> set[str]:
    """Every file of the installed packages' source folders, as the wheel names it."""
    found = set()
    for folder, installed_as in LAYOUT.items():
        for path in (ROOT / folder).rglob("*"):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            found.add(f"{installed_as}/{path.relative_to(ROOT / folder).as_posix()}")
    return found


def test_the_wheel_carries_the_runtime_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    # every file of the packages: replays, variants, schemas, C sources, headers, examples
    missing = sorted(_package_files() - names)
    assert not missing, missing
    # and nothing else: no stale file, every page a page of the checkout's docs
    docs = {n for n in names if n.startswith("xbdspec/docs/")}
    assert all((ROOT / "docs" / n.removeprefix("xbdspec/docs/")).is_file() for n in docs)
    extra = sorted(names - _package_files() - docs)
    assert all(".dist-info/" in n for n in extra), extra
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
    assert "xbdspec/schema/envelope.schema.json" in names  # the --json envelope's schema
    # the documentation pages that messages and --help cite ship with the package
    for page in ("stdio-v2.md", "conformance.md", "explorer.md", "findings/index.md"):
        assert f"xbdspec/docs/{page}" in names, page
    assert "xbdspec/docs/diagrams/frontend.md" in names  # verify's diagram check reads them


def test_the_metadata_states_ranges_and_constraints_pin_them(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        (meta_name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(zf.read(meta_name))
    assert meta["License-Expression"] == "BSD-2-Clause"
    assert meta.get_all("Project-URL") and len(meta.get_all("Classifier") or []) >= 5
    runtime = [Requirement(r) for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert runtime
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    for req in runtime:
        # a range (a pytest plugin must not force its users' versions), never one version
        assert not any(s.operator in ("==", "===") for s in req.specifier), req
        pinned = pins.get(req.name.lower())
        assert pinned is not None, f"{req.name} has no exact pin in constraints.txt"
        assert req.specifier.contains(pinned), f"{req.name}=={pinned} is outside {req}"


def test_the_sdist_carries_the_sources_and_what_a_checkout_needs(sdist: Path) -> None:
    """The sdist holds the sources, the licence, the constraints, the docs, the tests and
    the tools (``make test`` works from it), and nothing built."""
    with tarfile.open(sdist) as tf:
        members = {m.name.split("/", 1)[1] for m in tf.getmembers() if "/" in m.name}
    for name in (
        "LICENSE",
        "README.md",
        "pyproject.toml",
        "constraints.txt",
        "Makefile",
        "cimpl/queue_core.c",
        "shim/src/shim.c",
        "docs/stdio-v2.md",
        "xbdspec/findings/replays/failed-mapping-leaks.jsonl",
        "xbdspec/schema/envelope.schema.json",
        "tests/package/test_wheel.py",
        "tools/typecheck.py",
    ):
        assert name in members, name
    assert not [m for m in members if m.startswith(("build/", ".venv/")) or "__pycache__" in m]


def _run(
    installed: tuple[Path, dict[str, str]], cwd: Path, *argv: str, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    python, env = installed
    return subprocess.run(
        [str(python), "-m", "xbdspec", *argv],
        cwd=cwd,
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _installed_file(
    installed: tuple[Path, dict[str, str]], cwd: Path, module: str, *parts: str
) -> str:
    """A file of the installed package (run from ``cwd``: Python puts the current
    directory first on ``sys.path``, and the checkout's ``xbdspec/`` would be found)."""
    python, env = installed
    where = f"pathlib.Path({module}.__file__).parent.joinpath(*{parts!r})"
    code = f"import {module}, pathlib; print({where})"
    return subprocess.run(
        [str(python), "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


#: Every command, as a user would first try it, from an empty directory: the arguments,
#: the exit statuses that count as working, what the output must say, what it may write.
COMMANDS = {
    "version": (["--version"], {0}, "xbdspec ", set()),
    "simulate": (["simulate", "--ios", "50", "--json"], {0}, '"command": "simulate"', set()),
    "diagram": (["diagram", "--out", "pages"], {0}, "pages", {"pages"}),
    "prove": (
        ["prove", "--only", "protocol.initial_*", "--only", "initial_refines_protocol"],
        {0},
        "initial",
        set(),
    ),
    "explore": (
        ["explore", "--commands", "1", "--bios", "1", "--suspends", "0", "--unplugs", "0"],
        {0},
        "no violation",
        set(),
    ),
    "difftest": (
        ["difftest", "--impl", "tutorial", "--examples", "3", "--seed", "1"],
        {0},
        "",
        set(),
    ),
    "difftest-freebsd": (
        [
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
            "r",
        ],
        {0, 1},
        "",
        {"r"},
    ),
    "check": (
        ["check", str(ROOT / "tests" / "protocol" / "scenarios" / "linux_startup.jsonl")],
        {0},
        "conforms",
        set(),
    ),
    "findings": (["findings", "--json"], {0}, '"command": "findings"', set()),
    "verify": (
        [
            "verify",
            "--only",
            "diagrams",
            "--only",
            "reference simulation",
            "--only",
            "differential campaign (compiled seed)",
            "--only",
            "ruff",
            "--only",
            "mypy",
        ],
        {0},
        "XBD_BLKFRONT",
        set(),
    ),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_works_installed_from_an_empty_directory(
    name: str, installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    argv, statuses, said, writes = COMMANDS[name]
    done = _run(installed, tmp_path, *argv)
    assert done.returncode in statuses, (done.stdout[-2000:], done.stderr[-2000:])
    assert said in done.stdout, (done.stdout[-2000:], done.stderr[-2000:])
    assert "no replay" not in done.stdout
    # nothing was written into the empty directory but what was asked for
    assert {p.name for p in tmp_path.iterdir()} <= writes
    if name == "diagram":  # and the pages written are the model's
        check = _run(installed, tmp_path, "diagram", "--check", "--out", "pages")
        assert check.returncode == 0, check.stderr
    if name == "verify":  # the checkout's own checks and the absent seed say why not
        assert "ruff" in done.stdout and "a check of the checkout's sources" in done.stdout
        assert "documented diagrams match the model" in done.stdout


def test_the_help_of_every_command_and_the_installed_replays(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    from xbdspec.cli import SUBCOMMANDS

    # every command is run installed: in COMMANDS, or (itf, which needs an installed
    # replay) below
    assert set(SUBCOMMANDS) <= {argv[0] for argv, *_ in COMMANDS.values()} | {"itf"}
    for command in ["", *SUBCOMMANDS]:
        done = _run(installed, tmp_path, *([command] if command else []), "--help")
        assert done.returncode == 0 and "usage: xbdspec" in done.stdout, done.stderr
    # the package runs itself, not the checkout
    python, env = installed
    where = subprocess.run(
        [str(python), "-c", "import xbdspec; print(xbdspec.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(ROOT) not in where
    replay = _installed_file(
        installed, tmp_path, "xbdspec.findings", "replays", "failed-mapping-leaks.jsonl"
    )
    assert replay.startswith(str(installed[0].parent.parent))  # the venv's copy
    done = _run(installed, tmp_path, "itf", replay, "--out", "trace.itf.json")
    assert done.returncode == 0, done.stderr
    assert {p.name for p in tmp_path.iterdir()} == {"trace.itf.json"}


@pytest.mark.skipif(
    not SEED.is_file(), reason=f"no seed driver at {SEED} (set XBD_BLKFRONT to run this)"
)
def test_the_installed_package_compiles_the_seed_named_by_xbd_blkfront(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    done = _run(
        installed,
        tmp_path,
        "difftest",
        "--impl",
        "seed",
        "--examples",
        "2",
        "--seed",
        "1",
        XBD_BLKFRONT=str(SEED),
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []


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
