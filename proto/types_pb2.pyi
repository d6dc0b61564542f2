from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BlockHeader(_message.Message):
    __slots__ = ("height", "parent_hash", "timestamp_ms", "tx_count", "txs_root", "view", "encoded", "proposal_ms")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PARENT_HASH_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    TX_COUNT_FIELD_NUMBER: _ClassVar[int]
    TXS_ROOT_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    PROPOSAL_MS_FIELD_NUMBER: _ClassVar[int]
    height: int
    parent_hash: bytes
    timestamp_ms: int
    tx_count: int
    txs_root: bytes
    view: int
    encoded: bytes
    proposal_ms: int
    def __init__(self, height: _Optional[int] = ..., parent_hash: _Optional[bytes] = ..., timestamp_ms: _Optional[int] = ..., tx_count: _Optional[int] = ..., txs_root: _Optional[bytes] = ..., view: _Optional[int] = ..., encoded: _Optional[bytes] = ..., proposal_ms: _Optional[int] = ...) -> None: ...

class TxResult(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("height", "timestamp_ms", "tx_index", "tx_id", "kind", "attrs")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    TX_INDEX_FIELD_NUMBER: _ClassVar[int]
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ATTRS_FIELD_NUMBER: _ClassVar[int]
    height: int
    timestamp_ms: int
    tx_index: int
    tx_id: bytes
    kind: str
    attrs: bytes
    def __init__(self, height: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., tx_index: _Optional[int] = ..., tx_id: _Optional[bytes] = ..., kind: _Optional[str] = ..., attrs: _Optional[bytes] = ...) -> None: ...

class Block(_message.Message):
    __slots__ = ("header", "block_hash", "txs", "results", "state_root", "certificate", "events", "request_ids", "withheld")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    TXS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_FIELD_NUMBER: _ClassVar[int]
    header: BlockHeader
    block_hash: bytes
    txs: _containers.RepeatedScalarFieldContainer[bytes]
    results: _containers.RepeatedCompositeFieldContainer[TxResult]
    state_root: bytes
    certificate: bytes
    events: _containers.RepeatedCompositeFieldContainer[Event]
    request_ids: _containers.RepeatedScalarFieldContainer[bytes]
    withheld: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, header: _Optional[_Union[BlockHeader, _Mapping]] = ..., block_hash: _Optional[bytes] = ..., txs: _Optional[_Iterable[bytes]] = ..., results: _Optional[_Iterable[_Union[TxResult, _Mapping]]] = ..., state_root: _Optional[bytes] = ..., certificate: _Optional[bytes] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., request_ids: _Optional[_Iterable[bytes]] = ..., withheld: _Optional[_Iterable[int]] = ...) -> None: ...

class StateLink(_message.Message):
    __slots__ = ("height", "block_hash", "results_digest", "write_set_digest")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    RESULTS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    WRITE_SET_DIGEST_FIELD_NUMBER: _ClassVar[int]
    height: int
    block_hash: bytes
    results_digest: bytes
    write_set_digest: bytes
    def __init__(self, height: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., results_digest: _Optional[bytes] = ..., write_set_digest: _Optional[bytes] = ...) -> None: ...

class ResultProof(_message.Message):
    __slots__ = ("checkpoint_certificate", "previous_state_root", "links", "outcome", "outcome_proof")
    CHECKPOINT_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_PROOF_FIELD_NUMBER: _ClassVar[int]
    checkpoint_certificate: bytes
    previous_state_root: bytes
    links: _containers.RepeatedCompositeFieldContainer[StateLink]
    outcome: bytes
    outcome_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, checkpoint_certificate: _Optional[bytes] = ..., previous_state_root: _Optional[bytes] = ..., links: _Optional[_Iterable[_Union[StateLink, _Mapping]]] = ..., outcome: _Optional[bytes] = ..., outcome_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("tx_id", "height", "index", "result", "header", "block_hash", "envelope", "proof", "certificate", "events", "result_proof", "withheld")
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    RESULT_PROOF_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_FIELD_NUMBER: _ClassVar[int]
    tx_id: bytes
    height: int
    index: int
    result: TxResult
    header: BlockHeader
    block_hash: bytes
    envelope: bytes
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    certificate: bytes
    events: _containers.RepeatedCompositeFieldContainer[Event]
    result_proof: ResultProof
    withheld: bool
    def __init__(self, tx_id: _Optional[bytes] = ..., height: _Optional[int] = ..., index: _Optional[int] = ..., result: _Optional[_Union[TxResult, _Mapping]] = ..., header: _Optional[_Union[BlockHeader, _Mapping]] = ..., block_hash: _Optional[bytes] = ..., envelope: _Optional[bytes] = ..., proof: _Optional[_Iterable[bytes]] = ..., certificate: _Optional[bytes] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., result_proof: _Optional[_Union[ResultProof, _Mapping]] = ..., withheld: _Optional[bool] = ...) -> None: ...
