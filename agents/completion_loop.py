"""The completion agent: CDC changes in, exactly one `order_final` per completed order out.

The loop splits each batch by partition; each `PartitionSlice` (agents.partition_slice)
decodes, applies the changes to their orders' states (agents.completion_rule, pure) and decides
which orders are settled (agents.settling, pure); the worker's `Emission` (agents.emission.exactly_once)
sends those, and says why each is sent exactly once. What the loop keeps between batches is
the process's `CompletionWorker` (agents.completion_worker), `app.completion`.

Batches: events are taken up to BATCH_MAX at a time or every BATCH_WITHIN_S; each
partition's slice is applied in order and decided; then the settled orders of every slice
are claimed in one Redis round trip (a round trip costs milliseconds, a batch spans up to
TOPIC_PARTITIONS partitions), and the batch's records are handed back to the worker's commit
protocol, which acknowledges them once a flush has made their changes durable.

Settling across topics (see agents.completion_rule): a complete order waits until the orders
topic has been read past its newest detail. Per partition the worker tracks that frontier;
when a partition goes quiet, a timer checks that the orders partition has been processed to
its log end and sends itself a tick on `orderpipe-settle-ticks`, whose processing settles
orders that became complete before the check.

Alerts (agents.alerts): a slice raises the ones its orders call for, and `Emission` sends
them to `order_alerts` like order_final. The timers, the hand-over before partitions move
and the rebuild after recovery are in agents.upkeep.
"""

from __future__ import annotations

import time

from streams import topics
from streams.app import app
from streams.runtime.metrics import batch_seconds

# Events are taken in batches: decisions, Redis claims and table writes once per batch.
BATCH_MAX = 1000
BATCH_WITHIN_S = 0.02


@app.agent(topics.order_changes)
async def complete_orders(stream):
    # The commit protocol (streams.runtime.commit_protocol) hands the records over in order and
    # acknowledges them once the changelog holds what they changed: an offset committed before
    # that would let the partition's next owner skip a change it never recovered.
    worker = app.completion
    commits = worker.commit_protocol
    async for batch in commits.batches(stream, BATCH_MAX, within_s=BATCH_WITHIN_S):
        started = time.perf_counter()
        parts = worker.slices(batch)
        for part in parts:
            await part.process()
        await worker.emission.emit(parts)
        for part in parts:
            commits.processed(part.partition, part.messages)
        commits.flush_if_due()
        batch_seconds.observe(time.perf_counter() - started)
