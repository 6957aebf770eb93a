"""A quiet partition's complete order waits for the connector's committed position.

Kafka Connect retries each partition's batch on its own, so after a broker restart a detail
can be in Kafka before an earlier-committed change of `num_products`: read to its log end,
the orders topic does not yet hold it. The workers settle such an order only once Connect
has committed a binlog position past its newest detail (every record before it
acknowledged). Real Connect produces that order of arrival only by chance, so here the test
plays Connect: it writes the CDC records and the offset commits itself, in a binlog file
the real connector never reaches, for a connector name the workers follow instead.
"""

from __future__ import annotations

import time

import orjson
from confluent_kafka import Producer

from cdc.topics import read_to_end
from stack.workers import start_workers, wait_for_group
from tests.integration.scratch_stream import order_id_in, scratch_stream
from tests.integration.waiting import wait_for

BINLOG = "binlog.999999"


def change(op: str, row: dict, pos: int) -> bytes:
    source = {"file": BINLOG, "pos": pos, "row": 0, "ts_ms": int(time.time() * 1000)}
    return orjson.dumps({"op": op, "before": None, "after": row, "source": source})


def test_an_orders_change_still_on_its_way_holds_an_order_its_log_end_calls_complete(settings, unique_name):
    with scratch_stream(settings, unique_name, workers=0) as (scratch, _):
        by_hand = scratch.model_copy(update={"cdc_connector_name": f"{scratch.cdc_connector_name}-by-hand"})
        workers = start_workers(by_hand, 1)
        try:
            wait_for_group(by_hand, workers)
            producer = Producer(scratch.kafka_client_config())
            order_id = order_id_in(0, scratch.topic_partitions)

            def header(num_products: int, pos: int) -> None:
                row = {"id": order_id, "customer_id": 1, "store_id": 1, "payment_method_id": 1,
                       "num_products": num_products}
                producer.produce(scratch.cdc_topic("orders"), change("c", row, pos), orjson.dumps(order_id), partition=0)

            def detail(product_id: int, pos: int) -> None:
                row = {"order_id": order_id, "product_id": product_id, "quantity": 1}
                producer.produce(scratch.cdc_topic("order_details"), change("c", row, pos), orjson.dumps(order_id),
                                 partition=0)

            def commit(pos: int) -> None:
                key = orjson.dumps([by_hand.cdc_connector_name, {"server": "mysql"}])
                producer.produce(by_hand.connect_offsets_topic, orjson.dumps({"file": BINLOG, "pos": pos}), key,
                                 partition=0)
                producer.flush(10)

            def emitted() -> list[dict]:
                return [m.value for m in read_to_end(scratch, scratch.order_final_topic)
                        if m.value["order_id"] == order_id]

            # In the database: 2 products (pos 10), a detail (20), raised to 3 (30), a detail
            # (40), a detail (50). Kafka has all but the raise; Connect committed up to 35.
            header(2, 10)
            detail(1001, 20)
            detail(1002, 40)
            commit(35)
            time.sleep(3)  # a dozen settle ticks: the orders partition is read to its end
            held = emitted()

            header(3, 30)  # the retried batch lands
            detail(1003, 50)
            commit(60)
            assert wait_for(lambda: emitted(), timeout_s=30), "the order never went out"
            time.sleep(1)  # a second copy would be there by now
            finals = emitted()
            ticks = workers[0].stats()["counts"].get("ticks_received", 0)
        finally:
            for worker in workers:
                worker.stop()

    assert held == []
    [final] = finals
    assert (final["num_products"], [p["product_id"] for p in final["products"]]) == (3, [1001, 1002, 1003])
    assert ticks > 0
