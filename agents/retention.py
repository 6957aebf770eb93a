"""How long a cancelled order's state is kept: pure bookkeeping, per partition.

A cancelled (deleted) order keeps its state for a while: it remembers the positions of the
order's deletes, so a re-delivered older insert cannot bring the order back. After
STATE_RETENTION_S nothing re-delivered is that old any more in practice, and the state is
dropped (a tombstone in the table and its changelog), so the table does not grow with every
order ever cancelled. The agent checks that an order is still deleted before dropping it (an
order inserted again after its delete keeps its state).
"""

from __future__ import annotations


class Retention:
    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._deleted_at: dict[int, dict[str, float]] = {}  # per partition, in the order seen

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

    def waiting(self) -> int:
        return sum(len(orders) for orders in self._deleted_at.values())
