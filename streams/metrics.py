"""Per-worker counters: what went in, what came out. Served by GET /stats."""

from __future__ import annotations

import os
import socket
from collections import Counter

WORKER = f"{socket.gethostname()}:{os.getpid()}"
counters: Counter[str] = Counter()
