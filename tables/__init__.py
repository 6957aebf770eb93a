"""The workers' tables: order progress and the reference data.

The `order_progress` table, how its write-back cache is made, and typed reads (`order_progress.py`);
the state it holds, `OrderState`, with its codec and the JSON the views show (`order_state.py`,
pure); the reference data every worker keeps for enrichment, customers and payment methods in a
RocksDB of its own, and how its reader is made (`reference_data.py`; docs/stream.md "Enrichment"
says why not a Faust table).
"""
