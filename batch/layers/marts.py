"""Gold's marts: small aggregates of the star (daily orders, payment mix, top products,
customer segments), each recomputed whole and replaced when a star table it reads changed
(its rows or schema: a compaction of the star changes neither).

A job of its own, with its own marks (the star tables' versions it was built from), so the
fast lane can carry each micro-batch's facts to Gold without rebuilding the marts every time:
they follow on Spark's deferred clock (`python -m batch deferred`, batch.flows). One-shot runs build them right
after the star (batch.flows). The star is read as of the versions recorded, so a micro-batch committing
facts meanwhile only makes the next refresh run again. Run: `python -m batch gold`.
"""

from __future__ import annotations

from pyspark.sql import functions as F

from batch import paths
from batch.job import LayerJob
from batch.names import GOLD
from batch.runs import LayerRun
from batch.store import delta_log, reads, writes
from batch.transforms import marts
from config import Settings

LAYER = GOLD
STAR = ("fact_orders", "fact_order_products", "dim_payment_method", "dim_product", "dim_customer")
MARTS = ("mart_daily_orders", "mart_payment_mix", "mart_top_products", "mart_customer_segments")


class MartsJob(LayerJob):
    layer = LAYER
    marks_file = "_marks_marts"

    @classmethod
    def inputs(cls, settings: Settings) -> dict[str, str]:
        return {name: paths.path(settings, LAYER, name) for name in STAR}

    def move(self, tables: LayerRun, marks: dict[str, str]) -> dict[str, str]:
        versions = {name: delta_log.version(self.spark, self.gold(name)) for name in STAR}
        if None in versions.values():
            return {}  # no star yet
        new_versions = {name: str(version) for name, version in versions.items()}
        if not any(self.moved(name, marks.get(name), version) for name, version in versions.items()):
            return new_versions  # no row changed since the marts were built (a compaction at most)
        star = {name: reads.read(self.spark, self.gold(name), version) for name, version in versions.items()}
        facts = star["fact_orders"].localCheckpoint()
        customers = star["dim_customer"].join(F.broadcast(facts.select("customer_id").distinct()),
                                              "customer_id", "left_semi")
        built = {
            "mart_daily_orders": marts.daily_orders(facts),
            "mart_payment_mix": marts.payment_mix(facts, star["dim_payment_method"]),
            "mart_top_products": marts.top_products(facts, star["fact_order_products"], star["dim_product"]),
            "mart_customer_segments": marts.customer_segments(facts, customers),
        }
        facts_read = facts.count()
        for name, rows in built.items():
            with tables.table(name) as counts:
                counts.read = facts_read
                counts.written = writes.replace(self.spark, self.gold(name), rows).rows
        return new_versions

    def moved(self, table: str, mark: str | None, version: int) -> bool:
        if mark == str(version):
            return False
        return mark is None or delta_log.rows_changed(self.spark, self.gold(table), int(mark), version)

    def gold(self, table: str) -> str:
        return paths.path(self.settings, LAYER, table)
