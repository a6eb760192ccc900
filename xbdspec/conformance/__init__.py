"""``xbdspec.conformance``: differential testing of implementations against the model.

The adapter contract (:class:`Implementation`), the lock-step checker
(:class:`LockStep`), the generated hypothesis state machine
(:func:`conformance_machine`), the reference behind the contract
(:class:`ReferenceImplementation`, its refinement mapping :func:`abstract_state`), the
stdio protocol's client (:class:`SubprocessImplementation`), known findings and replay
files.  ``docs/conformance.md`` explains how they fit together.
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
from .findings import FINDINGS, Finding, classify
from .harness import Coverage, Divergence, LockStep, ModelSide
from .program import FULL, PROFILES, SEED_SAFE, Profile, random_walk, run_program, shrink
from .reference_adapter import REFERENCE_SIZES, ReferenceImplementation, abstract_state
from .stateful import DivergenceFound, Tally, conformance_machine
from .subprocess_impl import SubprocessImplementation

__all__ = [
    "FINDINGS",
    "FULL",
    "INTERNAL_EVENTS",
    "PROFILES",
    "REFERENCE_SIZES",
    "SEED_SAFE",
    "Campaign",
    "Capabilities",
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
    "Step",
    "SubprocessImplementation",
    "Tally",
    "UnsupportedEvent",
    "abstract_state",
    "classify",
    "conformance_machine",
    "random_walk",
    "run_program",
    "shrink",
]
