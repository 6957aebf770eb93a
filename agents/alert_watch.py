"""Which orders to look at again for alerts, and when: pure bookkeeping, per partition.

- Incomplete orders by their last change in the source (oldest first, about): one quiet for
  `stall_after_s` is due a `stalled` check, once. (The agent checks only partitions read to
  their ends, so "quiet" means quiet in the shop, not an unread backlog.)
- Orders whose alert could not go out yet (claimed elsewhere, Redis away, a failed send) or
  that recovery found owing one: due at the next check.
- Alerts in flight (sent, not yet recorded), so none is sent twice meanwhile.
The worker checks due orders when its check tick arrives (agents.partition_slice).
"""

from __future__ import annotations

from agents.alerts import Alert


class AlertWatch:
    def __init__(self, stall_after_s: float) -> None:
        self.stall_after_s = stall_after_s
        self._quiet_since: dict[int, dict[str, float]] = {}
        self._again: dict[int, set[str]] = {}
        self.in_flight: set[Alert] = set()

    def changed(self, partition: int, order_id: str, now: float, incomplete: bool) -> None:
        """The order changed: an incomplete one's quiet time starts again; others need none."""
        quiet = self._quiet_since.setdefault(partition, {})
        quiet.pop(order_id, None)
        if incomplete:
            quiet[order_id] = now

    def again(self, partition: int, order_id: str) -> None:
        """Look at the order again at the next check."""
        self._again.setdefault(partition, set()).add(order_id)

    def has_work(self, partition: int, now: float) -> bool:
        quiet = self._quiet_since.get(partition)
        oldest = next(iter(quiet.values()), None) if quiet else None
        return bool(self._again.get(partition)) or (oldest is not None and now - oldest >= self.stall_after_s)

    def partitions_with_work(self, now: float) -> list[int]:
        return [p for p in set(self._quiet_since) | set(self._again) if self.has_work(p, now)]

    def due(self, partition: int, before: float) -> set[str]:
        """Orders to check now: quiet since before `before` (each once), and those asked for again."""
        quiet = self._quiet_since.get(partition, {})
        stalled = []
        for order_id, since in quiet.items():
            if since > before:
                break
            stalled.append(order_id)
        for order_id in stalled:
            del quiet[order_id]
        return set(stalled) | self._again.pop(partition, set())

    def keep_only(self, partitions: set[int]) -> None:
        """Forget partitions this worker no longer owns (their next owner recovers them)."""
        for book in (self._quiet_since, self._again):
            for partition in set(book) - partitions:
                del book[partition]

    def watched(self) -> int:
        return sum(map(len, self._quiet_since.values())) + sum(map(len, self._again.values()))
