"""Front ends that run in the protocol-level world (:mod:`xbdspec.world.harness`): each
module offers ``make(options=None)``, a ``make_frontend`` for
:func:`~xbdspec.world.harness.run_program` and :func:`~xbdspec.world.campaign.campaign`."""
