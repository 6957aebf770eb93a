"""The completion worker: its loop, its partition slices, its pure rules and exactly-once emission.

`completion_rule.py` (the pure rule), `completion_worker.py` (`CompletionWorker`, one per process, `app.completion`:
the state cache and the commit protocol over it, the bookkeeping below, the alert rules, the emission, the reference data, the lag
gauge; everything a worker keeps between batches; and its start-up steps: the guards' credentials
checked, the reference data caught up), `completion_loop.py` (the agent: a loop over batches, each
split into partition slices, then emitted), `partition_slice.py` (one partition's share of a batch:
decode, apply, record the worker's own notices, decide, raise alerts; read and written through the
state cache), `upkeep.py` (beside the loop: its timers, which send the agent ticks; the hand-over
before partitions move; the rebuild after recovery; the reference data's reader task), `settling.py`
(when complete orders may go out: the frontier rule's bookkeeping, pure), `alerts.py` (which alerts
a state calls for, `Alert`, and their values, pure), `alert_watch.py` (which orders to look at again
for alerts: quiet incomplete ones, retries, pure), `retention.py` (when a finished order's state is
dropped: cancelled ones, and emitted ones' markers, swept from the table a paced slice at a time,
pure), `emission/` (exactly-once emission, below the worker and the slices: it knows a batch only as
partition slices through two small protocols, `exactly_once.Slice` and `outputs.OrderSlice`, and
each output takes only the parts of the worker it uses): `exactly_once.py` (`Emission`: claim, send,
confirm, record, for any `Output`, which it tells a slice's `Outcomes` and a confirmation's
`Answers` in one call each; why exactly once), `outputs.py` (`order_final` and `order_alerts` as
outputs), `guard.py` (Redis claims), `order_final_lookup.py` (stale claims: was it sent?);
`partition_slice.py` likewise sees its worker through `SliceWorker`, so `agents/` imports in one
direction: worker, then slices, then emission.
"""
