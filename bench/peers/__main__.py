"""Peer benchmarks: ours beside Quix Streams and the legacy pipeline's approach, same broker, same input.

    python -m bench.peers [--orders N] [--rounds N] [--workers N ...] [--no-latency]

Contenders (bench/peers/contenders.py): ours = our Faust workers (stack.workers); quix = the
same completion rule as a Quix Streams app (bench/peers/quix_completion.py), as many
processes as ours, with its Redis claim, and quix-noclaim without it; legacy = the legacy
pipeline's two plain consumers with a Redis cache and a 10 s `SET NX` lock
(bench/peers/legacy.py), one process each, compared with ours on 2 workers.
Each has its own output topic, consumer groups and Redis keys.

\b
- Throughput: one scratch database; `--orders` orders with the chaos mix are written and the
  CDC topics filled first; then each contender in turn reads them from the start, `--rounds`
  times in turn (the median is reported, with the range). events/s = CDC records / (its first
  output append -> its last); `wall` also counts its startup; `cores`: how many of the
  machine's cores were busy over the same window, every process counted (the contender, the
  broker, Redis...).
- Latency: per contender a fresh scratch database, the same writes from one random seed (so
  the same order ids) at `--rate` orders/s once its consumer groups are stable; for each completed order,
  last write's commit -> output append (broker LogAppendTime), p50 and p99.
- Audit of every output against the manifest: missing, duplicate copies, unexpected (not
  complete in the database), wrong contents (products or header differ).

Ratios: throughput ours/peer and p99 latency peer/ours, against ours with the same process
count; above 1.00x means ours is ahead. Every contender's throughput is also given against
Quix Streams at its best (`vs best`: quix-noclaim x1, the co-partitioned `concat` and a
stateful apply, no repartition and no claim), with the machine's CPU per CDC record (`µs/rec`:
its busy cores over the window per record, every process counted).

Exits 1 if ours' output fails its audit in any run; the peers' audits are figures to compare,
not the benchmark's verdict.
"""

from __future__ import annotations

import importlib.util
import math
import random
import statistics
import uuid
from typing import Annotated

import redis
import typer
from confluent_kafka.admin import AdminClient

from bench.peers.contenders import Contender
from bench.peers.measure import Latency, Throughput, latency, throughput
from bench.stream import CUSTOMERS, forget_emissions, isolated, wait_topics_still
from bench.verdict import audit_verdict
from config import Settings, settings
from config.cli import run
from source import database, generate
from source.order_final_audit import Audit
from source.traffic import ChaosMix, InsertOrder, Truth, plan

WEB_PORT = 17166


def fresh_seed() -> int:
    """Order ids follow from the seed, and ours' Redis guard remembers every id it sent."""
    return random.SystemRandom().randrange(2**31)


def forget_run(scratch: Settings, run: str, order_ids: list[str]) -> None:
    """Drop this run's Redis keys: the peers' by prefix, ours' guard keys by order id."""
    client = redis.Redis.from_url(scratch.redis_operator_url)
    for key in client.scan_iter(match=f"*{run}*", count=1000):
        client.delete(key)
    forget_emissions(scratch, order_ids)


def drop_topics(run: str) -> None:
    admin = AdminClient(settings.kafka_client_config())
    names = [name for name in admin.list_topics(timeout=10).topics if run in name]
    for future in admin.delete_topics(names).values() if names else ():
        future.result(timeout=30)


def audit_counts(result: Audit) -> tuple[int, int, int, int]:
    return (len(result.missing), sum(result.duplicates.values()), len(result.unexpected),
            len(result.wrong_contents))


def audit_cells(*results: Audit) -> str:
    missing, duplicates, unexpected, wrong = (sum(column) for column in zip(*map(audit_counts, results)))
    return f"{missing:>7,} {duplicates:>5,} {unexpected:>6,} {wrong:>6,}"


def ratio(ours: float, peer: float) -> str:
    return f"{ours / peer:.2f}x" if peer and not math.isnan(peer) and not math.isnan(ours) else "n/a"


