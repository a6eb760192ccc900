"""newbus and xenbusb as the seed's devices meet them beyond one attach: a bus suspending
several devices and rolling the suspend back when one fails, and the tool stack's removal
of a device's nodes.

Nothing in the seed calls this: it is the layer above ``xbd_suspend``, ``xbd_resume`` and
``xbd_detach``, modelled so that tests decide when a bus suspends, rolls back or deletes a
child.  It follows FreeBSD 14 (the vendor tree sobomax/freebsd14_vendor):

* ``bus_generic_suspend`` (``sys/kern/subr_bus.c``) suspends the children in the
  *reverse* order of the bus's list (``TAILQ_FOREACH_REVERSE``) through
  ``BUS_SUSPEND_CHILD`` (``bus_generic_suspend_child``: ``DEVICE_SUSPEND``, then
  ``DF_SUSPENDED`` on success).  When one fails, the children after it in the list, the
  ones already suspended, are resumed in list order (``TAILQ_FOREACH_FROM`` ...
  ``BUS_RESUME_CHILD``: ``DEVICE_RESUME`` on a child with ``DF_SUSPENDED``) and the error
  is returned.  xenbusb_front's ``device_suspend`` is ``bus_generic_suspend``; its
  ``device_resume`` is ``xenbusb_resume`` (:meth:`Platform.resume_device`), which the
  rollback does not call: no ``xd_state = XenbusStateInitialising``, no new watch, and
  ``xen_suspend_cancelled`` keeps whatever the last suspend left (0 at boot).  The
  control driver (``dev/xen/control/control.c``: ``xctrl_suspend``) gives up when
  ``DEVICE_SUSPEND(root_bus)`` fails: the hypervisor never suspends.
* ``xenbusb_verify_device`` (``sys/xen/xenbus/xenbusb.c``), run when the bus's device
  directory changes, deletes a child whose front-end node no longer exists
  (``xenbusb_delete_child``: both watches unregistered, ``device_delete_child``, which
  runs ``DEVICE_DETACH`` and, when it returns 0, frees the softc).  This is what a forced
  removal by the tool stack (``xl block-detach --force``: both directories removed
  without waiting for Closed) leads to.

A freed softc is remembered by the platform (:attr:`Platform.freed_softcs`); GEOM's entry
points (:mod:`~xbdspec.reference.geom`) report a disk whose ``d_drv1`` names one as a use
after free, as a KASAN kernel would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .platform import FRONT_WATCH, xbd_methods
from .xenbus import XenbusDevice

#: How a test finishes a ``DEVICE_SUSPEND`` that went to sleep (``xbd_suspend`` in
#: ``msleep``): called with the device and the sleeper, it decides (wakeup or time-out)
#: and returns the method's final result.
SleepOutcome = Callable[[XenbusDevice, object], int]


def bus_generic_suspend_child(child: XenbusDevice, sleeping: SleepOutcome) -> int:
    """``bus_generic_suspend_child``: ``DEVICE_SUSPEND``; ``DF_SUSPENDED`` on success."""
    result = xbd_methods().suspend(child)
    error = result if isinstance(result, int) else sleeping(child, result)
    if error == 0:
        child.df_suspended = True
    return error


def bus_generic_resume_child(child: XenbusDevice) -> int:
    """``bus_generic_resume_child``: ``DEVICE_RESUME`` on a suspended child."""
    if not child.df_suspended:
        return 0
    error = xbd_methods().resume(child)
    child.df_suspended = False
    return error


def bus_generic_suspend(children: Sequence[XenbusDevice], sleeping: SleepOutcome) -> int:
    """``bus_generic_suspend`` over ``children`` (the bus's list, in attach order):
    suspend them last first; on an error, resume the ones already suspended (those after
    the failing child, in list order) and return the error."""
    for index in range(len(children) - 1, -1, -1):
        error = bus_generic_suspend_child(children[index], sleeping)
        if error != 0:
            for later in children[index + 1 :]:
                bus_generic_resume_child(later)
            return error
    return 0


def xenbusb_delete_child(child: XenbusDevice) -> int:
    """``xenbusb_delete_child``: the watches go, then ``device_delete_child`` (the
    driver's ``DEVICE_DETACH``; on success newbus frees the softc).  Returns the detach's
    error (non-zero: the child stays, its watches gone, as in FreeBSD)."""
    platform = child.platform
    platform.xenstore.unregister_watch(FRONT_WATCH)
    error = xbd_methods().detach(child)
    if error != 0:
        return error
    if child.softc is not None:
        platform.freed_softcs.append(child.softc)
    child.softc = None
    if platform.dev is child:
        platform.dev = None
    return 0


def xenbusb_verify_device(child: XenbusDevice) -> bool:
    """``xenbusb_verify_device``: delete ``child`` if its front-end node is gone; True
    when it was deleted."""
    if child.platform.xenstore.exists(child.node):
        return False
    return xenbusb_delete_child(child) == 0


__all__ = [
    "SleepOutcome",
    "bus_generic_resume_child",
    "bus_generic_suspend",
    "bus_generic_suspend_child",
    "xenbusb_delete_child",
    "xenbusb_verify_device",
]
