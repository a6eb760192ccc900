"""``xbdspec.conformance``: differential testing of implementations against the model.

The adapter contract (:class:`Implementation`), the lock-step checker
(:class:`LockStep`), the generated hypothesis state machine
(:func:`conformance_machine`), the reference behind the contract
(:class:`ReferenceImplementation`, its refinement mapping :func:`abstract_state`), the
stdio protocol's client (:class:`SubprocessImplementation`), known findings and their
exact signatures (:class:`Signature`), the configurations campaigns sweep
(:class:`Configuration`, :data:`REFERENCE_SWEEP`), coverage targets (:class:`Targets`)
and replay files.  ``docs/conformance.md`` explains how they fit together.

The names are imported on first use (PEP 562), so importing a submodule, such as the
pytest plugin that pytest loads in every run where xbdspec is installed, does not pay
for the harness, the model and Hypothesis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .campaign import Campaign
    from .contract import (
        INTERNAL_EVENTS,
        Capabilities,
        EnvChoices,
        Implementation,
        ImplementationError,
        Observation,
        Step,
        UnsupportedEvent,
    )
    from .findings import FINDINGS, Finding, classify, near_findings
    from .harness import Coverage, Divergence, LockStep, ModelSide
    from .program import FULL, PROFILES, SEED_SAFE, Profile, random_walk, run_program, shrink
    from .reference_adapter import REFERENCE_SIZES, ReferenceImplementation, abstract_state
    from .signatures import Signature, signature_of
    from .stateful import DivergenceFound, Tally, conformance_machine
    from .subprocess_impl import SubprocessImplementation
    from .sweep import REFERENCE_SWEEP, BackendSetup, Configuration
    from .targets import Targets, default_targets

#: public name -> the submodule that defines it
_WHERE: dict[str, str] = {
    "Campaign": "campaign",
    "INTERNAL_EVENTS": "contract",
    "Capabilities": "contract",
    "EnvChoices": "contract",
    "Implementation": "contract",
    "ImplementationError": "contract",
    "Observation": "contract",
    "Step": "contract",
    "UnsupportedEvent": "contract",
    "FINDINGS": "findings",
    "Finding": "findings",
    "classify": "findings",
    "near_findings": "findings",
    "Coverage": "harness",
    "Divergence": "harness",
    "LockStep": "harness",
    "ModelSide": "harness",
    "FULL": "program",
    "PROFILES": "program",
    "SEED_SAFE": "program",
    "Profile": "program",
    "random_walk": "program",
    "run_program": "program",
    "shrink": "program",
    "REFERENCE_SIZES": "reference_adapter",
    "ReferenceImplementation": "reference_adapter",
    "abstract_state": "reference_adapter",
    "Signature": "signatures",
    "signature_of": "signatures",
    "DivergenceFound": "stateful",
    "Tally": "stateful",
    "conformance_machine": "stateful",
    "SubprocessImplementation": "subprocess_impl",
    "REFERENCE_SWEEP": "sweep",
    "BackendSetup": "sweep",
    "Configuration": "sweep",
    "Targets": "targets",
    "default_targets": "targets",
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its submodule on first use."""
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "FINDINGS",
    "FULL",
    "INTERNAL_EVENTS",
    "PROFILES",
    "REFERENCE_SIZES",
    "REFERENCE_SWEEP",
    "SEED_SAFE",
    "BackendSetup",
    "Campaign",
    "Capabilities",
    "Configuration",
    "Coverage",
    "Divergence",
    "DivergenceFound",
    "EnvChoices",
    "Finding",
    "Implementation",
    "ImplementationError",
    "LockStep",
    "ModelSide",
    "Observation",
    "Profile",
    "ReferenceImplementation",
    "Signature",
    "Step",
    "SubprocessImplementation",
    "Tally",
    "Targets",
    "UnsupportedEvent",
    "abstract_state",
    "classify",
    "conformance_machine",
    "default_targets",
    "near_findings",
    "random_walk",
    "run_program",
    "shrink",
    "signature_of",
]