def median_speed(runs: list[Throughput]) -> float:
    return statistics.median(run.events_per_s for run in runs)


BEST = Contender("quix-noclaim", 1)  # Quix Streams at its best: every contender's `vs best`


def cpu_us_per_record(run: Throughput) -> float:
    """The machine's CPU per CDC record over the run's window: busy cores / (records / s)."""
    return run.cores * 1e6 / run.events_per_s if run.events_per_s else float("nan")


def report(contenders: list[Contender], speeds: dict[Contender, list[Throughput]], lags: dict[Contender, Latency],
           records: int, expected: int, rate: float) -> None:
    def ours_for(c: Contender) -> Contender:
        return Contender("ours", c.processes)

    rounds = len(speeds[contenders[0]])
    print(f"\nthroughput: {records:,} CDC records pre-filled, {expected:,} complete orders expected, "
          f"median of {rounds} round(s); the audit columns add up every round")
    best = median_speed(speeds[BEST]) if speeds.get(BEST) else float("nan")
    print(f"{'contender':<16} {'events/s':>9} {'range':>13} {'wall s':>7} {'cores':>5} {'µs/rec':>6} {'ours/peer':>9} "
          f"{'vs best':>7}  {'missing':>7} {'dups':>5} {'unexp':>6} {'wrong':>6}")
    for c in contenders:
        runs = speeds[c]
        speed = median_speed(runs)
        spread = f"{min(r.events_per_s for r in runs):,.0f}-{max(r.events_per_s for r in runs):,.0f}"
        vs = "" if c.kind == "ours" else ratio(median_speed(speeds[ours_for(c)]), speed)
        wall = statistics.median(r.wall_s for r in runs)
        cores = statistics.median(r.cores for r in runs)
        cpu = statistics.median(cpu_us_per_record(r) for r in runs)
        print(f"{c.label:<16} {speed:>9,.0f} {spread:>13} {wall:>7.1f} {cores:>5.2f} {cpu:>6.1f} {vs:>9} "
              f"{ratio(speed, best):>7}  {audit_cells(*(r.audit for r in runs))}")
    if not lags:
        return
    latency_expected = next(iter(lags.values())).audit.expected
    print(f"\nlatency at {rate:,.0f} orders/s, {latency_expected:,} complete orders expected: "
          "last commit -> output append")
    print(f"{'contender':<16} {'p50 ms':>8} {'p99 ms':>8} {'p99 peer/ours':>13}  {'missing':>7} {'dups':>5} "
          f"{'unexp':>6} {'wrong':>6}")
    for c, lag in lags.items():
        ours = lags.get(ours_for(c))
        vs = "" if c.kind == "ours" or ours is None else ratio(lag.p99_ms, ours.p99_ms)
        print(f"{c.label:<16} {lag.p50_ms:>8,.0f} {lag.p99_ms:>8,.0f} {vs:>13}  {audit_cells(lag.audit)}")


def ours_audits(speeds: dict[Contender, list[Throughput]], lags: dict[Contender, Latency]) -> list[tuple[str, Audit]]:
    """The audit of each of ours' runs, labelled: the ones the benchmark's verdict rests on."""
    return ([(f"throughput round {number} {c.label}", run.audit)
             for c, runs in speeds.items() if c.kind == "ours" for number, run in enumerate(runs, start=1)]
            + [(f"latency {c.label}", lag.audit) for c, lag in lags.items() if c.kind == "ours"])


def require_peers(find=importlib.util.find_spec) -> None:
    """Refuse at once, naming the fix, when the Quix Streams contender could not start (its
    process would die on import and the run wait out its timeout)."""
    if find("quixstreams") is None:
        raise typer.BadParameter("Quix Streams is not installed: pip install -e '.[bench]'", param_hint="quixstreams")


