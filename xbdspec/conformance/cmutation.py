"""Mutation testing of the C code: the queue core (``cimpl/``) and the compiled seed.

The project's own engine, as for the reference (:mod:`xbdspec.conformance.mutation`):
``mutmut`` and ``cosmic-ray`` mutate Python only; no C mutation tool is packaged by
Debian (``apt-cache search mutation``: none), and PyPI's ``universalmutator`` (regexp
rewrites of a whole file, judged by a test command's exit status) mutates every line of
the file rather than the request path's functions and cannot tell the seed's known
findings from new divergences, which the kill check here must.

A mutant is one change in one function of a copy of the source, in the code itself
(comments, strings, character literals and preprocessor lines are left alone):

* an operator swap: ``==``/``!=``, ``<``/``<=``, ``>``/``>=``, ``+``/``-``,
  ``&&``/``||``, ``|``/``&`` (binary uses only: a unary ``-`` or ``&`` is not an operator
  here);
* a constant flip: a literal ``0`` becomes ``1`` and ``1`` becomes ``0``;
* a dropped call statement: a line ``name(...);`` becomes ``;``.

Three subjects (:data:`SUBJECTS`):

* ``core``: ``cimpl/queue_core.c``'s queue core (freeze and thaw, the commands, the
  ring, ``startio``, completions), built into both faces; killed by the FreeBSD
  refinement's stdio campaign on the version 1 face (``xbdspec difftest --contract
  freebsd --cmd queue_core --first``, its defaults: the sweep over sizes of
  :data:`~.sweep.SIZE_SWEEP`, which reaches the command and grant shortages) or else by
  the protocol contract's default campaign on the version 2 face (``cimpl/frontend.c``:
  ``xbdspec difftest --cmd frontend``);
* ``frontend``: ``cimpl/frontend.c``'s own half of the queue (the ``face_*`` callbacks
  that grant pages, publish the ring and complete bios); the protocol campaign;
* ``seed``: the seed's request path (``xbd_freeze`` ... ``xbd_int``), compiled by
  :func:`xbdspec.cdriver.build.build`; killed by the FreeBSD refinement's campaign on
  the compiled seed (``make verify``'s stage: ``xbdspec difftest --contract freebsd
  --impl c-driver --examples 100 --first``, the seed in lock-step with the reference
  port) or else by the protocol contract's default campaign on it (``xbdspec difftest
  --impl seed``).

A mutant that does not compile is *stillborn* (counted apart, not a kill).  A compiled
mutant is killed by a new divergence (the protocol campaigns: a violation no documented
finding claims whose signature the unmutated build does not show, or no I/O compared at
all, which ``xbdspec difftest`` refuses to pass), a crash or a hang.
Each protocol campaign runs in a child process (:func:`_worker`), so a mutant that
crashes the seed's shared library or hangs it kills only the child.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xbdspec.resources import data_dir

#: Seconds a campaign on one mutant may take before the mutant counts as hung.
HANG_SECONDS = 120
#: The default campaigns' seed here (``--seed 1``, as :mod:`.mutation`).
SEED = 1

#: ``cimpl/queue_core.c``'s queue core (the stdio v1 face's parser and printer are left out).
CORE_FUNCTIONS = (
    "freeze",
    "thaw",
    "cm_freeze",
    "cm_thaw",
    "complete",
    "free_command",
    "on_ring",
    "publish",
    "fail_mapping",
    "some_at",
    "first_at",
    "ring_full",
    "head_bio",
    "send",
    "startio",
    "complete_answered",
    "after_interrupt",
    "core_reset",
)
#: ``cimpl/frontend.c``'s half of the queue: the callbacks the core calls.
FRONTEND_FUNCTIONS = ("face_grants", "face_on_ring", "face_publish", "face_bio_done")
#: The seed's request path.
SEED_FUNCTIONS = (
    "xbd_freeze",
    "xbd_thaw",
    "xbd_cm_freeze",
    "xbd_cm_thaw",
    "xbd_flush_requests",
    "xbd_free_command",
    "xbd_queue_cb",
    "xbd_queue_request",
    "xbd_restart_queue_callback",
    "xbd_bio_command",
    "xbd_startio",
    "xbd_bio_complete",
    "xbd_int",
    "xbd_strategy",
)

#: Operator swaps (each direction).
SWAPS = {
    "==": "!=",
    "!=": "==",
    "<": "<=",
    "<=": "<",
    ">": ">=",
    ">=": ">",
    "+": "-",
    "-": "+",
    "&&": "||",
    "||": "&&",
    "|": "&",
    "&": "|",
}
_TOKEN = re.compile(
    r"(?P<skip>/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'|^[ \t]*#[^\n]*)"
    r"|(?P<num>\b\d[\w.]*)"
    r"|(?P<name>\b[A-Za-z_]\w*)"
    r"|(?P<op>->|\+\+|--|<<=|>>=|<<|>>|[-+*/%&|^!=<>]=|&&|\|\||[-+<>&|])"
    r"|(?P<other>[()\[\]{};,.?:~*/%^!=])",
    re.S | re.M,
)
_CALL_STATEMENT = re.compile(r"^([ \t]*)([A-Za-z_]\w*)\s*\((?:[^;]*)\);[ \t]*$")
_NOT_CALLS = frozenset({"if", "while", "for", "switch", "return", "sizeof", "do"})


@dataclass(frozen=True)
class CMutant:
    """One change to one function of a C source.

    Attributes:
        subject: ``core``, ``frontend`` or ``seed`` (:data:`SUBJECTS`).
        function: the function changed.
        line / column: where the change is (1-based line, 0-based column).
        offset / length: where the text replaced lies in the source.
        original / replacement: the text replaced and what replaces it.
    """

    subject: str
    function: str
    line: int
    offset: int
    length: int
    original: str
    replacement: str
    column: int = 0

    @property
    def key(self) -> str:
        """A stable name: subject, function, line and the change."""
        change = f"{self.original}->{self.replacement}"
        return f"{self.subject}:{self.function}:{self.line}:{self.column}:{change}"

    def apply(self, source: str) -> str:
        """``source`` with this change made."""
        assert source[self.offset : self.offset + self.length] == self.original
        return source[: self.offset] + self.replacement + source[self.offset + self.length :]


def _seed_source() -> Path:
    from xbdspec.cdriver.build import default_source

    src = default_source()
    if src is None or not src.is_file():
        raise FileNotFoundError("no seed blkfront.c: set XBD_BLKFRONT (docs/cdriver.md)")
    return src


def source_of(subject: str) -> Path:
    """The C file ``subject``'s mutants change."""
    if subject == "core":
        return data_dir("cimpl") / "queue_core.c"
    if subject == "frontend":
        return data_dir("cimpl") / "frontend.c"
    if subject == "seed":
        return _seed_source()
    raise ValueError(f"no subject {subject!r}; subjects: {', '.join(SUBJECTS)}")


