"""The XenBus handshake: the tool stack, the back end and the front end's state
handlers, with xenstore between them.

Each side writes only its own ``state`` node; the other side learns of a change
through a watch event that arrives later and coalesces with the ones before it
(``*_watch_pending``): the handler reads the node's current value, so a quick
succession of writes can be seen as one (``blkif.h``, "state diagrams").

Components: ``toolstack`` (control ``susp_pc``), ``backend`` (control
``be_state``), ``frontend`` (control ``fe_state``).  The front end's handlers run
in the xenwatch thread, outside the I/O lock except where the seed takes it, so
``xbd_connect`` and ``xbd_closing`` are split at their lock boundaries (``fe_pc``).
"""

from __future__ import annotations

from typing import Any

from . import actions as a
from .declaration import Param, TransitionTable
from .draft import Draft
from .expr import all_of, any_of, count_true, ite, negate, one_of, u32_add
from .vocabulary import (
    BioResult,
    BioStage,
    DiskState,
    DriverState,
    FrontPc,
    IoPc,
    Place,
    SuspendPc,
    XenbusState,
)

table = TransitionTable()
step = table.step
X = XenbusState
ALL_STATES = tuple(X)

BARRIER = Param("barrier", (False, True), "the back end advertises feature-barrier")
FLUSH = Param("flush", (False, True), "the back end advertises feature-flush-cache")
CANCELLED = Param("cancelled", (False, True), "the suspend was cancelled (xen_suspend_cancelled)")


def no_bio_pending(s: Any) -> Any:
    """Every submitted bio has completed: what the disk layer waits for before close."""
    return all_of(*(one_of(st, (BioStage.UNSUBMITTED, BioStage.DONE)) for st in s.bio_stage))


def initialise(d: Draft, k: Any) -> None:
    """``xbd_initialize`` and ``xbd_alloc_ring``: a fresh ring, the transport keys
    written, the front end Initialised (the back end will see it)."""
    d.fe_published = True
    d.transport_epoch = d.transport_epoch + 1
    for name in ("req_prod_pvt", "req_prod", "rsp_prod", "rsp_cons"):
        setattr(d, name, k.ring_base)
    d.rsp_event = u32_add(k.ring_base, 1)
    d.irq_pending = False
    d.fe_watch_pending = True


# --------------------------------------------------------------------------- the tool stack


@step(
    event="unplug",
    component="toolstack",
    source=[SuspendPc.RUNNING],
    seed="tool stack (xl block-detach)",
)
class Unplug:
    """The tool stack asks for the disk to go: the back end's `online` goes to 0."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(s.unplugs_left > 0, s.be_online)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"be_online": False, "unplugs_left": s.unplugs_left - 1}


@step(
    event="suspend",
    component="toolstack",
    source=[SuspendPc.RUNNING],
    dest=SuspendPc.DRAINING,
    seed="xbd_suspend",
    requires=a.GUEST,
)
class SuspendBegin:
    """The guest suspends: the driver stops issuing requests and waits for the ring
    (and deferred mappings) to drain."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            s.suspends_left > 0,
            s.drv_state == DriverState.CONNECTED,
            s.fe_state == X.Connected,
            s.io_pc == IoPc.IDLE,
            s.fe_pc == FrontPc.IDLE,
            s.be_online,
            s.be_state == X.Connected,
            s.fe_seen_be == X.Connected,
            s.disk == DiskState.PRESENT,
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"drv_state": DriverState.SUSPENDED, "suspends_left": s.suspends_left - 1}


def in_flight(s: Any) -> Any:
    """Some command is on the ring or waiting for a deferred mapping."""
    return any_of(a.some_command_at(s, Place.BUSY), a.some_command_at(s, Place.NONE))


@step(
    event="suspend_drained",
    component="toolstack",
    source=[SuspendPc.DRAINING],
    dest=SuspendPc.SUSPENDED,
    seed="xbd_suspend (wakeup from xbd_int)",
)
class SuspendDrained:
    """Nothing is in flight any more: the suspend completes."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(s.io_pc == IoPc.IDLE, negate(in_flight(s)))

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {}


@step(
    event="suspend_timeout",
    component="toolstack",
    source=[SuspendPc.DRAINING],
    dest=SuspendPc.RUNNING,
    seed="xbd_suspend (msleep EWOULDBLOCK)",
)
class SuspendTimeout:
    """The drain times out: the suspend is refused and the driver is connected again."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(s.io_pc == IoPc.IDLE, in_flight(s))

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"drv_state": DriverState.CONNECTED}


