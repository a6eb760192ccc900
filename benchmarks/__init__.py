"""Benchmarks: each ``bench_*.py`` module here has ``run() -> dict[str, float | int | str]``.

``make bench`` (``python -m benchmarks --out FILE``) runs them all and writes one JSON
object keyed by module name.  Speed targets live here, never in timed tests.
"""
