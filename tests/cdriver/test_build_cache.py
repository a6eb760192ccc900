"""Build caches shared by processes: a cached directory appears whole or not at all.

Two commands at once, or the suite's workers, build the same ``build/<part>/<digest>``;
each builds in a staging directory of its own and renames it into place
(:func:`xbdspec.resources.staged_build`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from xbdspec.resources import staged_build, staged_file


def test_a_finished_build_is_published_whole(tmp_path: Path) -> None:
    final = tmp_path / "digest"
    with staged_build(final, "done") as work:
        assert work.parent == tmp_path and work != final
        assert not final.exists(), "nothing is visible under the final name while building"
        (work / "lib.so").write_text("lib")
        (work / "done").write_text("")
    assert sorted(p.name for p in final.iterdir()) == ["done", "lib.so"]
    assert [p.name for p in tmp_path.iterdir()] == ["digest"], "no staging directory is left"


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "digest"
    with pytest.raises(RuntimeError), staged_build(final, "done") as work:
        (work / "half.o").write_text("half")
        raise RuntimeError("the compiler failed")
    assert list(tmp_path.iterdir()) == []


def test_the_first_published_build_is_kept(tmp_path: Path) -> None:
    final = tmp_path / "digest"
    with staged_build(final, "done") as first, staged_build(final, "done") as second:
        (first / "done").write_text("first")
        (second / "done").write_text("second")
        # the inner block (second) ends first and publishes; the first then finds it
    assert (final / "done").read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["digest"]


def test_an_interrupted_older_build_is_replaced(tmp_path: Path) -> None:
    final = tmp_path / "digest"
    final.mkdir()
    (final / "half.o").write_text("left by a build killed before it finished")
    with staged_build(final, "done") as work:
        (work / "done").write_text("")
    assert sorted(p.name for p in final.iterdir()) == ["done"]


def test_a_staged_file_is_beside_its_final_name(tmp_path: Path) -> None:
    final = tmp_path / "frontend"
    staged = staged_file(final)
    assert staged.parent == tmp_path and staged.name.startswith(".frontend.")


BUILD_ONE = """
import sys
from pathlib import Path
from xbdspec.cdriver import build
result = build(out_dir=Path(sys.argv[1]))
import ctypes
ctypes.CDLL(str(result.library))
print(result.library)
"""


def test_two_processes_building_the_seed_at_once_both_load_it(
    seed_build: object, tmp_path: Path
) -> None:
    """The seed compiled by two processes into one empty cache at the same moment: both
    load the same library, and only the published digest directory remains."""
    out = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD_ONE, str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    libraries = {out_text.strip() for out_text, _ in results}
    assert len(libraries) == 1
    (digest,) = out.iterdir()
    assert not digest.name.startswith("."), "the staging directories are gone"
    assert Path(libraries.pop()).parent == digest
