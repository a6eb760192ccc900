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
    EOPNOTSUPP,
)
from .faults import UndefinedBehaviour
from .softc import Bio

#: ``ENOIOCTL`` (``sys/sys/errno.h``): an attribute no layer answered.
ENOIOCTL: Final = -3

#: command -> the ``d_flags`` bit without which ``g_disk_start`` refuses it
_NEEDS_FLAG: Final = {
    BIO_DELETE: DISKFLAG_CANDELETE,
    BIO_FLUSH: DISKFLAG_CANFLUSHCACHE,
    BIO_ZONE: DISKFLAG_CANZONE,
}
_ALWAYS_PASSED: Final = frozenset({BIO_READ, BIO_WRITE, BIO_SPEEDUP})


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
    if cmd in (BIO_READ, BIO_WRITE, BIO_DELETE) and bp.bio_bcount == 0:
        error = 0  # g_io_check: zero-length transfers are delivered at once
    elif cmd in _ALWAYS_PASSED or (cmd in _NEEDS_FLAG and disk.d_flags & _NEEDS_FLAG[cmd]):
        disk.d_strategy(bp)
        return True
    elif cmd == BIO_GETATTR:
        error = ENOIOCTL  # no d_getattr: GEOM's own attributes only (not modelled)
    else:
        error = EOPNOTSUPP
    bp.bio_error = error
    disk.platform.biodone(bp)
    return False
