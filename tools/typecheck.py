"""Run mypy --strict on the project as the installed package sees it.

The design card keeps ``model/``, ``reference/`` and ``proofs/`` at the top level and
installs them as ``xbdspec.model`` and so on (setuptools ``package-dir``).  mypy can
follow neither an editable install's import hook nor symbolic links to folders, so
this script copies the sources into ``build/typecheck/xbdspec`` in the installed
layout, runs mypy there, and prints the messages with the repository's own paths.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"
#: installed package -> folder in the repository
LAYOUT = {
    "xbdspec": "xbdspec",
    "xbdspec/model": "model",
    "xbdspec/reference": "reference",
    "xbdspec/proofs": "proofs",
    "benchmarks": "benchmarks",
}
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def build_tree() -> None:
    if TREE.exists():
        shutil.rmtree(TREE)
    for installed, folder in LAYOUT.items():
        shutil.copytree(ROOT / folder, TREE / installed, ignore=IGNORE, dirs_exist_ok=True)


def mypy(search: list[Path], *args: str) -> int:
    env = dict(os.environ, MYPYPATH=os.pathsep.join(str(p) for p in search))
    cmd = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--no-incremental",
        *args,
    ]
    proc = subprocess.run(cmd, cwd=TREE, env=env, capture_output=True, text=True, check=False)
    text = proc.stdout + proc.stderr
    # longest installed paths first, so xbdspec/model maps to model/, not xbdspec/model
    for installed, folder in sorted(LAYOUT.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(f"{installed}/", f"{folder}/".replace("/", "\0"))
    sys.stdout.write(text.replace("\0", "/"))
    return proc.returncode


def main() -> int:
    """Type-check the package and the benchmarks, then each test folder on its own (test
    folders are not packages, and their helper modules are imported by name)."""
    build_tree()
    try:
        status = mypy([TREE], "-p", "xbdspec", "-p", "benchmarks")
        for folder in sorted({p.parent for p in (ROOT / "tests").rglob("test_*.py")}):
            files = sorted(str(p) for p in folder.glob("*.py"))
            status |= mypy([TREE, folder], *files)
    finally:
        shutil.rmtree(TREE, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
