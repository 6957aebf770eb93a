"""GET /metrics: this worker's figures in the Prometheus text format.

The `/stats` counters (`orderpipe_<name>_total`; `unsettled_now` a gauge), the state cache
(`orderpipe_state_cache_*`), consumer lag per CDC partition
(`orderpipe_consumer_lag_records{topic,partition}`), and the histograms of commit ->
`order_final` latency and batch processing time (streams.runtime.metrics). Lag comes from the same
measurement as /stats, shared, so a burst of scrapes costs the consumer nothing more.
"""

from __future__ import annotations

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streams.app import app
from streams.runtime.metrics import Figures, histograms
from web import worker_view


@app.page("/metrics")
class MetricsView(View):
    async def get(self, request: Request) -> Response:
        worker = worker_view.worker()
        lag = await worker.cdc_lag.read(app.consumer)
        scrape = CollectorRegistry(auto_describe=True)
        scrape.register(Figures(dict(worker.counters), worker.commit_protocol.stats(), lag["lag"]))
        body = generate_latest(scrape) + generate_latest(histograms)
        return self.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})
