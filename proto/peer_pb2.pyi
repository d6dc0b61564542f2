from ibledger.proto import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class PeerFrame(_message.Message):
    __slots__ = ("sender", "messages", "txs", "height")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    TXS_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    sender: str
    messages: _containers.RepeatedScalarFieldContainer[bytes]
    txs: _containers.RepeatedScalarFieldContainer[bytes]
    height: int
    def __init__(self, sender: _Optional[str] = ..., messages: _Optional[_Iterable[bytes]] = ..., txs: _Optional[_Iterable[bytes]] = ..., height: _Optional[int] = ...) -> None: ...

class FetchBlocksRequest(_message.Message):
    __slots__ = ("from_height", "to_height")
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TO_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    from_height: int
    to_height: int
    def __init__(self, from_height: _Optional[int] = ..., to_height: _Optional[int] = ...) -> None: ...
