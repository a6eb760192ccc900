"""GEOM's disk class as the seed's disk meets it: which bios reach ``d_strategy``.

Nothing in the seed calls this: it is the layer above ``xbd_strategy``, modelled so that
tests (and the findings' texts) can say which bios a real system hands the driver.  It
follows FreeBSD 14's ``g_io_check`` (``sys/geom/geom_io.c``) and ``g_disk_start``
(``sys/geom/geom_disk.c``), checked in the FreeBSD 14 vendor tree sobomax/freebsd14_vendor
at 0f7ff3427c99afe8b7a0ccf8638dc10aed02c3f8:

* a read or write of length 0 is completed by ``g_io_check`` ("Deliver zero length
  transfers right here");
* ``BIO_DELETE`` reaches the driver only with ``DISKFLAG_CANDELETE``, ``BIO_FLUSH`` only
  with ``DISKFLAG_CANFLUSHCACHE``, ``BIO_ZONE`` only with ``DISKFLAG_CANZONE``; otherwise
  GEOM fails them with ``EOPNOTSUPP``;
* ``BIO_GETATTR`` is answered by GEOM itself (the seed sets no ``d_getattr``);
* ``BIO_READ``, ``BIO_WRITE`` and ``BIO_SPEEDUP`` always go to ``d_strategy`` --
  ``BIO_SPEEDUP`` whatever ``d_flags`` says;
* any other command is failed with ``EOPNOTSUPP``.

* a disk that is destroyed (``disk_destroy``) or gone (``disk_gone``: its provider
  withered, ``pp->error`` = ``ENXIO``, which ``g_io_check`` returns) gets no more bios:
  they fail with ``ENXIO``.

:func:`g_disk_access` is ``g_disk_access`` (``geom_disk.c``): ``d_open`` runs on the
provider's first access, refused with ``EROFS`` for a write access when ``d_flags`` has
``DISKFLAG_WRITE_PROTECT``; ``d_close`` runs when the last access goes; a destroyed disk
(``d_destroyed``) allows only decreasing access, without calling ``d_close``.  So GEOM
calls ``d_open`` once per provider, however many consumers open it.

Both check that ``d_drv1`` does not name a softc newbus freed at detach
(:mod:`~xbdspec.reference.newbus`): a use after free, as KASAN would report it.

So the only command the seed's ``xbd_bio_command`` does not know that GEOM lets through
is ``BIO_SPEEDUP`` (from ``g_io_speedup``; UFS sends it only to a provider that answers
``GEOM::canspeedup``, which ``g_disk_start`` does not answer for the seed's disk).  The
splitting of bios longer than ``d_maxsize`` is not modelled: a caller keeps within it.
"""

from __future__ import annotations

from typing import Final

from .constants import (
    BIO_DELETE,
    BIO_FLUSH,
    BIO_GETATTR,
    BIO_READ,
    BIO_SPEEDUP,
    BIO_WRITE,
    BIO_ZONE,
    DISKFLAG_CANDELETE,
    DISKFLAG_CANFLUSHCACHE,
    DISKFLAG_CANZONE,
    DISKFLAG_WRITE_PROTECT,
    ENXIO,
    EOPNOTSUPP,
    EROFS,
)
from .faults import UndefinedBehaviour
from .softc import Bio, Disk

#: ``ENOIOCTL`` (``sys/sys/errno.h``): an attribute no layer answered.
ENOIOCTL: Final = -3

#: command -> the ``d_flags`` bit without which ``g_disk_start`` refuses it
_NEEDS_FLAG: Final = {
    BIO_DELETE: DISKFLAG_CANDELETE,
    BIO_FLUSH: DISKFLAG_CANFLUSHCACHE,
    BIO_ZONE: DISKFLAG_CANZONE,
}
_ALWAYS_PASSED: Final = frozenset({BIO_READ, BIO_WRITE, BIO_SPEEDUP})


def _check_softc(disk: Disk, where: str) -> None:
    """A disk whose ``d_drv1`` is a softc newbus freed: the driver would use freed memory."""
    sc = disk.d_drv1
    platform = disk.platform
    if sc is not None and platform is not None and any(sc is f for f in platform.freed_softcs):
        raise UndefinedBehaviour(
            where,
            f"use after free: {disk.d_name}{disk.d_unit}'s d_drv1 is the softc newbus freed "
            "after xbd_detach (the disk was never destroyed)",
        )


def g_disk_access(disk: Disk, r: int, w: int, e: int) -> int:
    """``g_disk_access(pp, r, w, e)``: change the provider's access counts by ``r``,
    ``w``, ``e``, opening or closing the disk on the first or last access; 0 or an errno
    (the counts change only on success, as ``g_access`` does).

    Raises:
        UndefinedBehaviour: the disk's softc was freed (see :func:`_check_softc`).
    """
    if disk.destroyed:
        return 0 if r <= 0 and w <= 0 and e <= 0 else ENXIO
    acr, acw, ace = disk.acr + r, disk.acw + w, disk.ace + e
    before = disk.acr + disk.acw + disk.ace
    error = 0
    if before == 0 and acr + acw + ace > 0:
        if acw > 0 and disk.d_flags & DISKFLAG_WRITE_PROTECT:
            error = EROFS
        if error == 0 and disk.d_open is not None:
            _check_softc(disk, "g_disk_access (d_open)")
            error = disk.d_open(disk)
        if error != 0:
            return error
    elif before > 0 and acr + acw + ace == 0 and disk.d_close is not None:
        _check_softc(disk, "g_disk_access (d_close)")
        error = disk.d_close(disk)  # an error is printed; the access still goes
    disk.acr, disk.acw, disk.ace = acr, acw, ace
    return error


def g_disk_start(bp: Bio) -> bool:
    """Give ``bp`` to its disk as GEOM would; True when it reached ``d_strategy``.

    When GEOM answers the bio itself it completes it (``g_io_deliver``: ``bio_error`` set,
    ``biodone``) with 0, ``EOPNOTSUPP`` or ``ENOIOCTL``.

    Raises:
        UndefinedBehaviour: the bio names no disk, or a disk without a kernel or a
            ``d_strategy`` (``disk_create`` requires one).
    """
    disk = bp.bio_disk
    if disk is None or disk.platform is None or disk.d_strategy is None:
        raise UndefinedBehaviour("g_disk_start", "bio_to names no created disk with a d_strategy")
    cmd = bp.bio_cmd
    if disk.destroyed or disk.gone:
        error = ENXIO  # d_destroyed, or the withered provider's pp->error
    elif cmd in (BIO_READ, BIO_WRITE, BIO_DELETE) and bp.bio_bcount == 0:
        error = 0  # g_io_check: zero-length transfers are delivered at once
    elif cmd in _ALWAYS_PASSED or (cmd in _NEEDS_FLAG and disk.d_flags & _NEEDS_FLAG[cmd]):
        _check_softc(disk, "g_disk_start (d_strategy)")
        disk.d_strategy(bp)
        return True
    elif cmd == BIO_GETATTR:
        error = ENOIOCTL  # no d_getattr: GEOM's own attributes only (not modelled)
    else:
        error = EOPNOTSUPP
    bp.bio_error = error
    disk.platform.biodone(bp)
    return False
