"""A child that speaks the stdio protocol (version 2, or version 1 with ``--v1``) until
the first call (v2) or the first reset (v1), then does what its mode says, with the bytes
of its payload file:

* ``payload``: writes the payload (a hostile line) as its answer, then waits forever;
* ``hello``: writes the payload instead of its hello;
* ``hang``: says nothing, forever;
* ``spawn``: starts two grandchildren (``sleep``), one of them through a shell in the
  background, then hangs (with ``$HOSTILE_PIDS``, every pid is appended to that file);
* ``flood``: writes without end and without a newline;
* ``exit``: exits in the middle of the answer (status 7).

Standard library only, so that it starts fast under ``python -I -S``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

V1 = "--v1" in sys.argv
ARGS = [a for a in sys.argv[1:] if a != "--v1"]
MODE = ARGS[0]
PAYLOAD = open(ARGS[1], "rb").read() if len(ARGS) > 1 else b""  # noqa: SIM115


def write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def send(message: dict[str, object]) -> None:
    write(json.dumps(message).encode() + b"\n")


def record(*pids: int) -> None:
    """Append ``pids`` to the file ``$HOSTILE_PIDS`` names (if any): a test then checks
    that none of them outlives the harness."""
    path = os.environ.get("HOSTILE_PIDS")
    if path:
        with open(path, "a") as handle:
            handle.write("".join(f"{pid}\n" for pid in pids))


def forever() -> None:
    while True:
        time.sleep(3600)


def misbehave() -> None:
    if MODE == "payload":
        write(PAYLOAD + b"\n")
        forever()
    if MODE == "hang":
        forever()
    if MODE == "spawn":
        started = [
            subprocess.Popen(["sleep", "1000"]),
            subprocess.Popen(
                ["sh", "-c", 'sleep 1000 & echo $! >> "${HOSTILE_PIDS:-/dev/null}"; wait']
            ),
        ]
        record(os.getpid(), *(p.pid for p in started))
        forever()
    if MODE == "flood":
        chunk = b"x" * 65536
        while True:
            write(chunk)
    if MODE == "exit":
        write(b'{"type": "env", "op"')
        os._exit(7)


def main() -> None:
    line = sys.stdin.readline()
    if not line:
        return
    if MODE == "hello":
        write(PAYLOAD + b"\n")
        forever()
    if V1:
        request = json.loads(line)
        send({"id": request["id"], "ok": True, "name": f"hostile ({MODE})", "start": "initial"})
        for line in sys.stdin:
            request = json.loads(line)
            if request["op"] == "quit":
                send({"id": request["id"], "ok": True})
                return
            misbehave()
        return
    send(
        {
            "type": "hello",
            "protocol": 2,
            "name": f"hostile ({MODE})",
            "calls": ["otherend_changed", "interrupt", "submit"],
            "ops": ["read", "write"],
        }
    )
    for line in sys.stdin:
        message = json.loads(line)
        if message["type"] == "bye":
            return
        if message["type"] == "call":
            misbehave()
        send({"type": "done"})


if __name__ == "__main__":
    main()
