"""Structured logs: one JSON object per line, with the node id and any ``extra`` fields.

Every line a node writes through ``logging`` is a JSON object (``ts``, ``level``, ``node``,
``logger``, ``msg``, then the event's own fields); tracebacks go into an ``exc`` field rather than
onto lines of their own, so a log file can be read line by line with ``json.loads``.  Events
worth searching for carry an ``event`` field: ``starting``, ``start-failed``, ``peer-up``,
``peer-down``, ``view-change`` (with its ``cause``), ``catch-up-start``, ``catch-up-progress``,
``catch-up-end``, ``block`` (debug level, one per committed block) and ``stopped``.

With ``[log] file`` set, the node writes the file itself and rotates it by size
(``max_bytes``, keeping ``backups`` older files as ``node.log.1`` ...), so a long-running
node cannot fill its disk with logs; otherwise it writes to standard error.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import time
from pathlib import Path
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({})))
_STANDARD.add("taskName")  # Python 3.12 adds it to every record


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return repr(value)


class JsonFormatter(logging.Formatter):
    def __init__(self, node_id: str) -> None:
        super().__init__()
        self._node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "node": self._node_id,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = _plain(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(
    node_id: str,
    level: str,
    *,
    file: Path | None = None,
    max_bytes: int = 16 * 1024 * 1024,
    backups: int = 5,
) -> None:
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(node_id))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("grpc").setLevel(logging.WARNING)
    logging.captureWarnings(True)
