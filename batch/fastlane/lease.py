"""The fast lane's lease on the hot tables, and its progress, in one small object beside the
archive (`bronze/_fast_lane.json`): who runs it, when it last said so, the offsets it has
applied and the records the topics hold beyond them.

While the lease is fresh (renewed within LEASE_S), the fast lane owns the archive, Silver's
tables and `fact_orders`: a second fast lane refuses to start, and the Spark jobs that would
write those tables refuse to run (Spark's S3 log store allows one writer per table, and two
engines committing to one table could lose a commit).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import psutil

from batch.clocks import LEASE_S
from batch.fastlane.delta import Objects
from batch.paths import fast_lane_state
from batch.runs import log
from config import Settings


class LeaseHeld(RuntimeError):
    """Another writer owns the hot tables."""


@dataclass(frozen=True)
class Owner:
    pid: int
    host: str

    @classmethod
    def this_process(cls) -> Owner:
        return cls(os.getpid(), socket.gethostname())

    def says(self) -> str:
        return f"pid {self.pid} on {self.host}"


def fresh(state: dict | None, now: float | None = None) -> bool:
    """Whether a lane's state says it runs: renewed within LEASE_S and not released."""
    if not state or state.get("released"):
        return False
    return (time.time() if now is None else now) - state.get("heartbeat", 0) < LEASE_S


def owner_of(state: dict) -> Owner:
    return Owner(**state["owner"])


def refusal(state: dict, writer: str) -> str:
    """Why `writer` may not write the hot tables now, naming the fix."""
    return (f"{writer} would write the lake's hot tables, which the fast lane owns while it runs "
            f"({owner_of(state).says()}, last seen {time.time() - state['heartbeat']:.0f} s ago): stop it first "
            "(`python -m stack down`, or SIGTERM to that pid), or run only the layers it leaves to Spark "
            "(`python -m batch deferred`)")


class Lease:
    """This process's lease and progress, renewed as it works."""

    def __init__(self, settings: Settings) -> None:
        self.objects, self.location = Objects(settings), fast_lane_state(settings)
        self.owner = Owner.this_process()
        self.state: dict = {}
        self.failures: list[dict] = []  # this process's recent failures of the lane (run.Restarts)
        self.caught_up_at = time.time()  # when the lane last held everything the topics held

    def acquire(self, poll_s: float = 2.0) -> None:
        """Take the lease: at once if it is free, or its owner was a process of this host that
        is gone (a lane killed and started again by its supervisor); else once its owner has
        been silent for LEASE_S. Raises LeaseHeld if the owner keeps renewing it meanwhile."""
        deadline = time.monotonic() + LEASE_S + poll_s
        while fresh(held := self.objects.read(self.location)) and not self.gone(owner_of(held)):
            if time.monotonic() > deadline:
                raise LeaseHeld(f"another fast lane runs for this lake ({owner_of(held).says()}, last seen "
                                f"{time.time() - held['heartbeat']:.0f} s ago); one lane per lake: stop it first")
            log.info("the lease of the hot tables is %s's (last seen %.0f s ago): waiting for it to lapse",
                     owner_of(held).says(), time.time() - held["heartbeat"])
            time.sleep(poll_s)
        self.renew(applied=(held or {}).get("applied", {}), left=None)

    def gone(self, owner: Owner) -> bool:
        """Whether `owner` is this process, or a process of this host that no longer runs."""
        return owner == self.owner or (owner.host == self.owner.host and not psutil.pid_exists(owner.pid))

    def renew(self, *, applied: dict[str, dict[str, int]], left: int | None, caught_up: bool = False) -> None:
        """The lease renewed with the lane's progress; `caught_up`: its last read found no more
        records waiting than it took (as `left == 0` says too)."""
        now = time.time()
        if caught_up or left == 0:
            self.caught_up_at = now
        self.state = {"owner": {"pid": self.owner.pid, "host": self.owner.host}, "heartbeat": now,
                      "applied": applied, "left": left, "caught_up_at": self.caught_up_at,
                      "failures": self.failures}
        self.objects.write(self.location, self.state)

    def release(self) -> None:
        self.objects.write(self.location, {**self.state, "released": True})

    def failed(self, failures: list[dict], *, looping: bool, restart_in_s: float) -> None:
        """The lane failed and starts again in `restart_in_s` (or is crash-looping): for the doctor."""
        self.objects.write(self.location, {**self.state, "owner": {"pid": self.owner.pid, "host": self.owner.host},
                                           "heartbeat": time.time(), "released": True, "failures": failures,
                                           "crash_loop": looping, "restart_at": time.time() + restart_in_s})


def read_state(settings: Settings) -> dict | None:
    return Objects(settings).read(fast_lane_state(settings))
