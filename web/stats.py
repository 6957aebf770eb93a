"""GET /stats: this worker's counters, its state cache, the offsets its agent gets next and
its consumer lag on the CDC topics (docs/stream.md lists every field)."""

from __future__ import annotations

from faust.web import Request, Response, View

from config import settings
from streams.app import app
from streams.runtime.metrics import WORKER, LagGauge, counters
from tables.order_progress import order_states

cdc_lag = LagGauge([settings.cdc_topic("orders"), settings.cdc_topic("order_details")])


@app.page("/stats")
class StatsView(View):
    async def get(self, request: Request) -> Response:
        lag = await cdc_lag.read(app.consumer)
        return self.json({"worker": WORKER, "counts": dict(counters), "state_cache": order_states.stats(),
                          "next_offsets": app.consumer.next_offsets(), **lag})
