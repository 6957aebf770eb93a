"""`python -m streams rebuild|dead-letters|broker-metrics`: operations on the stream beside its workers."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Annotated

import typer
from confluent_kafka import KafkaException

from cdc.topics import TopicMissing
from config import settings
from config.cli import run
from streams import broker_metrics
from streams.dead_letters import DeadLetter, printable, read_dead_letters, replay, select, since_ms
from streams.rebuild import RebuildWorker, wait_caught_up

cli = typer.Typer(help="Operate the stream: rebuild an output topic from the CDC topics; list and replay "
                       "dead letters; serve the brokers' view of it to Prometheus.", no_args_is_help=True, add_completion=False)
dead_letters = typer.Typer(help="The records the stream could not use (DEAD_LETTER_TOPIC).", no_args_is_help=True)
cli.add_typer(dead_letters, name="dead-letters")

Since = Annotated[str | None, typer.Option(help="Only those dead-lettered since: 30s, 15m, 2h, 1d or an ISO time.")]
Reason = Annotated[str | None, typer.Option(help="Only those whose reason contains this text (any case).")]


@cli.callback()
def commands() -> None:
    """Operate the stream beside its workers."""


@cli.command()
def rebuild(
    output: Annotated[str, typer.Option(help="The topic to derive (created if missing); never the live one.")],
    web_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the rebuild worker's web server.")] = 6166,
    quiet_s: Annotated[float, typer.Option(min=0.1, help="Caught up once nothing new was emitted for this long.")] = 10.0,
    timeout_s: Annotated[float, typer.Option(min=1, help="Longest run.")] = 3600.0,
) -> None:
    """Derive a fresh output topic from the CDC topics from their beginning, exactly once per completed order, beside the live stream; stop when caught up.

    The rebuild is a worker of its own application (own consumer group, state and Redis guard keys), so it and the live stream never block or duplicate each other. Run it again with the same --output to resume. Check the result with `python -m source audit --topic <output>`.
    """
    if output == settings.order_final_topic:
        typer.echo(f"--output {output} is the live stream's topic: rebuild into a new one "
                   f"(for example --output {output}_rebuilt)", err=True)
        raise typer.Exit(2)
    worker = RebuildWorker(settings, output, web_port)
    typer.echo(f"rebuilding {output} as {worker.app_id}; worker log {worker.logfile}")
    process = worker.start()
    try:
        progress = wait_caught_up(worker, process, quiet_s=quiet_s, timeout_s=timeout_s, report=typer.echo)
    except (RuntimeError, TimeoutError) as error:
        typer.echo(f"rebuild failed: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        worker.stop(process)
    typer.echo(f"rebuilt {output}: {progress.completed:,} orders emitted from {progress.events_in:,} CDC records. "
               f"Check it: python -m source audit --topic {output}")


@cli.command("broker-metrics")
def broker_metrics_command(
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port to serve on "
                                                                   "(default BROKER_METRICS_PORT, 9308).")] = None,
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 for a Prometheus elsewhere.")] = "127.0.0.1",
) -> None:
    """Serve GET /metrics for Prometheus: the consumer group's lag per CDC partition and the records appended to the CDC, order_final, alert and dead-letter topics, asked of the brokers at each scrape, so they are known while every worker is down (config/alerts.yml reads them)."""
    chosen_port = port or settings.broker_metrics_port
    typer.echo(f"serving the brokers' view of group {settings.stream_app_id} at http://{host}:{chosen_port}/metrics")
    try:
        broker_metrics.serve(settings, chosen_port, host)
    except OSError as error:
        typer.echo(f"cannot serve on {host}:{chosen_port}: {error.strerror}. Is one running already? "
                   "Choose another with --port (and list it in Prometheus' orderpipe-broker job)", err=True)
        raise typer.Exit(2) from None


def chosen(since: str | None, reason: str | None, offsets: list[int] | None = None) -> list[DeadLetter]:
    try:
        since_at = None if since is None else since_ms(since, int(time.time() * 1000))
        letters = read_dead_letters(settings)
    except ValueError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    except TopicMissing:
        letters = []  # nothing was ever dead-lettered
    except KafkaException as error:
        typer.echo(f"cannot read {settings.dead_letter_topic} at {settings.kafka_bootstrap}: {error}. "
                   "Is the stack up? `python -m stack up`", err=True)
        raise typer.Exit(1) from None
    return select(letters, since=since_at, reason=reason, offsets=offsets or ())


@dead_letters.command("list")
def list_dead_letters(since: Since = None, reason: Reason = None,
                      limit: Annotated[int, typer.Option(min=1, help="Newest this many.")] = 50) -> None:
    """List dead letters: offset in the dead-letter topic, when, reason, source record, key, first bytes."""
    letters = chosen(since, reason)
    for letter in letters[-limit:]:
        at = datetime.fromtimestamp(letter.dead_at_ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        key = printable((letter.key or b"").decode("utf-8", errors="replace")[:40])
        source = f"{letter.topic}[{_shown(letter.partition)}]@{_shown(letter.source_offset)}"
        typer.echo(f"{letter.offset:>7}  {at}  {printable(source)}  key {key}  {printable(letter.reason)}  "
                   f"| {letter.preview()}")
    typer.echo(f"{len(letters):,} dead letters in {settings.dead_letter_topic}"
               + (f" (the newest {limit} shown)" if len(letters) > limit else ""))


@dead_letters.command("replay")
def replay_dead_letters(
    offset: Annotated[list[int] | None, typer.Option(min=0, help="Dead-letter offsets to replay (repeat the option).")] = None,
    since: Since = None, reason: Reason = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
) -> None:
    """Produce the chosen dead letters again, unchanged, to their source topic and partition (after a fix to what rejected them), as the replay's Kafka role (KAFKA_REPLAY_USER: it may write the CDC topics only). A letter naming another topic, or a partition its topic lacks, is refused and listed (exit 1). Replaying twice is harmless: the stream ignores a change it has applied."""
    if not (offset or since or reason or all_):
        typer.echo("choose what to replay: --offset N (repeatable), --since, --reason, or --all", err=True)
        raise typer.Exit(2)
    letters = chosen(since, reason, offset)
    try:
        replayed, refused = replay(settings, letters)
    except (RuntimeError, KafkaException) as error:
        typer.echo(f"replay failed: {printable(str(error))}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"replayed {replayed:,} records to their source topics")
    if refused:
        for letter_offset, why in sorted(refused.items()):
            typer.echo(f"refused dead letter {letter_offset}: {why}", err=True)
        typer.echo(f"{len(refused):,} dead letters refused: they name no CDC topic partition of these settings "
                   "(written by something other than the stream?)", err=True)
        raise typer.Exit(1)


def _shown(number: int | None) -> str:
    return "?" if number is None else str(number)


if __name__ == "__main__":
    run(cli)
