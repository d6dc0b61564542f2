"""Stopping a child started in a session of its own (``start_new_session=True``): the test
runner's pytest processes and the network-namespace labs' nodes."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any


def stop_process_group(process: subprocess.Popen[Any], grace_s: float) -> None:
    """SIGTERM to the child's whole process group, SIGKILL if it outlives ``grace_s``."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
