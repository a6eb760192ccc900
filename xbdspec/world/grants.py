"""The grant table: a front end grants pages of its memory to the back end's domain,
read-only or writable, and ends the grants; the back end maps them.

An access the grant does not allow (a write through a read-only grant, a map of an
ended or unknown reference) is refused and recorded: the harness reports it as a
violation by the implementation that made the grant wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from xbdspec.errors import XbdspecError

PAGE_SIZE = 4096


class GrantError(XbdspecError):
    """A grant operation the table refuses."""


@dataclass
class Grant:
    page: bytearray | memoryview
    readonly: bool
    mapped: int = 0


class GrantTable:
    """The grants of one front end to one back end.

    Attributes:
        grants: reference -> grant.
        ended_while_mapped: references ended while the back end still had them mapped.
    """

    MAX_GRANTS = 1 << 16

    def __init__(self) -> None:
        self.grants: dict[int, Grant] = {}
        self._next = 8
        self.ended_while_mapped: list[int] = []

    def grant(self, page: bytearray | memoryview, readonly: bool) -> int:
        if len(self.grants) >= self.MAX_GRANTS:
            raise GrantError("no grant reference is free")
        ref = self._next
        self._next += 1
        self.grants[ref] = Grant(page, readonly)
        return ref

    def grant_ref(self, ref: int, page: bytearray | memoryview, readonly: bool) -> None:
        """Grant ``page`` under ``ref``, a reference the front end chose."""
        if ref in self.grants:
            raise GrantError(f"grant {ref} is granted again while it is granted")
        if len(self.grants) >= self.MAX_GRANTS:
            raise GrantError("no grant reference is free")
        self.grants[ref] = Grant(page, readonly)

    def end(self, ref: int) -> None:
        grant = self.grants.pop(ref, None)
        if grant is None:
            raise GrantError(f"grant {ref} is not granted")
        if grant.mapped:
            self.ended_while_mapped.append(ref)

    def map(self, ref: int, writable: bool) -> Grant:
        grant = self.grants.get(ref)
        if grant is None:
            raise GrantError(f"grant {ref} is not granted (ended, or never made)")
        if writable and grant.readonly:
            raise GrantError(f"grant {ref} is read-only; the back end must write the page")
        grant.mapped += 1
        return grant

    def unmap(self, ref: int) -> None:
        grant = self.grants.get(ref)
        if grant is not None and grant.mapped:
            grant.mapped -= 1
