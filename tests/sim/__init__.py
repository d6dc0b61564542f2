"""Deterministic single-process PBFT cluster simulator (seeded; simulated clock and network).

Entry points: `run_seed(seed, n)` in `runner.py`, and `python -m tests.sim --help` from the
repository root.
"""
