"""The handshake projection is derived from the model, not written beside it."""

from __future__ import annotations

from xbdspec.model.vocabulary import XenbusState as X

from xbdspec.traces.check import default_projection
from xbdspec.traces.projection import OBSERVED, Observation, project


def test_the_log_checks_the_models_own_handshake_invariants() -> None:
    names = {inv.name for inv in default_projection().invariants}
    assert names == {"PublishedBeforeInitialised", "BackendConnectedAfterPublish"}


def test_observable_steps_belong_to_the_handshake_components() -> None:
    """Every model step that changes an observed field is a step of the front end,
    the back end or the tool stack, and the front end's state changes only through
    its own component (its watch handler, close, closing) or a resume."""
    p = default_projection()
    components: dict[str, set[str]] = {name: set() for name in OBSERVED}
    for s in p.reachable():
        for instance, t in p.successors(s):
            for i, name in enumerate(OBSERVED):
                if project(s)[i] != project(t)[i]:
                    components[name].add(instance.transition.component)
    assert components["fe_state"] == {"frontend", "toolstack"}
    assert components["be_state"] == {"backend", "toolstack"}
    assert components["be_online"] == {"toolstack"}


def test_a_write_the_model_forbids_leaves_no_state() -> None:
    p = default_projection()
    start = frozenset({p.initial})
    assert not p.observe(start, Observation("be_state", X.Connected)).states
    ok = p.observe(start, Observation("be_state", X.InitWait))
    assert ok.states and ok.via == ("backend_publish",)


def test_rewriting_the_same_value_changes_nothing() -> None:
    p = default_projection()
    start = frozenset({p.initial})
    assert p.initial in p.observe(start, Observation("fe_state", X.Initialising)).states


def test_the_state_sets_stay_within_the_handshake_states() -> None:
    """Constant memory: whatever the log, a device's set is a subset of the states
    reachable without I/O, a fixed, small number."""
    p = default_projection()
    reachable = p.reachable()
    assert 100 < len(reachable) < 10_000
    states = frozenset({p.initial})
    for field, value in [
        ("be_state", X.InitWait),
        ("fe_state", X.Initialised),
        ("be_state", X.Connected),
        ("fe_state", X.Connected),
    ]:
        states = p.observe(states, Observation(field, value)).states
        assert states and states <= reachable
