"""The tutorial front end (``linux_style_frontend.py``, unchanged) in a child process,
over the stdio protocol version 2 (``docs/stdio-v2.md``).

    xbdspec difftest --cmd "python examples/stdio_frontend.py"
    xbdspec difftest --cmd "python examples/stdio_frontend.py --broken reuses-id"

The harness runs it as it runs the in-process tutorial, and finds the same: a campaign
from the same seed completes the same I/Os and reaches the same protocol rules, and each
broken variant is caught with the same short replay.  ``--broken NAME`` (or the
harness's option ``broken=NAME``) picks one of the variants.

The tutorial was written against :class:`~xbdspec.world.harness.FrontendEnv`; it runs
here on :class:`~xbdspec.world.client.RemoteEnv`, whose pages are views of the shared
memory: the same slicing, ``bytes(page[...])`` and ``struct.pack_into`` work on both.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from xbdspec.world.client import RemoteEnv, serve

#: the entry points the protocol has; the tutorial declares those it has
CALLS = ("otherend_changed", "interrupt", "submit", "shutdown", "resume")


def load_tutorial() -> Any:
    """``linux_style_frontend.py``, from beside this file."""
    path = Path(__file__).resolve().with_name("linux_style_frontend.py")
    spec = importlib.util.spec_from_file_location("linux_style_frontend", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    tutorial = load_tutorial()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--broken",
        choices=tutorial.BROKEN,
        help="run a broken variant (default: the option broken=NAME the harness gives, or "
        "the correct front end)",
    )
    args = parser.parse_args(argv)

    def make(env: RemoteEnv) -> Any:
        broken = args.broken if args.broken is not None else env.options.get("broken", "")
        if broken and broken not in tutorial.BROKEN:
            raise ValueError(f"no broken variant {broken!r}: {', '.join(tutorial.BROKEN)}")
        return tutorial.LinuxStyleFrontend(env, broken=broken)

    name = "tutorial over stdio" + (f" (broken: {args.broken})" if args.broken else "")
    calls = [c for c in CALLS if callable(getattr(tutorial.LinuxStyleFrontend, c, None))]
    return serve(make, name=name, calls=calls)


if __name__ == "__main__":
    sys.exit(main())
