"""`python -m cdc register|watch|heal|status|delete|show|snapshot`: the Debezium connector of
project_db, a look at any topic's newest messages, and incremental snapshots (cdc.incremental_snapshot)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import httpx
import mysql.connector
import typer
from confluent_kafka import KafkaException

from cdc import incremental_snapshot as incremental, rest
from cdc.connector import CDC_TABLES, connector_config
from cdc.topics import TopicMissing, read_to_end
from config import settings
from config.cli import run

cli = typer.Typer(help="Debezium CDC of project_db into Kafka topics mysql.project_db.<table>, "
                       "through Kafka Connect's REST API (KAFKA_CONNECT_URL).",
                  no_args_is_help=True, add_completion=False)
Flavor = Annotated[str | None, typer.Option(help="mariadb (local stack) or mysql (MySQL 8); "
                                                 "default: CDC_CONNECTOR.")]


def _unreachable(error: httpx.HTTPError) -> typer.Exit:
    if isinstance(error, httpx.HTTPStatusError) and error.response.status_code == 401:
        typer.echo(f"Kafka Connect at {settings.kafka_connect_url} refused the login: set KAFKA_CONNECT_REST_USER "
                   "and KAFKA_CONNECT_REST_PASSWORD (the local stack's are in its secrets file, made by "
                   "`python -m stack up`)", err=True)
        return typer.Exit(2)
    typer.echo(f"Kafka Connect at {settings.kafka_connect_url} did not answer ({error}). "
               "Is the stack up? `python -m stack up`", err=True)
    return typer.Exit(1)


@cli.command()
def register(
    flavor: Flavor = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for RUNNING.")] = 120,
) -> None:
    """Create or update the connector (idempotent PUT) and wait until it and its task run.

    A failed task's trace is printed and the command exits 1.
    """
    config = connector_config(settings, flavor)
    name = settings.cdc_connector_name
    with rest.client(settings) as connect:
        try:
            created = rest.put_config(connect, name, config)
            report = rest.wait_running(connect, name, timeout)
        except httpx.HTTPError as error:
            raise _unreachable(error) from None
        except (rest.ConnectorFailed, rest.ConnectorNotRunning) as error:
            typer.echo(f"connector {name}: {error}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"connector {name} {'created' if created else 'updated'} "
               f"({config['connector.class'].rsplit('.', 1)[-1]}); "
               f"{len(report['tasks'])} task(s) RUNNING")


@cli.command()
def watch(
    flavor: Flavor = None,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between checks.")] = 10,
) -> None:
    """Register, then keep the connector running until interrupted (a Procfile/compose process).

    Re-registers it if it disappears; restarts FAILED tasks after printing their trace.
    """
    config = connector_config(settings, flavor)
    name = settings.cdc_connector_name

    def keep_running(connect: httpx.Client) -> None:
        report = rest.status(connect, name)
        if report is None:
            rest.put_config(connect, name, config)
            typer.echo(f"connector {name} registered")
        else:
            _restart_failed(connect, name, report)
    _every(interval, keep_running)


@cli.command()
def heal(
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between checks.")] = 5,
) -> None:
    """Restart the FAILED tasks of every connector on Kafka Connect until interrupted.

    `python -m stack up` runs one beside the stack: a task that fails when Kafka Connect
    restarts (MariaDB error 4052, its old binlog session still open) is restarted
    without anyone at the keyboard. It registers nothing (that is `watch`).
    """
    failures: dict[str, int] = {}  # restarts in a row per connector that failed again
    not_before: dict[str, float] = {}

    def restart_every_failed(connect: httpx.Client) -> None:
        for name in rest.names(connect):
            report = rest.status(connect, name)
            if report is None or rest.failure(report) is None:
                failures.pop(name, None)
                continue
            if time.monotonic() >= not_before.get(name, 0.0):
                _restart_failed(connect, name, report)
                failures[name] = failures.get(name, 0) + 1
                not_before[name] = time.monotonic() + retry_after_s(failures[name], interval)
    _every(interval, restart_every_failed)


def retry_after_s(restarts_in_a_row: int, interval_s: float, longest_s: float = 600) -> float:
    """How long a connector that failed again after `restarts_in_a_row` restarts waits for the
    next: one interval, then doubling up to ten minutes (a connector whose database is gone
    fails for good; it is not restarted in a loop)."""
    return min(longest_s, interval_s * 2 ** (restarts_in_a_row - 1))


def _restart_failed(connect: httpx.Client, name: str, report: dict) -> None:
    if why := rest.failure(report):
        typer.echo(f"connector {name} failed:\n{why}", err=True)
        typer.echo(f"connector {name}: restarted {', '.join(rest.restart_failed(connect, name, report))}")


def _every(interval: float, check) -> None:
    with rest.client(settings) as connect:
        while True:
            try:
                check(connect)
            except httpx.HTTPError as error:
                typer.echo(f"Kafka Connect at {settings.kafka_connect_url} unreachable ({error}); "
                           f"retrying in {interval:.0f} s", err=True)
            except rest.ConnectorFailed as error:  # a config Connect refuses: said each time, never a crash loop
                typer.echo(f"{error}; retrying in {interval:.0f} s", err=True)
            time.sleep(interval)


@cli.command()
def status() -> None:
    """Print the connector's status as JSON. Exits 1 unless it and its tasks are RUNNING."""
    with rest.client(settings) as connect:
        try:
            report = rest.status(connect, settings.cdc_connector_name)
        except httpx.HTTPError as error:
            raise _unreachable(error) from None
    if report is None:
        typer.echo(f"connector {settings.cdc_connector_name} is not registered: `python -m cdc register`")
        raise typer.Exit(1)
    typer.echo(json.dumps(report, indent=2))
    if not rest.is_running(report):
        raise typer.Exit(1)


