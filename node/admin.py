"""The node's operator socket: a Unix domain socket in the data directory for local admin calls.

Theory of operation
-------------------
* **Who may call.**  The socket is ``<data_dir>/admin.sock``, mode 0600, and every connection's
  peer credentials (``SO_PEERCRED``) must be this process's user or root; it is never on the
  network, so it needs no TLS or token: the operator is whoever may act as the node's user on
  its machine, the same people who can read its keys and LevelDB files. The socket is bound
  after the ledger opened, whose LevelDB lock proves no other process serves this directory, so
  a socket file left by a killed node is removed safely.
* **Protocol.**  One JSON object per line, one request per connection, one JSON reply line:
  ``{"command": "backup", "path": ABSOLUTE}`` answers ``{"ok": true, ...}`` or
  ``{"ok": false, "code": CODE, "message": ...}``; ``{"command": "ping"}`` answers the node id
  and height (how ``node restore`` tells that the node is still running). A request line is at most
  ``REQUEST_BYTES_MAX`` bytes.
* **Backups.**  One at a time (another gets ``BUSY``), written on a worker thread from one
  LevelDB snapshot (``backup.py``), so the node keeps ordering, executing and serving. ``stop``
  cancels a running backup and waits for it before the ledger closes.
* **Long paths.**  A Unix socket path is limited to about 107 bytes; a longer data directory is
  reached through ``/proc/self/fd/<directory fd>/admin.sock`` (Linux), by the node and by clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .backup import BackupError, write_backup
from .ledger import Ledger

log = logging.getLogger("ibledger.admin")

SOCKET_NAME = "admin.sock"
REQUEST_BYTES_MAX = 4096
REPLY_BYTES_MAX = 64 * 1024
SOCKET_PATH_BYTES_MAX = 100  # sun_path holds 108 bytes with its terminator; keep a margin
_PEERCRED = struct.Struct("3i")  # pid, uid, gid


@contextlib.contextmanager
def _reachable(path: Path) -> Iterator[str]:
    """A path naming the socket ``path`` that fits in ``sun_path``."""
    if len(os.fsencode(str(path))) <= SOCKET_PATH_BYTES_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


class AdminServer:
    def __init__(self, data_dir: Path, ledger: Ledger, node_id: str) -> None:
        self.path = data_dir / SOCKET_NAME
        self._ledger = ledger
        self._node_id = node_id
        self._server: asyncio.base_events.Server | None = None
        self._busy = False
        self._cancel = threading.Event()
        self._calls: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(self.path.lstat().st_mode):
                self.path.unlink()  # left by a node that was killed (see the module notes)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # Made 0600 before listen(): until then a connect is refused, so none slips in.
            with _reachable(self.path) as where:
                listener.bind(where)
            os.chmod(self.path, 0o600)
            listener.listen(8)
        except BaseException:
            listener.close()
            raise
        self._server = await asyncio.start_unix_server(
            self._serve, sock=listener, limit=REQUEST_BYTES_MAX
        )

    async def stop(self) -> None:
        self._cancel.set()
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._calls):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._calls.add(task)
        try:
            reply = await self._answer(reader, writer)
            writer.write(json.dumps(reply, sort_keys=True).encode() + b"\n")
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            if task is not None:
                self._calls.discard(task)

    async def _answer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> dict[str, Any]:
        sock = writer.get_extra_info("socket")
        _, uid, _ = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
        if uid not in (os.geteuid(), 0):
            log.warning("admin call refused", extra={"uid": uid})
            return _refusal("FORBIDDEN", "only the node's user or root may call")
        try:
            line = await reader.readline()
            request = json.loads(line)
        except (ValueError, asyncio.LimitOverrunError):
            return _refusal("MALFORMED_REQUEST", "one JSON object per line, at most 4 KiB")
        if not isinstance(request, dict):
            return _refusal("MALFORMED_REQUEST", "the request must be a JSON object")
        if request.get("command") == "backup":
            return await self._backup(request.get("path"))
        if request.get("command") == "ping":
            return {"ok": True, "node_id": self._node_id, "height": self._ledger.height}
        return _refusal("UNKNOWN_COMMAND", f"no command {request.get('command')!r}")

    async def _backup(self, path: object) -> dict[str, Any]:
        if not isinstance(path, str) or not os.path.isabs(path):
            return _refusal("MALFORMED_REQUEST", "path must be an absolute path")
        if self._busy:
            return _refusal("BUSY", "a backup is already being written")
        self._busy = True
        try:
            log.info("backup started", extra={"path": path})
            result = await asyncio.to_thread(
                write_backup,
                self._ledger,
                Path(path),
                node_id=self._node_id,
                cancelled=self._cancel,
            )
        except BackupError as exc:
            log.warning("backup failed", extra={"code": exc.code, "reason": exc.message})
            return _refusal(exc.code, exc.message)
        except Exception as exc:  # a bug: the caller still gets an answer, the log the trace
            log.exception("backup failed")
            return _refusal("WRITE_FAILED", f"the backup failed: {exc}")
        finally:
            self._busy = False
        log.info(
            "backup written",
            extra={
                "path": path,
                "height": result.header.height,
                "records": result.records,
                "bytes": result.bytes_written,
            },
        )
        return {
            "ok": True,
            **result.header.to_dict(),
            "records": result.records,
            "bytes": result.bytes_written,
            "path": str(result.path),
        }


def _refusal(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "code": code, "message": message}


class AdminUnavailable(Exception):
    """No node answers on the socket (it is not running, or this user may not reach it)."""


def call(data_dir: Path, request: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
    """Send one request to the node serving ``data_dir`` and return its reply."""
    path = data_dir / SOCKET_NAME
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            with _reachable(path) as where:
                sock.connect(where)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise AdminUnavailable(f"no node is running on {data_dir} ({exc.strerror})") from None
        except PermissionError:
            raise AdminUnavailable(f"{path}: permission denied (run as the node's user)") from None
        sock.sendall(json.dumps(request).encode() + b"\n")
        chunks: list[bytes] = []
        size = 0
        while not chunks or not chunks[-1].endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > REPLY_BYTES_MAX:
                raise AdminUnavailable("the node's reply is too long")
    try:
        reply = json.loads(b"".join(chunks))
    except ValueError:
        raise AdminUnavailable("the node closed the connection without a reply") from None
    if not isinstance(reply, dict):
        raise AdminUnavailable("the node's reply is not a JSON object")
    return reply
