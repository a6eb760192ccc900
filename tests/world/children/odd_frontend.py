"""A front end with one fault, run both in-process and over stdio (through
:mod:`xbdspec.world.client`), so that the tests compare what the harness reports.

``end-unknown-grant``: at a submit it ends a grant it never made (the grant table
refuses: a protocol violation), then completes nothing.  ``raises``: its submit raises.
"""

from __future__ import annotations

import sys
from typing import Any

from xbdspec.world.client import serve

MODES = ("end-unknown-grant", "raises")


class OddFrontend:
    def __init__(self, env: Any, mode: str) -> None:
        self.env = env
        self.mode = mode

    def otherend_changed(self) -> None:
        self.env.read(f"{self.env.back}/state")

    def interrupt(self) -> None:
        pass

    def submit(self, bio: Any) -> None:
        if self.mode == "end-unknown-grant":
            self.env.end_grant(4242)
            self.env.write(f"{self.env.front}/state", "6")  # after the refusal: not reached
        else:
            raise RuntimeError(f"cannot queue bio {bio.id}")


if __name__ == "__main__":
    mode = sys.argv[1]
    sys.exit(serve(lambda env: OddFrontend(env, mode), name=f"odd front end ({mode})"))
