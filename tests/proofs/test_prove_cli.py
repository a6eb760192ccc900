"""``xbdspec prove`` reports every obligation, and the arithmetic restatements of seed
expressions agree with the reference's port of the same seed functions."""

from __future__ import annotations

import json

import pytest
import z3
from hypothesis import given
from hypothesis import strategies as st
from xbdspec.proofs import arithmetic as A
from xbdspec.reference import BackendConfig, Platform, UndefinedBehaviour, vdevice_to_unit

from xbdspec.cli import main

NAME_CODES = {v: k for k, v in A.NAMES.items()}


def test_prove_json_lists_each_obligation_with_its_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(
        [
            "prove",
            "--only",
            "ring_*",
            "--only",
            "initial_satisfies_FreezeAccounting",
            "--json",
            "--jobs",
            "1",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    names = [o["name"] for o in out["obligations"]]
    assert "initial_satisfies_FreezeAccounting" in names and "ring_full_prevents_overrun" in names
    for o in out["obligations"]:
        assert {"name", "kind", "bound", "result", "seconds"} <= o.keys()
        assert o["result"] in {"proved", "refuted", "unknown"}
    refuted = next(o for o in out["obligations"] if o["name"] == "ring_page_order_shift_defined")
    assert refuted["result"] == "refuted" and refuted["finding"] == "ring-page-order-shift"
    assert refuted["replay"] == {"inputs": {"max-ring-page-order": 31}}


def test_prove_table_names_the_expected_findings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "--only", "capacity_*", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "expected: finding sector-size-division-by-zero" in out
    assert "sector-size = 1048577" in out


def test_prove_refuses_an_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "--only", "no_such_obligation"]) == 2


def _eval(term: z3.ExprRef) -> int:
    return int(z3.simplify(term).as_long())


@given(
    st.integers(0, 2**32 - 1) | st.sampled_from([0xCA00, 0xCA10, 0x300, 0x5980, 0x10000CA0, 0x100])
)
def test_the_naming_restatement_agrees_with_the_reference(vdevice: int) -> None:
    unit, name = A.vdevice_to_unit(z3.BitVecVal(vdevice, 32))
    ref_unit, ref_name = vdevice_to_unit(vdevice)
    assert (_eval(unit), NAME_CODES[_eval(name)]) == (ref_unit & 0xFFFFFFFF, ref_name)


@pytest.mark.parametrize("order", [None, "0", "1", "3", "5", "6", "30", "31", "40"])
@pytest.mark.parametrize("pages", [None, "0", "1", "3", "7", "16", "33", "4294967295"])
def test_the_ring_negotiation_restatement_agrees_with_the_reference(
    order: str | None, pages: str | None
) -> None:
    platform = Platform(
        backend_config=BackendConfig(
            overrides={"max-ring-page-order": order, "max-ring-pages": pages}
        )
    )
    if order is not None and int(order) >= 31:
        with pytest.raises(UndefinedBehaviour):
            platform.boot()
        assert not z3.is_true(z3.simplify(z3.ULT(z3.BitVecVal(int(order), 32), 31)))
        return
    platform.boot()
    result = A.negotiated_ring_pages(
        z3.BoolVal(order is not None),
        z3.BitVecVal(int(order or 0), 32),
        z3.BoolVal(pages is not None),
        z3.BitVecVal(int(pages or 0) & 0xFFFFFFFF, 32),
    )
    assert _eval(result) == platform.softc().xbd_ring_pages


@pytest.mark.parametrize(
    "advertised", [None, "0", "5", "11", "12", "256", "257", "300", "5000", "4294967295"]
)
def test_the_segment_restatement_agrees_with_the_reference(advertised: str | None) -> None:
    platform = Platform(
        backend_config=BackendConfig(overrides={"feature-max-indirect-segments": advertised})
    )
    platform.boot()
    sc = platform.softc()
    segs, pages, size = A.negotiated_segments(
        z3.BoolVal(advertised is not None), z3.BitVecVal(int(advertised or 0), 32), z3.BoolVal(True)
    )
    assert (_eval(segs), _eval(pages), _eval(size)) == (
        sc.xbd_max_request_segments,
        sc.xbd_max_request_indirectpages,
        sc.xbd_max_request_size,
    )
