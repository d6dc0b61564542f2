"""The simulator's executors: what a replica's committed blocks execute into.

`SimLedger` (the default) is a durable, deterministic stand-in for the node's ledger.
`node_ledger.NodeLedger` runs the node's real ledger and contracts over an in-memory store
(``Scenario.real_ledger``). Both satisfy `Executor`, which is all the cluster asks of them.

State root = hash chain over the ids of the requests applied, in order, under the chain hash of
the replicas' `ReplicaConfig.hash_fn` (as the node's state root follows its suite). Like the real
ledger it
skips a request id it has already applied (exactly-once is a property of replicated state) and
rejects requests whose client tag does not verify, so a primary cannot smuggle in phantoms.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from ibledger.consensus import GENESIS_TIP, CommittedBlock, ExecutedTip, HashFn, request_id, sha256

_CLIENT_KEY = b"ibledger-sim-client"


def make_request(client: int, index: int, padding: int) -> bytes:
    body = b"tx:%d:%d:" % (client, index) + b"." * padding
    tag = hashlib.blake2b(body, key=_CLIENT_KEY, digest_size=8).hexdigest().encode()
    return body + b"|" + tag


def valid_request(request: bytes) -> bool:
    body, sep, tag = request.rpartition(b"|")
    if not sep or not body.startswith(b"tx:"):
        return False
    return hashlib.blake2b(body, key=_CLIENT_KEY, digest_size=8).hexdigest().encode() == tag


class Executor(Protocol):
    """One replica's executed blocks, as the cluster drives and checks them."""

    @property
    def height(self) -> int:
        """The last executed consensus sequence number (0 before the first block)."""
        ...

    @property
    def applied(self) -> list[bytes]:
        """The request ids applied, in execution order (a duplicate is not applied again)."""
        ...

    @property
    def applied_set(self) -> set[bytes]: ...

    def tip(self) -> ExecutedTip:
        """Where a replica built on this executor resumes."""
        ...

    def valid_request(self, request: bytes) -> bool:
        """The replica's check of a request inside a PRE-PREPARE."""
        ...

    def apply(self, block: CommittedBlock) -> bytes:
        """Execute the next block; its state root."""
        ...

    def committed_blocks(self, first: int, last: int) -> list[CommittedBlock]:
        """Executed blocks ``first..last`` (within the height), to serve state transfer."""
        ...


class SimLedger:
    """Executed blocks of one replica; survives crashes (the node syncs every block)."""

    def __init__(self, hash_fn: HashFn = sha256) -> None:
        self.hash_fn = hash_fn
        self.blocks: list[CommittedBlock] = []
        self.roots: list[bytes] = []
        self.applied: list[bytes] = []
        self.applied_set: set[bytes] = set()
        self.duplicates_skipped = 0
        self.invalid_skipped = 0
        self.root = b""

    @property
    def height(self) -> int:
        return len(self.blocks)

    def tip(self) -> ExecutedTip:
        if not self.blocks:
            return GENESIS_TIP
        last = self.blocks[-1]
        return ExecutedTip(last.seq, last.digest, last.timestamp_ms, self.root)

    def valid_request(self, request: bytes) -> bool:
        return valid_request(request)

    def committed_blocks(self, first: int, last: int) -> list[CommittedBlock]:
        return self.blocks[first - 1 : last]

    def apply(self, block: CommittedBlock) -> bytes:
        root = self.root
        for request in block.requests:
            rid = request_id(request, self.hash_fn)
            if rid in self.applied_set:
                self.duplicates_skipped += 1
                continue
            if not valid_request(request):
                self.invalid_skipped += 1
                continue
            self.applied_set.add(rid)
            self.applied.append(rid)
            root = self.hash_fn(root + rid)
        self.root = root
        self.blocks.append(block)
        self.roots.append(root)
        return root
