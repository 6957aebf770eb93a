"""The output topic reconciled with the source database itself (`python -m source audit`)."""

from __future__ import annotations

import time

from cdc.topics import read_to_end
from config import Settings
from source import database
from source.order_final_audit import SOURCE_ROWS, Audit, audit, manifest_from_rows


def reconcile(settings: Settings, topic: str, *, wait_s: float = 10.0) -> Audit:
    """Audit `topic` against the orders complete in the database now. Orders complete but not
    in the topic are read for again, once a second, for up to `wait_s`: they may be on their way.
    Raises cdc.topics.TopicMissing when the topic does not exist."""
    connection = database.connect(settings, role="reader")
    try:
        cursor = connection.cursor()
        cursor.execute(SOURCE_ROWS)
        manifest = manifest_from_rows(cursor)
    finally:
        connection.close()
    deadline = time.monotonic() + wait_s
    while True:
        result = audit(manifest, (m.value for m in read_to_end(settings, topic) if m.value is not None))
        if not result.missing or time.monotonic() >= deadline:
            return result
        time.sleep(1)
