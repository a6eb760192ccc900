"""The FreeBSD driver model as a refinement of the protocol model.

The FreeBSD model (:mod:`xbdspec.model.spec`) describes one front end, with its
queues, freezes and handlers, beside a back end and a tool stack as simple as it
needs.  The protocol model (:mod:`xbdspec.model.protocol`) says what any front end
and back end may do.  The refinement ties them:

* :func:`abstraction` maps a FreeBSD state to the protocol's fields it determines
  (TLA+'s refinement mapping).  A command is a request id (``cm_id`` is the shadow
  index); its ring stage is the request's stage; a command on the ring holds the grant
  of its pages; the xenbus nodes are the same nodes.
* The protocol fields the FreeBSD model leaves out, because its back end is abstract
  (``req_event``, whether the back end sleeps, a pending notification for it), are
  :data:`HIDDEN`: a refinement obligation holds for every value of them.
* :data:`REFINES` says, for every FreeBSD transition, which protocol steps it stands
  for: one step, a stutter (``()``: no protocol field changes), or a composition of
  two protocol steps where the FreeBSD model does in one step what the protocol does
  in two that nothing can observe apart (on resume the guest is not running between
  the tool stack recreating the device and the front end's first write).

``xbdspec prove`` discharges one obligation per FreeBSD transition
(:mod:`xbdspec.proofs.refinement`): from every FreeBSD state satisfying the FreeBSD
invariants, the step's image is one of the alternatives named.  A FreeBSD step that
refines none is a finding of the seed, never a reason to relax the protocol.
"""

from __future__ import annotations

from typing import Any

from .expr import all_of, count_true, ite, u32_add, u32_of, u32_sub
from .protocol.state import ProtocolSizes
from .protocol.vocabulary import Operation, ReqStage, ToolstackPhase
from .state import Sizes
from .vocabulary import BlkifOp, RingStage

#: Protocol fields the FreeBSD model does not determine (its back end polls the ring
#: and is never notified).
HIDDEN: tuple[str, ...] = ("req_event", "be_waiting", "evt_to_back")

_STAGE = {
    RingStage.NONE: ReqStage.IDLE,
    RingStage.PRIVATE: ReqStage.PRIVATE,
    RingStage.PUBLISHED: ReqStage.PUBLISHED,
    RingStage.CONSUMED: ReqStage.CONSUMED,
    RingStage.ANSWERED: ReqStage.RESP_PUBLISHED,
}


def protocol_sizes(k: Sizes) -> ProtocolSizes:
    """The protocol model the FreeBSD model with sizes ``k`` refines: one id per
    command, the same ring, one page and one queue (the FreeBSD model negotiates
    neither a multi-page ring nor queues)."""
    return ProtocolSizes(
        ids=k.commands, ring_slots=k.ring_slots, max_order=0, max_queues=1, ring_base=k.ring_base
    )


def _stage(stage: Any) -> Any:
    value: Any = ReqStage.IDLE
    for ring_stage, req_stage in _STAGE.items():
        value = ite(stage == ring_stage, req_stage, value)
    return value


def abstraction(s: Any, k: Sizes) -> dict[str, Any]:
    """The protocol fields a FreeBSD state determines (every field but :data:`HIDDEN`)."""
    n = k.commands
    published = count_true(*(st == RingStage.PUBLISHED for st in s.cmd_stage))
    on_ring = [st != RingStage.NONE for st in s.cmd_stage]
    return {
        "fe_state": s.fe_state,
        "be_state": s.be_state,
        "ts_phase": ite(s.be_online, ToolstackPhase.ATTACHED, ToolstackPhase.UNPLUGGED),
        # the FreeBSD model's back end offers one page, one queue, barrier and flush
        "be_max_order": 0,
        "be_max_queues": 1,
        "be_barrier": s.be_barrier,
        "be_flush": s.be_flush,
        "be_discard": False,
        "be_indirect": False,
        "be_persistent": False,
        # xbd_initialize writes ring-ref(s), event-channel and protocol at the top level
        "fe_transport": s.fe_published,
        "fe_order": 0,
        "fe_queues": 1,
        "fe_toplevel": s.fe_published,
        "fe_persistent": False,
        # the shared ring: the back end has consumed all but the published commands,
        # and publishes each response as it writes it
        "req_prod_pvt": s.req_prod_pvt,
        "req_prod": s.req_prod,
        "req_cons": u32_sub(s.req_prod, u32_of(published)),
        "rsp_prod_pvt": s.rsp_prod,
        "rsp_prod": s.rsp_prod,
        "rsp_event": s.rsp_event,
        "rsp_cons": s.rsp_cons,
        # a notification the front end has yet to act on: one pending with no
        # response behind it is a hint the handler finds nothing behind (the dump's
        # xbd_quiesce takes responses without reading the event channel, which stays
        # pending after them)
        "evt_to_front": all_of(s.irq_pending, s.rsp_prod != s.rsp_cons),
        # xbd_int ends with RING_FINAL_CHECK_FOR_RESPONSES
        "fe_waiting": s.rsp_event == u32_add(s.rsp_cons, 1),
        "req_stage": tuple(_stage(s.cmd_stage[c]) for c in range(n)),
        "req_op": tuple(ite(on_ring[c], _operation(s.cmd_op[c]), Operation.READ) for c in range(n)),
        # a command on the ring holds its pages' grant (xbd_queue_cb grants them,
        # xbd_int ends them)
        "gnt_live": tuple(on_ring),
    }


