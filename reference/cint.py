"""C integer semantics for the port: fixed-width wrap-around, bit helpers and ``sscanf``.

Python integers never overflow; the seed's do.  Every assignment to a C-typed field goes
through one of the ``uN``/``sN`` helpers so that a ``uint32_t`` wraps exactly as in C.
Where C has undefined behaviour (a shift by the width of the type or more, a signed shift
that overflows, a division by zero) the helpers raise
:class:`~xbdspec.reference.faults.UndefinedBehaviour` naming the C expression.

:func:`kernel_sscanf_int` reproduces FreeBSD's kernel ``vsscanf`` (``sys/kern/subr_scanf.c``)
for one integer conversion, because every number the driver reads from xenstore goes
through it: the value is collected into a 32-byte buffer (at most 31 characters), then
converted with ``strtouq``/``strtoq`` (saturating at the 64-bit limits), then stored
through the conversion's pointer type (truncating to 32 bits for ``%u``/``%d``).
"""

from __future__ import annotations

from typing import Final, NamedTuple

from .faults import UndefinedBehaviour

U8_MASK: Final = 0xFF
U16_MASK: Final = 0xFFFF
U32_MASK: Final = 0xFFFF_FFFF
U64_MASK: Final = 0xFFFF_FFFF_FFFF_FFFF
INT_MAX: Final = 0x7FFF_FFFF
INT_MIN: Final = -0x8000_0000
QUAD_MAX: Final = 0x7FFF_FFFF_FFFF_FFFF
QUAD_MIN: Final = -0x8000_0000_0000_0000
UQUAD_MAX: Final = U64_MASK


def u8(value: int) -> int:
    """``(uint8_t)value``."""
    return value & U8_MASK


def u16(value: int) -> int:
    """``(uint16_t)value``."""
    return value & U16_MASK


def u32(value: int) -> int:
    """``(uint32_t)value`` (also ``u_int``, ``RING_IDX``, ``grant_ref_t``)."""
    return value & U32_MASK


def u64(value: int) -> int:
    """``(uint64_t)value`` (also ``u_long``, ``size_t``, ``blkif_sector_t`` on amd64)."""
    return value & U64_MASK


def s32(value: int) -> int:
    """``(int)value``: wraps modulo 2^32 as every compiler FreeBSD uses does."""
    value &= U32_MASK
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def s64(value: int) -> int:
    """``(int64_t)value`` (``off_t``, ``quad_t``)."""
    value &= U64_MASK
    return value - 0x1_0000_0000_0000_0000 if value & 0x8000_0000_0000_0000 else value


def int_shl(value: int, count: int, expression: str) -> int:
    """``value << count`` with both operands ``int``; raise on undefined behaviour.

    C11 6.5.7: the behaviour is undefined if ``count`` is negative or at least the width of
    ``int`` (32), or if the result is not representable in ``int`` (``1 << 31``).
    """
    if count < 0 or count >= 32:
        raise UndefinedBehaviour(expression, f"shift count {count} outside [0, 32) for int")
    result = value << count
    if result > INT_MAX or result < INT_MIN:
        raise UndefinedBehaviour(expression, f"{value} << {count} overflows int")
    return result


def udiv(dividend: int, divisor: int, expression: str) -> int:
    """Unsigned division ``dividend / divisor``; division by zero is undefined behaviour."""
    if divisor == 0:
        raise UndefinedBehaviour(expression, "division by zero")
    return dividend // divisor


def sdiv(dividend: int, divisor: int, expression: str) -> int:
    """Signed C division (truncates towards zero); division by zero is undefined."""
    if divisor == 0:
        raise UndefinedBehaviour(expression, "division by zero")
    quotient = abs(dividend) // abs(divisor)
    return quotient if (dividend < 0) == (divisor < 0) else -quotient


def fls(mask: int) -> int:
    """FreeBSD ``fls(int)``: index (from 1) of the most significant set bit, 0 for 0."""
    return (mask & U32_MASK).bit_length()


def powerof2(value: int) -> bool:
    """FreeBSD ``powerof2(x)``: ``(((x) - 1) & (x)) == 0`` -- true for 0 as well."""
    return ((value - 1) & value) == 0


# ----------------------------------------------------------------------------- sscanf

#: ``isspace`` of FreeBSD's ``sys/ctype.h``: space and ``\t`` .. ``\r``.
_SPACES: Final = frozenset(" \t\n\v\f\r")
_DIGITS: Final = frozenset("0123456789")
#: subr_scanf.c collects at most ``BUF - 1`` = 31 characters of a number.
SCANF_NUMBER_WIDTH: Final = 31


class ScanResult(NamedTuple):
    """What ``sscanf`` returned and, when it assigned, the stored value.

    Attributes:
        returned: ``sscanf``'s return: 1 (assigned), 0 (match failure) or -1 (input failure,
            i.e. an empty or all-blank string: ``EOF``).
        value: the value stored through the pointer (already truncated to its C type), or
            ``None`` when nothing was stored.
    """

    returned: int
    value: int | None


def _strtouq(digits: str, negative: bool) -> int:
    """Kernel ``strtouq`` on an all-digit string: saturates at ``UQUAD_MAX``."""
    acc = int(digits)
    if acc > UQUAD_MAX:
        return UQUAD_MAX
    return (-acc) & U64_MASK if negative else acc


def _strtoq(digits: str, negative: bool) -> int:
    """Kernel ``strtoq``: saturates at ``QUAD_MIN`` / ``QUAD_MAX``."""
    acc = int(digits)
    if negative:
        return QUAD_MIN if acc > -QUAD_MIN else -acc
    return QUAD_MAX if acc > QUAD_MAX else acc


def kernel_sscanf_int(text: str, conversion: str) -> ScanResult:
    """``sscanf(text, "%<conversion>", &var)`` with FreeBSD kernel semantics.

    ``conversion`` is ``"u"`` (``%u``, ``PRIu32``: ``strtouq`` stored through ``int *``, so
    the low 32 bits), ``"d"`` (``strtoq`` stored through ``int *``), ``"lu"`` (``%lu``,
    ``PRIu64`` on amd64: ``strtouq`` stored through ``long *``, 64 bits) or ``"ld"``.
    The string ends at its first NUL, as a C string does.  Trailing characters after the
    number are ignored; ``"-1"`` under ``%u`` stores ``0xFFFFFFFF``.
    """
    if conversion not in ("u", "d", "lu", "ld"):
        raise ValueError(f"unsupported conversion %{conversion}")  # programming error
    nul = text.find("\0")
    if nul >= 0:
        text = text[:nul]
    length = len(text)
    pos = 0
    if length == 0:
        return ScanResult(-1, None)
    while text[pos] in _SPACES:
        pos += 1
        if pos >= length:
            return ScanResult(-1, None)
    # Collect at most 31 characters: an optional leading sign, then decimal digits.
    limit = min(length, pos + SCANF_NUMBER_WIDTH)
    negative = False
    if pos < limit and text[pos] in "+-":
        negative = text[pos] == "-"
        pos += 1
    digit_start = pos
    while pos < limit and text[pos] in _DIGITS:
        pos += 1
    digits = text[digit_start:pos]
    if not digits:
        return ScanResult(0, None)
    if conversion in ("u", "lu"):
        result = _strtouq(digits, negative)
    else:
        result = _strtoq(digits, negative) & U64_MASK
    if conversion in ("u", "d"):
        stored = u32(result) if conversion == "u" else s32(result)
    else:
        stored = result if conversion == "lu" else s64(result)
    return ScanResult(1, stored)
