"""The xenbus calls the seed makes (FreeBSD ``sys/xen/xenbus/xenbus.c`` and ``xenbusb.c``).

* ``xenbus_set_state`` is ``xenbusb_write_ivar(XENBUS_IVAR_STATE)``: nothing happens when
  the cached state is already the new one; otherwise the front ``state`` key must exist and
  parse (``xs_scanf "%d"``), then it is written and the cached state updated.
* ``xenbus_dev_error`` writes ``error/<node>/error`` = ``"<err> <message>"``;
  ``xenbus_dev_fatal`` does that and then switches the front end to ``Closing``.
* ``xenbus_get_otherend_state`` reads the back end's ``state`` with
  ``xenbus_read_driver_state`` (``Closed`` when it cannot be read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .constants import XenbusState
from .faults import UndefinedBehaviour
from .xenstore import xs_gather, xs_printf, xs_scanf

if TYPE_CHECKING:
    from .platform import Platform
    from .softc import Softc


@dataclass(slots=True, eq=False)
class XenbusDevice:
    """A ``device_t`` on the front-end xenbus, with its ``xenbus_device_ivars``.

    Attributes:
        node: the front-end xenstore directory (``xd_node``).
        otherend_path / otherend_id: the back end's directory and domain.
        state: the cached front-end state (``xd_state``).
        softc: the driver instance (``device_get_softc``).
        unit / desc / quiet: what ``device_set_unit`` / ``device_set_desc`` /
            ``device_quiet`` recorded.
        errors: ``(errno, message)`` of every ``xenbus_dev_error``/``fatal``.
        df_suspended: newbus's ``DF_SUSPENDED`` (``bus_generic_suspend_child`` sets it
            when ``DEVICE_SUSPEND`` succeeds; ``bus_generic_resume_child`` clears it).
    """

    platform: Platform
    node: str
    otherend_path: str
    otherend_id: int
    devtype: str = "vbd"
    state: int = XenbusState.Initialising
    softc: Softc | None = None
    unit: int = -1
    desc: str = ""
    quiet: bool = False
    errors: list[tuple[int, str]] = field(default_factory=list)
    df_suspended: bool = False


def xenbus_get_node(dev: XenbusDevice) -> str:
    """``xenbus_get_node``."""
    return dev.node


def xenbus_get_otherend_path(dev: XenbusDevice) -> str:
    """``xenbus_get_otherend_path``."""
    return dev.otherend_path


def xenbus_get_otherend_id(dev: XenbusDevice) -> int:
    """``xenbus_get_otherend_id``."""
    return dev.otherend_id


def xenbus_get_type(dev: XenbusDevice) -> str:
    """``xenbus_get_type``."""
    return dev.devtype


def xenbus_get_state(dev: XenbusDevice) -> int:
    """``xenbus_get_state``: the cached front-end state."""
    return dev.state


def xenbus_set_state(dev: XenbusDevice, state: int) -> int:
    """``xenbus_set_state`` (``xenbusb_write_ivar``) -> error."""
    if dev.state == state:
        return 0
    xs = dev.platform.xenstore
    error, _ = xs_scanf(xs, dev.node, "state", "d")
    if error:
        return error
    error = xs_printf(xs, dev.node, "state", str(int(state)))
    if error:
        if state != XenbusState.Closing:
            xenbus_dev_fatal(dev, error, "writing new state")
        return error
    dev.state = state
    return 0


def xenbus_read_driver_state(dev: XenbusDevice, path: str) -> int:
    """``xenbus_read_driver_state(path)``: ``%d`` of ``path/state``, ``Closed`` on error."""
    error, values = xs_gather(
        dev.platform.xenstore,
        path,
        [("state", "d")],
        blank_is_error=dev.platform.fixes.blank_xenstore_value_uninitialised,
    )
    if error:
        return XenbusState.Closed
    value = values[0]
    if value is None:
        raise UndefinedBehaviour(
            "xenbus_read_driver_state",
            f"{path}/state is blank: sscanf returned EOF and `result` is read uninitialised",
        )
    return value


def xenbus_get_otherend_state(dev: XenbusDevice) -> int:
    """``xenbus_get_otherend_state``."""
    return xenbus_read_driver_state(dev, dev.otherend_path)


def xenbus_dev_error(dev: XenbusDevice, err: int, message: str) -> None:
    """``xenbus_dev_error``: log, and write ``error/<node>/error``."""
    text = f"{err} {message}"
    dev.errors.append((err, message))
    dev.platform.device_printf(dev, f"Error {text}")
    dev.platform.xenstore.write(f"error/{dev.node}/error", text)


def xenbus_dev_fatal(dev: XenbusDevice, err: int, message: str) -> None:
    """``xenbus_dev_fatal``: ``xenbus_dev_error`` then switch to ``Closing``."""
    xenbus_dev_error(dev, err, message)
    dev.platform.device_printf(dev, "Fatal error. Transitioning to Closing State")
    xenbus_set_state(dev, XenbusState.Closing)


def xenbus_grant_ring(dev: XenbusDevice, ring_mfn: int) -> tuple[int, int]:
    """``xenbus_grant_ring`` -> (error, ref): a writable grant of one ring page."""
    error, ref = dev.platform.gnttab.gnttab_grant_foreign_access(dev.otherend_id, ring_mfn, 0)
    if error:
        xenbus_dev_fatal(dev, error, "granting access to ring page")
        return error, 0
    return 0, ref
