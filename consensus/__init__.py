"""PBFT consensus core: a pure state machine (messages and ticks in, effects out).

How a node drives it:

- Construct `Replica(config, replica_id, signer, verifier, persisted, last_executed)` with the
  genesis suite's chain hash in `config.hash_fn` (SHA-256 by default, SM3 on an sm2-sm3 chain),
  the `PersistedState` read back from the node's consensus key space (None on first start) and
  the `ExecutedTip` of its ledger (None for an empty ledger).
- Call `tick(now_ms)` once per logical tick, `step(decode_message(peer_bytes, hash_fn=...))` per
  peer message (a `MessageError` means drop and count), `submit(request_bytes, now_ms)` per
  admitted client request (request id = `config.hash_fn` of the bytes), `on_executed(seq,
  state_root)` after applying each executed block, and `on_state_transfer(blocks)` with blocks
  fetched for a `FetchBlocks`.
- Drain every returned list in order: `Persist` (apply all updates atomically and durably),
  `Send`/`Broadcast` (`encode_message`), `Execute` (strictly in sequence order; skip request ids
  the ledger has already applied; store the block with its commit certificate), `FetchBlocks`,
  `StableCheckpoint` (store the certificate beside its block), `ViewChanged`, `Evidence`,
  `RequestRejected`.
- Offline, `verify_commit_certificate(members, f, block.digest, cert, verifier)` re-checks a
  stored block; `Block.digest` is recomputable from (seq, timestamp_ms, requests).

Layout: one section of Castro and Liskov (OSDI'99; TOCS 2002) per module
-------------------------------------------------------------------------
The `Replica` object owns every field and emits every effect. It is assembled from one part
per sub-protocol (`replica_core` holds the fields and the plumbing; `replica_normal` 4.2,
`replica_requests` 4.1, `replica_checkpoints` 4.3, `replica_transfer` TOCS 6,
`replica_view_change` 4.4; `replica` the entry points), and each piece of consensus state has
one writer among them (`ExecutedChain` and `MessageLog` the normal case, `CheckpointState` the
checkpoints, `CatchUp` state transfer, `ViewState` the view change; checked by
tests/consensus/test_replica_ownership.py). The other modules decide, never emit, and never
call back into the replica: `log` (4.2: the message log, prepared and committed), `requests`
(4.1: the request queue), `checkpoints` (4.3: votes and garbage collection), `view_change` (4.4,
4.5.2: V, min-s, max-s, O, NEW-VIEW validation), `catch_up` (4.3 and TOCS 6: state transfer),
`retransmit` (TOCS 6: STATUS replies), `timers` (4.5.2: timeouts and backoff), `state` (TOCS 6:
the persisted records and their recovery), `body_fetch` (fetching and serving bodies named by
digest), `certificates` (certificate checks and message authentication), `config` (n, f,
quorums, bounds), `messages` and `codec` (wire format). Where a decision takes several steps it
comes back as one value (`log.Admission`, `view_change.NewViewAdmission` and `NewViewPlan`,
`checkpoints.Tally` and `Collection`, `state.Restored`) that the replica applies in order.

Invariants the simulator checks (tests/sim, after every event, honest replicas only)
-----------------------------------------------------------------------------------
- agreement: one block digest per height, and equal state roots per height;
- prefix order: height h+1 executes right after h and names h's digest as its parent;
- every executed block carries a valid commit certificate for its digest;
- agreed block time strictly increases; every applied request was submitted by a client;
- exactly-once: the ledger applies a request id once (repeats inside blocks are skipped);
- no honest replica signs two digests for one (view, seq), across restarts too;
- persist-before-send: a PRE-PREPARE, PREPARE or COMMIT leaves only after its record is durable;
- honest CHECKPOINTs for one sequence number agree;
- liveness: once the network heals and crashed replicas restart, every submitted request
  executes on every honest replica within the scenario's budget.

Deviations from the paper
-------------------------
- Signatures instead of MACs: the signed algorithm of OSDI'99 section 4 (BFT-PK in TOCS 2002
  section 3) without the MAC optimisation. Certificates are transferable proofs (commit
  certificates are stored with the block and re-checked offline), and the view change needs
  no VIEW-CHANGE-ACK round (which TOCS 2002 section 4 adds for MACs).
- Quorum q = floor((n + f) / 2) + 1 with f = (n - 1) // 3, which is 2f+1 at n = 3f+1 and keeps
  quorum intersection for any n (`config.quorum_size`); weak certificates are f+1.
- Requests are batched into blocks: the unit of agreement is a block of opaque requests
  (sequence number, timestamp, requests), its digest is what is prepared and committed, and
  the null request is the empty block. The primary proposes a timestamp; a block's agreed time
  is max(its timestamp, parent's agreed time + 1), so time is deterministic and monotonic, and
  backups reject proposals beyond `timestamp_skew_ms` of their clock.
- Requests are retransmitted by replicas, not clients: the replica a client reached forwards
  the request to the primary and, if it is not proposed in time, to every replica (in 4.1 the
  client retransmits and broadcasts); replies to clients are the node's business.
- Retransmission by STATUS: each replica broadcasts STATUS(v, active, last executed, h) and peers
  answer with what the sender lacks (`retransmit`), including its own CHECKPOINTs not yet stable.
- f+1 catch-up: f+1 matching CHECKPOINTs above our progress start state transfer if normal
  progress does not close the gap; state transfer replays certified blocks rather than
  fetching state partitions.
- VIEW-CHANGE, NEW-VIEW and their O entries carry digests only; a replica fetches missing bodies
  from the replicas that signed them into prepared certificates before installing the view
  (`body_fetch`), and the new primary does so before sending NEW-VIEW.
- Equivocation by a primary (two signed pre-prepares for one (v, n)) is emitted as evidence and
  starts a view change at once, without waiting for the timer.
- VIEW-CHANGE carries C and P as in OSDI'99 4.4; the Q set of TOCS 2002's MAC-based view change
  is not needed with signatures.
- Crash recovery, not proactive recovery (TOCS 2002 section 5): the records behind every vote
  are persisted before it is sent (`state`), and a restarted replica re-signs its CHECKPOINT
  for the executor's tip.

Glossary: the paper's symbols and the code's names
--------------------------------------------------
- v (view): `Replica.view` and the messages' `view`; the primary p = v mod |R| is
  `ReplicaConfig.primary(v)`
- n (sequence number): `seq` everywhere; the paper's n replicas are `ReplicaConfig.n`
- f, 2f+1, f+1: `ReplicaConfig.f`, `.quorum`, `.weak_quorum`
- m, d = D(m) (request, digest): a `Block` and `Block.digest`; a client request is opaque
  bytes with id H(bytes) (`request_id`); H is the chain hash `ReplicaConfig.hash_fn`
- h (low watermark, last stable checkpoint): `Replica.watermark_low`, `stable_checkpoint.seq`
- H = h + L (high watermark), L (log size): `watermark_high`, `ReplicaConfig.watermark_window`
- K (checkpoint period): `ReplicaConfig.checkpoint_interval`
- C (checkpoint certificate): `CheckpointCertificate`; stable checkpoint: `Replica._stable`
- P (prepared certificates of a VIEW-CHANGE): `ViewChange.prepared` of `PreparedCertificate`;
  the replica's own P is `Replica._prepared`
- Q (pre-prepared set of TOCS 2002): none (see deviations)
- V (VIEW-CHANGE set of a NEW-VIEW): `NewView.view_changes`; chosen by
  `view_change.choose_view_changes`
- O (pre-prepares of a NEW-VIEW): `NewView.pre_prepares`, computed by
  `view_change.compute_new_view_order`; min-s: its checkpoint, max-s: its last sequence number
- prepared(m, v, n, i), committed-local(m, v, n, i): `Replica.is_prepared`,
  `Replica.is_committed_local`, formed by `log.prepared_certificate`, `log.commit_certificate`
- T (view-change timeout) and its doubling: `timers.Backoff`, from
  `ReplicaConfig.view_change_timeout_ticks`
- the message log: `Replica._slots` (one `log.Slot` per n)
- t (client timestamp): none; the block timestamp is `Block.timestamp_ms` (agreed time above)
"""

