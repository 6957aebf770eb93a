"""The `order_progress` table: per-order state (header, received products, emitted).

Keyed by order id (str, JSON-encoded in the changelog exactly as the CDC record keys are,
so its partitions and Faust's web routing agree with the CDC topics). Values are
`tables.progress_codec` bytes. RocksDB-backed, with a changelog topic in Kafka.
"""

from __future__ import annotations

import faust
from faust.types import FutureMessage

from config import settings
from streams.app import app


class ChangelogSendsTable(faust.Table):
    """A table that keeps the changelog sends of its writes until they are taken.

    Faust flushes its producer before committing source offsets, but that flush gives up
    once the send buffer makes no progress for 0.1 s, so an offset can be committed while
    the changelog write of the change it carried is still buffered. The partition's next
    owner then recovers without the change and resumes after it. The completion agent takes
    these sends and lets its events be committed only once they are acknowledged.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._unacknowledged: list[FutureMessage] = []

    def send_changelog(self, *args, **kwargs) -> FutureMessage:
        sent = super().send_changelog(*args, **kwargs)
        self._unacknowledged.append(sent)
        return sent

    def take_changelog_sends(self) -> list[FutureMessage]:
        """The changelog sends since the last call (each resolves when the broker has it)."""
        sends, self._unacknowledged = self._unacknowledged, []
        return sends


order_progress: ChangelogSendsTable = app.tables.add(ChangelogSendsTable(
    app,
    name="order_progress",
    key_type=str,
    value_type=bytes,
    partitions=settings.topic_partitions,
    beacon=app.tables.beacon,
    help="Per-order completion state: header, received products, emitted.",
    options={"block_cache_size": 32 << 20, "write_buffer_size": 8 << 20},
))
