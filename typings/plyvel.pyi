# Types for the part of plyvel (LevelDB bindings, no published stubs) that node/ledger.py uses.
from collections.abc import Iterator
from types import TracebackType

class Error(Exception): ...
class IOError(Error): ...
class CorruptionError(Error): ...

class WriteBatch:
    def put(self, key: bytes, value: bytes) -> None: ...
    def delete(self, key: bytes) -> None: ...
    def write(self) -> None: ...
    def clear(self) -> None: ...
    def __enter__(self) -> WriteBatch: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

class _Reader:
    def get(
        self,
        key: bytes,
        default: bytes | None = None,
        verify_checksums: bool = False,
        fill_cache: bool = True,
    ) -> bytes | None: ...
    def iterator(
        self,
        reverse: bool = False,
        start: bytes | None = None,
        stop: bytes | None = None,
        include_start: bool = True,
        include_stop: bool = False,
        prefix: bytes | None = None,
        include_key: bool = True,
        include_value: bool = True,
        verify_checksums: bool = False,
        fill_cache: bool = True,
    ) -> Iterator[tuple[bytes, bytes]]: ...

class Snapshot(_Reader):
    def close(self) -> None: ...
    def release(self) -> None: ...

class DB(_Reader):
    closed: bool
    name: str
    def __init__(
        self,
        name: str,
        create_if_missing: bool = False,
        error_if_exists: bool = False,
        paranoid_checks: bool | None = None,
        write_buffer_size: int | None = None,
        max_open_files: int | None = None,
        lru_cache_size: int | None = None,
        block_size: int | None = None,
        block_restart_interval: int | None = None,
        max_file_size: int | None = None,
        bloom_filter_bits: int = 0,
        compression: str | None = "snappy",
    ) -> None: ...
    def put(self, key: bytes, value: bytes, sync: bool = False) -> None: ...
    def delete(self, key: bytes, sync: bool = False) -> None: ...
    def write_batch(self, transaction: bool = False, sync: bool = False) -> WriteBatch: ...
    def snapshot(self) -> Snapshot: ...
    def close(self) -> None: ...
    def compact_range(self, start: bytes | None = None, stop: bytes | None = None) -> None: ...
