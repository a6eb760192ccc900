"""``python -m xbdspec``: the same as the ``xbdspec`` command."""

import sys

from xbdspec.cli import main

sys.exit(main())
