"""The `order_progress` table: per-order state (header, received products, emitted).

Keyed by order id (str, JSON-encoded in the changelog exactly as the CDC record keys are,
so its partitions and Faust's web routing agree with the CDC topics). Values are
`tables.progress_codec` bytes. RocksDB-backed, with a changelog topic in Kafka, read and
written through the write-back cache `order_states`.
"""

from __future__ import annotations

import asyncio

import faust
from faust.types import FutureMessage

from agents.completion import OrderProgress
from config import settings
from streams.app import app
from streams.state_cache import WriteBackCache
from tables import progress_codec

# The state cache writes each changed order once per flush (streams.state_cache).
FLUSH_INTERVAL_S = 0.25


class ChangelogSendsTable(faust.Table):
    """A table whose changelog writes can be waited for, and whose persisted offsets only
    count writes made while this worker owns the partition.

    Faust flushes its producer before committing source offsets, but that flush gives up
    once the send buffer makes no progress for 0.1 s, so an offset can be committed while
    the changelog write of the change it carried is still buffered. The partition's next
    owner then recovers without the change and resumes after it. The state cache
    (streams.state_cache) lets events be committed only once the pending sends are
    acknowledged, and waits for all of them before partitions are handed over.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._in_flight: set[FutureMessage] = set()
        self._owned: frozenset[int] = frozenset()
        self._owned_for: object = None

    def send_changelog(self, *args, **kwargs) -> FutureMessage:
        sent = super().send_changelog(*args, **kwargs)
        self._in_flight.add(sent)
        sent.add_done_callback(self._in_flight.discard)
        return sent

    def changelog_sends_pending(self) -> list[FutureMessage]:
        """Every changelog write not yet acknowledged (each resolves when the broker has it)."""
        return list(self._in_flight)

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
        if fut.result().partition in self.owned_partitions():
            super()._on_changelog_sent(fut)

    def owned_partitions(self) -> frozenset[int]:
        """The partitions this worker owns, computed once per assignment (the assignor
        replaces its assignment object at each), not once per changelog acknowledgement."""
        assignment = self.app.assignor._assignment
        if assignment is not self._owned_for:
            self._owned_for = assignment
            self._owned = frozenset(tp.partition for tp in self.app.assignor.assigned_actives())
        return self._owned


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
# Every read and write of order state goes through this cache (read-your-writes): the table
# itself holds what was flushed, up to FLUSH_INTERVAL_S older.
order_states: WriteBackCache[OrderProgress] = WriteBackCache(
    order_progress, encode=progress_codec.encode, decode=progress_codec.decode, empty=OrderProgress,
    flush_interval_s=FLUSH_INTERVAL_S)
