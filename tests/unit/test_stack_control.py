from __future__ import annotations

import socket
from pathlib import Path

import pytest

from config import Settings
from stack import control, process
from stack.install import Toolchain
from stack.services import Service, StackLayout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Node(Service):
    """A node of a cluster that answers only a few probes after it starts, and whose set-up
    needs every node of its wave to answer (as a Kafka cluster's admin requests do)."""

    def __init__(self, name: str, probes_until_healthy: int, events: list[str], layout: StackLayout) -> None:
        settings = Settings(_env_file=None, STACK_HOME=str(layout.home))  # no secrets file
        super().__init__(settings, layout, Toolchain(layout.home / "cache"))
        self.name, self.probes_left, self.events = name, probes_until_healthy, events
        self._port = free_port()

    @property
    def port(self) -> int:
        return self._port

    def argv(self) -> list[str]:
        return ["sleep", "60"]

    def probe(self) -> bool:
        self.probes_left -= 1
        if self.probes_left == 0:
            self.events.append(f"{self.name} healthy")
        return self.probes_left <= 0

    def bootstrap(self) -> None:
        self.events.append(f"{self.name} set up")


def test_a_waves_set_up_runs_once_every_node_of_the_wave_is_healthy(tmp_path: Path):
    layout, events = StackLayout(tmp_path), []
    # given a cluster whose first node answers at once and whose last joins later
    nodes = [Node("node-1", 1, events, layout), Node("node-2", 3, events, layout), Node("node-3", 5, events, layout)]
    try:
        # when the stack brings the wave up
        control.up(nodes, timeout_s=30)
    finally:
        for node in nodes:
            process.stop(layout.pidfile(node.name), grace_s=5)

    # then no node is set up before the last one answers
    assert events == ["node-1 healthy", "node-2 healthy", "node-3 healthy", "node-1 set up", "node-2 set up",
                      "node-3 set up"]


def test_a_second_up_or_rotation_on_one_stack_is_refused_naming_the_first(tmp_path):
    with control.alone(tmp_path, "python -m stack up"):
        with pytest.raises(control.StackBusy, match=r"`python -m stack up` \(pid \d+\) is working on the stack"):
            with control.alone(tmp_path, "python -m stack rotate-secrets"):
                pass
        with control.alone(tmp_path / "another-stack", "python -m stack up"):  # STACK_HOME=.stack-3's own
            pass

    with control.alone(tmp_path, "python -m stack rotate-secrets"):  # free again once the first has ended
        assert (tmp_path / ".control.lock").read_text().startswith("`python -m stack rotate-secrets` (pid ")
