"""The `order_progress` table: per-order state (header, received products, emitted).

Keyed by order id (str, JSON-encoded in the changelog exactly as the CDC record keys are,
so its partitions and Faust's web routing agree with the CDC topics). Values are
`tables.progress_codec` bytes. RocksDB-backed, with a changelog topic in Kafka.
"""

from __future__ import annotations

import asyncio

import faust
from faust.types import FutureMessage

from config import settings
from streams.app import app


class ChangelogSendsTable(faust.Table):
    """A table whose changelog writes can be waited for, and whose persisted offsets only
    count writes made while this worker owns the partition.

    Faust flushes its producer before committing source offsets, but that flush gives up
    once the send buffer makes no progress for 0.1 s, so an offset can be committed while
    the changelog write of the change it carried is still buffered. The partition's next
    owner then recovers without the change and resumes after it. The completion agent takes
    these sends and lets its events be committed only once they are acknowledged, and waits
    for all of them before handing partitions over in a rebalance.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._untaken: list[FutureMessage] = []
        self._in_flight: set[FutureMessage] = set()

    def send_changelog(self, *args, **kwargs) -> FutureMessage:
        sent = super().send_changelog(*args, **kwargs)
        self._untaken.append(sent)
        self._in_flight.add(sent)
        sent.add_done_callback(self._in_flight.discard)
        return sent

    def take_changelog_sends(self) -> list[FutureMessage]:
        """The changelog sends since the last call (each resolves when the broker has it)."""
        sends, self._untaken = self._untaken, []
        return sends

    async def changelog_sent(self, timeout_s: float) -> int:
        """Wait until every changelog write made so far is acknowledged; how many are not."""
        pending = set(self._in_flight)
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
        return sum(not sent.done() for sent in pending)

    def _on_changelog_sent(self, fut: FutureMessage) -> None:
        # The persisted offset says "local data holds the changelog up to here": recovery
        # starts after it when the partition comes back. A write acknowledged after the
        # partition moved on may land after the new owner's writes; counting it would skip them.
        if fut.result().partition in {tp.partition for tp in self.app.assignor.assigned_actives()}:
            super()._on_changelog_sent(fut)


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
