"""PBFT consensus core: a pure state machine (messages and ticks in, effects out).

How a node drives it:

- Construct `Replica(config, replica_id, signer, verifier, persisted, last_executed)` with the
  `PersistedState` read back from the node's consensus key space (None on first start) and the
  `ExecutedTip` of its ledger (None for an empty ledger).
- Call `tick(now_ms)` once per logical tick, `step(decode_message(peer_bytes))` per peer message
  (a `MessageError` means drop and count), `submit(request_bytes, now_ms)` per admitted client
  request (request id = sha256 of the bytes), `on_executed(seq, state_root)` after applying each
  executed block, and `on_state_transfer(blocks)` with blocks fetched for a `FetchBlocks`.
- Drain every returned list in order: `Persist` (apply all updates atomically and durably),
  `Send`/`Broadcast` (`encode_message`), `Execute` (strictly in sequence order; skip request ids
  the ledger has already applied; store the block with its commit certificate), `FetchBlocks`,
  `ViewChanged`, `Evidence`, `RequestRejected`.
- Offline, `verify_commit_certificate(members, f, block.digest, cert, verifier)` re-checks a
  stored block; `Block.digest` is recomputable from (seq, timestamp_ms, requests).
"""

from .certificates import (
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
    Evidence,
    Execute,
    FetchBlocks,
    Persist,
    RequestRejected,
    Send,
    ViewChanged,
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
    verify_merkle_proof,
)
from .replica import Replica, ReplicaStatus, compute_new_view_order
from .state import PersistedState, PersistedStateError

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
    "Evidence",
    "Execute",
    "ExecutedTip",
    "FetchBlocks",
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
    "Status",
    "Verifier",
    "ViewChange",
    "ViewChanged",
    "agreed_timestamp",
    "block_digest",
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
    "request_id",
    "signing_bytes",
    "verify_checkpoint_certificate",
    "verify_checkpoint_proof",
    "verify_commit_certificate",
    "verify_merkle_proof",
    "verify_prepared_certificate",
]
