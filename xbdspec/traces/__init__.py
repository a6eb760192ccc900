"""Trace checking: recorded traces and xenstore access logs against the model.

* :mod:`xbdspec.traces.jsonl`: the project's JSON-lines trace format (the one reader
  and writer: the explorer's counterexamples and the replay files use it too);
* :mod:`xbdspec.traces.oxenstored`: oxenstored's access-log lines;
* :mod:`xbdspec.traces.projection`: the model seen through a xenstore log;
* :mod:`xbdspec.traces.vbd`: following every vbd of a log (against the FreeBSD model;
  :mod:`xbdspec.traces.vbd_protocol`: against the protocol model);
* :mod:`xbdspec.traces.protocol`: commits and ring steps against the protocol model;
  :mod:`xbdspec.traces.compiled`: the declaration's steps compiled for it;
* :mod:`xbdspec.traces.check`: the checks, streaming; :mod:`xbdspec.traces.cli`:
  ``xbdspec check``.
"""

from .check import check_file, check_jsonl, check_oxenstored
from .jsonl import TraceEvent, format_event, format_header, read_trace, write_trace
from .report import CheckResult, DeviceReport, Divergence

__all__ = [
    "CheckResult",
    "DeviceReport",
    "Divergence",
    "TraceEvent",
    "check_file",
    "check_jsonl",
    "check_oxenstored",
    "format_event",
    "format_header",
    "read_trace",
    "write_trace",
]
