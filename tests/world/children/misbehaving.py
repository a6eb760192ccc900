"""A child for the harness's failure tests.

It speaks the stdio protocol version 2 by hand, with the standard library only (so that
it starts fast: shrinking restarts it after every failure), and has no front end behind
it: every call is simply ``done``.  At its first ``submit`` call it misbehaves in the way
its argument names; ``no-interrupt`` and ``protocol-1`` spoil its hello instead.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

MODE = sys.argv[1] if len(sys.argv) > 1 else ""


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def receive() -> dict[str, Any]:
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    message: dict[str, Any] = json.loads(line)
    return message


def misbehave() -> bool:
    """At a submit: misbehave; whether the call still ends with ``done``."""
    print(f"misbehaving child: {MODE} at a submit", file=sys.stderr, flush=True)
    if MODE in ("exit-3", "spawn"):
        send({"type": "env", "op": "read", "path": "/local/domain/5/device/vbd/768/state"})
        os._exit(3)  # mid-call, without reading the answer
    if MODE == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if MODE == "hang":
        time.sleep(3600)
    if MODE == "not-json":
        sys.stdout.write("this is not JSON\n")
        sys.stdout.flush()
    if MODE == "schema-invalid":
        send({"type": "env", "op": "grant", "page": "zero", "readonly": False})
    if MODE == "harness-message":
        send({"type": "result", "value": 1})
    if MODE == "long-line":
        sys.stdout.write("x" * (2 << 20))
        sys.stdout.flush()
        time.sleep(3600)
    if MODE == "fails":
        send({"type": "done", "ok": False, "error": "no free request slot for bio 17"})
        return False
    return True


def main() -> None:
    receive()  # the harness's hello
    calls = ["otherend_changed", "interrupt", "submit", "shutdown"]
    if MODE == "no-interrupt":
        calls.remove("interrupt")
    send(
        {
            "type": "hello",
            "protocol": 1 if MODE == "protocol-1" else 2,
            "name": f"misbehaving ({MODE})",
            "calls": calls,
            "ops": ["read", "write", "flush"],
        }
    )
    if MODE == "spawn":
        # a process of its own group, left running: it must die with the child
        subprocess.Popen(["sleep", "1000"])
    while True:
        message = receive()
        if message["type"] == "bye":
            sys.exit(0)
        if message["type"] == "call" and message["call"] == "submit" and not misbehave():
            continue
        send({"type": "done"})


if __name__ == "__main__":
    main()
