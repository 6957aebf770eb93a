"""The Debezium codec's cost per CDC record, on records Debezium wrote.

    python -m bench.codec [--orders 5000] [--rounds 5] [--against REV]

Writes `--orders` orders to a scratch database (its own connector and CDC topics, as
bench.stream's), reads back every CDC record of orders and order_details, then times, in this
process, each decoder over every record, rounds alternated, the collector paused as timeit
does: `orjson.loads` of the value alone (the baseline: the JSON parse a decoder would do), the
codec (streams.codec), and with `--against REV` the codec at that git revision (its
streams/codec.py loaded as a module of its own). Prints µs per record (best round, and the
median) and the ratios. The two codecs must decode every record alike, or the bench exits 1.
"""

from __future__ import annotations

import gc
import statistics
import subprocess
import sys
import time
import types
import uuid
from collections.abc import Callable
from typing import Annotated

import orjson
import typer

from bench.stream import isolated, prefill
from cdc.topics import read_to_end
from config.cli import run
from streams import codec

Records = list[tuple[str, bytes | None, bytes | None]]  # (table, key, value)


def cdc_records(orders: int) -> Records:
    """Every CDC record of `orders` orders written to a scratch database, as Debezium wrote them."""
    with isolated(f"bench_{uuid.uuid4().hex[:8]}_cd") as scratch:
        prefill(scratch, orders)
        return [(table, message.key, message.value) for table in ("orders", "order_details")
                for message in read_to_end(scratch, scratch.cdc_topic(table), raw=True)]


def codec_at(revision: str) -> types.ModuleType:
    """streams/codec.py as it was at `revision`, loaded as a module of its own."""
    source = subprocess.run(["git", "show", f"{revision}:streams/codec.py"], check=True, capture_output=True,
                            text=True).stdout
    module = sys.modules[f"codec_at_{revision}"] = types.ModuleType(f"codec_at_{revision}")  # dataclasses look it up
    exec(compile(source, f"{revision}:streams/codec.py", "exec"), module.__dict__)  # noqa: S102 - our own file
    return module


def decoder(module: types.ModuleType) -> Callable[[Records], list]:
    by_table = {"orders": module.decode_order, "order_details": module.decode_detail}

    def decode_all(records: Records) -> list:
        return [by_table[table](key, value) for table, key, value in records]
    return decode_all


def parse_only(records: Records) -> list:
    return [orjson.loads(value) for _, _, value in records if value is not None]


def as_compared(change: object) -> tuple:
    """A change as plain values: two codecs' types differ, what they decoded must not."""
    fields = getattr(change, "__slots__", None) or getattr(change, "_fields", ())
    return type(change).__name__, tuple(tuple(value) if isinstance(value, tuple) else value
                                        for value in (getattr(change, name) for name in fields))


def main(
    orders: Annotated[int, typer.Option(min=1, help="Orders written (about 3 CDC records each).")] = 5_000,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds; each times every decoder once over every record.")] = 5,
    against: Annotated[str | None, typer.Option(help="A git revision (e.g. HEAD~1) whose streams/codec.py is timed "
                                                     "beside today's.")] = None,
) -> None:
    """Time the codec per CDC record against the JSON parse alone (and a revision's codec)."""
    sample = cdc_records(orders)
    contenders: dict[str, Callable[[Records], list]] = {"orjson.loads (baseline)": parse_only,
                                                        "codec": decoder(codec)}
    if against:
        contenders[f"codec at {against}"] = decoder(codec_at(against))
        wanted = [as_compared(change) for change in contenders["codec"](sample)]
        if [as_compared(change) for change in contenders[f"codec at {against}"](sample)] != wanted:
            print(f"the codec and the codec at {against} decode these records differently")
            raise typer.Exit(1)
    print(f"{len(sample):,} CDC records ({sum(table == 'orders' for table, _, _ in sample):,} orders), "
          f"{statistics.mean(len(value or b'') for _, _, value in sample):,.0f} bytes a value on average")
    timings: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, decode_all in contenders.items():
            gc.collect()
            gc.disable()  # as timeit does: a collection falls on whichever decoder happens to run
            started = time.perf_counter()
            decode_all(sample)
            timings[name].append((time.perf_counter() - started) / len(sample) * 1e6)
            gc.enable()
    for name, per_record in timings.items():
        print(f"  {name:<32} {min(per_record):6.2f} µs a record (median {statistics.median(per_record):.2f})")
    baseline = min(timings["orjson.loads (baseline)"])
    print(f"  codec / baseline                 {min(timings['codec']) / baseline:.2f}x")
    if against:
        print(f"  codec / codec at {against:<15} {min(timings['codec']) / min(timings[f'codec at {against}']):.2f}x")


if __name__ == "__main__":
    run(main, prog_name="python -m bench.codec")
