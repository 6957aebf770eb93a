"""What the pages may read of this process's completion worker: a read-only view.

The worker (agents.completion_worker.CompletionWorker) is the app's `completion`, made from the class
streams/app.py names, the one place that wires it: the app must exist before any agent module
can declare on it, so streams/app.py cannot import the class. The pages reach the worker only
through `worker()`, typed as `WorkerView`, so what a page may touch is listed here and nowhere
in web/ imports agents (tests/unit/test_layout.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from streams.app import app
from tables.order_state import OrderState


class StateReads(Protocol):
    def peek(self, key: str) -> OrderState | None: ...  # the cache's newest, without reading RocksDB


class CommitReads(Protocol):
    def stats(self) -> dict[str, int]: ...  # the cache's keys, records and flushes waiting


class ReferenceRows(Protocol):
    def customer_row(self, customer_id: int | None) -> dict | None: ...
    def open_dbs(self) -> list: ...


class ReferenceReads(Protocol):
    @property
    def store(self) -> ReferenceRows | None: ...  # None until the reader has opened it


class LagReads(Protocol):
    async def read(self, consumer) -> dict: ...


class WorkerView(Protocol):
    @property
    def counters(self) -> Mapping[str, int]: ...
    @property
    def states(self) -> StateReads: ...
    @property
    def commit_protocol(self) -> CommitReads: ...
    @property
    def reference(self) -> ReferenceReads: ...
    @property
    def cdc_lag(self) -> LagReads: ...


def worker() -> WorkerView:
    """This process's completion worker, as the pages see it."""
    return app.completion
