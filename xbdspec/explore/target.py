"""What the explorer explores: the :class:`ExplorationTarget` protocol and the model.

The breadth-first search (:mod:`xbdspec.explore.search`) only needs a small
interface: an initial state, the labelled successors of a state, a key that
identifies a state up to symmetry, and the model ``State`` to check the properties
on.  The model implements it directly (:class:`ModelTarget`); an implementation
such as the reference driver implements it through an adapter that restores a
snapshot, performs one model event and maps its state back to a model ``State``
(a refinement mapping), so the same invariants are checked on the driver's code.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol

from xbdspec.model.declaration import Instance, Spec
from xbdspec.model.vocabulary import BioStage, DumpPc, Place

from .fast import FastStepper
from .symmetry import CommandSymmetry, Fingerprinter


class ExplorationTarget(Protocol):
    """A transition system the explorer can search.

    States are opaque to the search (a model ``State`` or a snapshot of an
    implementation); a step is named by the position of a model
    :class:`~xbdspec.model.declaration.Instance` in ``spec.instances``, so every
    target speaks the model's event vocabulary.

    Attributes:
        spec: the model declaration whose events, invariants and progress
            properties apply.
        name: ``"model"`` or the implementation's name.
    """

    spec: Spec
    name: str

    def initial(self) -> Any:
        """The initial state."""
        ...

    def expand(self, state: Any) -> list[tuple[int, Any, Any, list[str], Any, Hashable]]:
        """Every enabled step: ``(instance id, state after, hint, step properties
        the step breaks, canonical form of the state after, its key)``.  The hint
        is passed back to :meth:`violated_invariants_after`."""
        ...

    def key(self, state: Any) -> Hashable:
        """The key of the state's equivalence class (a fingerprint of its canonical form)."""
        ...

    def key_of_canonical(self, representative: Any) -> Hashable:
        """:meth:`key` of a state already in canonical form (cheaper)."""
        ...

    def canonical(self, state: Any) -> Any:
        """The representative of the state's class, the one the search expands."""
        ...

    def observe(self, state: Any) -> Any:
        """The model ``State`` the properties are checked on (a refinement mapping)."""
        ...

    def violated_invariants(self, state: Any) -> list[str]:
        """The invariants the state breaks."""
        ...

    def violated_invariants_after(self, state: Any, hint: Any) -> list[str]:
        """As :meth:`violated_invariants`, for a state reached by a step from a state
        that broke none (``hint`` from :meth:`expand` may make it cheaper)."""
        ...

    def violated_step_properties(self, before: Any, after: Any) -> list[str]:
        """The step properties the step breaks."""
        ...

    def work_pending(self, state: Any) -> bool:
        """Whether the state still owes work (a deadlock there is a failure)."""
        ...


def model_work_pending(s: Any) -> bool:
    """Work is pending: a bio is queued or held by a command, a command is not free, or
    the kernel dumper waits in ``xbd_dump``.

    A state with no enabled event and pending work is a deadlock: the disk layer
    waits for that bio for ever (or the dumper for its dump).
    """
    return (
        any(st in (BioStage.QUEUED, BioStage.HELD) for st in s.bio_stage)
        or any(p != Place.FREE for p in s.cmd_place)
        or s.dump_pc != DumpPc.IDLE
    )


class ModelTarget:
    """The model itself, through :class:`~xbdspec.explore.fast.FastStepper`.

    Attributes:
        spec: the declaration.
        symmetry: whether states are identified up to a permutation of the commands.
        exact: keys are the canonical states themselves instead of 64-bit fingerprints
            (no collision is possible; more memory).
    """

    name = "model"

    def __init__(self, spec: Spec, *, symmetry: bool = True, exact: bool = False) -> None:
        self.spec = spec
        self.symmetry = symmetry
        self.exact = exact
        self.stepper = FastStepper(spec)
        self._symmetry = CommandSymmetry(spec)
        self._fingerprint = Fingerprinter(spec)
        self._symmetric = frozenset(self._symmetry.positions) if symmetry else None
        # the hot methods, bound once (the search calls them for every edge)
        self.violated_step_properties = self.stepper.violated_step_properties  # type: ignore[method-assign]
        self.violated_invariants_after = self.stepper.violated_invariants_after  # type: ignore[method-assign,assignment]
        if symmetry:
            self.canonical = self._symmetry.canonical  # type: ignore[method-assign]
        if not exact:
            self.key_of_canonical = self._fingerprint.__call__  # type: ignore[method-assign,assignment]

    #: the model is its own observation: the search may skip :meth:`observe`
    observe_is_identity = True

    def initial(self) -> Any:
        """The model's initial state."""
        return self.stepper.initial()

    def expand(self, state: Any) -> list[tuple[int, Any, Any, list[str], Any, Hashable]]:
        """Every enabled instance, the state after it, the fields it assigned, the
        step properties it breaks, the canonical form and key of the state after.

        ``state`` must be canonical (the search only expands representatives): a
        step that assigns no per-command field then leaves a canonical state."""
        return self.stepper.expand_checked(
            state, self.canonical, self.key_of_canonical, self._symmetric
        )

    def expand_any(self, state: Any) -> list[tuple[int, Any, Any, list[str], Any, Hashable]]:
        """As :meth:`expand`, for a state that need not be canonical (counterexamples)."""
        return self.stepper.expand_checked(state, self.canonical, self.key_of_canonical)

    def canonical(self, state: Any) -> Any:
        """The state with its command columns sorted (or itself without symmetry)."""
        return self._symmetry.canonical(state) if self.symmetry else state

    def key(self, state: Any) -> Hashable:
        """The fingerprint (or, when exact, the canonical state) of ``state``'s class."""
        return self.key_of_canonical(self.canonical(state))

    def key_of_canonical(self, representative: Any) -> Hashable:
        """The fingerprint (or, when exact, the state) of a canonical state."""
        return representative if self.exact else self._fingerprint(representative)

    def observe(self, state: Any) -> Any:
        """The state itself: the model is its own observation."""
        return state

    def violated_invariants(self, state: Any) -> list[str]:
        """The invariants ``state`` breaks."""
        return self.stepper.violated_invariants(state)

    def violated_invariants_after(self, state: Any, hint: Any) -> list[str]:
        """The invariants ``state`` breaks, re-checking only those that read a field
        the step assigned (``hint``)."""
        return self.stepper.violated_invariants_after(state, hint)

    def violated_step_properties(self, before: Any, after: Any) -> list[str]:
        """The step properties ``before -> after`` breaks."""
        return self.stepper.violated_step_properties(before, after)

    def work_pending(self, state: Any) -> bool:
        """See :func:`model_work_pending`."""
        return model_work_pending(state)

    def instance(self, iid: int) -> Instance:
        """The instance with id ``iid``."""
        return self.spec.instances[iid]
