"""Following every vbd of an oxenstored access log through the protocol model.

:class:`ProtocolVbdChecker` reads the log as :class:`~xbdspec.traces.vbd.VbdChecker`
does (the paths, the transactions, their commits, conflicts and replays, cut lines and
refused writes) and turns each commit that touches a vbd into a
:class:`~xbdspec.traces.protocol.Commit` for that device's
:class:`~xbdspec.traces.protocol.ProtocolChecker`: the verdicts are the protocol's
(``conforms``, ``tolerated``, ``violation``) and ``unverifiable`` when a line that
matters was cut or refused.

Who made a commit is read from what it touches, as xenstore's permissions make it: the
front end writes only its own directory, the back end only its own; a commit that
writes both, the back end's ``online``, or removes a whole directory is the tool
stack's.  A device's life ends when both its directories are gone; a later write starts
a new one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from xbdspec.errors import InputError
from xbdspec.model.protocol import DEVIATIONS
from xbdspec.model.vocabulary import XenbusState

from .protocol import Commit, ProtocolChecker, Verdict
from .report import CheckResult, Divergence, Finding
from .vbd import VbdChecker, _Device

X = XenbusState
_BACK_NODE = re.compile(r"(/local/domain/\d+/backend/[^/]+/\d+/\d+)(?:/|\Z)")

#: The device verdicts of the protocol's levels, as reports name them.
LEVEL_NAMES = {
    Verdict.CONFORMS: "conforms",
    Verdict.TOLERATED: "tolerated",
    Verdict.VIOLATION: "violation",
}


@dataclass
class _Life:
    """One lifetime of a device under the protocol checker."""

    checker: ProtocolChecker
    removed: set[str] = field(default_factory=set)
    deviations: set[str] = field(default_factory=set)
    started: bool = False


def who(writes: dict[str, str], removes: list[str]) -> str:
    """The party that made a commit, from what it touches."""
    sides = {key.split("/", 1)[0] for key in (*writes, *removes)}
    if any(r in ("front", "back") for r in removes) or len(sides) > 1 or "back/online" in writes:
        return "toolstack"
    return "frontend" if sides == {"front"} else "backend"


class ProtocolVbdChecker(VbdChecker):
    """Checks every vbd of an access log against the protocol model."""

    def __init__(self, source: str, nb_chars: int) -> None:
        super().__init__(None, source, nb_chars)  # type: ignore[arg-type]
        self.lives: dict[tuple[int, int], _Life] = {}

    def _apply_group(self, line: int, writes: list[tuple[int, str, str, str | None]]) -> None:
        commits: dict[tuple[int, int], tuple[dict[str, str], list[str]]] = {}
        for _origin, op, path, value in writes:
            if op == "rm":
                for key, side, sub in self._removed_by(path):
                    commits.setdefault(key, ({}, []))[1].append(
                        side if sub is None else f"{side}/{sub}"
                    )
                continue
            located = self._locate(path)
            if located is None:
                continue
            key, side, sub, backend = located
            device = self._device(key)
            if backend is not None and device.backend != backend:
                device.backend = backend
                node = _BACK_NODE.match(path)
                if node is not None:
                    device.report.paths["backend"] = node[1]
            if sub is None or value is None:
                continue
            commits.setdefault(key, ({}, []))[0][f"{side}/{sub}"] = value
            (device.front if side == "front" else device.back)[sub] = value
            if (
                sub == "state"
                and value.isascii()
                and value.isdigit()
                and int(value) in X._value2member_map_
            ):
                device.seen["fe_state" if side == "front" else "be_state"] = X(int(value))
            elif sub == "online" and side == "back" and value in ("0", "1"):
                device.seen["be_online"] = value == "1"
        for key, (written, removed) in commits.items():
            self._commit(self._device(key), line, written, removed)

    def _removed_by(self, path: str) -> list[tuple[tuple[int, int], str, str | None]]:
        """The device directories or keys a removal of ``path`` takes away."""
        found: list[tuple[tuple[int, int], str, str | None]] = []
        for key, device in self.devices.items():
            nodes = {
                "front": device.report.paths.get("frontend"),
                "back": device.report.paths.get("backend"),
            }
            for side, node in nodes.items():
                if node is None:
                    continue
                if node == path or node.startswith(path + "/"):
                    found.append((key, side, None))
                elif path.startswith(node + "/"):
                    found.append((key, side, path[len(node) + 1 :]))
        return found

    def _commit(
        self, device: _Device, line: int, writes: dict[str, str], removes: list[str]
    ) -> None:
        life = self.lives.get(device.key)
        if life is None:
            if not writes:
                return
            life = self.lives[device.key] = _Life(ProtocolChecker())
            device.report.lifecycles += 1
        if not life.started and any(k in writes for k in ("front/state", "back/state")):
            life.started = True
            if self._joins(device, life, line, writes):
                life.checker.dirs.apply(Commit("toolstack", writes, (), ""))
                return
        device.report.observations += sum(
            1 for k in writes if k in ("front/state", "back/state", "back/online")
        )
        if device.stopped:
            self._track_removal(device, life, removes)
            return
        commit = Commit(who(writes, removes), writes, tuple(removes), f"{self.source}:{line}")
        allowed = life.checker.allowed()
        try:
            ok = life.checker.check(commit)
        except InputError as exc:
            # a value no protocol step can take (not a number, say): this device only
            self._stop_unverifiable(
                device, line, f"{exc.source}: {str(exc)[len(exc.source) + 2 :]}"
            )
            return
        if not ok:
            report = life.checker.report
            state = next(iter(life.checker.states))
            device.report.first_divergence = Divergence(
                line=line,
                event=self._describe(commit),
                allowed=allowed,
                reason=report.violation.split(": ", 2)[-1],
                state={"fe_state": state.fe_state.name, "be_state": state.be_state.name},
            )
            device.stopped = True
        else:
            self._note_deviations(device, life, line)
        self._track_removal(device, life, removes)

    def _joins(self, device: _Device, life: _Life, line: int, writes: dict[str, str]) -> bool:
        """A device first seen in the middle of its handshake (a state other than
        Initialising, with no creation before): checked from every protocol state that
        agrees with what the log shows."""
        states = {}
        for side in ("front", "back"):
            value = writes.get(f"{side}/state")
            if value is not None and value.isascii() and value.isdigit():
                states[side] = int(value)
        if not states or all(v == X.Initialising for v in states.values()):
            return False
        if not life.checker.join(states.get("front"), states.get("back")):
            return False
        device.report.joined_at = line
        return True

    def _note_deviations(self, device: _Device, life: _Life, line: int) -> None:
        used = min(life.checker.states.values(), key=len)
        for name in sorted(used - life.deviations):
            life.deviations.add(name)
            if len(device.report.gaps) < 8:
                device.report.gaps.append(Finding(line, name, DEVIATIONS[name]))

    def _track_removal(self, device: _Device, life: _Life, removes: list[str]) -> None:
        life.removed |= {r for r in removes if r in ("front", "back")}
        if life.removed >= {"front", "back"}:
            del self.lives[device.key]
            device.stopped = device.report.first_divergence is not None
            device.front.clear()
            device.back.clear()

    @staticmethod
    def _describe(commit: Commit) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in commit.writes.items())
        if commit.remove:
            shown += (", " if shown else "") + "remove " + ", ".join(commit.remove)
        return f"{commit.by} commits {{{shown}}}"

    def finish(self) -> CheckResult:
        for device in self.devices.values():
            device.report.levels = "protocol"
            final: dict[str, Any] = {}
            for name in ("fe_state", "be_state"):
                if name in device.seen:
                    final[name] = X(device.seen[name]).name
            if "be_online" in device.seen:
                final["online"] = int(device.seen["be_online"])
            device.report.final = final
        return self.result
