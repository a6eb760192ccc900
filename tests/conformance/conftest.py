"""Shared helpers of the conformance tests: the C queue core, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from xbdspec.conformance.builtin import CompilerMissing, build_c_core


@pytest.fixture(scope="session")
def c_core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C queue core, compiled with the system ``cc`` (skipped without one)."""
    try:
        return build_c_core(out_dir=tmp_path_factory.mktemp("cimpl"))
    except CompilerMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def c_core_broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C queue core built with ``-DBREAK_THAW`` (one line changed)."""
    try:
        return build_c_core("BREAK_THAW", out_dir=tmp_path_factory.mktemp("cimpl-broken"))
    except CompilerMissing as exc:
        pytest.skip(str(exc))