@cli.command()
def delete() -> None:
    """Delete the connector. Its topics and its stored offsets stay."""
    with rest.client(settings) as connect:
        try:
            existed = rest.delete(connect, settings.cdc_connector_name)
        except httpx.HTTPError as error:
            raise _unreachable(error) from None
    typer.echo(f"connector {settings.cdc_connector_name} {'deleted' if existed else 'was not registered'}")


@cli.command()
def show(
    topic: Annotated[str, typer.Argument(help="A topic, e.g. mysql.project_db.orders or order_final.")],
    last: Annotated[int, typer.Option(min=1, help="How many of the newest messages.")] = 3,
) -> None:
    """Print a topic's newest messages, one JSON line each: partition, offset, key, value."""
    try:
        messages = read_to_end(settings, topic, last=last, raw=True)
    except TopicMissing as error:
        typer.echo(f"{error}; `python -m stack doctor` lists what exists", err=True)
        raise typer.Exit(1) from None
    for message in sorted(messages, key=lambda m: (m.timestamp_ms, m.partition, m.offset))[-last:]:
        typer.echo(json.dumps({"partition": message.partition, "offset": message.offset,
                               "key": _text(message.key), "value": _json_or_text(message.value)}))


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _json_or_text(raw: bytes | None):
    try:
        return None if raw is None else json.loads(raw)
    except ValueError:
        return _text(raw)



@cli.command()
def snapshot(
    table: Annotated[list[str], typer.Option(help=f"A captured table to read again (repeatable): "
                                                  f"{', '.join(CDC_TABLES)}.")],
    where: Annotated[str | None, typer.Option(help="Only rows matching this SQL condition (on every table "
                                                   "named), e.g. \"id IN ('a', 'b')\".")] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for it to finish.")] = 3600,
) -> None:
    """Ask the connector for an incremental snapshot (Debezium's signal table) and wait until it has finished, a progress bar per table.

    The tables' current rows (those matching --where) go to their CDC topics again as read
    (`r`) records, beside the live changes: the way back once retention has cut a CDC topic.
    Then rebuild: `python -m streams rebuild --output <topic>`. A snapshot already under way is
    reported, not started twice.
    """
    if missing := incremental.uncaptured(table):
        typer.echo(f"--table {', '.join(missing)}: not captured by the connector; one of {', '.join(CDC_TABLES)}",
                   err=True)
        raise typer.Exit(2)
    tables = list(dict.fromkeys(table))
    try:
        running = incremental.under_way(settings)
        if running.snapshotting:
            typer.echo(f"a snapshot of {', '.join(running.snapshotting)} is under way: wait for it to finish "
                       "(or stop it with a stop-snapshot signal) before asking for another", err=True)
            raise typer.Exit(2)
        totals = incremental.rows_to_read(settings, tables, where)
        counter = incremental.ReadCounter(settings, tables)
        try:
            _, signalled_at = incremental.request(settings, tables, where)
            typer.echo(f"snapshot of {', '.join(tables)} requested "
                       f"({sum(totals.values()):,} rows{' where ' + where if where else ''})")
            started = time.monotonic()
            rows = incremental.wait(settings, signalled_at, counter, totals, timeout_s=timeout)
        finally:
            counter.close()
    except mysql.connector.ProgrammingError as error:
        typer.echo(f"--where {where!r} is not a condition on {', '.join(tables)}: {error.msg}", err=True)
        raise typer.Exit(2) from None
    except (mysql.connector.Error, KafkaException, httpx.HTTPError) as error:
        typer.echo(f"cannot reach the source, Kafka or Kafka Connect ({error}). Is the stack up? "
                   "`python -m stack up`", err=True)
        raise typer.Exit(1) from None
    except incremental.SnapshotError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    read, seconds = sum(rows.values()), time.monotonic() - started
    typer.echo(f"snapshot completed: {read:,} rows in {seconds:.1f} s ({read / seconds:,.0f} rows/s)")


if __name__ == "__main__":
    run(cli)
