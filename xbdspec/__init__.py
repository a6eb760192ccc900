"""xbdspec: a formal model, proofs and an executable reference of Xen's blkfront.

The distribution holds four packages:

* ``xbdspec.model``: the one declaration of the protocol (state, events, guards,
  effects, invariants) and its concrete interpretation (``transitions`` machines);
* ``xbdspec.proofs``: the symbolic interpretation (z3) and the proof obligations;
* ``xbdspec.reference``: the Python port of FreeBSD's ``blkfront.c`` on a simulated
  Xen platform;
* ``xbdspec`` itself: the command line and the project-wide error type.
"""

from xbdspec.errors import XbdspecError

__all__ = ["XbdspecError", "__version__"]
__version__ = "0.1.0"
