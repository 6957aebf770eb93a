"""A bare Faust agent over the CDC topics: the framework's own per-record ceiling here.

    faust -A bench.bare_agent --datadir=<dir> worker --web-port <port>

Each record's JSON value is decoded and counted, nothing else: no table, no output. With
`BARE_CONSUMER=project` it reads through the project's consumer (streams.runtime.consumer: the
in-order gate and the direct delivery) instead of Faust's stock one. GET /stats answers
like a product worker's (`{"counts": {"events_in": n}}`), so bench.stream times both alike.
"""

from __future__ import annotations

import os
from collections import Counter

import faust
import orjson
from faust.web import Request, Response, View

from config import settings
from streams.runtime.order_pipe_app import broker_credentials
from streams.runtime.consumer import NoSkipConsumer

app = faust.App(settings.stream_app_id,
                broker=[f"kafka://{address}" for address in settings.kafka_bootstrap.split(",")],
                broker_credentials=broker_credentials(settings.kafka_login("stream"), settings.kafka_sasl_mechanism,
                                                                   settings.kafka_ssl_context()),
                store="memory://", topic_replication_factor=settings.replication_factor,
                topic_disable_leader=True, stream_wait_empty=False, web_bind="127.0.0.1", web_host="127.0.0.1")
if os.environ.get("BARE_CONSUMER") == "project":
    app.transport.Consumer = NoSkipConsumer

counts: Counter[str] = Counter()
changes = app.topic(settings.cdc_topic("orders"), settings.cdc_topic("order_details"), key_type=bytes,
                    value_type=bytes, key_serializer="raw", value_serializer="raw")


@app.agent(changes)
async def count_changes(stream):
    async for value in stream:
        if value is not None:
            orjson.loads(value)
        counts["events_in"] += 1


@app.page("/stats")
class StatsView(View):
    async def get(self, request: Request) -> Response:
        return self.json({"counts": dict(counts)})
