"""The LevelDB key layout: every key the node writes is built here and nowhere else.

| prefix  | key                   | value (canonical msgpack unless noted)               |
|---------|-----------------------|------------------------------------------------------|
| ``b/``  | height (8 bytes BE)   | block: ``{"header": {...}, "txs": [envelope...]}``   |
| ``h/``  | block hash            | height (8 bytes big-endian)                          |
| ``c/``  | height                | commit certificate (opaque bytes from consensus)     |
| ``r/``  | height                | results: per-tx code/message, events, state root     |
| ``w/``  | height                | the block's write set ``[[key, value or nil]...]``   |
| ``t/``  | tx id                 | ``[height, index, code]``                            |
| ``s/``  | contract state key    | contract value (opaque to the ledger)                |
| ``k/``  | height                | stable checkpoint certificate (consensus encoding)   |
| ``l/``  | height                | state link ``[block hash, results and write-set digests]`` |
| ``cons/`` | consensus names     | consensus persisted state (opaque)                   |
| ``a/``  | key, inverted height  | as-of index: the key's value after that block (``archive.py``) |
| ``m/``  | metadata name         | see the ``META_*`` names below                       |

Heights are fixed-width big-endian so that byte order is numeric order and range scans work.
"""

from __future__ import annotations

BLOCK = b"b/"
BLOCK_HASH = b"h/"
CERTIFICATE = b"c/"
RESULTS = b"r/"
WRITE_SET = b"w/"
TX_INDEX = b"t/"
STATE = b"s/"
CHECKPOINT = b"k/"
STATE_LINK = b"l/"
CONSENSUS = b"cons/"
META = b"m/"
ARCHIVE = b"a/"  # node-side, outside the state root (archive.py)

META_FORMAT = META + b"format"
META_CHAIN_ID = META + b"chain_id"
META_GENESIS_HASH = META + b"genesis_hash"
META_HEIGHT = META + b"height"
META_TIP_HASH = META + b"tip_hash"
META_STATE_ROOT = META + b"state_root"
META_EXPIRY_HORIZON = META + b"tx_expiry_horizon_ms"  # from genesis, fixed for the chain
# ``[height, block hash]`` of the highest block known verified: written in each block's batch
# (a block is checked before it is written) and after a start-up verification.
META_VERIFIED = META + b"verified"
# Every block from 0 up to this height has its as-of index entries (archive.py).
META_ARCHIVE_HEIGHT = META + b"archive_height"
# The validator set (epoch) the consensus records under cons/ belong to; absent means 0.
META_CONSENSUS_EPOCH = META + b"consensus_epoch"
# ``[key id, height]``: this ledger's copy of the validator's vote reservation (vote_record.py).
# Never in a backup: a ledger that did not see a vote must not vouch for it.
META_VOTE_RESERVED = META + b"vote_reserved"

FORMAT_VERSION = b"ibledger-ledger-2"
HEIGHT_SIZE = 8


def encode_height(height: int) -> bytes:
    return height.to_bytes(HEIGHT_SIZE, "big")


def decode_height(data: bytes) -> int:
    if len(data) != HEIGHT_SIZE:
        raise ValueError(f"a stored height is {HEIGHT_SIZE} bytes, got {len(data)}")
    return int.from_bytes(data, "big")


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key that starts with ``prefix`` (a range scan's stop)."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def block_key(height: int) -> bytes:
    return BLOCK + encode_height(height)


def block_hash_key(block_hash: bytes) -> bytes:
    return BLOCK_HASH + block_hash


def certificate_key(height: int) -> bytes:
    return CERTIFICATE + encode_height(height)


def results_key(height: int) -> bytes:
    return RESULTS + encode_height(height)


def write_set_key(height: int) -> bytes:
    return WRITE_SET + encode_height(height)


def tx_index_key(tx_id: bytes) -> bytes:
    return TX_INDEX + tx_id


def state_key(contract_key: bytes) -> bytes:
    return STATE + contract_key


def checkpoint_key(height: int) -> bytes:
    return CHECKPOINT + encode_height(height)


def state_link_key(height: int) -> bytes:
    return STATE_LINK + encode_height(height)


def consensus_key(name: bytes) -> bytes:
    return CONSENSUS + name