def main(
    orders: Annotated[int, typer.Option(min=1, help="Orders pre-filled for the throughput runs.")] = 5_000,
    latency_orders: Annotated[int, typer.Option(min=1, help="Orders written live in each latency run.")] = 3_000,
    rate: Annotated[float, typer.Option(min=0, help="Orders/s written in the latency runs.")] = 500,
    workers: Annotated[list[int], typer.Option(
        min=1, help="Processes for ours and quix in the throughput runs (repeat the option); the latency "
             "runs use the largest. legacy always runs its two consumers.")] = [1, 2],
    quiet_s: Annotated[float, typer.Option(
        min=0.1, help="A contender whose output stays quiet this long is done (one that misses orders).")] = 20,
    timeout_s: Annotated[float, typer.Option(min=1, help="Longest wait for one contender's output.")] = 600,
    rounds: Annotated[int, typer.Option(min=1, help="Throughput runs per contender, taken in turn; "
                                                    "the median is reported.")] = 1,
    with_latency: Annotated[bool, typer.Option("--latency/--no-latency",
                                               help="Run the latency phase after the throughput runs.")] = True,
) -> None:
    """Run ours, Quix Streams and the legacy pipeline's approach on the same input; print figures and ratios."""
    require_peers()
    run = uuid.uuid4().hex[:8]
    counts = sorted(set(workers))
    # legacy runs two processes, so ours x2 is its reference in both phases.
    contenders = list(dict.fromkeys([*(Contender(kind, n) for n in counts for kind in ("ours", "quix", "quix-noclaim")),
                                     Contender("ours", 2), Contender("legacy", 2)]))
    latency_contenders = list(dict.fromkeys([Contender("ours", max(counts)), Contender("quix", max(counts)),
                                             Contender("ours", 2), Contender("legacy", 2)]))
    speeds: dict[Contender, list[Throughput]] = {c: [] for c in contenders}
    lags: dict[Contender, Latency] = {}
    our_ids: list[str] = []
    try:
        with isolated(f"peers_{run}_tp") as scratch:
            writes = plan(orders, seed=fresh_seed(), customers=CUSTOMERS, chaos=ChaosMix())
            truth = Truth()
            generate.run(database.connect(scratch), writes, total_orders=orders, rate=0, truth=truth)
            manifest = truth.manifest()
            our_ids += [w.order_id for w in writes if isinstance(w, InsertOrder)]
            records = wait_topics_still(scratch)
            for round_, contender in ((r, c) for r in range(rounds) for c in contenders):
                if contender.kind == "ours":
                    forget_emissions(scratch, our_ids)  # an earlier ours run sent them already
                result = throughput(contender.again(round_), scratch, manifest, records, web_port=WEB_PORT,
                                    quiet_s=quiet_s, timeout_s=timeout_s)
                speeds[contender].append(result)
                print(f"round {round_ + 1}/{rounds} {contender.label}: {result.events_per_s:,.0f} events/s; "
                      f"{result.audit.summary()}", flush=True)
        if not with_latency:
            latency_contenders = []
        latency_writes = plan(latency_orders, seed=fresh_seed(), customers=CUSTOMERS, chaos=ChaosMix())
        our_ids += [w.order_id for w in latency_writes if isinstance(w, InsertOrder)]
        for contender in latency_contenders:
            with isolated(f"peers_{run}_lat_{contender.kind}{contender.processes}") as scratch:
                if contender.kind == "ours":  # the same order ids: an earlier ours run sent them already
                    forget_emissions(scratch, our_ids)
                lags[contender] = latency(contender, scratch, latency_writes, latency_orders, rate,
                                          web_port=WEB_PORT, quiet_s=quiet_s, timeout_s=timeout_s)
            print(f"{contender.label}: p50 {lags[contender].p50_ms:,.0f} ms, p99 {lags[contender].p99_ms:,.0f} ms; "
                  f"{lags[contender].audit.summary()}", flush=True)
        report(contenders, speeds, lags, records, manifest["counts"]["complete"], rate)
        code, line = audit_verdict(ours_audits(speeds, lags))
        print(f"\nours' {line}")
        if code:
            raise typer.Exit(code)
    finally:
        forget_run(settings, run, our_ids)
        drop_topics(run)


if __name__ == "__main__":
    cli = typer.Typer(add_completion=False, rich_markup_mode=None)
    cli.command(help=__doc__)(main)
    run(cli)
