"""The pages the workers serve.

Each page reads the completion worker only through `worker_view.py` (`WorkerView`, a read-only
Protocol of what the pages show: counters, state reads, reference rows, lag; the worker itself is
made from the class `streams/app.py` names, the one place that wires it, since the app must exist
before an agent module can declare on it): `/stats` (`stats.py`), `/metrics` (`metrics.py`,
Prometheus text), `/orders/{id}` (an order's state, routed to the worker owning its partition) and
`/orders?state=` (every worker's orders in a state), both in `orders.py`, the live dashboard
(`dashboard.py`, its page `dashboard.html`) and its pure figures (`dashboard_figures.py`); asking
the other workers (`members.py`). Who may read any view is the runtime's:
`streams/runtime/web_access.py` (a bearer token beyond loopback).
"""
