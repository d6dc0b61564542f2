"""Deterministic single-process PBFT cluster simulator: the real `Replica`, simulated time.

Two uses share one engine (`cluster.Cluster`):

- the seed swarm (`runner.run_seed(seed, n)`): one integer draws configuration, network faults,
  Byzantine replicas and clients; safety invariants are checked after every event and liveness
  after healing (the test suite runs fixed blocks of seeds);
- research runs (`experiment.run_experiment(ExperimentConfig(...))`, the `ibledger sim` command):
  chosen latency models, loss, batching, fault schedules and open-loop load, measured in
  simulated time beside the analytical PBFT latency (`analysis`).

Replicas execute into a stand-in ledger by default (`ledger.SimLedger`: fast, opaque requests).
With `real_ledger=True` (`python -m tests.sim --real-ledger`) each replica runs the node's own
ledger and contracts over its own in-memory store instead (`node_ledger`, `node_cluster`):
clients sign real transactions, consensus records and checkpoints go into the ledger's store, a
crash loses the unsynced writes, `storage_faults=True` adds a failed write (the replica stops
and restarts from its store), and the run ends by checking every honest ledger's chain, tx
index and full verification on reopening.

Nothing here reads a clock or does I/O: the same inputs replay the same run, which
`trace_digest` proves (with the real ledger too: its verifier runs inline, and every
transaction names its nonce and expiry).
"""
