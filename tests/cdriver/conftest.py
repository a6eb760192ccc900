"""Fixtures for the compiled-seed tests: skip (saying how to provide one) without a blkfront.c."""

from __future__ import annotations

import pytest

from xbdspec.cdriver import BuildResult, build, default_source


@pytest.fixture(scope="session")
def seed_build() -> BuildResult:
    """The seed's blkfront.c compiled against the shim (warnings on, not fatal)."""
    source = default_source()
    if source is None or not source.is_file():
        pytest.skip(
            "no blkfront.c: put the seed at ../shared/seed/blkfront.c (beside the repo) "
            f"or set XBD_BLKFRONT=/path/to/blkfront.c (now: {source})"
        )
    return build()
