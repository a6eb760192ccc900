"""Findings in Linux 6.1.192's ``drivers/block/xen-blkfront.c``, found by running the
unmodified driver under the protocol-level harness (``xbdspec difftest --impl linux``).

Each :class:`LinuxFinding` is a replay of harness events (the world's own format,
:mod:`xbdspec.world.replay`) that shows it on the compiled driver, the rule the harness
reports (its exact text, numbers aside), and a control: the same program with the
trigger taken away runs clean, so the trigger is what the finding is about.  Nothing is
claimed that the replay does not show; :func:`audit` runs every replay on the driver.

``docs/findings/linux.md`` is generated from this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xbdspec.world.backend import BackendConfig
from xbdspec.world.campaign import signature

from .catalogue import Severity

VERSION = "Linux 6.1.192 (Debian's linux-source-6.1, package 6.1.192-3)"
SOURCE = "drivers/block/xen-blkfront.c"

Program = list[tuple[str, Mapping[str, Any]]]
START: Program = [("attach", {}), ("backend_probe", {}), ("settle", {})]


def _write(bio: int, op: str, sector: int, sectors: int, byte: int) -> tuple[str, dict[str, Any]]:
    data = (bytes([byte]) * (sectors * 512)).hex()
    return ("submit", {"id": bio, "op": op, "sector": sector, "sectors": sectors, "data": data})


@dataclass(frozen=True)
class LinuxFinding:
    """One finding in Linux's front end.

    Attributes:
        name: kebab-case, the page's anchor.
        title: one line.
        severity: see :class:`~xbdspec.findings.catalogue.Severity`.
        lines: where in ``xen-blkfront.c`` (function and line numbers of 6.1.192).
        summary: one sentence.
        explanation: why it goes wrong (Markdown).
        blkif: the header sentence the behaviour is measured against.
        how_found: how the harness found it.
        params: the driver's module parameters (and ``grant_refs``) of the replay.
        config: the back end of the replay.
        program: the harness events.
        rule: what the harness reports, as text (compared numbers aside).
        control: back-end settings that take the trigger away: the same program then
            runs clean.
        control_program: or, when the trigger is an event of the program, the program
            without it, which runs clean.
    """

    name: str
    title: str
    severity: Severity
    lines: str
    summary: str
    explanation: str
    blkif: str
    how_found: str
    params: dict[str, int]
    config: BackendConfig
    program: Program
    rule: str
    control: dict[str, Any] = field(default_factory=dict)
    control_program: Program = field(default_factory=list)


FINDINGS: tuple[LinuxFinding, ...] = (
    LinuxFinding(
        name="resume-after-error-hits-bug-on",
        title="A save/restore after the device was disabled for a bad response hits "
        "BUG_ON(info->gd != NULL)",
        severity=Severity.PANIC,
        lines="blkfront_resume, blkif_free, blkfront_connect, xlvbd_alloc_gendisk: lines "
        "1081, 1306-1308, 2105, 2353-2394",
        summary="After a response the driver rejects (XSA-376's checks: a wrong operation, "
        "an id not in flight, too many responses) the device is BLKIF_STATE_ERROR; the next "
        "save/restore or migration makes blkfront_connect take its first-connect path and "
        "xlvbd_alloc_gendisk's BUG_ON(info->gd != NULL) stops the guest kernel.",
        explanation=(
            "`blkif_interrupt` answers a response it cannot trust by setting "
            '`info->connected = BLKIF_STATE_ERROR` ("xvda disabled for further use"), '
            "keeping the gendisk. A later `blkfront_resume` calls "
            "`blkif_free(info, info->connected == BLKIF_STATE_CONNECTED)`: the device is "
            "not CONNECTED, so `blkif_free` leaves it `BLKIF_STATE_DISCONNECTED` rather "
            "than `SUSPENDED`. When the new back end goes Connected, `blkfront_connect` "
            "sees neither CONNECTED nor SUSPENDED and takes the first-connect path, "
            "`xlvbd_alloc_gendisk`, whose first line is `BUG_ON(info->gd != NULL)`: the "
            "disk of the first connect still exists. One misbehaving response from a back "
            "end turns the guest's next migration into a kernel BUG. Treating ERROR like "
            "CONNECTED in `blkfront_resume` (suspend, then recover), or tearing the disk "
            "down when the ring is disabled, would avoid it."
        ),
        blkif=(
            "blkif.h leaves a back end's misbehaviour unspecified; XSA-376 (2021) made "
            "Linux's front end check responses instead of trusting them. The resume path "
            "of blkif.h's STATE DIAGRAMS (Initialising, Initialised, Connected again) is "
            "one a front end must survive."
        ),
        how_found=(
            "A `xbdspec difftest --impl linux` campaign with the harness's hostile back-end "
            "events and resumes (7 of the 8 violations of a 2,000-program sanitized run): "
            "the shim turns `BUG()` into a reported failure of the entry point."
        ),
        params={},
        config=BackendConfig(sectors=2048),
        program=[
            *START,
            _write(1, "write", 0, 1, 0xAB),
            ("backend_hostile", {"kind": "wrong-op"}),
            ("settle", {}),
            ("resume", {}),
            ("settle", {}),
        ],
        rule="blkback_changed: the driver hit BUG at drivers/block/xen-blkfront.c:1081",
        control_program=[
            *START,
            _write(1, "write", 0, 1, 0xAB),
            ("settle", {}),
            ("resume", {}),
            ("settle", {}),
        ],
    ),
    LinuxFinding(
        name="eopnotsupp-fua-write-reported-done",
        title="A FUA write answered BLKIF_RSP_EOPNOTSUPP is completed as successful, its "
        "data never written",
        severity=Severity.LOST_IO,
        lines="blkif_interrupt, lines 1614-1633",
        summary="With a back end that offers feature-barrier alone, a FUA write goes as "
        "BLKIF_OP_WRITE_BARRIER with its data; answered EOPNOTSUPP, the driver turns "
        "BLK_STS_NOTSUPP into BLK_STS_OK: the block layer is told the write is on "
        "stable storage, and it is not on the disk at all.",
        explanation=(
            "`blkif_queue_rw_req` sends a request with `REQ_FUA` as `info->flush_op` "
            "(`BLKIF_OP_WRITE_BARRIER` when the back end offers `feature-barrier` and "
            "not `feature-flush-cache`), with the write's segments. blkif.h lets a back "
            "end answer such a request with `BLKIF_RSP_EOPNOTSUPP` at any time; "
            "`blkif_interrupt` then sets `BLK_STS_NOTSUPP`, clears `feature_flush` and "
            "`feature_fua`, and, because the error is NOTSUPP, replaces it with "
            "`BLK_STS_OK`. That is right for an empty flush (there is nothing to lose), "
            "wrong for a request that carried data: the back end did not perform the "
            "operation (Linux's own blkback answers EOPNOTSUPP only when the write bio "
            "itself failed with `BLK_STS_NOTSUPP`), so the data is lost while the file "
            "system believes it durable. Resubmitting the data as a plain write (or "
            "failing the bio) would keep it."
        ),
        blkif=(
            'blkif.h, feature-barrier: "Requests of this type may still be returned at any '
            'time with the BLKIF_RSP_EOPNOTSUPP result code"; BLKIF_RSP_EOPNOTSUPP: '
            '"Operation not supported".'
        ),
        how_found=(
            "The harness checks that a write completed as done is on the disk; a back end "
            "answering EOPNOTSUPP (`BackendConfig(eopnotsupp_barrier=True)`), offering "
            "barrier alone, showed the sector still zero."
        ),
        params={},
        config=BackendConfig(
            sectors=2048, feature_flush=False, feature_barrier=True, eopnotsupp_barrier=True
        ),
        program=[*START, _write(1, "fua", 8, 8, 0xA5), ("settle", {})],
        rule="as done, but sector 8 does not hold its data: the back end answered its "
        "request(s) with BLKIF_RSP_EOPNOTSUPP",
        control={"eopnotsupp_barrier": False},
    ),
    LinuxFinding(
        name="failed-empty-flush-reported-done",
        title="An empty flush answered BLKIF_RSP_ERROR is completed as successful",
        severity=Severity.WRONG,
        lines="blkif_interrupt, lines 1621-1629",
        summary="A cache flush the back end failed (BLKIF_RSP_ERROR, -EIO) is reported to "
        "the block layer as done, and the flush feature switched off: a failed fsync "
        "looks like a successful one.",
        explanation=(
            "For `BLKIF_OP_FLUSH_DISKCACHE` and `BLKIF_OP_WRITE_BARRIER`, "
            "`blkif_interrupt` treats `BLKIF_RSP_ERROR` on a request with no segments "
            'like EOPNOTSUPP (`"empty %s op failed"`, `BLK_STS_NOTSUPP`), which it then '
            "turns into `BLK_STS_OK`. The code's intent is old back ends that answered "
            "an unsupported empty barrier with an error; but blkif.h's "
            "`BLKIF_RSP_ERROR` says the operation failed, and a back end whose cache "
            "write-back failed says exactly that. The guest's `fsync` returns 0 after a "
            "failed flush."
        ),
        blkif='blkif.h, BLKIF_RSP_ERROR: "Operation failed for some unspecified reason (-EIO)".',
        how_found=(
            "The harness reports a bio completed as done whose every response was "
            "BLKIF_RSP_ERROR; a back end failing flushes (`BackendConfig(error_flush=True)`)."
        ),
        params={},
        config=BackendConfig(sectors=2048, error_flush=True),
        program=[*START, ("submit", {"id": 1, "op": "flush"}), ("settle", {})],
        rule="the front end completes bio 1 (flush) as done, but the back end answered it "
        'with BLKIF_RSP_ERROR (blkif.h: "Operation failed for some unspecified reason (-EIO)")',
        control={"error_flush": False},
    ),
    LinuxFinding(
        name="indirect-op-echo-disables-device",
        title="A response to an indirect request that copies BLKIF_OP_INDIRECT disables the device",
        severity=Severity.HANG,
        lines="blkif_interrupt, lines 1566-1573 and 1669-1670",
        summary="blkif.h says a response's operation is copied from the request; a back "
        "end that copies BLKIF_OP_INDIRECT literally gets the device disabled and the "
        "bio never completed. Linux's blkback answers with indirect_op, so the two Linux "
        "ends agree.",
        explanation=(
            "`blkif_interrupt` compares `bret.operation` with the shadow's operation, "
            "replaced by its `indirect_op` for an indirect request: a response carrying "
            '`BLKIF_OP_INDIRECT` (6) is "response has wrong operation (6 instead of '
            '0)", the ring is marked broken (`BLKIF_STATE_ERROR`) and nothing more '
            "completes. The header's comment for `struct blkif_response`'s `operation` "
            'is "copied from request", which a back end may read literally.'
        ),
        blkif='blkif.h, struct blkif_response: "uint8_t operation; /* copied from request */".',
        how_found=(
            "Writing the harness's back end from blkif.h's comment; Linux's device "
            "stopped at its first indirect read."
        ),
        params={"max_indirect_segments": 32},
        config=BackendConfig(sectors=2048, max_indirect_segments=32, echo_indirect_op=True),
        program=[
            *START,
            ("submit", {"id": 1, "op": "read", "sector": 0, "sectors": 128}),
            ("settle", {}),
        ],
        rule="bio 1 was never completed (the front end never published it, or never took "
        "its response)",
        control={"echo_indirect_op": False},
    ),
)

BY_NAME = {f.name: f for f in FINDINGS}


@dataclass
class Outcome:
    """What a finding's replay did on the driver: its rule, and the control's."""

    finding: str
    rule: str | None
    control_rule: str | None
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _run(params: Mapping[str, int], config: BackendConfig, program: Program) -> str | None:
    from xbdspec.linux.adapter import make
    from xbdspec.world.harness import Violation, run_program

    try:
        run_program(make(dict(params)), program, config)
    except Violation as v:
        return v.rule
    return None


def audit_finding(finding: LinuxFinding) -> Outcome:
    """Run a finding's replay and its control on the compiled driver."""
    rule = _run(finding.params, finding.config, finding.program)
    control = dataclasses.replace(finding.config, **finding.control)
    control_rule = _run(finding.params, control, finding.control_program or finding.program)
    problems = []
    if rule is None:
        problems.append("the replay ran clean: the finding no longer shows")
    elif signature(finding.rule) not in signature(rule):
        problems.append(f"the replay shows another rule: {rule}")
    if control_rule is not None:
        problems.append(f"the control (trigger off) is not clean: {control_rule}")
    return Outcome(finding.name, rule, control_rule, problems)


