"""Deterministic single-process PBFT cluster simulator: the real `Replica`, simulated time.

Two uses share one engine (`cluster.Cluster`):

- the seed swarm (`runner.run_seed(seed, n)`): one integer draws configuration, network faults,
  Byzantine replicas and clients; safety invariants are checked after every event and liveness
  after healing (the test suite runs fixed blocks of seeds);
- research runs (`experiment.run_experiment(ExperimentConfig(...))`, the `ibledger sim` command):
  chosen latency models, loss, batching, fault schedules and open-loop load, measured in
  simulated time beside the analytical PBFT latency (`analysis`).

Nothing here reads a clock or does I/O: the same inputs replay the same run, which
`trace_digest` proves.
"""
