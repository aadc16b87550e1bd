"""The name a process goes by where others can read it: the holder of a claim in the store,
a webhook sender's lease."""

from __future__ import annotations

import os
import socket
import uuid


def process_name() -> str:
    """Who holds a claim: readable in the store, unique per process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