from .catch_up import transfer_run
from .certificates import (
    check_commit_proof,
    verify_checkpoint_certificate,
    verify_checkpoint_proof,
    verify_commit_certificate,
    verify_prepared_certificate,
)
from .codec import (
    MessageError,
    decode_block,
    decode_checkpoint_certificate,
    decode_commit_certificate,
    decode_message,
    encode_block,
    encode_checkpoint_certificate,
    encode_commit_certificate,
    encode_message,
    signing_bytes,
)
from .config import ConfigError, ReplicaConfig, fault_tolerance, quorum_size
from .crypto import Signer, Verifier
from .effects import (
    Broadcast,
    Effect,
    EffectDrain,
    Evidence,
    Execute,
    FetchBlocks,
    Persist,
    RequestRejected,
    Send,
    StableCheckpoint,
    ViewChanged,
    report_late_root,
)
from .messages import (
    GENESIS_CHECKPOINT,
    GENESIS_TIP,
    ZERO_DIGEST,
    Block,
    BlockBody,
    BlockRequest,
    Checkpoint,
    CheckpointCertificate,
    Commit,
    CommitCertificate,
    CommittedBlock,
    CommittedProof,
    ExecutedTip,
    HashFn,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    RequestForward,
    SignedMessage,
    Status,
    ViewChange,
    agreed_timestamp,
    block_digest,
    merkle_proof,
    merkle_root,
    null_block,
    request_id,
    sha256,
    verify_merkle_proof,
)
from .replica import Replica, ReplicaStatus
from .state import PersistedState, PersistedStateError
from .view_change import compute_new_view_order

