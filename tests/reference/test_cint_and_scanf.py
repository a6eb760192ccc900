"""C integer helpers and the kernel ``sscanf`` against an independent oracle."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from xbdspec.reference.cint import (
    fls,
    int_shl,
    kernel_sscanf_int,
    powerof2,
    s32,
    sdiv,
    u32,
    udiv,
)
from xbdspec.reference.faults import DriverFault, UndefinedBehaviour

# An oracle written from the C text of subr_scanf.c, not from the port: C's isspace is
# " \t\n\v\f\r"; at most 31 characters are collected; strtouq saturates, then the value
# is stored through int* (%u, %d) or long* (%lu).
_NUMBER = re.compile(r"[+-]?[0-9]+")


def oracle(text: str, conversion: str) -> tuple[int, int | None]:
    text = text.split("\0", 1)[0]
    stripped = text.lstrip(" \t\n\v\f\r")
    if not stripped:
        return -1, None
    match = _NUMBER.match(stripped[:31])
    if match is None:
        return 0, None
    token = match.group(0)
    negative = token.startswith("-")
    magnitude = int(token.lstrip("+-"))
    if conversion in ("u", "lu"):
        value = 2**64 - 1 if magnitude >= 2**64 else (-magnitude if negative else magnitude)
        value %= 2**64
    else:
        value = -magnitude if negative else magnitude
        value = max(-(2**63), min(2**63 - 1, value)) % 2**64
    if conversion == "u":
        return 1, value % 2**32
    if conversion == "d":
        low = value % 2**32
        return 1, low - 2**32 if low >= 2**31 else low
    return 1, value


def test_fixed_width_wraps() -> None:
    assert u32(-1) == 0xFFFFFFFF
    assert u32(2**32 + 5) == 5
    assert s32(0xFFFFFFFF) == -1
    assert s32(2**31) == -(2**31)


def test_fls_and_powerof2_follow_freebsd() -> None:
    assert [fls(x) for x in (0, 1, 2, 3, 32, 33)] == [0, 1, 2, 2, 6, 6]
    assert powerof2(0) and powerof2(1) and powerof2(32)
    assert not powerof2(3) and not powerof2(31)


@pytest.mark.parametrize("count", [31, 32, 33, 100, -1])
def test_int_shift_out_of_range_is_undefined(count: int) -> None:
    with pytest.raises(UndefinedBehaviour) as info:
        int_shl(1, count, "1 << max_ring_page_order")
    assert "1 << max_ring_page_order" in str(info.value)
    assert isinstance(info.value, DriverFault)


def test_int_shift_in_range() -> None:
    assert int_shl(1, 30, "x") == 1 << 30


def test_division_by_zero_is_undefined() -> None:
    with pytest.raises(UndefinedBehaviour):
        udiv(5, 0, "1048576 / sector_size")
    with pytest.raises(UndefinedBehaviour):
        sdiv(5, 0, "offset / dp->d_sectorsize")
    assert sdiv(-7, 2, "x") == -3


@pytest.mark.parametrize(
    ("text", "conversion", "expected"),
    [
        ("", "u", (-1, None)),
        ("   ", "u", (-1, None)),
        ("abc", "u", (0, None)),
        ("-", "u", (0, None)),
        ("+", "d", (0, None)),
        ("7", "u", (1, 7)),
        ("  42xyz", "u", (1, 42)),
        ("-1", "u", (1, 0xFFFFFFFF)),
        ("4294967296", "u", (1, 0)),
        ("99999999999999999999999", "u", (1, 0xFFFFFFFF)),
        ("99999999999999999999999", "lu", (1, 2**64 - 1)),
        ("-1", "lu", (1, 2**64 - 1)),
        ("2147483648", "d", (1, -(2**31))),
        ("-5", "d", (1, -5)),
        ("0x10", "u", (1, 0)),
        ("1\x002", "u", (1, 1)),
        ("0" * 31 + "5", "u", (1, 0)),
    ],
)
def test_kernel_sscanf_examples(
    text: str, conversion: str, expected: tuple[int, int | None]
) -> None:
    result = kernel_sscanf_int(text, conversion)
    assert (result.returned, result.value) == expected


@given(
    st.one_of(
        st.text(alphabet=" \t\n+-0123456789x\x00a", max_size=40),
        st.integers(-(2**70), 2**70).map(str),
        st.text(max_size=12),
    ),
    st.sampled_from(["u", "d", "lu"]),
)
def test_kernel_sscanf_matches_oracle(text: str, conversion: str) -> None:
    result = kernel_sscanf_int(text, conversion)
    assert (result.returned, result.value) == oracle(text, conversion)
