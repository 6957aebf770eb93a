"""The one shape of a lake job: read the marks, move each table's changes, write the marks.

A layer subclasses `LayerJob` and says only what moving its tables means (`move`: read what
changed since the marks -> transform -> write), returning the marks to store. The marks are
read and written here, once per run, after every table is written: a run that fails midway
stores none, so the next run reads the same changes again (every write is an idempotent
MERGE, see batch.store.writes).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pyspark.sql import SparkSession

from batch import kill_points
from batch.fastlane.lease import LeaseHeld, refusal
from batch.runs import LayerRun, layer_run
from batch.store.marks import MARKS, fast_lane, read_marks, write_marks
from config import Settings


class LayerJob(ABC):
    layer: ClassVar[str]
    marks_file: ClassVar[str] = MARKS  # one per job of a layer
    writes_hot_tables: ClassVar[bool] = False  # tables the fast lane owns while it runs

    def __init__(self, spark: SparkSession, settings: Settings, *, full: bool = False) -> None:
        self.spark, self.settings, self.full = spark, settings, full

    def run(self) -> LayerRun:
        if self.writes_hot_tables:
            running = fast_lane(self.spark, self.settings)
            if running is not None:
                raise LeaseHeld(refusal(running, f"{type(self).__name__} (python -m batch {self.layer})"))
        stored = read_marks(self.spark, self.settings, self.layer, self.marks_file)
        points = kill_points.of_process(self.settings.lake_kill_at)
        with layer_run(self.layer, lambda table: points.reached(kill_points.job_table(self.layer, table))) as tables:
            new_marks = self.move(tables, {} if self.full else stored)
            if new_marks:
                write_marks(self.spark, self.settings, self.layer, new_marks, stored=stored, name=self.marks_file)
                points.reached(kill_points.job_marks(self.layer, self.marks_file))
        return tables

    @classmethod
    def inputs(cls, settings: Settings) -> dict[str, str]:
        """Mark name -> the Delta table it marks (how far the job has read it): what the job
        is behind on when a table's version passes its mark."""
        return {}

    @abstractmethod
    def move(self, tables: LayerRun, marks: dict[str, str]) -> dict[str, str]:
        """Write this layer's tables from what changed since `marks` (all of it when empty);
        the marks to store, or an empty dict to leave them as they are."""

    @classmethod
    def once(cls, spark: SparkSession, settings: Settings, *, full: bool = False) -> LayerRun:
        return cls(spark, settings, full=full).run()