@step(
    event="resume",
    component="toolstack",
    source=[SuspendPc.SUSPENDED],
    dest=SuspendPc.RUNNING,
    params=[CANCELLED],
    seed="xbd_resume (xen_suspend_cancelled)",
)
class ResumeCancelled:
    """The suspend was cancelled: the same back end, the same ring; the driver is
    connected again and restarts its queue."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(p.cancelled, s.io_pc == IoPc.IDLE)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"drv_state": DriverState.CONNECTED, "io_pc": IoPc.STARTIO}


@step(
    event="resume",
    component="toolstack",
    source=[SuspendPc.SUSPENDED],
    dest=SuspendPc.RUNNING,
    params=[CANCELLED],
    seed="xbd_resume, xbd_free, xbd_initialize; xenbusb_resume",
)
class ResumeWithNewBackend:
    """The guest resumes (perhaps migrated) with a new back end, Initialising: the
    driver frees the old ring, puts the bio of the command waiting on READY back on
    the bio queue, and initialises again (the front end may go to Initialised before
    the back end reaches InitWait; defaults then apply)."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(negate(p.cancelled), s.io_pc == IoPc.IDLE)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        k = p.k
        d = Draft(s)
        d.drv_state = DriverState.DISCONNECTED
        for c in range(k.commands):
            ready = s.cmd_place[c] == Place.READY
            a.requeue_bio(d, k, c, when=ready)
            a.free_command(d, k, c, when=ready)
        d.flag_cm_shortage = False
        d.flag_wait_idle = False
        d.frozen = count_true(d.flag_gnt_shortage)
        d.be_state = X.Initialising
        d.be_published = False
        d.be_barrier = False
        d.be_flush = False
        d.be_watch_pending = False
        d.fe_seen_be = X.Initialising
        d.fe_state = X.Initialised
        initialise(d, k)
        return d.changes


# --------------------------------------------------------------------------- the back end


@step(
    event="backend_publish",
    component="backend",
    source=[X.Initialising],
    dest=X.InitWait,
    params=[BARRIER, FLUSH],
    seed="blkif.h state diagram, step 2",
)
class BackendPublish:
    """The back end opens the device, publishes its features, goes to InitWait."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return s.be_online

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        # On entering a state, do the work of any skipped state (blkif.h): the back end
        # looks at the front end's state again, in case it went ahead.
        return {
            "be_published": True,
            "be_barrier": p.barrier,
            "be_flush": p.flush,
            "be_watch_pending": True,
            "fe_watch_pending": True,
        }


@step(
    event="backend_skip_initwait",
    component="backend",
    source=[X.Initialising],
    dest=X.Initialised,
    params=[BARRIER, FLUSH],
    seed="blkif.h (allowed shortcut)",
)
class BackendPublishInitialised:
    """The shortcut ``blkif.h`` allows: the back end publishes and goes straight to
    Initialised without waiting in InitWait."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return s.be_online

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return BackendPublish.effect(s, p)


BACKEND_LIVE = (X.Initialising, X.InitWait, X.Initialised, X.Connected)


def back_end_moved() -> dict[str, Any]:
    """The back end handled the front end's watch event and wrote its own state node:
    the front end will get a watch event in turn."""
    return {"fe_watch_pending": False, "be_watch_pending": True}


def backend_connects(s: Any) -> Any:
    """The back end, seeing the front end's transport published, will connect."""
    return all_of(
        one_of(s.be_state, (X.InitWait, X.Initialised)),
        one_of(s.fe_state, (X.Initialised, X.Connected)),
        s.be_online,
    )


def backend_follows_closing(s: Any) -> Any:
    """The back end, seeing the front end closing, closes too."""
    return all_of(one_of(s.be_state, BACKEND_LIVE), s.fe_state == X.Closing)


def backend_follows_closed(s: Any) -> Any:
    """The back end, seeing the front end closed, closes."""
    return all_of(s.be_state != X.Closed, s.fe_state == X.Closed)


@step(
    event="frontend_watch",
    component="backend",
    source=[X.InitWait, X.Initialised],
    dest=X.Connected,
    seed="blkif.h state diagram, step 4",
)
class BackendConnect:
    """The back end reads the front end's transport keys, maps the ring, publishes
    the disk's properties and goes to Connected."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(s.fe_watch_pending, backend_connects(s))

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return back_end_moved()


@step(
    event="frontend_watch",
    component="backend",
    source=BACKEND_LIVE,
    dest=X.Closing,
    seed="xenbus.h Closing; the back end following the front end (protocol: backend_closing)",
)
class BackendFollowsClosing:
    """The front end is closing: the back end goes to Closing."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(s.fe_watch_pending, backend_follows_closing(s))

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return back_end_moved()