def _operation(op: Any) -> Any:
    value: Any = Operation.READ
    for blkif, operation in (
        (BlkifOp.WRITE, Operation.WRITE),
        (BlkifOp.WRITE_BARRIER, Operation.WRITE_BARRIER),
        (BlkifOp.FLUSH_DISKCACHE, Operation.FLUSH_DISKCACHE),
    ):
        value = ite(op == blkif, operation, value)
    return value


STUTTER: tuple[str, ...] = ()

#: For each FreeBSD transition, the protocol steps it may stand for (each alternative
#: a sequence of protocol transitions; ``STUTTER`` changes no protocol field).
REFINES: dict[str, tuple[tuple[str, ...], ...]] = {
    # the tool stack
    "unplug": (("toolstack_set_offline",),),
    "suspend_begin": (STUTTER,),
    "suspend_drained": (STUTTER,),
    "suspend_timeout": (STUTTER,),
    "resume_cancelled": (STUTTER,),
    "resume_with_new_backend": (("toolstack_resume", "frontend_publish_transport_initialised"),),
    # the back end
    "backend_publish": (("backend_init_wait",),),
    "backend_publish_initialised": (("backend_skip_init_wait",),),
    "backend_connect": (("backend_connect",),),
    "backend_follows_closing": (("backend_closing",),),
    "backend_follows_closed": (("backend_closed",),),
    "backend_ignores_frontend": (STUTTER,),
    "backend_offline": (("backend_closing",),),
    "backend_consume": (("backend_consume",),),
    "backend_respond": (("backend_respond",),),
    # the front end's handlers
    "frontend_initialise": (("frontend_publish_transport_initialised",),),
    "frontend_initialise_early": (("frontend_publish_transport_initialised",),),
    "frontend_shutdown": (("frontend_closing",),),
    "frontend_connect": (("frontend_connected",),),
    "frontend_connect_locked": (STUTTER,),
    "frontend_close": (("frontend_closing",),),
    "frontend_disk_gone": (STUTTER,),
    "frontend_ignores_backend": (STUTTER,),
    "frontend_closed": (("frontend_closed",),),
    "open": (STUTTER,),
    "close": (STUTTER,),
    "close_last_user": (("frontend_closing",),),
    # the request path
    "accept_bio": (STUTTER,),
    "startio_done": (STUTTER, ("frontend_push_requests",)),
    "startio_send_ready": (STUTTER, ("frontend_write_request",)),
    "startio_send_ready_fails": (STUTTER,),
    "startio_send_bio": (STUTTER, ("frontend_write_request",)),
    "startio_send_bio_fails": (STUTTER,),
    "startio_wait_idle": (STUTTER, ("frontend_push_requests",)),
    "startio_reject": (STUTTER,),
    # with a dump's chunk parked on COMPLETE the loop can run out of commands after
    # writing a request, and the shortage's xbd_flush_requests publishes it
    "startio_command_shortage": (STUTTER, ("frontend_push_requests",)),
    "startio_grant_shortage": (STUTTER,),
    "deferred_mapping_done": (("frontend_write_request",),),
    "deferred_mapping_fails": (STUTTER,),
    "grant_callback": (STUTTER,),
    "interrupt": (("frontend_service_ring",),),
    # spurious: nothing pending, nothing changes (the ring's final check is not run)
    "interrupt_ignored": (STUTTER, ("frontend_service_ring",)),
    # the dump path: the dumper's call and its bookkeeping change no protocol field;
    # xbd_quiesce's call of xbd_int takes the responses as an interrupt does
    "dump": (STUTTER,),
    "dump_poll": (("frontend_service_ring",),),
    "dump_grant_callback": (STUTTER,),
    "dump_chunk": (STUTTER,),
    "dump_ebusy": (STUTTER,),
    "dump_startio": (STUTTER,),
    "dump_collect": (STUTTER,),
}