__all__ = [
    "GENESIS_CHECKPOINT",
    "GENESIS_TIP",
    "ZERO_DIGEST",
    "Block",
    "BlockBody",
    "BlockRequest",
    "Broadcast",
    "Checkpoint",
    "CheckpointCertificate",
    "Commit",
    "CommitCertificate",
    "CommittedBlock",
    "CommittedProof",
    "ConfigError",
    "Effect",
    "EffectDrain",
    "Evidence",
    "Execute",
    "ExecutedTip",
    "FetchBlocks",
    "HashFn",
    "Message",
    "MessageError",
    "NewView",
    "Persist",
    "PersistedState",
    "PersistedStateError",
    "PrePrepare",
    "Prepare",
    "PreparedCertificate",
    "Replica",
    "ReplicaConfig",
    "ReplicaStatus",
    "RequestForward",
    "RequestRejected",
    "Send",
    "SignedMessage",
    "Signer",
    "StableCheckpoint",
    "Status",
    "Verifier",
    "ViewChange",
    "ViewChanged",
    "agreed_timestamp",
    "block_digest",
    "check_commit_proof",
    "compute_new_view_order",
    "decode_block",
    "decode_checkpoint_certificate",
    "decode_commit_certificate",
    "decode_message",
    "encode_block",
    "encode_checkpoint_certificate",
    "encode_commit_certificate",
    "encode_message",
    "fault_tolerance",
    "merkle_proof",
    "merkle_root",
    "null_block",
    "quorum_size",
    "report_late_root",
    "request_id",
    "sha256",
    "signing_bytes",
    "transfer_run",
    "verify_checkpoint_certificate",
    "verify_checkpoint_proof",
    "verify_commit_certificate",
    "verify_merkle_proof",
    "verify_prepared_certificate",
]