@step(
    event="frontend_watch",
    component="backend",
    source=[st for st in ALL_STATES if st != X.Closed],
    dest=X.Closed,
    seed="xenbus.h Closed; the back end following the front end (protocol: backend_closed)",
)
class BackendFollowsClosed:
    """The front end is closed: the back end releases the device and goes to Closed."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(s.fe_watch_pending, backend_follows_closed(s))

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return back_end_moved()


@step(
    event="frontend_watch",
    component="backend",
    source=ALL_STATES,
    seed="the back end's watch handler (no state to follow)",
)
class BackendIgnoresFrontend:
    """A watch event that asks nothing of the back end."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            s.fe_watch_pending,
            negate(backend_connects(s)),
            negate(backend_follows_closing(s)),
            negate(backend_follows_closed(s)),
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"fe_watch_pending": False}


@step(
    event="backend_offline",
    component="backend",
    source=BACKEND_LIVE,
    dest=X.Closing,
    seed="xenbus.h Closing (an unplug: the tool stack's online = 0, not a blkif.h node)",
)
class BackendOffline:
    """The tool stack took the back end offline: it goes to Closing."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return negate(s.be_online)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"be_watch_pending": True}


# --------------------------------------------------------------------------- the front end


def frontend_handles(s: Any) -> Any:
    """The front end's xenwatch handler may run (``xbd_backend_changed``)."""
    return all_of(s.be_watch_pending, s.fe_pc == FrontPc.IDLE)


def front_initialises(s: Any) -> Any:
    return all_of(s.fe_state == X.Initialising, one_of(s.be_state, (X.InitWait, X.Initialised)))


def front_connects(s: Any) -> Any:
    return all_of(s.fe_state == X.Initialised, s.be_state == X.Connected)


FRONT_LIVE = (X.Initialising, X.Initialised, X.Connected)


def front_closes(s: Any) -> Any:
    return all_of(
        one_of(s.fe_state, FRONT_LIVE),
        s.be_state == X.Closing,
        s.users == 0,
    )


def front_disk_gone(s: Any) -> Any:
    return all_of(one_of(s.fe_state, FRONT_LIVE), s.be_state == X.Closing, s.users > 0)


def seen(s: Any) -> dict[str, Any]:
    """The handler consumed the watch event and read the back end's state."""
    return {"be_watch_pending": False, "fe_seen_be": s.be_state}


@step(
    event="backend_watch",
    component="frontend",
    source=[X.Initialising],
    dest=X.Initialised,
    seed="xbd_backend_changed (InitWait, Initialised), xbd_initialize, xbd_alloc_ring",
    requires=a.GUEST,
)
class FrontendInitialise:
    """The back end published its limits: the front end negotiates the ring, grants
    it, writes ring-ref(s), event-channel and protocol, and goes to Initialised."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(frontend_handles(s), front_initialises(s))

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        initialise(d, p.k)
        d.changes.update(seen(s))
        return d.changes


@step(
    event="frontend_initialise",
    component="frontend",
    source=[X.Initialising],
    dest=X.Initialised,
    seed="xbd_resume, xbd_initialize; blkif.h (allowed shortcut)",
    requires=a.GUEST,
)
class FrontendInitialiseEarly:
    """The shortcut ``blkif.h`` allows: the front end negotiates with defaults and goes
    to Initialised before the back end reaches InitWait (the seed does this when it
    resumes; other front ends may at any start)."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(s.fe_pc == FrontPc.IDLE, s.be_state == X.Initialising)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        initialise(d, p.k)
        return d.changes


@step(
    event="shutdown",
    component="frontend",
    source=FRONT_LIVE,
    dest=X.Closing,
    seed="xenbus.h Closing (the front end closes first: guest shutdown, xenbus_dev_shutdown)",
    requires=a.GUEST,
)
class FrontendShutdown:
    """The guest shuts the device down with nobody using it: the front end closes
    first and the back end follows.  Counts against the unplug budget."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            s.unplugs_left > 0,
            s.users == 0,
            s.fe_pc == FrontPc.IDLE,
            s.susp_pc == SuspendPc.RUNNING,
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {
            "unplugs_left": s.unplugs_left - 1,
            "fe_pc": FrontPc.CLOSING,
            "fe_watch_pending": True,
        }


@step(
    event="backend_watch",
    component="frontend",
    source=[X.Initialised],
    dest=X.Connected,
    seed="xbd_backend_changed (Connected), xbd_connect, xbd_instance_create",
    requires=a.GUEST,
)
class FrontendConnect:
    """The back end is connected: the front end reads the disk's properties and the
    back end's features afresh, creates the disk if it has none, and goes to
    Connected; the locked tail (state CONNECTED, restart the queue) follows."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(frontend_handles(s), front_connects(s))

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        disk = s.disk
        return {
            "fe_barrier": s.be_barrier,
            "fe_flush": s.be_flush,
            "disk": ite(disk == DiskState.NONE, DiskState.PRESENT, disk),
            "fe_pc": FrontPc.CONNECTING,
            "fe_watch_pending": True,
            **seen(s),
        }


