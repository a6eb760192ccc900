"""Exact signatures of divergences: what a known finding claims, and nothing more.

A divergence's :class:`Signature` is everything that says *how* the implementation
departed from the model, with the accidents of the program left out (which bio or
command number, how many events came before):

* the kind (``mismatch`` or ``fault``);
* the failing environment event, its parameters other than bio and command numbers
  (the bio's kind, a response's status, a resume's ``cancelled``, the features a back end
  offers) and the DMA answers the model's path consumed (trailing IMMEDIATE ones left
  out: an answer list that runs out means IMMEDIATE);
* the model transition the implementation should have taken (the closest candidate's);
* every field that differs, each with the *shape* of its difference: for an enumeration
  or a boolean the exact ``model->implementation`` values, for a count the direction
  (``+``: the implementation has more, ``-``: fewer), for a command's bio ``none`` or
  ``bio``; for an array, the set of element shapes where the elements differ;
* the model invariants the implementation's abstract state breaks;
* for a fault (a crash), none of the fields: what the state holds when the code stopped
  half-way says nothing stable; the fault's type and the function it names instead.

A known finding claims a divergence only when its signature is one of the finding's
:data:`~xbdspec.conformance.known_signatures.KNOWN_SIGNATURES` (derived from the finding's
own replay, and from variant replays its fix is shown to remove) and the finding's
predicate holds.  Anything else is new, whichever finding's trigger it follows: a mutant
that changes what goes wrong on a known path is seen.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xbdspec.model.declaration import Domain
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes

if TYPE_CHECKING:
    from .harness import Divergence

#: Event parameters that number a bio or a command: left out of a signature.
INDEX_PARAMS: frozenset[str] = frozenset({"bio", "cmd"})


@dataclass(frozen=True)
class Signature:
    """The exact shape of a divergence (see the module docstring).

    Attributes:
        kind: ``"mismatch"`` or ``"fault"``.
        event: the failing environment event.
        qualifiers: ``name=value`` for its non-index parameters and its DMA answers.
        transition: the model transition of the closest candidate (``None``: none).
        fields: ``(field, shapes)`` for every differing field, sorted (a mismatch).
        invariants: model invariants broken by the implementation's abstract state
            (a mismatch).
        fault: a fault's type and the function it names (``KernelPanic: xbd_bio_command``).
    """

    kind: str
    event: str
    qualifiers: tuple[str, ...]
    transition: str | None
    fields: tuple[tuple[str, tuple[str, ...]], ...]
    invariants: tuple[str, ...]
    fault: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Plain data (the ``--json`` report and :mod:`.known_signatures` write this)."""
        return {
            "kind": self.kind,
            "event": self.event,
            "qualifiers": list(self.qualifiers),
            "transition": self.transition,
            "fields": {name: list(shapes) for name, shapes in self.fields},
            "invariants": list(self.invariants),
            "fault": self.fault,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Signature:
        """The inverse of :meth:`as_json`."""
        return cls(
            kind=str(data["kind"]),
            event=str(data["event"]),
            qualifiers=tuple(data.get("qualifiers", ())),
            transition=data.get("transition"),
            fields=tuple(
                sorted((str(k), tuple(v)) for k, v in dict(data.get("fields", {})).items())
            ),
            invariants=tuple(sorted(data.get("invariants", ()))),
            fault=data.get("fault"),
        )

    def key(self) -> str:
        """A short stable name: kind, event, the first fields and a digest of the rest."""
        names = "-".join(name for name, _ in self.fields[:3]) or "invariant"
        digest = hashlib.sha1(
            json.dumps(self.as_json(), sort_keys=True).encode(), usedforsecurity=False
        ).hexdigest()[:8]
        return f"new-{self.kind}-{self.event}-{names}-{digest}"

    def describe(self) -> str:
        """One line for text reports."""
        shapes = "; ".join(f"{n} {','.join(s)}" for n, s in self.fields) or "no field"
        quals = f" [{' '.join(self.qualifiers)}]" if self.qualifiers else ""
        inv = f"; breaks {', '.join(self.invariants)}" if self.invariants else ""
        if self.fault:
            shapes = self.fault
        return f"{self.kind} at {self.event}{quals} (model: {self.transition}): {shapes}{inv}"


@functools.cache
def _domains() -> dict[str, Domain]:
    """Each model field's domain (its kind does not depend on the sizes)."""
    return {f.name: f.domain for f in build_spec(Sizes()).fields}


def _show(domain: Domain | None, value: Any) -> str:
    if domain is not None and domain.kind == "enum" and domain.enum_type is not None:
        try:
            return domain.enum_type(value).name
        except ValueError:
            return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    return str(value)


def _shape(name: str, domain: Domain | None, model: Any, impl: Any, no_bio: int) -> str:
    """The shape of one element's difference."""
    if name == "cmd_bio":
        return f"{'none' if model == no_bio else 'bio'}->{'none' if impl == no_bio else 'bio'}"
    if domain is not None and domain.kind in ("int", "u32"):
        if not isinstance(model, int) or not isinstance(impl, int):
            return f"{model!r}->{impl!r}"
        delta = impl - model
        if domain.kind == "u32":
            delta = ((delta + 2**31) % 2**32) - 2**31
        return "+" if delta > 0 else "-"
    return f"{_show(domain, model)}->{_show(domain, impl)}"


def field_shapes(
    differences: Mapping[str, tuple[Any, Any]], no_bio: int
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``(field, sorted element shapes)`` for each differing field."""
    domains = _domains()
    out: list[tuple[str, tuple[str, ...]]] = []
    for name, (model, impl) in sorted(differences.items()):
        domain = domains.get(name)
        if isinstance(model, list | tuple) and isinstance(impl, list | tuple):
            shapes = {
                _shape(name, domain, m, i, no_bio)
                for m, i in zip(model, impl, strict=False)
                if m != i
            }
            if len(model) != len(impl):
                shapes.add(f"length {len(model)}->{len(impl)}")
        else:
            shapes = {_shape(name, domain, model, impl, no_bio)}
        out.append((name, tuple(sorted(shapes))))
    return tuple(out)


def _qualifier(value: Any) -> str:
    return value.name if isinstance(value, enum.Enum) else repr(value)


def signature_of(divergence: Divergence) -> Signature:
    """The exact signature of ``divergence``."""
    last = divergence.last
    qualifiers = [
        f"{k}={_qualifier(v)}" for k, v in sorted(last.params.items()) if k not in INDEX_PARAMS
    ]
    answers = _answers_used(divergence)
    if answers:
        qualifiers.append("dma=" + ",".join(answers))
    no_bio = len(divergence.observed.get("bio_stage") or ())
    crashed = divergence.kind == "fault"
    return Signature(
        kind=divergence.kind,
        event=last.event,
        qualifiers=tuple(qualifiers),
        transition=divergence.transition,
        fields=() if crashed else field_shapes(divergence.differences, no_bio),
        invariants=() if crashed else tuple(sorted(divergence.invariants)),
        fault=fault_class(divergence.fault) if crashed else None,
    )


@functools.cache
def _dma_transitions() -> frozenset[str]:
    """Transitions that take a DMA answer (a ``dma`` parameter)."""
    return frozenset(
        t.name for t in build_spec(Sizes()).transitions if any(p.name == "dma" for p in t.params)
    )


def _answers_used(divergence: Divergence) -> tuple[str, ...]:
    """The DMA answers of the failing event that the model's path consumed, with the
    trailing IMMEDIATE ones left out (an answer list that runs out means IMMEDIATE), so
    ``[IMMEDIATE]``, ``[]`` and an unused second answer say the same."""
    loads = sum(1 for name in divergence.path if name in _dma_transitions())
    env = divergence.last.env
    used = [env.dma_at(i).name for i in range(loads)]
    while used and used[-1] == "IMMEDIATE":
        used.pop()
    return tuple(used)


def fault_class(text: str | None) -> str | None:
    """A fault's type and the function it names: ``"KernelPanic: xbd_bio_command"`` of
    ``"KernelPanic: xbd_bio_command: flush request, but ..."`` (the rest is prose)."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(":")]
    return ": ".join(parts[:2])
