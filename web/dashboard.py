"""The live dashboard, served by every worker's Faust web server (read-only, GET only).

GET /dashboard       a self-contained page (web/dashboard.html) that polls the data every second
GET /dashboard/data  every worker's figures: counters, rates, consumer lag, and their totals

Any worker answers for the whole app: it asks each member the partition assignor knows for
its /stats, all at once, with a short timeout; a member that does not answer is shown as
unreachable instead of failing the page.
"""

from __future__ import annotations

import asyncio
import time
from importlib import resources

from faust.web import Request, Response, View

from streams.app import app
from web.dashboard_figures import RateMeter, dashboard_payload
from web.members import ask, members

PAGE = resources.files("web").joinpath("dashboard.html").read_text(encoding="utf-8")
# Above the half second /stats may wait for its lag (streams.runtime.metrics.LagGauge).
STATS_TIMEOUT_S = 1.5


@app.page("/dashboard")
class DashboardPage(View):
    async def get(self, request: Request) -> Response:
        return self.html(PAGE)


@app.page("/dashboard/data")
class DashboardData(View):
    def __post_init__(self) -> None:  # one view per web server: its rates span the page's polls
        self.meter = RateMeter()

    async def get(self, request: Request) -> Response:
        urls = members()
        answers = await asyncio.gather(*(ask(url, "/stats", STATS_TIMEOUT_S) for url in urls))
        payload = dashboard_payload(app.conf.id, dict(zip(urls, answers)), self.meter,
                                    at=time.monotonic(), now=time.time())
        return self.json(payload, headers={"Cache-Control": "no-store"})
