"""Bronze: the change log. Every record of the four CDC topics not yet archived is drained
into `s3a://bronze/cdc_raw/` (batch.archive: Structured Streaming, available-now trigger),
exactly once per (topic, partition, offset); Silver applies the archive from there. An
incremental run reads no rows from MySQL (the JDBC copy is `python -m batch snapshot`).
Run: `python -m batch bronze`.
"""

from __future__ import annotations

from batch import archive
from batch.job import LayerJob
from batch.runs import LayerRun

LAYER = "bronze"


class BronzeJob(LayerJob):
    layer = LAYER

    def move(self, tables: LayerRun, marks: dict[str, str]) -> dict[str, str]:
        """The archive's checkpoint is its mark: nothing to store here."""
        with tables.table("cdc_raw") as counts:
            query = archive.start(self.spark, self.settings, once=True, every_s=1.0)
            counts.read = counts.written = archive.follow(query, poll_s=0.5)
        return {}


run = BronzeJob.once
