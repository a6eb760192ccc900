"""Named scenarios run in a child process (``python -m xbdspec.cdriver scenario NAME``):
how the sanitizer build runs, since its runtimes must be preloaded before Python's own
libraries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xbdspec.reference import BackendConfig

from .adapter import CDriverImplementation
from .binding import CDriverFault
from .build import BuildResult
from .platform import CPlatform


def _scenario_io(p: CPlatform) -> dict[str, Any]:
    p.boot()
    bio = p.strategy(2, 8, 8192, data=bytes(range(256)) * 32)
    p.backend_fetch()
    p.respond_all()
    p.deliver_interrupt()
    rd = p.strategy(1, 8, 8192)
    p.backend_fetch()
    p.respond_all()
    p.deliver_interrupt()
    return {"ok": p.bio_data(rd, 8192) == bytes(range(256)) * 32, "write": p.bio(bio).bio_error}


def _serve(p: CPlatform) -> None:
    p.backend_fetch()
    p.respond_all()
    p.deliver_interrupt()


def _scenario_workout(p: CPlatform) -> dict[str, Any]:
    """Most driver paths without a fault: I/O (direct and indirect), reordered responses,
    deferred and failed mappings, a grant shortage, a single-stepped write, a flush, a
    suspend drained through msleep, the back end closing."""
    p.boot()
    big = bytes(range(256)) * 256
    p.strategy(2, 0, len(big), data=big)
    _serve(p)
    rd = p.strategy(1, 0, len(big))
    _serve(p)
    for i in range(40):
        p.strategy(1, 8 * i, 4096, page_offset=512 * (i % 8) if i % 3 == 0 else 0)
    p.backend_fetch()
    p.respond_all(list(reversed(range(32))))
    p.deliver_interrupt()
    _serve(p)
    p.dma_next("DEFERRED")
    p.strategy(1, 0, 4096)
    p.strategy(1, 8, 4096)
    p.run_deferred()
    _serve(p)
    _serve(p)
    p.dma_next("FAIL")
    p.strategy(2, 0, 4096)
    p.grants_take(p.grant_free_count() - 5)
    p.strategy(1, 0, 4096)
    p.grants_give_back()
    _serve(p)
    p.strategy(2, 0, 4096, flags=0x08)
    p.strategy(5, 0, 0)
    _serve(p)
    _serve(p)
    p.strategy(1, 0, 4096)
    p.on_msleep = lambda: _serve(p)
    p.msleep_answers = [0]
    suspended = p.suspend()
    p.backend_set_state(5)
    p.settle()
    return {
        "read_ok": p.bio_data(rd, len(big)) == big,
        "suspend": suspended,
        "completed": len(p.completed()),
    }


def _scenario_boot(p: CPlatform) -> dict[str, Any]:
    p.boot()
    return {"ring_pages": p.softc()["xbd_ring_pages"]}


def _scenario_campaign(p: CPlatform) -> dict[str, Any]:
    """A short random conformance campaign on this build (through the adapter)."""
    from xbdspec.conformance import FULL, Campaign
    from xbdspec.conformance.reference_adapter import reference_sizes

    built = p.built
    campaign = Campaign(lambda: CDriverImplementation(built), reference_sizes(), FULL, 3, 60, None)
    campaign.run(examples=20)
    twins = [
        d.fault
        for d, _s, _p, _n in campaign.divergences.values()
        if d.fault and "differs from the reference" in d.fault
    ]
    return {"examples": campaign.examples, "steps": campaign.steps, "twin_differences": twins}


def _response_id(rid: int) -> Callable[[CPlatform], dict[str, Any]]:
    """A hostile back end's response naming id ``rid`` after the handshake, then the
    interrupt: the seed indexes its 32-entry shadow array with it unchecked (finding
    response-id-trusted).  Past the array the access faults against the shim's fence (a
    reported ``UndefinedBehaviour`` naming ``sc->xbd_shadow[rid]``) or, far past, at an
    address the processor refuses; under ASan it is ASan's report."""

    def scenario(p: CPlatform) -> dict[str, Any]:
        p.boot()
        p.raw_response(rid)
        p.deliver_interrupt(force=True)
        return {"completed": len(p.completed())}

    return scenario


#: The hostile response ids of the ``response-id-N`` scenarios: just past the shadow
#: array, far past it (inside the fence), and 2**40 (no address at all).
HOSTILE_RESPONSE_IDS = (32, 10_000, 1 << 40)

#: name -> (the back end's configuration, what to run)
SCENARIOS: dict[str, tuple[Callable[[], BackendConfig], Callable[[CPlatform], dict[str, Any]]]] = {
    "io": (BackendConfig, _scenario_io),
    "campaign": (BackendConfig, _scenario_campaign),
    "workout": (lambda: BackendConfig(max_indirect_segments=64), _scenario_workout),
    "ring-order-31": (
        lambda: BackendConfig(overrides={"max-ring-page-order": "31"}),
        _scenario_boot,
    ),
    "ring-order-32": (
        lambda: BackendConfig(overrides={"max-ring-page-order": "32"}),
        _scenario_boot,
    ),
    "huge-sector-size": (lambda: BackendConfig(sector_size=2 * 1048576), _scenario_boot),
    **{f"response-id-{rid}": (BackendConfig, _response_id(rid)) for rid in HOSTILE_RESPONSE_IDS},
}


def run_scenario(name: str, built: BuildResult) -> dict[str, Any]:
    """Run scenario ``name``; its result, with ``fault`` if the driver faulted."""
    config, body = SCENARIOS[name]
    p = CPlatform(built, backend_config=config())
    result: dict[str, Any] = {"scenario": name}
    try:
        result.update(body(p))
    except CDriverFault as fault:
        result["fault"] = {"kind": fault.kind, "message": fault.message, "where": fault.where}
    return result
