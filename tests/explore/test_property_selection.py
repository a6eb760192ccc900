"""``--invariant`` and ``--property`` (or the run configuration's ``invariants`` and
``properties``): the explorer checks only what is named, and refuses names the model does
not declare."""

from __future__ import annotations

import pytest
from explore_helpers import TINY, model, replace_transition

from xbdspec.errors import XbdspecError
from xbdspec.explore.checker import check_model
from xbdspec.explore.selection import select


def test_only_the_named_invariants_and_properties_are_checked() -> None:
    broken = replace_transition(model(TINY), "startio_done", effect=lambda s, p: {})
    everything = {v.counterexample.property for v in check_model(spec=broken).violations}
    invariants = {i.name for i in broken.invariants}
    violated = sorted(everything & invariants)
    assert violated, everything
    held = next(i.name for i in broken.invariants if i.name not in everything)
    # naming an invariant that holds: the violated ones are no longer reported
    quiet = select(broken, invariants=[held], properties=[broken.step_properties[0].name])
    found = {v.counterexample.property for v in check_model(spec=quiet).violations}
    assert not found & set(violated), found
    assert [i.name for i in quiet.invariants] == [held]
    assert [p.name for p in quiet.progress] == []
    # naming a violated one: it is reported again, and only invariants were restricted
    loud = select(broken, invariants=[violated[0]])
    again = {v.counterexample.property for v in check_model(spec=loud).violations}
    assert violated[0] in again and again <= {violated[0]} | (everything - invariants)
    assert loud.progress == broken.progress


def test_a_name_the_model_does_not_declare_is_refused() -> None:
    with pytest.raises(XbdspecError, match="declares no invariant 'FreezeAcounting'"):
        select(model(TINY), invariants=["FreezeAcounting"])
    with pytest.raises(XbdspecError, match=r"declares no property 'Nothing'.*EveryBioCompletes"):
        select(model(TINY), properties=["Nothing"])
    spec = model(TINY)
    assert select(spec) is spec and select(spec, [], []) is spec  # nothing named: all
