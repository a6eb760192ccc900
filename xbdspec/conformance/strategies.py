"""Hypothesis strategies for writing conformance tests by hand.

* :func:`env_choices`: DMA answers for one event;
* :func:`programs`: whole programs of environment events the model enables, drawn
  step by step against the model (so every program is valid), as
  :class:`~xbdspec.conformance.contract.Step` lists ready for
  :func:`~xbdspec.conformance.program.run_program` or a replay file.
"""

from __future__ import annotations

from hypothesis import strategies as st

from xbdspec.model.state import Sizes
from xbdspec.model.vocabulary import Dma

from .contract import EnvChoices, Step
from .harness import ModelSide


def env_choices(modes: tuple[Dma, ...] = tuple(Dma)) -> st.SearchStrategy[EnvChoices]:
    """No choice (every load IMMEDIATE) or one or two answers from ``modes``."""
    return st.one_of(
        st.just(EnvChoices()),
        st.lists(st.sampled_from(modes), min_size=1, max_size=2).map(
            lambda m: EnvChoices(tuple(m))
        ),
    )


@st.composite
def programs(draw: st.DrawFn, sizes: Sizes, max_steps: int = 30) -> list[Step]:
    """A program the model accepts from its initial state (internal steps follow the
    drawn DMA answers; when several internal paths exist, the first is taken)."""
    model = ModelSide(sizes)
    state = model.stepper.initial()
    steps: list[Step] = []
    for _ in range(draw(st.integers(0, max_steps))):
        options = [
            (e, inst.bindings.as_dict())
            for e in model.environment_events
            for inst in model.enabled(state, e)
        ]
        if not options:
            break
        event, params = draw(st.sampled_from(options))
        env = draw(env_choices())
        finals = model.closure(state, event, params, env)
        if not finals:
            continue
        state = finals[0][0]
        steps.append(Step(event, params, env))
    return steps
