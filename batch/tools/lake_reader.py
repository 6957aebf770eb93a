"""The lake as a reader beside it sees it, through delta-rs (no JVM): each order's status in
Gold, whether the deferred work has caught up with its inputs, Gold's marts, and how fresh the
lake is: from an order's last commit at the source to the Gold commit that first holds its
fact with its final status. The Gold side is read from fact_orders' change feed once the lake
has applied the orders (`_commit_timestamp` of the first version where the order has that
status), so measuring never polls the lake while it works; the source side is given (the
writer's own clock at commit: MariaDB's binlog stamps whole seconds)."""

from __future__ import annotations

import time
from collections.abc import Mapping

import polars as pl
import pyarrow as pa

from batch import paths
from batch.fastlane.delta import Lake, Objects
from batch.flows import DEFERRED
from batch.layers.marts import MARTS
from batch.names import gold_location
from config import Settings


def expected_statuses(manifest: dict) -> dict[str, str]:
    """Order id -> the status Gold must show, from a generator's manifest."""
    return {**dict.fromkeys(manifest["complete"], "complete"), **dict.fromkeys(manifest["incomplete"], "incomplete"),
            **dict.fromkeys(manifest["cancelled"], "cancelled")}


def behind_since(versions: dict[int, float], mark: str | None) -> float | None:
    """When the oldest commit of a table past a job's `mark` (its version read) was made (epoch
    seconds); None when the job has read every commit (`versions`: version -> commit time)."""
    seen = -1 if mark is None else int(mark)
    newer = [at for version, at in versions.items() if version > seen]
    return min(newer, default=None)


def commit_times(names: Mapping[str, float]) -> dict[int, float]:
    """A `_delta_log` folder's names -> their times, as version -> commit time (its commit file's)."""
    return {version: at for name, at in names.items() if (version := paths.commit_version(name)) is not None}


def lags_s(committed_ms: Mapping[str, float], visible_ms: Mapping[str, float]) -> list[float]:
    """Seconds from commit to visibility, for the orders visible."""
    return [(visible_ms[order] - committed) / 1000 for order, committed in committed_ms.items() if order in visible_ms]


class LakeReader:
    """Gold, its change feed and the deferred jobs' marks, read with the lake reader's login."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lake, self.objects = Lake(settings, role="reader"), Objects(settings, role="reader")

    def fact_statuses(self, orders: set[str]) -> dict[str, str]:
        """Order id -> its status in Gold's fact_orders, for the orders it holds among `orders`."""
        facts = self.lake.read(gold_location(self.settings, "fact_orders"), columns=["order_id", "status"])
        if facts is None:
            return {}
        held = facts.filter(pl.col("order_id").is_in(list(orders)))
        return dict(zip(held["order_id"].to_list(), held["status"].to_list()))

    def first_visible(self, statuses: Mapping[str, str]) -> dict[str, float]:
        """Order id -> epoch milliseconds of the Gold commit that first held its fact with the
        status it ended in (`statuses`: order id -> that status), read once from fact_orders'
        change feed after the lake has applied the orders."""
        table = self.lake.table(gold_location(self.settings, "fact_orders"))
        if table is None:
            return {}
        feed = pl.from_arrow(pa.RecordBatchReader.from_stream(table.load_cdf(
            starting_version=0, columns=["order_id", "status", "_change_type", "_commit_timestamp"])).read_all())
        wanted = pl.DataFrame({"order_id": list(statuses), "status": list(statuses.values())})
        first = (feed.filter(pl.col("_change_type").is_in(["insert", "update_postimage"]))
                 .join(wanted, on=["order_id", "status"], how="semi")
                 .group_by("order_id").agg(pl.col("_commit_timestamp").min().dt.epoch("ms").alias("first")))
        return dict(zip(first["order_id"].to_list(), map(float, first["first"].to_list())))

    def deferred_behind(self) -> dict[str, float | None]:
        """Per deferred job (history, dimensions, products, marts): seconds since the oldest
        commit of its inputs it has not applied, None when it is current with them."""
        behind: dict[str, float | None] = {}
        for job in DEFERRED:
            marks = self.objects.read_marks(job.layer, job.marks_file)
            oldest = min(filter(None, (
                behind_since(commit_times(self.objects.modification_times(f"{location}/_delta_log")), marks.get(name))
                for name, location in job.inputs(self.settings).items())), default=None)
            behind[job.__name__] = None if oldest is None else max(time.time() - oldest, 0.0)
        return behind

    def deferred_current(self) -> bool:
        """Whether every deferred job has applied its inputs as they are now."""
        return all(seconds is None for seconds in self.deferred_behind().values())

    def rows(self, layer: str, table: str) -> int:
        """How many rows a table holds (0 before it exists)."""
        opened = self.lake.table(paths.path(self.settings, layer, table))
        return 0 if opened is None else opened.to_pyarrow_dataset().count_rows()

    def marts(self) -> dict[str, list[dict]]:
        """Each mart's rows; FileNotFoundError naming the marts not written yet."""
        found = {name: self.lake.read(gold_location(self.settings, name)) for name in MARTS}
        missing = [name for name, rows in found.items() if rows is None]
        if missing:
            raise FileNotFoundError(f"no {', '.join(missing)} in the lake yet: run `python -m batch` first")
        return {name: rows.to_dicts() for name, rows in found.items()}
