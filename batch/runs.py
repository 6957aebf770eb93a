"""What a job did: what each write changed, rows read, written and quarantined per table, its
time, one summary line. Both engines' writes report a `Written`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger("batch")


def show_progress() -> None:
    """The jobs' own log lines on stderr (spark-submit configures the root logger first)."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


@dataclass(frozen=True)
class Written:
    """One write to a table: rows inserted, updated and deleted, the Delta commits it made, and
    the table's version after it (None when no writer reports it)."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    commits: int = 0
    version: int | None = field(default=None, compare=False)

    @property
    def rows(self) -> int:
        return self.inserted + self.updated + self.deleted


@dataclass
class TableRun:
    layer: str
    table: str
    read: int = 0
    written: int = 0
    quarantined: int = 0
    commits: int = 0  # Delta commits made
    seconds: float = 0.0

    def add(self, written: Written) -> None:
        """A write's rows and commits."""
        self.written += written.rows
        self.commits += written.commits

    def line(self) -> str:
        return (f"{self.layer}.{self.table}: read {self.read:,}, written {self.written:,}, "
                f"quarantined {self.quarantined:,} in {self.seconds:.1f} s")


@dataclass
class LayerRun:
    layer: str
    tables: list[TableRun] = field(default_factory=list)
    seconds: float = 0.0
    after_table: Callable[[str], None] = field(default=lambda table: None, repr=False, compare=False)

    @contextmanager
    def table(self, name: str) -> Iterator[TableRun]:
        """Time one table's work; log its line when it ends."""
        run = TableRun(self.layer, name)
        started = time.monotonic()
        log.info("%s.%s: started", self.layer, name)
        yield run
        run.seconds = time.monotonic() - started
        self.tables.append(run)
        log.info(run.line())
        self.after_table(name)

    def total(self, count: str) -> int:
        return sum(getattr(run, count) for run in self.tables)

    def then(self, other: LayerRun) -> LayerRun:
        """This run and a later one of the same layer, as one."""
        return LayerRun(self.layer, [*self.tables, *other.tables], self.seconds + other.seconds)

    def summary(self) -> str:
        return (f"{self.layer} done in {self.seconds:.1f} s: {len(self.tables)} tables, "
                f"read {self.total('read'):,}, written {self.total('written'):,}, "
                f"quarantined {self.total('quarantined'):,}")


@contextmanager
def layer_run(layer: str, after_table: Callable[[str], None] = lambda table: None) -> Iterator[LayerRun]:
    """One job's run; `after_table(name)` once a table's write has ended."""
    run = LayerRun(layer, after_table=after_table)
    started = time.monotonic()
    yield run
    run.seconds = time.monotonic() - started
    log.info(run.summary())
