"""The orders' pages, served by every worker's Faust web server.

GET /orders/{order_id}: an order's completion state, routed to the worker owning its partition.

GET /orders?state=stalled|incomplete|complete&limit=N: the app's orders in that state.

Any worker answers for the whole app: it asks every member the partition assignor knows for
its own partitions' orders (`&scope=worker`), all at once, and merges up to `limit` (one that
does not answer is named in `workers` with its error). Each worker reads its table as last
flushed (at most 250 ms old), at most SCAN_MAX orders per request, and says whether it read
all of them. Emails are masked (`a***@example.com`). Hostile input is answered 400 with the
reason: an unknown state, a limit that is not a whole number in 1..LIMIT_MAX, an unknown scope.
"""

from __future__ import annotations

import asyncio

from faust.web import Request, Response, View

from streams.app import app
from streams.codec import ORDER_ID
from tables.order_progress import current_state, order_progress
from tables.order_state import LISTED, as_json, decode, listed_as, mask_email
from web import worker_view
from web.members import ask, members

LIMIT_DEFAULT, LIMIT_MAX = 100, 1000
SCAN_MAX = 100_000
YIELD_EVERY = 2000  # orders read between two turns of the event loop
ASK_TIMEOUT_S = 5.0


class BadQuery(ValueError):
    """The reason a query is refused."""


def parse(query) -> tuple[str, int, str]:
    wanted = query.get("state", "")
    if wanted not in LISTED:
        raise BadQuery(f"state must be one of {', '.join(sorted(LISTED))}")
    raw_limit = query.get("limit", str(LIMIT_DEFAULT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= LIMIT_MAX:
        raise BadQuery(f"limit must be a whole number from 1 to {LIMIT_MAX}")
    scope = query.get("scope", "app")
    if scope not in ("app", "worker"):
        raise BadQuery("scope must be app or worker")
    return wanted, int(raw_limit), scope


def entry(order_id: str, state) -> dict:
    store = worker_view.worker().reference.store
    customer = store.customer_row(state.customer_id) if store else None
    if customer is not None:
        customer = {**customer, "email": mask_email(customer.get("email", ""))}
    return {**as_json(order_id, state), "alerts": sorted(state.alerts), "customer": customer}


async def this_workers_orders(wanted: str, limit: int) -> dict:
    found, scanned = [], 0
    for order_id, raw in order_progress.items():
        scanned += 1
        if scanned > SCAN_MAX:
            return {"orders": found, "scanned": SCAN_MAX, "read_all": False}
        state = decode(raw)
        if listed_as(state, wanted):
            found.append(entry(order_id, state))
            if len(found) == limit:
                return {"orders": found, "scanned": scanned, "read_all": False}
        if scanned % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    return {"orders": found, "scanned": scanned, "read_all": True}


@app.page("/orders")
class OrderList(View):
    async def get(self, request: Request) -> Response:
        try:
            wanted, limit, scope = parse(request.query)
        except BadQuery as error:
            return self.json({"error": str(error)}, status=400)
        try:
            if scope == "worker":
                return self.json(await this_workers_orders(wanted, limit))
        except RuntimeError as error:  # the table's partitions changed under the scan (a rebalance)
            return self.json({"error": f"partitions moving, ask again ({error})"}, status=503)
        urls = members()
        query = {"state": wanted, "limit": str(limit), "scope": "worker"}
        answers = dict(zip(urls, await asyncio.gather(*(ask(url, "/orders", ASK_TIMEOUT_S, query) for url in urls))))
        orders, seen = [], set()
        for answer in answers.values():
            for order in answer.get("orders", ()):
                if order["order_id"] not in seen and len(orders) < limit:
                    seen.add(order["order_id"])
                    orders.append(order)
        workers = {url: {key: value for key, value in answer.items() if key != "orders"}
                   | ({"orders": len(answer["orders"])} if "orders" in answer else {})
                   for url, answer in answers.items()}
        return self.json({"state": wanted, "limit": limit, "count": len(orders), "orders": orders,
                          "workers": workers}, headers={"Cache-Control": "no-store"})


@app.page("/orders/{order_id}")
class OrderView(View):
    @app.table_route(table=order_progress, match_info="order_id")
    async def get(self, request: Request, order_id: str) -> Response:
        if not ORDER_ID.fullmatch(order_id):
            return self.json({"error": "malformed order id", "order_id": order_id[:80]}, status=400)
        state = current_state(worker_view.worker().states, order_id)
        if state is None:
            return self.json({"error": "order not found", "order_id": order_id}, status=404)
        return self.json(as_json(order_id, state))
