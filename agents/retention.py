"""How long the state of a finished order is kept: pure bookkeeping, per partition.

A cancelled (deleted) order keeps its state for a while: it remembers the positions of the
order's deletes, so a re-delivered older insert cannot bring the order back. An emitted
order keeps a marker (tables.order_state), so a re-delivered change of it is ignored. After
STATE_RETENTION_S nothing re-delivered is that old any more in practice, and the state is
dropped (a tombstone in the table and its changelog), so the table holds only the orders of
the last STATE_RETENTION_S, not every order ever finished. A change of a dropped order that
still arrives is taken for a new order's; a second order_final for it is still prevented
by the Redis guard, which forgets nothing (agents.emission.guard).

Cancelled orders are few: each is remembered here, in memory, from its delete. Emitted
orders are most orders: remembering each here would cost memory per order, so the table
itself is swept instead, a slice of its keys per check, paced so that a whole pass over a
partition takes about a quarter of the retention (a marker lives at most about 1.25 times
STATE_RETENTION_S). The agent checks that an order is still deleted, or still the same
marker, before dropping it.
"""

from __future__ import annotations

from enum import Enum


class MarkerFate(Enum):
    KEEP = "keep"
    DROP = "drop"  # older than the retention
    RESTART = "restart"  # written before markers had a time: its retention starts now


class Retention:
    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._deleted_at: dict[int, dict[str, float]] = {}  # per partition, in the order seen
        self._swept_to: dict[int, str] = {}  # per partition: the last key the sweep read

    def deleted(self, partition: int, order_id: str, at: float) -> None:
        """The order was found deleted at `at` (the first time counts)."""
        self._deleted_at.setdefault(partition, {}).setdefault(order_id, at)

    def expired(self, partition: int, now: float) -> list[str]:
        """The orders of the partition deleted at least keep_s ago, forgotten here."""
        waiting = self._deleted_at.get(partition, {})
        due = []
        for order_id, at in waiting.items():  # oldest first: stop at the first one not due
            if now - at < self.keep_s:
                break
            due.append(order_id)
        for order_id in due:
            del waiting[order_id]
        return due

    def keep_only(self, partitions: set[int]) -> None:
        """Forget partitions this worker no longer owns (their next owner recovers them)."""
        for partition in set(self._deleted_at) - partitions:
            del self._deleted_at[partition]
        for partition in set(self._swept_to) - partitions:
            del self._swept_to[partition]

    def marker_fate(self, made_at: int, now: float) -> MarkerFate:
        """What the sweep does with a stored marker made at `made_at` (0: no time known)."""
        if made_at == 0:
            return MarkerFate.RESTART
        return MarkerFate.DROP if now - made_at >= self.keep_s else MarkerFate.KEEP

    def sweep_size(self, stored_keys: int, check_every_s: float, least: int = 1000) -> int:
        """How many of a partition's stored keys a check reads, for a whole pass to take
        about keep_s / 4."""
        return max(least, int(stored_keys * check_every_s / (self.keep_s / 4)) + 1)

    def sweep_from(self, partition: int) -> str | None:
        """The key after which the partition's sweep goes on (None: from the first key)."""
        return self._swept_to.get(partition)

    def swept(self, partition: int, last_key: str | None) -> None:
        """The sweep read up to last_key; None: it reached the end and starts again."""
        if last_key is None:
            self._swept_to.pop(partition, None)
        else:
            self._swept_to[partition] = last_key

    def waiting(self) -> int:
        return sum(len(orders) for orders in self._deleted_at.values())
