"""Test-suite configuration: hypothesis profiles.

``ci`` (the default under pytest) is derandomized and bounded, so every run of the
suite explores the same examples; ``dev`` is for local runs with more examples.
Long campaigns are the command line's job (they print their seed), not the suite's.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    print_blob=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("XBDSPEC_HYPOTHESIS_PROFILE", "ci"))
