"""Benchmarks of remote_magics against its peers; run with ``make bench`` (see harness.py)."""
