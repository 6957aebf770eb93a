"""GET /stats: this worker's counters, its state cache, the offsets its agent gets next, its
garbage collector, its RocksDB memory and its consumer lag on the CDC topics (docs/stream.md
lists every field)."""

from __future__ import annotations

from faust.web import Request, Response, View

from streams.app import app
from streams.runtime.order_pipe_app import collector_stats
from streams.runtime.metrics import WORKER
from streams.runtime.rocksdb_budget import budget_usage
from tables.order_progress import order_progress
from web import worker_view


@app.page("/stats")
class StatsView(View):
    async def get(self, request: Request) -> Response:
        worker = worker_view.worker()
        lag = await worker.cdc_lag.read(app.consumer)
        reference = worker.reference.store
        rocksdb = budget_usage([*order_progress.open_dbs(), *(reference.open_dbs() if reference else ())])
        return self.json({"worker": WORKER, "counts": dict(worker.counters), "state_cache": worker.commit_protocol.stats(),
                          "next_offsets": app.consumer.next_offsets(),
                          "collector": collector_stats(app.frozen_at_start), "rocksdb": rocksdb, **lag})
