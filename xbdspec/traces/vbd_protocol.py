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

Checking is a table walk.  What a device's future depends on is its *configuration*:
the protocol states its life holds and its directories as the protocol checker reads
them (:class:`~xbdspec.traces.protocol.StepTable`), whether the life has started, which
directories it lost and which deviations it has reported, and whether checking of the
device has stopped.  Each configuration met has a dictionary of the transitions
recorded from it; a commit's *signature* is what the checker reads of it (its keys, the
values of :data:`~xbdspec.traces.protocol.VALUE_KEYS`, what it removes).  The first
time a signature meets a configuration the commit is checked directly
(:meth:`ProtocolVbdChecker._commit_direct`: the protocol checker's own steps, on a
checker rebuilt from the configuration) and, when that reached no verdict (no
violation, no unverifiable line, no join mid-handshake), the next configuration and the
commit's effects on the report are recorded; the next time it is one look-up.  The
handshake's configurations are few and shared by every device, so a long log is almost
all look-ups; a verdict is always worked out, and worded, directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from xbdspec.errors import InputError
from xbdspec.model.protocol import DEVIATIONS
from xbdspec.model.vocabulary import XenbusState

from .protocol import VALUE_KEYS, Commit, Directories, ProtocolChecker, Verdict, abstract
from .report import CheckResult, DeviceReport, Divergence, Finding
from .vbd import Pending, VbdChecker, _Device, _state_value

X = XenbusState
#: The keys whose writes count as observations of the handshake.
_OBSERVED = frozenset({"front/state", "back/state", "back/online"})
_BACK_NODE = re.compile(r"(/local/domain/\d+/backend/[^/]+/\d+/\d+)(?:/|\Z)")

#: The device verdicts of the protocol's levels, as reports name them.
LEVEL_NAMES = {
    Verdict.CONFORMS: "conforms",
    Verdict.TOLERATED: "tolerated",
    Verdict.VIOLATION: "violation",
}


@dataclass
class _Life:
    """One lifetime of a device under the protocol checker (while a commit is checked
    directly; between commits the device keeps only its configuration)."""

    checker: ProtocolChecker
    removed: set[str] = field(default_factory=set)
    deviations: set[str] = field(default_factory=set)
    started: bool = False


#: A life as a configuration keeps it: the states held (in order), the directories as
#: the checker reads them, whether it started, the directories removed, the deviations
#: reported.
LifeKey = tuple[
    tuple[tuple[Any, frozenset[str]], ...],
    frozenset[tuple[str, "str | None"]],
    bool,
    frozenset[str],
    frozenset[str],
]
#: A device's configuration: its life (None between lives); with whether checking of the
#: device has stopped (``device.stopped``, which cut lines and refused writes set too),
#: it is what the device's next commit depends on.
Config = LifeKey | None
#: What a commit does to the report when it reaches no verdict: observations counted,
#: lives started, the last state values seen, the deviations first used.
Effects = tuple[int, int, tuple[tuple[str, Any], ...], tuple[str, ...]]
#: A recorded transition: the configuration after, stopped after, the transitions of
#: that configuration, the effects (None: none).
Edge = tuple[Config, bool, dict[Any, Any], "Effects | None"]


def signature(writes: dict[str, str], removes: list[str]) -> Any:
    """What the checker reads of a commit: each key written with its value when the
    protocol checker reads it (:data:`~xbdspec.traces.protocol.VALUE_KEYS`, else None),
    and the removals.  A single write is the pair ``(key, value)``, the commonest
    signature, cheap to hash."""
    if len(writes) == 1 and not removes:
        ((key, value),) = writes.items()
        return key, value if key in VALUE_KEYS else None
    return (
        tuple([(k, v if k in VALUE_KEYS else None) for k, v in writes.items()]),
        tuple(removes),
    )


def who(writes: dict[str, str], removes: list[str]) -> str:
    """The party that made a commit, from what it touches."""
    sides = {key.split("/", 1)[0] for key in (*writes, *removes)}
    if any(r in ("front", "back") for r in removes) or len(sides) > 1 or "back/online" in writes:
        return "toolstack"
    return "frontend" if sides == {"front"} else "backend"


