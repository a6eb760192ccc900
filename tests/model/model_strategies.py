"""Hypothesis strategies for model states: arbitrary ones (any value of each field's
domain) and reachable ones (a random walk from the initial state)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from xbdspec.model.concrete import Stepper
from xbdspec.model.declaration import Domain, Spec

U32_EDGES = st.one_of(
    st.integers(0, 8),
    st.integers(2**32 - 8, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)


def domain_values(domain: Domain) -> st.SearchStrategy[Any]:
    if domain.kind == "u32":
        return U32_EDGES
    return st.sampled_from(domain.values())


def arbitrary_states(spec: Spec) -> st.SearchStrategy[Any]:
    """Any state whose fields lie in their domains (reachable or not)."""
    parts = []
    for f in spec.fields:
        values = domain_values(f.domain)
        parts.append(values if f.length is None else st.tuples(*([values] * f.length)))
    return st.tuples(*parts).map(lambda t: spec.State(*t))


@st.composite
def reachable_states(draw: st.DrawFn, spec: Spec, max_steps: int = 40) -> Any:
    """A state reached by a random walk of the model from its initial state."""
    stepper = Stepper(spec)
    state = stepper.initial()
    for _ in range(draw(st.integers(0, max_steps))):
        options = list(stepper.successors(state))
        if not options:
            break
        _, state = options[draw(st.integers(0, len(options) - 1))]
    return state
