"""The protocol's named values: XenbusState, blkif operations and statuses, and the
driver's own enumerations, as the model uses them.

Numeric values follow their sources where there is one (``xenbus.h``, ``blkif.h``,
FreeBSD's ``block.h``), so traces and observations can carry the numbers the wire
and xenstore carry.  The rest are the model's own labels.
"""

from __future__ import annotations

import enum


class XenbusState(enum.IntEnum):
    """``enum xenbus_state`` (Xen ``xen/include/public/io/xenbus.h``)."""

    Unknown = 0
    Initialising = 1
    InitWait = 2
    Initialised = 3
    Connected = 4
    Closing = 5
    Closed = 6
    Reconfiguring = 7
    Reconfigured = 8


class DriverState(enum.IntEnum):
    """The driver's connection to the disk layer (``XBD_STATE_*`` in ``block.h``)."""

    DISCONNECTED = 0
    CONNECTED = 1
    SUSPENDED = 2


class Place(enum.IntEnum):
    """Where a command is (``xbd_q_index_t``): a queue, or none while its mapping is
    deferred.  COMPLETE is the dump path's: ``xbd_dump_complete`` parks a finished dump
    chunk there until ``xbd_dump`` collects it (seed lines 426-429, 474-482)."""

    FREE = 0
    READY = 1
    BUSY = 2
    NONE = 3
    COMPLETE = 4


class RingStage(enum.IntEnum):
    """How far a command on the BUSY queue has gone through the shared ring."""

    NONE = 0  # not on the ring
    PRIVATE = 1  # written at req_prod_pvt, not yet published
    PUBLISHED = 2  # req_prod covers it: the back end may read it
    CONSUMED = 3  # the back end has taken it
    ANSWERED = 4  # a response is on the ring, not yet consumed by the front end


class BlkifOp(enum.IntEnum):
    """``BLKIF_OP_*`` (``blkif.h``); NONE is the model's label for a free command."""

    READ = 0
    WRITE = 1
    WRITE_BARRIER = 2
    FLUSH_DISKCACHE = 3
    NONE = 255


class BlkifStatus(enum.IntEnum):
    """``BLKIF_RSP_*`` (``blkif.h``)."""

    OKAY = 0
    ERROR = -1
    EOPNOTSUPP = -2


class BioKind(enum.IntEnum):
    """What the disk layer asks for (``bio_cmd`` and ``BIO_ORDERED``)."""

    READ = 0
    WRITE = 1
    ORDERED_WRITE = 2
    FLUSH = 3
    UNSUPPORTED = 4  # e.g. BIO_DELETE without discard support


class BioStage(enum.IntEnum):
    """The life of a bio the model tracks."""

    UNSUBMITTED = 0
    QUEUED = 1  # on the driver's bio queue
    HELD = 2  # attached to a command
    DONE = 3  # biodone() was called


class BioResult(enum.IntEnum):
    """How a bio completed (``bio_error``)."""

    NONE = 0
    OK = 1
    EIO = 2
    EOPNOTSUPP = 3


class DiskState(enum.IntEnum):
    """The disk instance (``sc->xbd_disk``): none, present, or withering (``disk_gone``)."""

    NONE = 0
    PRESENT = 1
    GONE = 2


class IoPc(enum.IntEnum):
    """Whether the driver is inside ``xbd_startio``'s loop, holding the I/O lock."""

    IDLE = 0
    STARTIO = 1


class FrontPc(enum.IntEnum):
    """A front-end handler split at a lock boundary, waiting for its second half."""

    IDLE = 0
    CONNECTING = 1  # xbd_connect: the locked tail (state CONNECTED, startio) is pending
    CLOSING = 2  # xbd_closing: disk_destroy and the switch to Closed are pending


class SuspendPc(enum.IntEnum):
    """The tool stack's suspend cycle as the driver sees it."""

    RUNNING = 0
    DRAINING = 1  # xbd_suspend sleeps until the BUSY queue drains
    SUSPENDED = 2  # the guest is suspended; resume comes next


class DumpPc(enum.IntEnum):
    """Where the kernel dumper's call ``xbd_dump`` is (seed lines 431-484)."""

    IDLE = 0  # no dump in progress
    QUIESCE = 1  # the first xbd_quiesce, then the chunk loop under xbd_io_lock
    POLL = 2  # xbd_startio ran; the second xbd_quiesce polls until BUSY drains


class DumpResult(enum.IntEnum):
    """What the last ``xbd_dump`` returned: 0, ``EIO`` (a chunk's response was not
    OKAY) or ``EBUSY`` (no free command or grant references for a chunk)."""

    NONE = 0  # no dump has returned yet
    OK = 1
    EIO = 2
    EBUSY = 3


class Dma(enum.IntEnum):
    """How bus_dma answers a load: at once, later (EINPROGRESS), or with an error."""

    IMMEDIATE = 0
    DEFERRED = 1
    FAILED = 2


#: The events the driver performs by itself, inside a call the environment made: the
#: iterations of ``xbd_startio``'s loop, the locked tail of ``xbd_connect`` and the second
#: half of ``xbd_closing``, and the steps of ``xbd_dump`` after the dumper's call (the
#: chunk loop, its ``EBUSY`` exits, ``xbd_startio``, ``xbd_quiesce``'s polls of ``xbd_int``,
#: the collection of the COMPLETE queue).  Every other event is the environment's (the
#: tool stack, the back end, xenstore, the disk layer, the kernel dumper, bus_dma, the
#: grant table, the event channel).
DRIVER_STEPS: frozenset[str] = frozenset(
    {
        "startio_done",
        "send_ready",
        "send_bio",
        "wait_idle",
        "reject_bio",
        "command_shortage",
        "grant_shortage",
        "connect_locked",
        "closing_done",
        "dump_chunk",
        "dump_ebusy",
        "dump_startio",
        "dump_poll",
        "dump_grant_callback",
        "dump_collect",
    }
)

#: The environment events that still happen while ``xbd_dump`` polls: the system is
#: stopped (no xenwatch thread, interrupt thread, bus_dma or grant callback runs), but
#: the back end in its own domain consumes and answers requests (``HYPERVISOR_yield``
#: gives it the CPU, seed line 421).  A harness that runs ``xbd_dump`` as one call lets
#: these happen inside it.
DUMP_YIELD_EVENTS: frozenset[str] = frozenset({"backend_consume", "backend_respond"})