SUBJECTS = {"core": CORE_FUNCTIONS, "frontend": FRONTEND_FUNCTIONS, "seed": SEED_FUNCTIONS}


def _match_brace(text: str, start: int) -> int:
    """The offset just past the ``}`` closing the ``{`` at ``start`` (comments and
    literals skipped)."""
    depth = 0
    for m in _TOKEN.finditer(text, start):
        tok = m.group(0)
        if m.lastgroup == "skip":
            continue
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth == 0:
                return m.end()
    raise ValueError("unbalanced braces")


def function_bodies(text: str, names: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """Each named function's body (``{`` to ``}``) in ``text``: the definition is the
    first line that starts (after a return type, or on its own line in FreeBSD's style)
    with the name and ``(`` and is followed by ``{`` before any ``;``."""
    bodies: dict[str, tuple[int, int]] = {}
    for name in names:
        pattern = re.compile(rf"^(?:[A-Za-z_][\w \t*]*[ \t*])?{re.escape(name)}\(", re.M)
        for m in pattern.finditer(text):
            if m.group(0).lstrip().startswith(("return", "if", "while")):
                continue
            close = text.find(")", m.end())
            brace, semi = text.find("{", close), text.find(";", close)
            if brace != -1 and (semi == -1 or brace < semi):
                bodies[name] = (brace, _match_brace(text, brace))
                break
    return bodies


def mutants_of(subject: str, text: str | None = None) -> list[CMutant]:
    """Every mutant of ``subject``'s functions (in source order)."""
    if text is None:
        text = source_of(subject).read_text()
    found: list[CMutant] = []
    for function, (start, end) in function_bodies(text, SUBJECTS[subject]).items():
        previous = ""
        for m in _TOKEN.finditer(text, start, end):
            kind, tok = m.lastgroup, m.group(0)
            if kind == "skip":
                continue
            line = text.count("\n", 0, m.start()) + 1
            column = m.start() - text.rfind("\n", 0, m.start()) - 1
            binary = previous in (")", "]") or re.fullmatch(r"\w+", previous or "") is not None
            if previous in _NOT_CALLS or previous == "return":
                binary = False
            if kind == "op" and tok in SWAPS and (binary or tok not in ("+", "-", "&")):
                found.append(
                    CMutant(subject, function, line, m.start(), len(tok), tok, SWAPS[tok], column)
                )
            elif kind == "num" and tok in ("0", "1"):
                flip = "1" if tok == "0" else "0"
                found.append(CMutant(subject, function, line, m.start(), 1, tok, flip, column))
            previous = tok
        offset = start
        for raw in text[start:end].splitlines(keepends=True):
            call = _CALL_STATEMENT.match(raw.rstrip("\n"))
            if call and call.group(2) not in _NOT_CALLS:
                begin = offset + len(call.group(1))
                stripped = raw.rstrip("\n").strip()
                line = text.count("\n", 0, begin) + 1
                column = len(call.group(1))
                found.append(
                    CMutant(subject, function, line, begin, len(stripped), stripped, ";", column)
                )
            offset += len(raw)
    found.sort(key=lambda mu: (mu.offset, mu.replacement))
    return found


@dataclass(frozen=True)
class CVerdict:
    """What the default campaigns made of one C mutant.

    Attributes:
        outcome: ``killed``, ``survived`` or ``stillborn`` (it did not compile).
        how: the first new divergence, or why it counts as killed.
        seconds: to the first new divergence (``None``: none, or a crash or a hang).
    """

    outcome: str
    how: str
    seconds: float | None = None

    @property
    def killed(self) -> bool:
        """A new divergence, a crash or a hang."""
        return self.outcome == "killed"


def _cc() -> str:
    cc = shutil.which("cc")
    if cc is None:
        raise FileNotFoundError("no C compiler: `cc` is not on PATH")
    return cc


def _compile(argv: list[str]) -> str | None:
    """Run a compiler command; its error text, or ``None`` on success."""
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return None if proc.returncode == 0 else proc.stderr[-400:]


def build_faces(queue_core: str, frontend: str, out: Path) -> tuple[Path, Path] | str:
    """Build the v1 face from ``queue_core`` and the v2 face from ``frontend`` (which
    includes ``queue_core.c`` beside it) in ``out``: both executables, or the compiler's
    error."""
    (out / "queue_core.c").write_text(queue_core)
    (out / "frontend.c").write_text(frontend)
    v1, v2 = out / "queue_core", out / "frontend"
    # the flags of xbdspec.conformance.builtin.build_c_core and build_c_frontend
    error = _compile([_cc(), "-std=c99", "-O2", "-Wall", "-o", str(v1), str(out / "queue_core.c")])
    if error is None:
        error = _compile(
            [_cc(), "-std=c99", "-O2", "-Wall", "-Wextra", "-o", str(v2), str(out / "frontend.c")]
        )
    return error if error is not None else (v1, v2)


def _freebsd_stdio(exe: Path) -> CVerdict:
    """The FreeBSD refinement's stdio campaign on the v1 face, stopping at the first new
    divergence (the unmutated core has none)."""
    return _freebsd(["--cmd", str(exe)])


def _freebsd_seed(source: Path) -> CVerdict:
    """The FreeBSD refinement's campaign on the compiled seed built from ``source`` (``make
    verify``'s compiled-seed stage: ``--impl c-driver --examples 100``, the seed's own C
    in lock-step with the reference port, whose known findings it shows and nothing
    new), stopping at the first new divergence."""
    return _freebsd(["--impl", "c-driver", "--examples", "100"], {"XBD_BLKFRONT": str(source)})


def _freebsd(target: list[str], env: dict[str, str] | None = None) -> CVerdict:
    """``xbdspec difftest --contract freebsd <target> --seed 1 --first`` in a child
    process: killed by a new divergence, a crash or a hang."""
    argv = [
        sys.executable,
        "-m",
        "xbdspec",
        "difftest",
        "--contract",
        "freebsd",
        *target,
        "--seed",
        str(SEED),
        "--first",
        "--json",
    ]
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=HANG_SECONDS,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        return CVerdict("killed", "freebsd: hang")
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        return CVerdict("killed", f"freebsd crash: {proc.stderr.strip()[-120:]}")
    if report.get("counts", {}).get("new_divergences", 0):
        first = report.get("first_new_divergence") or {}
        seconds = first.get("seconds") if isinstance(first, dict) else None
        where = first.get("configuration", "?") if isinstance(first, dict) else "?"
        return CVerdict("killed", f"freebsd: a new divergence ({where})", seconds)
    if proc.returncode not in (0, 1):
        return CVerdict("killed", f"freebsd crash: exit {proc.returncode}")
    return CVerdict("survived", "survived")


def _protocol(target: str, path: Path, expected: frozenset[str] | None) -> dict[str, Any]:
    """The protocol contract's default campaign on ``target`` (``c-frontend`` with the
    executable ``path``, or ``seed`` built from the source ``path``) in a child process:
    its report (:func:`_worker`), or ``{"crash": why}``."""
    argv = [sys.executable, "-m", "xbdspec.conformance.cmutation", target, str(path)]
    if expected is not None:
        argv.append(json.dumps(sorted(expected)))
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=HANG_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        return {"crash": "hang"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"crash": f"exit {proc.returncode}: {proc.stderr.strip()[-120:]}"}
    return dict(json.loads(lines[-1]))


def _protocol_verdict(report: dict[str, Any]) -> CVerdict:
    if "crash" in report:
        return CVerdict("killed", f"protocol crash: {report['crash']}")
    if report.get("first") is not None:
        return CVerdict("killed", f"protocol: {report['first'][:120]}", report["seconds"])
    return CVerdict("survived", "survived")


def _worker(target: str, path: str, expected: list[str] | None) -> dict[str, Any]:
    """Run the protocol campaign (the registry's target, 200 programs, seed 1) in this
    process: the unclaimed signatures seen and, with ``expected``, the first outside it
    and the seconds to it (the campaign stops there); a campaign that compared no I/O
    (no request read from the ring, no completion) is a first too, as ``xbdspec
    difftest`` refuses to pass it."""
    from xbdspec.world.campaign import campaign, signature
    from xbdspec.world.difftest import untested
    from xbdspec.world.registry import load

    if target == "c-frontend":
        from xbdspec.conformance import builtin

        # the registry's c-frontend target (its shape and sweep) around this executable
        def built(*defines: str, out_dir: Path | None = None) -> Path:
            del defines, out_dir
            return Path(path)

        builtin.build_c_frontend = built
    else:
        os.environ["XBD_BLKFRONT"] = path
    loaded = load(target)
    found: list[str] = []
    start = time.perf_counter()

    class _First(Exception):
        pass

    def note(finding: Any) -> None:
        config = finding.config or loaded.config
        if loaded.known is not None and loaded.known(finding.rule, config) is not None:
            return
        key = signature(finding.rule)
        found.append(key)
        if expected is not None and key not in expected:
            raise _First(finding.rule)

    first: str | None = None
    try:
        report = campaign(
            loaded.maker,
            SEED,
            200,
            loaded.shape,
            loaded.config,
            per_program=loaded.per_program,
            vary=loaded.vary,
            on_finding=note,
            shrink_findings=0,
        )
        missing = untested(report)  # what `xbdspec difftest` refuses to pass
        if missing:
            first = f"the campaign compared no {' and no '.join(missing)}: it tested no I/O"
    except _First as exc:
        first = str(exc)
    finally:
        loaded.close()
    return {"found": sorted(set(found)), "first": first, "seconds": time.perf_counter() - start}


#: Why a survivor is equivalent, by kind (:data:`EQUIVALENT` names one for each key).
_WHY: dict[str, str] = {
    "counted": (
        "a freeze flag (cm_shortage, gnt_shortage, wait_idle, a command's cfrozen) is set "
        "only by freeze or cm_freeze, which count it in s.frozen, and cleared only by thaw "
        "or cm_thaw, which uncount it: s.frozen is the number of flags set, so it is > 0 "
        "whenever a thaw finds its flag set and the test never sees 0"
    ),
    "some_at": (
        "some_at is asked only about BUSY; with ncmd < MAXC (2 commands on the v1 face's "
        "default, 32 on the v2 face) place[ncmd] is never written (every write indexes a "
        "command < ncmd) and stays FREE; at ncmd = MAXC (64, the v1 face's largest) the "
        "read lands on stage[0], the array after place in s, which holds BUSY's value 2 "
        "(ST_PUBLISHED) only while command 0 is published, hence BUSY: the answer is the same"
    ),
    "carries_bio": (
        "complete is called only for a command that carries a bio (fail_mapping on a "
        "command being sent or awaiting its mapping, complete_answered on an answered one, "
        "which was on the ring): s.bio[c] < nbio there, and nbio only marks a free command"
    ),
    "once": (
        "a bio completes at most once per submission (it leaves the bioq for one command, "
        "and its counter is reset at a v2 submit; the model's strategy submits each v1 bio "
        "once, in order): s.done[b] is 0 or 1 at complete, never 2, so the saturation at 2 "
        "is never reached"
    ),
    "unique_seq": (
        "the queued bios' seq values are distinct (the v1 face's seq is the bio's index, "
        "the v2 face's a counter taken at each submit), so the tie `<=` adds never occurs"
    ),
    "bio0_first": (
        "head <= 0 (head < 1) differs from head < 0 only once bio 0 is the head found so "
        "far: a later queued bio then replaces it, so bio 0 is passed over while another "
        "waits.  On the v1 face bio 0 never waits beside another: the model submits bios in "
        "index order, each once (strategy needs every lower bio submitted), and at bio 0's "
        "strategy the fresh core is neither frozen nor full and has grants_per_request <= "
        "grants (a bound of the contract), so bio 0 is sent, held for its mapping or "
        "finished at once (the three --sizes variants do not kill it either).  On the v2 "
        "face it only reorders the sending of queued bios (slot 0's waits until no other "
        "is queued), which the protocol contract leaves free (the harness: any order is "
        "legal), and every bio is still sent"
    ),
    "unread_bytes": (
        "the request's bytes that memset fills and nothing after overwrites are the handle "
        "(2 and 3), padding (4 to 7, each segment's 6 and 7) and the segments past "
        "nr_segments; the world's back end reads a slot with ring.read_request: operation, "
        "nr_segments, id, sector_number and the first nr_segments segments (gref, "
        "first_sect, last_sect), all written after the memset, and the handle it unpacks "
        "and drops"
    ),
    "equal_branch": (
        "the two branches of the conditional agree where the tests differ: at sectors - "
        "first == SECTORS_PER_PAGE both give SECTORS_PER_PAGE"
    ),
    "zero_offset": ("fe.ring - REQ_PROD is fe.ring + REQ_PROD: REQ_PROD is 0"),
    "extra_notify": (
        "`<=` also notifies when req_event equals the old req_prod: an extra notification, "
        "always with a push (old != new, or face_publish has returned), which the protocol "
        "allows (notification_rule: a needed one must go with a push, and a notification "
        "only with a push); every needed one is still sent"
    ),
    "compiled_out": (
        "the line is inside #ifdef BREAK_NOTIFY (the deliberately broken build), which the "
        "builds here never define: the mutant compiles to the same program"
    ),
    "read_data_only": (
        "it changes the data bytes completion sends for a bio other than a successful "
        "read (a write, a failed read: c >= 0 makes bytes its sectors; or c < 0, only a "
        "flush finished EOPNOTSUPP, whose bio has no sectors, so bytes stays 0), and the "
        "harness compares a completion's data only for an ok read (observed_completion)"
    ),
    "free_null": (
        "fe.bio_data[b] is NULL whenever face_bio_done runs: a write's bytes are freed "
        "(and the pointer cleared) by face_on_ring before it can complete, reads and "
        "flushes have none, and a v2 bio completes only by complete (after face_on_ring) or "
        "as an EOPNOTSUPP flush: the free dropped is free(NULL)"
    ),
    "freeze": (
        "xbd_freeze's early return for a flag already set: it freezes a named flag only "
        "from xbd_bio_command, which xbd_startio calls only with xbd_qfrozen_cnt 0, when "
        "no flag is set (each set flag holds a count), and XBDF_NONE always counts: the "
        "mutant's missing early return is never needed"
    ),
    "kassert_text": (
        "the argument of a KASSERT's message (the queue the command is on), evaluated "
        "only when the assertion fails, and then only the panic's text changes"
    ),
    "sync": (
        "a bus_dma sync operation: the shim's bus_dmamap_sync only records its op in "
        "map->last_sync, which nothing reads (the pages are shared, nothing bounces)"
    ),
    "load_flags": ("the flags of a bus_dma load, which the shim's loads ignore ((void)flags)"),
    "early_push": (
        "xbd_flush_requests after every mapping, not only a deferred one's: xbd_startio "
        "(or xbd_dump) pushes at its loop's end anyway, no event of the contract runs "
        "between the pushes (the back end acts between the front end's calls), so the "
        "back end sees the same req_prod, and with req_event fixed meanwhile the "
        "notification test is true for exactly one of the pushes when it is for the whole"
    ),
    "defret": (
        "the return after a deferred load: the command holds the queue (cm_freeze with "
        "XBDCF_ASYNC_MAPPING), so xbd_startio's loop ends at its next test anyway; a "
        "non-zero return ends it one test earlier (and prints), and when nothing else was "
        "queued the flush it then skips has nothing written to push"
    ),
    "queued": (
        "only whether queued is 0 matters, and xbd_flush_requests with nothing newly "
        "written pushes nothing and notifies no one (new == old)"
    ),
    "assert": (
        "mtx_assert(MA_OWNED): every caller of xbd_startio holds xbd_io_lock, so the "
        "shim's assertion never faults"
    ),
    "log": (
        "logging only (printf, disk_err's arguments): the shim writes them to the log, "
        "which is no observation of the contract"
    ),
    "busy_carries": (
        "every command on the busy queue carries a bio (xbd_bio_command) or a completion "
        "routine (xbd_dump), and xbd_remove_cm faults first on a response naming a command "
        "not busy: the else branch (xbd_free_command) is never taken"
    ),
    "final_check": (
        "both branches leave rsp_event at rsp_cons + 1: the final check only matters for "
        "a response published while xbd_int runs, which no event of the contract "
        "interleaves (the back end acts between the front end's calls; as mutation.py's "
        "driver.int_#35)"
    ),
    "nodrv": (
        "a disk with no softc (d_drv1 NULL): the contract's disk always has one, so the "
        "error path is never taken"
    ),
}

#: Survivors judged equivalent by reading: ``CMutant.key`` -> why no observation of the
#: contracts (the FreeBSD refinement on the v1 face, the protocol on the v2 face and the
#: seed) can tell the mutant from the unmutated build.
EQUIVALENT: dict[str, str] = {
    "core:thaw:77:67:>->>=": _WHY["counted"],
    "core:cm_thaw:84:21:>->>=": _WHY["counted"],
    "core:complete:93:10:<-><=": _WHY["carries_bio"],
    "core:complete:95:66:<-><=": _WHY["once"],
    "core:some_at:123:50:<-><=": _WHY["some_at"],
    "core:head_bio:132:45:<-><=": _WHY["bio0_first"],
    "core:head_bio:132:47:0->1": _WHY["bio0_first"],
    "core:head_bio:132:61:<-><=": _WHY["unique_seq"],
    "frontend:face_on_ring:795:4:memset(req, 0, sizeof req);->;": _WHY["unread_bytes"],
    "frontend:face_on_ring:795:16:0->1": _WHY["unread_bytes"],
    "frontend:face_on_ring:802:40:<-><=": _WHY["equal_branch"],
    "frontend:face_publish:831:17:+->-": _WHY["zero_offset"],
    "frontend:face_publish:835:41:<-><=": _WHY["extra_notify"],
    "frontend:face_publish:837:13:0->1": _WHY["compiled_out"],
    "frontend:face_bio_done:851:15:&&->||": _WHY["read_data_only"],
    "frontend:face_bio_done:851:35:&&->||": _WHY["read_data_only"],
    "frontend:face_bio_done:855:4:free(fe.bio_data[b]);->;": _WHY["free_null"],
    "seed:xbd_freeze:57:14:!=->==": _WHY["freeze"],
    "seed:xbd_free_command:102:16:&->|": _WHY["kassert_text"],
    "seed:xbd_queue_cb:196:22:==->!=": _WHY["sync"],
    "seed:xbd_queue_cb:198:27:==->!=": _WHY["sync"],
    "seed:xbd_queue_cb:201:7:0->1": _WHY["sync"],
    "seed:xbd_queue_cb:202:1:bus_dmamap_sync(sc->xbd_io_dmat, cm->cm_map, op);->;": _WHY["sync"],
    "seed:xbd_queue_cb:207:19:&->|": _WHY["early_push"],
    "seed:xbd_queue_cb:207:45:0->1": _WHY["early_push"],
    "seed:xbd_queue_request:217:38:0->1": _WHY["load_flags"],
    "seed:xbd_queue_request:221:42:0->1": _WHY["load_flags"],
    "seed:xbd_queue_request:225:10:0->1": _WHY["defret"],
    "seed:xbd_startio:304:21:0->1": _WHY["queued"],
    "seed:xbd_startio:305:1:mtx_assert(&sc->xbd_io_lock, MA_OWNED);->;": _WHY["assert"],
    'seed:xbd_startio:321:3:printf("xbd_queue_request returned %d\\n", error);->;': _WHY["log"],
    'seed:xbd_bio_complete:335:2:disk_err(bp, "disk error", -1, 0);->;': _WHY["log"],
    "seed:xbd_bio_complete:335:30:1->0": _WHY["log"],
    "seed:xbd_bio_complete:335:33:0->1": _WHY["log"],
    'seed:xbd_bio_complete:336:2:printf(" status: %x\\n", cm->cm_status);->;': _WHY["log"],
    "seed:xbd_int:369:23:==->!=": _WHY["sync"],
    "seed:xbd_int:371:28:==->!=": _WHY["sync"],
    "seed:xbd_int:371:46:||->&&": _WHY["sync"],
    "seed:xbd_int:372:21:==->!=": _WHY["sync"],
    "seed:xbd_int:375:8:0->1": _WHY["sync"],
    "seed:xbd_int:376:2:bus_dmamap_sync(sc->xbd_io_dmat, cm->cm_map, op);->;": _WHY["sync"],
    "seed:xbd_int:389:3:xbd_free_command(cm);->;": _WHY["busy_carries"],
    "seed:xbd_int:392:7:!=->==": _WHY["final_check"],
    "seed:xbd_strategy:530:2:biodone(bp);->;": _WHY["nodrv"],
}


_baselines: dict[str, frozenset[str]] = {}


def baseline(subject: str) -> frozenset[str]:
    """The unclaimed violation signatures the unmutated build shows in the protocol
    campaign (a mutant is killed by one outside them)."""
    if subject not in _baselines:
        with tempfile.TemporaryDirectory(prefix="xbdspec-cmut-") as tmp:
            if subject == "seed":
                report = _protocol("seed", source_of("seed"), None)
            else:
                faces = build_faces(
                    source_of("core").read_text(), source_of("frontend").read_text(), Path(tmp)
                )
                if isinstance(faces, str):
                    raise RuntimeError(f"the unmutated C core does not build: {faces}")
                report = _protocol("c-frontend", faces[1], None)
        if "crash" in report:
            raise RuntimeError(f"the unmutated {subject} crashes the campaign: {report['crash']}")
        _baselines[subject] = frozenset(report["found"])
    return _baselines[subject]


def kill(mutant: CMutant | None, subject: str = "core") -> CVerdict:
    """Build ``mutant`` (``None``: the unmutated source of ``subject``) and run its
    default campaigns (the module's docstring)."""
    subject = mutant.subject if mutant is not None else subject
    expected = baseline(subject)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="xbdspec-cmut-") as tmp:
        out = Path(tmp)
        if subject == "seed":
            text = source_of("seed").read_text()
            src = out / "blkfront.c"
            src.write_text(mutant.apply(text) if mutant else text)
            from xbdspec.cdriver.build import BuildError, build

            try:
                built = build(src)
            except BuildError as exc:
                return CVerdict("stillborn", str(exc)[-200:])
            try:
                verdict = _freebsd_seed(src)
                if verdict.killed:
                    return verdict
                return _protocol_verdict(_protocol("seed", src, expected))
            finally:  # the child found it in the build cache; a mutant's build is not kept
                if mutant is not None:
                    shutil.rmtree(built.library.parent, ignore_errors=True)
        core = source_of("core").read_text()
        face = source_of("frontend").read_text()
        if mutant is not None and subject == "core":
            core = mutant.apply(core)
        elif mutant is not None:
            face = mutant.apply(face)
        faces = build_faces(core, face, out)
        if isinstance(faces, str):
            return CVerdict("stillborn", faces[-200:])
        if subject == "core":
            verdict = _freebsd_stdio(faces[0])
            if verdict.killed:
                return verdict
        verdict = _protocol_verdict(_protocol("c-frontend", faces[1], expected))
        if verdict.killed and verdict.seconds is not None and subject == "core":
            # the freebsd campaign ran to its end first: the time to this divergence
            verdict = CVerdict(verdict.outcome, verdict.how, time.perf_counter() - start)
        return verdict


if __name__ == "__main__":  # the child process of _protocol
    given = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    print(json.dumps(_worker(sys.argv[1], sys.argv[2], given)))
