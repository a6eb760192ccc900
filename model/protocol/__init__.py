"""The protocol model: what blkif.h, xenbus.h and ring.h require of every front end,
back end and tool stack, declared once in the declaration language of
:mod:`xbdspec.model.declaration`.

The FreeBSD driver model (:mod:`xbdspec.model.spec`) is one refinement of it
(:mod:`xbdspec.model.refinement`).
"""

from .spec import build_protocol_spec
from .state import ProtocolSizes
from .vocabulary import DEVIATIONS, Operation, ReqStage, ToolstackPhase

__all__ = [
    "DEVIATIONS",
    "Operation",
    "ProtocolSizes",
    "ReqStage",
    "ToolstackPhase",
    "build_protocol_spec",
]
