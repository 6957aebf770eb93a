"""A lake whose archive does not reach back to the source's beginning (the connector took no
snapshot of the rows already there): Silver's first run starts from a JDBC snapshot of
MySQL (the first load) and applies the archive's changes over it."""

from __future__ import annotations

import logging
import uuid

import pytest
from pyspark.sql import functions as F

from batch import flows, paths
from batch.store import reads
from batch.tools.audit import LakeAudit
from cdc import rest
from cdc.connector import connector_config, server_id
from source import database
from stack.scratch import cdc_caught_up, scratch_lake
from tests.integration.scratch_stream import CUSTOMERS, write_orders


@pytest.mark.lake_long
def test_an_archive_without_the_connectors_snapshot_is_loaded_first_from_jdbc(settings, spark, caplog):
    name = f"t{uuid.uuid4().hex[:12]}"
    logging.getLogger("batch").addHandler(caplog.handler)  # the jobs' logger may not propagate
    with scratch_lake(settings, name) as lake_settings, database.scratch_database(lake_settings, name) as scratch:
        connection = database.connect(scratch)
        database.apply_schema(connection)
        database.load_reference(connection, CUSTOMERS, seed=3, progress=False)
        before = write_orders(scratch, 100, rate=0)  # never on the CDC topics
        connect = rest.client(scratch)
        connector = scratch.cdc_connector_name
        rest.put_config(connect, connector, connector_config(
            scratch, **{"database.server.id": server_id(connector), "snapshot.mode": "no_data"}))
        try:
            rest.wait_running(connect, connector)
            cursor = connection.cursor()
            cursor.execute("SELECT id FROM orders WHERE num_products > 0 ORDER BY id LIMIT 1")
            (raised,) = cursor.fetchone()
            cursor.execute("UPDATE orders SET num_products = num_products + 1 WHERE id = %s", (raised,))
            after = write_orders(scratch, 50, rate=0)
            cdc_caught_up(scratch, connection)

            runs = [layer(spark, scratch) for layer in flows.CHANGE_LOG]
        finally:
            rest.delete(connect, connector)

        logging.getLogger("batch").removeHandler(caplog.handler)
        assert "does not reach back" in caplog.text
        orders = reads.read(spark, paths.path(scratch, "silver", "orders"))
        assert orders.filter("NOT is_deleted").count() == database.count_rows(connection, "orders")
        assert orders.filter("is_deleted").count() == len(after["cancelled"])  # the archive's deletes
        [raised_row] = orders.filter(F.col("order_id") == raised).collect()
        assert raised_row.changed_at is not None  # the archive's change won over the snapshot's row
        assert all(table.clean for table in LakeAudit(spark, scratch).run())
        facts = reads.read(spark, paths.path(scratch, "gold", "fact_orders"))
        assert facts.filter("status = 'complete'").count() >= len(before["complete"])
        assert runs[1].total("quarantined") == 0
        again = [layer(spark, scratch) for layer in flows.CHANGE_LOG]
        assert [run.total("written") for run in again] == [0, 0, 0]
