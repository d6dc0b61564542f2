from ibledger.proto import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUBMIT_STATUS_UNSPECIFIED: _ClassVar[SubmitStatus]
    ADMITTED: _ClassVar[SubmitStatus]
    PENDING: _ClassVar[SubmitStatus]
    COMMITTED: _ClassVar[SubmitStatus]
    REJECTED: _ClassVar[SubmitStatus]
SUBMIT_STATUS_UNSPECIFIED: SubmitStatus
ADMITTED: SubmitStatus
PENDING: SubmitStatus
COMMITTED: SubmitStatus
REJECTED: SubmitStatus

class SubmitRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: bytes
    def __init__(self, envelope: _Optional[bytes] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("tx_id", "status", "code", "message", "receipt")
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    tx_id: bytes
    status: SubmitStatus
    code: str
    message: str
    receipt: _types_pb2.Receipt
    def __init__(self, tx_id: _Optional[bytes] = ..., status: _Optional[_Union[SubmitStatus, str]] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., receipt: _Optional[_Union[_types_pb2.Receipt, _Mapping]] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("envelopes",)
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    envelopes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, envelopes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class SubmitBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SubmitResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[SubmitResponse, _Mapping]]] = ...) -> None: ...

class GetReceiptRequest(_message.Message):
    __slots__ = ("tx_id", "viewer")
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    VIEWER_FIELD_NUMBER: _ClassVar[int]
    tx_id: bytes
    viewer: bytes
    def __init__(self, tx_id: _Optional[bytes] = ..., viewer: _Optional[bytes] = ...) -> None: ...

class WaitForCommitRequest(_message.Message):
    __slots__ = ("tx_id", "timeout_ms", "viewer")
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    VIEWER_FIELD_NUMBER: _ClassVar[int]
    tx_id: bytes
    timeout_ms: int
    viewer: bytes
    def __init__(self, tx_id: _Optional[bytes] = ..., timeout_ms: _Optional[int] = ..., viewer: _Optional[bytes] = ...) -> None: ...

class GetBlockRequest(_message.Message):
    __slots__ = ("height", "viewer")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    VIEWER_FIELD_NUMBER: _ClassVar[int]
    height: int
    viewer: bytes
    def __init__(self, height: _Optional[int] = ..., viewer: _Optional[bytes] = ...) -> None: ...

class StreamBlocksRequest(_message.Message):
    __slots__ = ("from_height", "viewer")
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    VIEWER_FIELD_NUMBER: _ClassVar[int]
    from_height: int
    viewer: bytes
    def __init__(self, from_height: _Optional[int] = ..., viewer: _Optional[bytes] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("from_height", "kinds", "viewer")
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    VIEWER_FIELD_NUMBER: _ClassVar[int]
    from_height: int
    kinds: _containers.RepeatedScalarFieldContainer[str]
    viewer: bytes
    def __init__(self, from_height: _Optional[int] = ..., kinds: _Optional[_Iterable[str]] = ..., viewer: _Optional[bytes] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: bytes
    def __init__(self, envelope: _Optional[bytes] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("result", "height")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    result: bytes
    height: int
    def __init__(self, result: _Optional[bytes] = ..., height: _Optional[int] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PeerStatus(_message.Message):
    __slots__ = ("id", "address", "connected", "height")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    connected: bool
    height: int
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., connected: _Optional[bool] = ..., height: _Optional[int] = ...) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("node_id", "chain_id", "height", "view", "primary", "tip_hash", "state_root", "mempool_size", "peers", "version", "catching_up")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    TIP_HASH_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    MEMPOOL_SIZE_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CATCHING_UP_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    chain_id: str
    height: int
    view: int
    primary: str
    tip_hash: bytes
    state_root: bytes
    mempool_size: int
    peers: _containers.RepeatedCompositeFieldContainer[PeerStatus]
    version: str
    catching_up: bool
    def __init__(self, node_id: _Optional[str] = ..., chain_id: _Optional[str] = ..., height: _Optional[int] = ..., view: _Optional[int] = ..., primary: _Optional[str] = ..., tip_hash: _Optional[bytes] = ..., state_root: _Optional[bytes] = ..., mempool_size: _Optional[int] = ..., peers: _Optional[_Iterable[_Union[PeerStatus, _Mapping]]] = ..., version: _Optional[str] = ..., catching_up: _Optional[bool] = ...) -> None: ...
