"""``xbdspec.conformance``: differential testing of implementations against the model.

The adapter contract (:class:`Implementation`), the lock-step checker
(:class:`LockStep`), the generated hypothesis state machine
(:func:`conformance_machine`), the reference behind the contract
(:class:`ReferenceImplementation`, its refinement mapping :func:`abstract_state`), the
stdio protocol's client (:class:`SubprocessImplementation`), known findings and their
exact signatures (:class:`Signature`), the configurations campaigns sweep
(:class:`Configuration`, :data:`REFERENCE_SWEEP`), coverage targets (:class:`Targets`)
and replay files.  ``docs/conformance.md`` explains how they fit together.
"""

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