def _seen(writes: dict[str, str]) -> tuple[tuple[str, Any], ...]:
    """The state and online values a commit shows (what the report's ``final`` keeps)."""
    seen: list[tuple[str, Any]] = []
    for key, value in writes.items():
        if key == "front/state" or key == "back/state":
            state = _state_value(value)
            if state is not None:
                seen.append(("fe_state" if key == "front/state" else "be_state", state))
        elif key == "back/online" and value in ("0", "1"):
            seen.append(("be_online", value == "1"))
    return tuple(seen)


class ProtocolVbdChecker(VbdChecker):
    """Checks every vbd of an access log against the protocol model.

    Each configuration met (with whether the device's checking has stopped) has a
    dictionary of the transitions recorded from it, signature -> (the configuration
    after, stopped after, the dictionary of that configuration, the effects on the
    report); a device holds the dictionary of its own configuration (``device.out``), so
    a commit seen before is one look-up.  ``table=False`` checks every commit directly
    (the protocol checker's own steps, with each life's whole directories, and no
    table): the tests compare both readings.
    """

    #: The most configurations, and transitions, kept before the table starts afresh.
    MAX_CONFIGS = 1 << 14
    MAX_EDGES = 1 << 16

    def __init__(self, source: str, nb_chars: int, table: bool = True) -> None:
        super().__init__(None, source, nb_chars)  # type: ignore[arg-type]
        self.table = table
        #: without the table: each device's life, with its own protocol checker
        self.lives: dict[tuple[int, int], _Life] = {}
        #: the deviations first reported by the commit being checked directly
        self._noted: list[str] = []
        self._generation = 0
        self._restart()

    def _restart(self) -> None:
        """Start the table afresh: the configurations are interned again as devices
        meet them (their transitions recorded again)."""
        self._generation += 1
        #: (configuration, stopped) -> the transitions recorded from it
        self._outs: dict[tuple[Config, bool], dict[Any, Edge]] = {}
        self._edge_count = 0
        for device in self.devices.values():
            device.out = None

    def _here(self, device: _Device) -> dict[Any, Edge]:
        """The transitions of the device's configuration (interned on first sight; a
        configuration too big to keep gets a dictionary of its own, not kept)."""
        config = device.config
        if config is not None and (len(config[0]) > 256 or len(config[1]) > 256):
            alone: dict[Any, Edge] = {}
            device.out = alone
            return alone
        here = (config, device.stopped)
        out = self._outs.get(here)
        if out is None:
            if len(self._outs) >= self.MAX_CONFIGS:
                self._restart()
            out = self._outs[here] = {}
        device.out = out
        return out

    def _device_nodes(self, device: _Device) -> tuple[str, str | None]:
        """The nodes as the report names them: the back end's under its own type."""
        return device.report.paths["frontend"], device.report.paths.get("backend")

    # ---- commits
    def _apply_group(self, line: int, writes: list[Pending]) -> None:
        """The writes and removals of one commit taking effect at ``line``, as one commit
        per device they touch.  The common case (writes of one known device's keys) goes
        straight to :meth:`_commit`."""
        target = writes[0][4]
        if target is not None:
            key = target[0]
            device = self.devices.get(key)
            if device is not None:
                backend = device.backend
                written: dict[str, str] = {}
                items: list[tuple[str, str | None]] = []  # the signature, as it is made
                value_keys = VALUE_KEYS
                for pending in writes:
                    t = pending[4]
                    if t is None or t[0] != key:
                        break
                    name, value = t[4], pending[3]
                    if name is None or value is None or (t[3] is not None and t[3] != backend):
                        break
                    written[name] = value
                    items.append((name, value) if name in value_keys else (name, None))
                else:
                    sig: Any = None  # a key written twice: signature() of the dictionary
                    if len(items) == len(written):
                        sig = items[0] if len(items) == 1 else (tuple(items), ())
                    self._commit(device, line, written, [], sig)
                    return
        self._apply_general(line, writes)

    def _write_now(self, line: int, pending: Pending) -> None:
        """A write outside a transaction: :meth:`_apply_group` of it alone, with the
        look-up of :meth:`_commit` done here (the commonest commit of a log)."""
        target, value = pending[4], pending[3]
        device = self.devices.get(pending[5])
        if (
            device is None
            or target is None
            or value is None
            or target[4] is None
            or (target[3] is not None and target[3] != device.backend)
            or not self.table
        ):
            self._apply_general(line, [pending])
            return
        name = target[4]
        sig = (name, value if name in VALUE_KEYS else None)
        out = device.out
        edge = None if out is None else out.get(sig)
        if edge is None:
            self._commit(device, line, {name: value}, [], sig)
            return
        device.config, device.stopped, device.out, effects = edge
        if effects is not None:
            observations, lives, seen, noted = effects
            report = device.report
            report.observations += observations
            for name, value in seen:
                device.seen[name] = value
            if lives or noted:
                report.lifecycles += lives
                self._note_gaps(report, line, noted)

    def _note_gaps(self, report: DeviceReport, line: int, noted: tuple[str, ...]) -> None:
        """The deviations a commit used first, as the report's gaps (at most 8)."""
        for name in noted:
            if len(report.gaps) < 8:
                report.gaps.append(Finding(line, name, DEVIATIONS[name]))

    def _effects(self, device: _Device, line: int, effects: Effects) -> None:
        """What a recorded transition does to the device's report."""
        report = device.report
        observations, lives, seen, noted = effects
        report.observations += observations
        report.lifecycles += lives
        for name, value in seen:
            device.seen[name] = value
        self._note_gaps(report, line, noted)

    def _apply_general(self, line: int, writes: list[Pending]) -> None:
        """:meth:`_apply_group` in general: removals, several devices, a back end's
        first write (which names its node)."""
        commits: dict[tuple[int, int], tuple[dict[str, str], list[str]]] = {}
        for _origin, op, path, value, target, _, _ in writes:
            if op == "rm":
                for key, side, sub in self._touched_by(path):
                    commits.setdefault(key, ({}, []))[1].append(
                        side if sub is None else f"{side}/{sub}"
                    )
                continue
            located = target if target is not None else self._target(path)
            if located is None:
                continue
            key, _side, _sub, backend, name = located
            device = self._device(key)
            if backend is not None and device.backend != backend:
                device.backend = backend
                node = _BACK_NODE.match(path)
                if node is not None:
                    device.report.paths["backend"] = node[1]
                    self._index(device)
            if name is None or value is None:
                continue
            commits.setdefault(key, ({}, []))[0][name] = value
        for key, (written, removed) in commits.items():
            self._commit(self.devices[key], line, written, removed)

    def _commit(
        self,
        device: _Device,
        line: int,
        writes: dict[str, str],
        removes: list[str],
        sig: Any = None,
    ) -> None:
        """One commit of ``device``: a look-up among its configuration's transitions
        when the signature (:func:`signature`) has met it before, else
        :meth:`_commit_direct` (and the transition is recorded when it reached no
        verdict)."""
        if not self.table or len(writes) + len(removes) > 64:
            self._commit_direct(device, line, writes, removes)
            device.out = None
            return
        out = device.out
        if out is None:
            out = self._here(device)
        if sig is None:
            sig = signature(writes, removes)
        edge = out.get(sig)
        if edge is not None:
            device.config, device.stopped, device.out, effects = edge
            if effects is not None:
                self._effects(device, line, effects)
            return
        report = device.report
        counts = (report.observations, report.lifecycles)
        verdicts = (report.first_divergence, report.unverifiable, report.joined_at)
        generation = self._generation
        self._noted = []
        self._commit_direct(device, line, writes, removes)
        device.out = None
        if (report.first_divergence, report.unverifiable, report.joined_at) != verdicts:
            return  # a verdict: worked out directly, never recorded
        after = self._here(device)
        if generation != self._generation:
            return
        if self._edge_count >= self.MAX_EDGES:
            self._restart()
            return
        made: Effects = (
            report.observations - counts[0],
            report.lifecycles - counts[1],
            _seen(writes),
            tuple(self._noted),
        )
        out[sig] = (device.config, device.stopped, after, None if made == (0, 0, (), ()) else made)
        self._edge_count += 1

    def _commit_direct(
        self, device: _Device, line: int, writes: dict[str, str], removes: list[str]
    ) -> None:
        """One commit checked by the device's protocol checker: with the table, rebuilt
        from the device's configuration (and the configuration it leaves kept); without,
        the life's own checker, which holds the directories whole."""
        for name, value in _seen(writes):
            device.seen[name] = value
        life = self._life(device) if self.table else self.lives.get(device.key)
        if life is None:
            if not writes:
                return
            life = _Life(ProtocolChecker(table=self.table))
            device.report.lifecycles += 1
        try:
            self._step(device, life, line, writes, removes)
        finally:
            alive = not life.removed >= {"front", "back"}
            if self.table:
                self._keep(device, life if alive else None)
            elif alive:
                self.lives[device.key] = life
            else:
                self.lives.pop(device.key, None)

    def _step(
        self, device: _Device, life: _Life, line: int, writes: dict[str, str], removes: list[str]
    ) -> None:
        if not life.started and ("front/state" in writes or "back/state" in writes):
            life.started = True
            if self._joins(device, life, line, writes):
                life.checker.dirs.apply(Commit("toolstack", writes, (), ""))
                return
        device.report.observations += sum(1 for k in writes if k in _OBSERVED)
        if device.stopped:
            self._track_removal(device, life, removes)
            return
        by = who(writes, removes)
        removed = tuple(removes)
        try:
            ok = life.checker.commit(by, writes, removed, f"{self.source}:{line}")
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
                event=self._describe(Commit(by, writes, removed, "")),
                # a refused commit leaves the states held as they were before it
                allowed=life.checker.allowed(),
                reason=report.violation.split(": ", 2)[-1],
                state={"fe_state": state.fe_state.name, "be_state": state.be_state.name},
            )
            device.stopped = True
        else:
            self._note_deviations(device, life, line)
        self._track_removal(device, life, removes)

    def _life(self, device: _Device) -> _Life | None:
        """The device's life rebuilt from its configuration: a protocol checker holding
        the life's states, with its directories as the checker reads them (the keys
        whose values it never reads hold ``""``)."""
        life = device.config
        if life is None:
            return None
        states, dirs, started, removed, deviations = life
        checker = ProtocolChecker(table=self.table)
        checker.states = dict(states)
        front: dict[str, str] = {}
        back: dict[str, str] = {}
        for name, value in dirs:
            side, key = name.split("/", 1)
            (front if side == "front" else back)[key] = "" if value is None else value
        checker.dirs = Directories(front, back)
        return _Life(checker, set(removed), set(deviations), started)

    def _keep(self, device: _Device, life: _Life | None) -> None:
        """Remember the device's configuration after a commit checked directly (``None``:
        between two lives)."""
        key: LifeKey | None = None
        if life is not None:
            checker = life.checker
            key = (
                tuple(checker.states.items()),
                abstract(checker.dirs),
                life.started,
                frozenset(life.removed),
                frozenset(life.deviations),
            )
        device.config = key

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
        used = life.checker.best_deviations()
        for name in sorted(used - life.deviations):
            life.deviations.add(name)
            self._noted.append(name)
            if len(device.report.gaps) < 8:
                device.report.gaps.append(Finding(line, name, DEVIATIONS[name]))

    def _track_removal(self, device: _Device, life: _Life, removes: list[str]) -> None:
        life.removed |= {r for r in removes if r in ("front", "back")}
        if life.removed >= {"front", "back"}:
            device.stopped = device.report.first_divergence is not None

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
