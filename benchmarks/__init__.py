"""Benchmarks of omniq against its peers (run: ``python -m benchmarks``; see run.py)."""
