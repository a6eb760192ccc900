"""Start Debian's oxenstored (``xen-utils-4.17``) without a hypervisor, and stop it.

How (``../shared/real-components.md``): everything lives under one temporary
directory ``root``::

    root/stub.so          the LD_PRELOAD stub of the hypervisor calls (stub.c, built here)
    root/nr_open          the sandbox's hard limit on open files (``ulimit -Hn``)
    root/oxenstored.conf  access-log-file, xenstored-log-file, pid-file: all in root
    root/launch.sh        the mount steps, then ``exec`` oxenstored
    root/run/             bound on /run/xenstored in the daemon's mount namespace:
                          ``socket`` (compiled in as /var/run/xenstored/socket), ``db``
    root/access.log       the access log (the file under test)
    root/xenstored.log    the daemon's own log
    root/stderr.txt       the launch script's steps and the daemon's stderr

``launch.sh`` runs under ``unshare --mount`` (root): it makes every mount private,
bind-mounts ``root/nr_open`` on ``/proc/sys/fs/nr_open`` (oxenstored raises
RLIMIT_NOFILE to nr_open and dies with EPERM in ``setrlimit`` when it is above the
hard limit), mounts a tmpfs on ``/run`` with ``root/run`` bound on
``/run/xenstored``, then execs oxenstored with ``--no-fork --no-domain-init``.
``unshare``, ``sh`` and ``env`` each exec the next, so the launched process *is* the
daemon: it is stopped by its pid (SIGTERM, then SIGKILL to its process group).
The socket is reached from outside the namespace as ``root/run/socket``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

#: Where Debian's xen-utils-4.17 installs the OCaml xenstored.
OXENSTORED = "/usr/lib/xen-4.17/bin/oxenstored"
#: The socket directory compiled into oxenstored (Define.xs_daemon_socket).
SOCKET_DIR = "/var/run/xenstored"
STUB_SOURCE = Path(__file__).with_name("stub.c")

__all__ = [
    "OXENSTORED",
    "Daemon",
    "DaemonConfig",
    "LaunchError",
    "build_stub",
    "find_oxenstored",
]


class LaunchError(RuntimeError):
    """A step of building the stub, starting, driving or stopping the daemon failed."""

    def __init__(self, step: str, detail: str) -> None:
        self.step = step
        super().__init__(f"oxenstored launcher: {step}: {detail}")


def find_oxenstored() -> str | None:
    """The oxenstored binary (``$XBDSPEC_OXENSTORED`` or Debian's path), or None."""
    path = os.environ.get("XBDSPEC_OXENSTORED", OXENSTORED)
    return path if os.access(path, os.X_OK) else None


def build_stub(out_dir: Path, cc: str | None = None) -> Path:
    """Compile stub.c into ``out_dir/stub.so`` with the system's C compiler."""
    compiler = cc or os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise LaunchError("build the LD_PRELOAD stub", "no C compiler (cc or gcc) on PATH")
    out = out_dir / "stub.so"
    cmd = [compiler, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(out)]
    proc = subprocess.run(
        [*cmd, str(STUB_SOURCE)], capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        raise LaunchError(
            "build the LD_PRELOAD stub",
            f"`{shlex.join(cmd)} {STUB_SOURCE}` exited {proc.returncode}:\n{proc.stderr}",
        )
    return out


@dataclass(frozen=True)
class DaemonConfig:
    """The oxenstored.conf settings a test chooses (the rest are oxenstored's defaults,
    as in Debian's /etc/xen/oxenstored.conf).

    Attributes:
        nb_chars: ``access-log-nb-chars`` (oxenstored's default 180).
        read_ops: ``access-log-read-ops``: log reads and ENOENT answers.
        transaction_ops: ``access-log-transactions-ops``: log ``t start`` / ``t end``.
        special_ops: ``access-log-special-ops``: introduce, release, getdomain...
    """

    nb_chars: int = 180
    read_ops: bool = False
    transaction_ops: bool = False
    special_ops: bool = False

    def render(self, root: Path) -> str:
        def flag(value: bool) -> str:
            return "true" if value else "false"

        return "\n".join(
            [
                "# written by tests/traces/daemon/launcher.py",
                f"pid-file = {root / 'xenstored.pid'}",
                f"access-log-file = {root / 'access.log'}",
                f"access-log-nb-chars = {self.nb_chars}",
                # no rotation by size: a scenario's log is cut by Daemon.rotate_access_log
                "access-log-nb-lines = 100000000",
                f"access-log-read-ops = {flag(self.read_ops)}",
                f"access-log-transactions-ops = {flag(self.transaction_ops)}",
                f"access-log-special-ops = {flag(self.special_ops)}",
                f"xenstored-log-file = {root / 'xenstored.log'}",
                "xenstored-log-level = info",
                "persistent = false",
                "merge-activate = true",
                "perms-activate = true",
                "quota-activate = true",
                "",
            ]
        )


_SCRIPT = """\
set -eu
step() {{ echo "launch.sh: $*" >&2; }}
step "make every mount of the new mount namespace private"
mount --make-rprivate /
step "bind-mount {nr_open} on /proc/sys/fs/nr_open"
mount --bind {nr_open} /proc/sys/fs/nr_open
step "mount a tmpfs on {run}"
mount -t tmpfs -o mode=0755 xbdspec-run {run}
step "bind-mount {run_dir} on {run}/xenstored"
mkdir -p {run}/xenstored
mount --bind {run_dir} {run}/xenstored
step "run oxenstored"
exec env LD_PRELOAD={stub} {binary} --config-file {conf} --no-fork --no-domain-init
"""


class Daemon:
    """One oxenstored, everything under ``root`` (see the module's documentation).

    Use as a context manager, or call :meth:`start` and (in a ``finally``)
    :meth:`stop`.
    """

    def __init__(
        self,
        root: Path,
        stub: Path,
        config: DaemonConfig | None = None,
        binary: str = OXENSTORED,
    ) -> None:
        self.root = root
        self.stub = stub
        self.config = config or DaemonConfig()
        self.binary = binary
        self.run_dir = root / "run"
        self.socket = self.run_dir / "socket"
        self.access_log = root / "access.log"
        self.daemon_log = root / "xenstored.log"
        self.pid_file = root / "xenstored.pid"
        self.stderr_file = root / "stderr.txt"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise LaunchError("use the daemon", "it is not running")
        return self.proc.pid

    # ---- start
    def start(self, timeout: float = 15.0) -> Path:
        """Start the daemon; returns the socket's path once the daemon serves it."""
        if self.proc is not None:
            raise LaunchError("start oxenstored", "already started")
        if os.geteuid() != 0:
            raise LaunchError(
                "start oxenstored", "needs root (a private mount namespace with unshare -m)"
            )
        unshare = shutil.which("unshare")
        if unshare is None:
            raise LaunchError("start oxenstored", "no `unshare` on PATH (util-linux)")
        if not os.access(self.binary, os.X_OK):
            raise LaunchError("start oxenstored", f"{self.binary} is not installed")
        run = os.path.realpath(os.path.dirname(SOCKET_DIR))  # /var/run -> /run
        root = self.root.resolve()
        if root == Path(run) or Path(run) in root.parents:
            raise LaunchError(
                "start oxenstored", f"the temp dir {root} lies under {run}, which is replaced"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 20  # the kernel's default nr_open
        (root / "nr_open").write_text(f"{hard}\n")
        conf = root / "oxenstored.conf"
        conf.write_text(self.config.render(root))
        script = root / "launch.sh"
        q = shlex.quote
        script.write_text(
            _SCRIPT.format(
                nr_open=q(str(root / "nr_open")),
                run=q(run),
                run_dir=q(str(root / "run")),
                stub=q(str(self.stub.resolve())),
                binary=q(self.binary),
                conf=q(str(conf)),
            )
        )
        with (
            open(root / "stdout.txt", "wb") as out,
            open(self.stderr_file, "wb") as err,
        ):
            self.proc = subprocess.Popen(
                [unshare, "--mount", "--propagation", "private", "sh", str(script)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                cwd=root,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self.socket

    def _wait_ready(self, timeout: float) -> None:
        """Ready: the socket exists and the access log is open (oxenstored opens it after
        binding the socket and setting its signal handlers, just before its main loop)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            status = self.proc.poll()
            if status is not None:
                raise LaunchError(
                    self._failed_step(), f"exited with status {status}" + self.tails()
                )
            if self.socket.is_socket() and self.access_log.exists() and self.pid_file.exists():
                pid = self.pid_file.read_text().strip()
                if pid == str(self.proc.pid):
                    return
            if time.monotonic() > deadline:
                raise LaunchError(
                    self._failed_step(),
                    f"no socket at {self.socket} after {timeout:.0f} s" + self.tails(),
                )
            time.sleep(0.01)

    def _failed_step(self) -> str:
        """The last step launch.sh announced (the one that failed, if the launch failed)."""
        steps = [
            line.removeprefix("launch.sh: ")
            for line in _tail(self.stderr_file, 50).splitlines()
            if line.startswith("launch.sh: ")
        ]
        return steps[-1] if steps else "start unshare"

    def tails(self, lines: int = 15) -> str:
        """The last lines of the launch script's stderr and of the daemon's own log."""
        return (
            f"\n--- {self.stderr_file} (last {lines} lines) ---\n"
            + _tail(self.stderr_file, lines)
            + f"\n--- {self.daemon_log} (last {lines} lines) ---\n"
            + _tail(self.daemon_log, lines)
        )

    # ---- while it runs
    def rotate_access_log(self, dest: Path, timeout: float = 10.0) -> Path:
        """Move the access log to ``dest`` and have the daemon reopen a new one.

        oxenstored's SIGHUP handler (``sighup_handler`` in xenstored.ml) closes and
        reopens its log files, as logrotate does it.  Call only when no client is
        active: a line written between the rename and the reopen goes to ``dest``.
        """
        self.check_running("rotate the access log")
        os.rename(self.access_log, dest)
        os.kill(self.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while not self.access_log.exists():
            self.check_running("rotate the access log")
            if time.monotonic() > deadline:
                raise LaunchError(
                    "rotate the access log",
                    f"no new {self.access_log} {timeout:.0f} s after SIGHUP" + self.tails(),
                )
            time.sleep(0.005)
        return dest

    def check_running(self, step: str) -> None:
        if self.proc is None:
            raise LaunchError(step, "the daemon is not started")
        status = self.proc.poll()
        if status is not None:
            raise LaunchError(step, f"the daemon exited with status {status}" + self.tails())

    # ---- stop
    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the daemon by its pid: SIGTERM (oxenstored leaves its main loop, dumps
        its state to run/db and exits), then SIGKILL to its process group.  Returns its
        exit status (None if it was never started)."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid)  # the daemon leads its group: the pgid is still ours
                proc.wait(timeout)
        return proc.returncode

    def __enter__(self) -> Daemon:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read it: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:])
