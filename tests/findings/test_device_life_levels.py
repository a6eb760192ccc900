"""Each finding on the device's life says at which level it departs: a protocol
violation names the header sentences it breaks (verbatim, as the protocol model quotes
them) and the signature the protocol-level harness reports; a FreeBSD-internal one says
why no header sentence applies.  And ``close-clears-open-flag``'s text agrees with GEOM,
which opens a disk once for all its users."""

from __future__ import annotations

import pytest
from xbdspec.model.protocol import quotes as q
from xbdspec.reference import Platform
from xbdspec.reference.constants import XBDF_OPEN
from xbdspec.reference.geom import g_disk_access

from xbdspec.findings.catalogue import FINDINGS, Finding

DEVICE_LIFE = {
    "suspend-rollback-frees-ring": False,
    "backend-closed-ignored": True,
    "detach-leaves-disk": False,
    "read-only-disk-writable": False,
}
BY_NAME = {f.name: f for f in FINDINGS}


def _folded(text: str) -> str:
    return " ".join(text.replace("\\", "").split())


@pytest.mark.parametrize("name", sorted(DEVICE_LIFE))
def test_each_device_life_finding_states_its_level(name: str) -> None:
    finding: Finding = BY_NAME[name]
    level = _folded(finding.protocol_level)
    if DEVICE_LIFE[name]:
        assert level.startswith("**A protocol violation**")
        # the header sentences, word for word as the protocol model quotes them
        assert "o Connect to the request ring and event channel." in q.BACKEND_CONNECTED.text
        assert "o Connect to the request ring and event channel." in level
        assert "the current communication status of initialisation across the bus" in (
            q.XENBUS_STATES.text
        )
        assert "the current communication status of initialisation across the bus" in level
        # the harness's signature, as the page gives it
        assert finding.protocol_rule and _folded(finding.protocol_rule) in level
    else:
        assert level.startswith("**FreeBSD-internal (refinement level).**")
    if name == "read-only-disk-writable":
        assert _folded(q.INFO_BITS.text) in level


def test_geom_opens_the_disk_once_for_every_user() -> None:
    """``g_disk_access`` calls ``d_open`` on the first access and ``d_close`` on the
    last: through GEOM ``xbd_users`` is 0 or 1 and ``XBDF_OPEN`` agrees with it, which
    is why ``close-clears-open-flag`` is latent (its page says so)."""
    platform = Platform()
    platform.boot()
    sc = platform.softc()
    disk = sc.xbd_disk
    assert disk is not None
    for _ in range(3):
        assert g_disk_access(disk, 1, 0, 0) == 0
    assert sc.xbd_users == 1 and sc.xbd_flags & XBDF_OPEN
    for _ in range(2):
        g_disk_access(disk, -1, 0, 0)
    assert sc.xbd_users == 1 and sc.xbd_flags & XBDF_OPEN
    g_disk_access(disk, -1, 0, 0)
    assert sc.xbd_users == 0 and not sc.xbd_flags & XBDF_OPEN
    assert "latent" in BY_NAME["close-clears-open-flag"].title
