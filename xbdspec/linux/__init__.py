"""Linux's ``xen-blkfront.c`` (6.1), compiled unmodified against ``shim-linux/`` and run
as a front end of the protocol-level harness (:mod:`xbdspec.linux.adapter`)."""