@step(
    event="connect_locked",
    component="frontend",
    source=[X.Connected],
    seed="xbd_connect (locked tail)",
)
class FrontendConnectLocked:
    """Under the I/O lock: the driver is CONNECTED and restarts its queue."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(s.fe_pc == FrontPc.CONNECTING, s.io_pc == IoPc.IDLE)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"drv_state": DriverState.CONNECTED, "io_pc": IoPc.STARTIO, "fe_pc": FrontPc.IDLE}


@step(
    event="backend_watch",
    component="frontend",
    source=FRONT_LIVE,
    dest=X.Closing,
    seed="xbd_backend_changed (Closing), xbd_closing",
    requires=a.GUEST,
)
class FrontendClose:
    """The back end is closing and nobody has the disk open: the front end goes to
    Closing and destroys its disk."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(frontend_handles(s), front_closes(s))

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"fe_pc": FrontPc.CLOSING, "fe_watch_pending": True, **seen(s)}


@step(
    event="backend_watch",
    component="frontend",
    source=FRONT_LIVE,
    seed="xbd_backend_changed (Closing with users), disk_gone",
    requires=a.GUEST,
)
class FrontendDiskGone:
    """The back end is closing but the disk is open: the disk withers (``disk_gone``)
    and the front end closes when the last user does.  Bios waiting on a driver that is
    not connected can never be sent now: they fail with EIO (the seed leaves them
    queued for ever)."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(frontend_handles(s), front_disk_gone(s))

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        stranded = s.drv_state != DriverState.CONNECTED
        for b in range(p.k.bios):
            fail = all_of(stranded, s.bio_stage[b] == BioStage.QUEUED)
            d.set_at("bio_stage", b, ite(fail, BioStage.DONE, s.bio_stage[b]))
            d.set_at("bio_result", b, ite(fail, BioResult.EIO, s.bio_result[b]))
            done = s.bio_completions[b]
            d.set_at("bio_completions", b, ite(fail, done + 1, done))
        d.disk = DiskState.GONE
        d.changes.update(seen(s))
        return d.changes


@step(
    event="backend_watch",
    component="frontend",
    source=ALL_STATES,
    seed="xbd_backend_changed (nothing to do)",
    requires=a.GUEST,
)
class FrontendIgnoresBackend:
    """A watch event that asks nothing of the front end (Unknown, Initialising,
    Reconfiguring, Reconfigured, Closed, or a state already handled)."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            frontend_handles(s),
            negate(front_initialises(s)),
            negate(front_connects(s)),
            negate(front_closes(s)),
            negate(front_disk_gone(s)),
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return seen(s)


@step(
    event="closing_done",
    component="frontend",
    source=[X.Closing],
    dest=X.Closed,
    seed="xbd_closing (disk_destroy, Closed)",
)
class FrontendClosed:
    """The disk is destroyed and the front end goes to Closed."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return s.fe_pc == FrontPc.CLOSING

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"disk": DiskState.NONE, "fe_pc": FrontPc.IDLE, "fe_watch_pending": True}


# --------------------------------------------------------------------------- open and close


@step(event="open", component="frontend", source=ALL_STATES, seed="xbd_open", requires=a.GUEST)
class Open:
    """A user opens the disk, while the front end is not closing it."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            s.disk == DiskState.PRESENT,
            s.users < p.k.max_users,
            s.fe_pc != FrontPc.CLOSING,
            one_of(s.fe_state, FRONT_LIVE),
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"users": s.users + 1}


def last_close_closes(s: Any) -> Any:
    """The last user leaves while the back end's state node says Closing.

    ``xbd_close`` asks ``xenbus_get_otherend_state``, which reads the node afresh
    (FreeBSD's ``xenbusvar.h``), not the state the last watch delivered: a close can act
    on a Closing whose watch event is still pending."""
    return all_of(s.users == 1, s.be_state == X.Closing, one_of(s.fe_state, FRONT_LIVE))


@step(event="close", component="frontend", source=ALL_STATES, seed="xbd_close", requires=a.GUEST)
class Close:
    """A user closes the disk, once its I/O has completed."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(s.users > 0, no_bio_pending(s), negate(last_close_closes(s)))

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"users": s.users - 1}


@step(
    event="close",
    component="frontend",
    source=FRONT_LIVE,
    dest=X.Closing,
    seed="xbd_close, xbd_closing",
    requires=a.GUEST,
)
class CloseLastUser:
    """The last user closes the disk after the back end asked to close: the front end
    closes now."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(no_bio_pending(s), last_close_closes(s), s.fe_pc == FrontPc.IDLE)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"users": 0, "fe_pc": FrontPc.CLOSING, "fe_watch_pending": True}
