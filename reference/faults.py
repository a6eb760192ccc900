"""The faults the reference driver raises instead of crashing a kernel.

The seed driver can stop a kernel in three ways, and the port keeps them apart:

* ``panic(...)`` becomes :class:`KernelPanic`;
* a failed ``KASSERT(...)`` (an ``INVARIANTS`` kernel) becomes :class:`KernelAssertion`;
* C undefined behaviour (a shift past the width of ``int``, a division by zero, an
  out-of-bounds index, a read of an uninitialised local) becomes :class:`UndefinedBehaviour`,
  naming the C expression.

A simulation that would spin forever (``HYPERVISOR_yield`` with nothing left to answer)
raises :class:`KernelHang`.  All four derive from :class:`DriverFault`, itself an
:class:`~xbdspec.errors.XbdspecError`; no other exception may escape from the driver.
"""

from __future__ import annotations

from xbdspec.errors import XbdspecError


class DriverFault(XbdspecError):
    """The driver stopped the (simulated) kernel.

    Attributes:
        where: the seed function (or platform routine) that raised it.
        message: the seed's own message, or the C expression at fault.
    """

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


class KernelPanic(DriverFault):
    """``panic()`` was called; ``message`` is the seed's panic string."""


class KernelAssertion(DriverFault):
    """A ``KASSERT`` failed; ``message`` is the seed's assertion string."""


class UndefinedBehaviour(DriverFault):
    """The C code would reach undefined behaviour; ``message`` names the expression."""


class KernelHang(DriverFault):
    """The C code would loop forever (for example polling with no back end progress)."""
