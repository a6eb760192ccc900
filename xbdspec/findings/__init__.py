"""The seed's findings: catalogue, replays and the audit ``make verify`` runs.

* :mod:`~xbdspec.findings.catalogue`: every finding explained, and the rejected candidates;
* :mod:`~xbdspec.findings.scenario`: reference-level replays (a :class:`Run` per scenario);
* :mod:`~xbdspec.findings.replay`: each finding's replay on the seed and with its fix;
* :mod:`~xbdspec.findings.audit`: ``xbdspec findings``, the audit of all of them.
"""

# every scenario module registers its replays on import: a reader of SCENARIOS sees them all
from . import device_life, io_path, negotiation  # noqa: F401
