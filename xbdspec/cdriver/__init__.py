"""The seed's own C source, compiled against the kernel shim and driven from Python.

``blkfront.c`` is compiled *unmodified* with the system C compiler, every kernel
declaration coming from ``shim/include/xbd_shim.h`` (force-included) and the thin headers
under ``shim/include/`` (for a file from a FreeBSD tree, which has its own ``#include``
lines).  ``shim/src/shim.c`` is the environment: xenstore (answered by the harness), a
finite grant table with free callbacks, bus_dma with deferred and failing loads, the event
channel, the disk layer, mutexes, ``msleep``, and a ``blkif`` back end serving a RAM disk.
Both are linked into one shared library loaded with :mod:`ctypes`.

The package, by job:

* :mod:`.build`: compiling the seed under the shim (:func:`build`, :class:`BuildResult`,
  :func:`default_source`, :func:`sanitizer_preload`);
* :mod:`.binding`: the library's ctypes signatures and callback types, the shim's fault,
  bus_dma and softc numbering, :class:`CDriverFault`;
* :mod:`.platform`: :class:`CPlatform`, the harness-driven platform (the test decides
  every event: watch deliveries, the interrupt, each bus_dma load, grant shortages, the
  back end's responses, ``msleep`` time-outs);
* :mod:`.compare`: :func:`compare_with_reference`, one script on the C driver and on the
  Python reference;
* :mod:`.adapter`: :class:`CDriverImplementation`, the conformance adapter
  (``xbdspec difftest --impl xbdspec.cdriver:implementation``);
* :mod:`.scenarios` and :mod:`.cli`: the child-process scenarios and
  ``python -m xbdspec.cdriver build [SOURCE] | scenario NAME [--sanitize]`` (how the
  sanitizer build runs: its runtimes must be preloaded, so it runs in a child process).

The same library also runs as a front end of the protocol-level world
(:mod:`xbdspec.world.frontends.seed`).  See ``docs/cdriver.md``.
"""

from __future__ import annotations

from .adapter import (
    C_UNSUPPORTED_EVENTS,
    CDriverImplementation,
    concrete_view_c,
    concrete_view_reference,
    implementation,
)
from .binding import (
    BLKIF_OP,
    DMA_MODES,
    EWOULDBLOCK,
    FAULT_KINDS,
    SOFTC_FIELDS,
    CDriverFault,
)
from .build import (
    BUILD_DIR,
    REPO_ROOT,
    SANITIZE_FLAGS,
    SHIM_DIR,
    BuildError,
    BuildResult,
    build,
    default_source,
    sanitizer_preload,
)
from .cli import main
from .compare import Difference, Observed, Script, compare_with_reference
from .platform import (
    BACK_WATCH,
    FRONT_WATCH,
    BackendRequest,
    BioStatus,
    CPlatform,
    XenStoreLog,
)
from .scenarios import SCENARIOS, run_scenario

__all__ = [
    "BACK_WATCH",
    "BLKIF_OP",
    "BUILD_DIR",
    "C_UNSUPPORTED_EVENTS",
    "DMA_MODES",
    "EWOULDBLOCK",
    "FAULT_KINDS",
    "FRONT_WATCH",
    "REPO_ROOT",
    "SANITIZE_FLAGS",
    "SCENARIOS",
    "SHIM_DIR",
    "SOFTC_FIELDS",
    "BackendRequest",
    "BioStatus",
    "BuildError",
    "BuildResult",
    "CDriverFault",
    "CDriverImplementation",
    "CPlatform",
    "Difference",
    "Observed",
    "Script",
    "XenStoreLog",
    "build",
    "compare_with_reference",
    "concrete_view_c",
    "concrete_view_reference",
    "default_source",
    "implementation",
    "main",
    "run_scenario",
    "sanitizer_preload",
]
