"""The project's one base exception.

Every error xbdspec raises on purpose derives from :class:`XbdspecError`, so the
command line can turn it into a clear message instead of a traceback.  Messages
say what went wrong, where (file and line, xenstore key, event), and how to fix it.
"""


class XbdspecError(Exception):
    """Base class of every error xbdspec raises deliberately."""


class InputError(XbdspecError):
    """Untrusted input (a trace line, a xenstore value, a peer's message) was malformed.

    Attributes:
        source: where the input came from (a path and line, a key, a process).
    """

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
