"""Exactly-once emission: each completed order to `order_final` and each alert to
`order_alerts` once, whatever crashes, rebalances or replays happen (`exactly_once.py`: the
protocol; `outputs.py`: the two outputs; `guard.py`: the Redis claims; `order_final_lookup.py`:
a stale claim's order looked up in the output). It knows a batch only as partition slices
(`exactly_once.Slice`, `outputs.OrderSlice`) and takes from the worker only what each part uses."""
