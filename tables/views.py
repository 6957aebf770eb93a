"""The table's web view, served by every worker's Faust web server.

GET /orders/{order_id}  an order's completion state, routed to the worker owning its partition
"""

from __future__ import annotations

from faust.web import Request, Response, View

from streams.app import app
from streams.codec import ORDER_ID
from tables.order_progress import current_state, order_progress
from tables.order_state import as_json


@app.page("/orders/{order_id}")
class OrderView(View):
    @app.table_route(table=order_progress, match_info="order_id")
    async def get(self, request: Request, order_id: str) -> Response:
        if not ORDER_ID.fullmatch(order_id):
            return self.json({"error": "malformed order id", "order_id": order_id[:80]}, status=400)
        state = current_state(app.completion.states, order_id)
        if state is None:
            return self.json({"error": "order not found", "order_id": order_id}, status=404)
        return self.json(as_json(order_id, state))

