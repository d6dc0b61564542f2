"""The seeded fault swarm over the deterministic PBFT cluster simulator (`ibledger.sim`).

Entry points: `run_seed(seed, n)` in `ibledger.sim.runner`, `python -m tests.sim --help` from
the repository root for the swarm, and `ibledger sim --help` for the research instrument.
"""
