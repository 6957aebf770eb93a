"""The contenders as local processes: ours (Faust workers), Quix Streams, the legacy pipeline's consumers.

Each gets, from the scratch settings it runs against, its own output topic (LogAppendTime,
so appends are timed by the broker), consumer group(s), and Redis key prefix or, for ours,
its own app id: no contender can see another's offsets, state or locks.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient
from confluent_kafka import ConsumerGroupState

from bench.stream import create_output_topic
from config import Settings
from stack import process
from stack.services import StackLayout, grant_kafka_acls
from stack.workers import start_workers

KINDS = ("ours", "quix", "quix-noclaim", "legacy")


@dataclass(frozen=True)
class Contender:
    kind: str  # one of KINDS
    processes: int
    round: int = 0  # a repeated throughput run: its own topic, groups and keys

    def again(self, round_: int) -> Contender:
        return Contender(self.kind, self.processes, round_)

    @property
    def label(self) -> str:
        return f"{self.kind} x{self.processes}"

    def slug(self, scratch: Settings) -> str:
        again = f"_r{self.round}" if self.round else ""
        return f"{scratch.mysql_database}_{self.kind}{self.processes}{again}"

    def output_topic(self, scratch: Settings) -> str:
        return f"{self.slug(scratch)}_final"

    def redis_prefix(self, scratch: Settings) -> str:
        return f"{self.slug(scratch)}:"

    def groups(self, scratch: Settings) -> list[str]:
        """The consumer groups that read the CDC topics."""
        if self.kind == "legacy":
            return [f"{self.slug(scratch)}-orders", f"{self.slug(scratch)}-details"]
        return [self.slug(scratch)]

    def peer_commands(self, scratch: Settings) -> list[list[str]]:
        """argv of each peer process (ours runs through stack.workers instead)."""
        python, slug = sys.executable, self.slug(scratch)
        common = ["--group", slug, "--prefix", self.redis_prefix(scratch)]
        if self.kind == "legacy":
            return [[python, "-m", "bench.peers.legacy", "orders", *common],
                    [python, "-m", "bench.peers.legacy", "details", "--output-topic",
                     self.output_topic(scratch), *common]]
        claim = "--claim" if self.kind == "quix" else "--no-claim"
        return [[python, "-m", "bench.peers.quix_completion", "--output-topic", self.output_topic(scratch),
                 *common, claim, "--state-dir", str(scratch.stack_home / "peers" / f"{slug}-{n}")]
                for n in range(self.processes)]


def wait_groups_stable(scratch: Settings, groups: list[str], timeout_s: float = 120) -> None:
    """Until every group has members and a finished rebalance."""
    admin = AdminClient(scratch.kafka_client_config())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = [f.result(timeout=10) for f in admin.describe_consumer_groups(groups).values()]
        if all(g.state == ConsumerGroupState.STABLE and g.members for g in described):
            return
        time.sleep(0.5)
    raise TimeoutError(f"consumer groups {groups} not stable after {timeout_s:.0f} s")


@contextmanager
def running(contender: Contender, scratch: Settings, web_port: int) -> Iterator[None]:
    """The contender's processes, started against `scratch`, stopped on exit."""
    create_output_topic(scratch, contender.output_topic(scratch))
    grant_kafka_acls(scratch, peer=contender.slug(scratch))
    if contender.kind == "ours":
        own = scratch.model_copy(update={"stream_app_id": contender.slug(scratch),
                                         "order_final_topic": contender.output_topic(scratch),
                                         "faust_web_port": web_port})
        workers = start_workers(own, contender.processes)
        stops = [worker.stop for worker in workers]
        state_dirs = [worker.datadir for worker in workers]
    else:
        layout = StackLayout(scratch.stack_home)
        names = [f"{contender.slug(scratch)}-{n}" for n in range(len(contender.peer_commands(scratch)))]
        for name, argv in zip(names, contender.peer_commands(scratch)):
            process.start(argv, pidfile=layout.pidfile(name), logfile=layout.logfile(name), env=scratch.as_env())
        stops = [lambda name=name: process.stop(layout.pidfile(name), grace_s=30) for name in names]
        state_dirs = [scratch.stack_home / "peers" / name for name in names]
    try:
        yield
    finally:
        for stop in stops:
            stop()
        for state_dir in state_dirs:
            shutil.rmtree(state_dir, ignore_errors=True)