def claim(rule: str, config: BackendConfig) -> LinuxFinding | None:
    """The documented finding a campaign's violation is, by its exact signature: the
    finding's rule (numbers aside) and its trigger (the back-end settings its control
    turns off, as they are in its replay); None when it is new."""
    for finding in FINDINGS:
        if signature(finding.rule) not in signature(rule):
            continue
        if all(getattr(config, k) == getattr(finding.config, k) for k in finding.control):
            return finding
    return None


def audit() -> list[Outcome]:
    """Every Linux finding's replay, on the compiled driver."""
    return [audit_finding(f) for f in FINDINGS]


def replay_of(finding: LinuxFinding) -> Any:
    """The finding as a replay file's contents (:class:`xbdspec.world.replay.Replay`)."""
    from xbdspec.world.replay import Replay

    return Replay(
        "linux",
        {k: str(v) for k, v in finding.params.items()},
        finding.config,
        list(finding.program),
        finding.rule,
    )


def page() -> str:
    """``docs/findings/linux.md``."""
    lines = [
        f"# Linux's front end: {VERSION}",
        "",
        f"What the protocol-level harness found in `{SOURCE}`, compiled unmodified under "
        "the project's kernel shim ([Linux](../linux.md)). Each finding's replay is a "
        "program of harness events run on the compiled driver (`xbdspec findings` runs "
        "them all, with a control: the same program with the trigger off runs clean). "
        "The line numbers are 6.1.192's.",
        "",
        "*Withdrawn*: `blkfront_connect` seemed to go on to Connected over freed rings after "
        "a failed `blkfront_setup_indirect`; it was the shim's `blk_mq_alloc_tag_set`, which "
        "took a tag set of no hardware queue where block/blk-mq.c returns `-EINVAL` (the "
        "sanitized build showed it). With the kernel's check the front end stays Closing.",
        "",
        "| finding | severity | where |",
        "| --- | --- | --- |",
    ]
    lines += [f"| [{f.title}](#{f.name}) | {f.severity.value} | `{f.lines}` |" for f in FINDINGS]
    for f in FINDINGS:
        changed = {
            k: getattr(f.config, k)
            for k in (x.name for x in dataclasses.fields(BackendConfig))
            if getattr(f.config, k) != getattr(BackendConfig(), k)
        }
        lines += [
            "",
            f"## {f.title} {{#{f.name}}}",
            "",
            f"**{f.severity.value}** · `{f.lines}` · {f.summary}",
            "",
            f.explanation,
            "",
            f"*Measured against:* {f.blkif}",
            "",
            f"*How it was found:* {f.how_found}",
            "",
            "*Replay* (module parameters "
            + (", ".join(f"`{k}={v}`" for k, v in f.params.items()) or "the defaults")
            + "; back end "
            + ", ".join(f"`{k}={v}`" for k, v in changed.items())
            + "):",
            "",
            "```",
            *(
                f"{n}({', '.join(f'{k}={v}' for k, v in p.items() if k != 'data')})"
                for n, p in f.program
            ),
            "```",
            "",
            f"The harness reports: *{f.rule}*. "
            + (
                "With "
                + ", ".join(f"`{k}={v}`" for k, v in f.control.items())
                + " the same program runs clean."
                if f.control
                else "Without the hostile response the same program runs clean."
            ),
        ]
    return "\n".join(lines) + "\n"
