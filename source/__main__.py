"""`python -m source schema|load|generate|audit`: the source database, a shop writing to it, and
the check of `order_final` against it."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Annotated

import mysql.connector
import typer

from cdc.topics import TopicMissing
from config import settings
from config.settings import MysqlRole
from config.cli import run
from source import database, generate as generator
from source.order_final_audit import Audit
from source.reconcile import reconcile
from source.traffic import ChaosMix, Truth, plan

cli = typer.Typer(help="The source database (project_db): schema, reference data, and an order "
                       "generator that writes like a real shop.", no_args_is_help=True,
                  add_completion=False)


def _connect(role: MysqlRole = "owner"):
    try:
        return database.connect(settings, role=role)
    except Exception as error:  # noqa: BLE001 - any connection failure gets the same hint
        typer.echo(f"cannot reach MySQL at {settings.mysql_host}:{settings.mysql_port} as "
                   f"{settings.mysql_login(role)[0]}: {error}\nIs the stack up? `python -m stack up`", err=True)
        raise typer.Exit(1) from None


@cli.command()
def schema() -> None:
    """Create orders, order_details, customers and payment_method if missing (idempotent)."""
    tables = database.apply_schema(_connect())
    typer.echo(f"schema applied; tables: {', '.join(tables)}")


@cli.command()
def load(
    customers: Annotated[int, typer.Option(min=1, help="How many customers to generate.")] = 1_000_000,
    seed: Annotated[int, typer.Option(min=0, help="Same seed, same customers.")] = 42,
) -> None:
    """Apply the schema, then load the 12 payment methods and `customers` seeded customers.

    Uses LOAD DATA LOCAL INFILE in chunks of 100,000 rows; rows already present are kept, so running it twice adds nothing. Prints rows/s.
    """
    connection = _connect()
    database.apply_schema(connection)
    started = time.monotonic()
    inserted = database.load_reference(connection, customers, seed)
    seconds = time.monotonic() - started
    typer.echo(f"customers: {customers:,} generated, {inserted:,} inserted in {seconds:.1f} s "
               f"({customers / seconds:,.0f} rows/s); payment_method: "
               f"{database.count_rows(connection, 'payment_method')} rows")


@cli.command()
def generate(
    orders: Annotated[int, typer.Option(min=1, help="Total orders to write.")] = 25_000,
    rate: Annotated[float, typer.Option(min=0, help="Orders started per second; 0 = as fast as possible.")] = 0.0,
    seed: Annotated[int | None, typer.Option(min=0, help="Same seed, same orders and writes (order ids "
                                                  "included); default: a new seed each run.")] = None,
    chaos: Annotated[bool, typer.Option(help="Alter some orders (see the shares below).")] = True,
    update: Annotated[float, typer.Option(min=0, max=1, help="Share of orders whose num_products is raised or lowered.")] = 0.06,
    cancel: Annotated[float, typer.Option(min=0, max=1, help="Share cancelled: order and details deleted.")] = 0.04,
    redo: Annotated[float, typer.Option(min=0, max=1, help="Share with a detail deleted and re-inserted.")] = 0.05,
    abandon: Annotated[float, typer.Option(min=0, max=1, help="Share left incomplete (details never written).")] = 0.04,
    in_flight: Annotated[int, typer.Option(min=1, help="Orders open at once; their writes interleave.")] = 64,
    customers: Annotated[int, typer.Option(min=0, help="Customer ids to draw from; 0 = the customers table's count.")] = 0,
    manifest: Annotated[Path, typer.Option(help="Where to write the ground truth (JSON).")] = Path("manifest.json"),
) -> None:
    """Write orders like a shop: the order row, then its details, each write its own transaction, interleaved across orders, with an optional chaos mix.

    Chaos only ever alters an order that is still incomplete, so 'complete' happens at most once per order.

    Writes a manifest (JSON) of the ground truth, replayed from the committed writes: which orders are complete and with which products, which were cancelled, which are incomplete.
    """
    try:
        mix = ChaosMix(update, cancel, redo, abandon) if chaos else ChaosMix.off()
    except ValueError as error:  # each share is in range, their sum is not
        raise typer.BadParameter(str(error), param_hint="'--update', '--cancel', '--redo', '--abandon'") from None
    if seed is None:
        seed = secrets.randbelow(2**31)
        typer.echo(f"seed {seed} (pass --seed {seed} to repeat this run on a fresh database)")
    connection = _connect("shop")
    customer_count = customers or database.count_rows(connection, "customers")
    if customer_count == 0:
        typer.echo("no customers loaded: run `python -m source load` first", err=True)
        raise typer.Exit(1)
    writes = plan(orders, seed=seed, customers=customer_count, chaos=mix, in_flight=in_flight)
    truth = Truth()
    meta = {"seed": seed, "orders_requested": orders, "rate": rate, "chaos": vars(mix)}
    try:
        stats = generator.run(connection, writes, total_orders=orders, rate=rate, truth=truth)
    except mysql.connector.IntegrityError as error:
        typer.echo(f"{error.msg}: orders of seed {seed} are already in the database. Use another "
                   "--seed, or leave it out for a new one.", err=True)
        raise typer.Exit(1) from None
    finally:
        result = generator.write_manifest(manifest, truth, meta)
    counts = result["counts"]
    typer.echo(f"{stats.orders:,} orders, {stats.writes:,} writes in {stats.seconds:.1f} s "
               f"({stats.orders_per_s:,.0f} orders/s); complete {counts['complete']:,}, "
               f"incomplete {counts['incomplete']:,}, cancelled {counts['cancelled']:,}; "
               f"manifest: {manifest}")


@cli.command("audit")
def audit_order_final(
    topic: Annotated[str, typer.Option(help="The output topic to audit.")] = settings.order_final_topic,
    wait_s: Annotated[float, typer.Option(
        min=0, help="How long complete orders missing from the topic may still be on their way.")] = 10.0,
    show: Annotated[int, typer.Option(min=0, help="Order ids listed per finding.")] = 5,
) -> None:
    """Compare the output topic with the source database itself: every order whose distinct detail rows number num_products now must be in it once, with those products and header.

    Prints missing, duplicated, wrong-contents and unexpected orders; exits 1 on any. Orders that complete while it reads may show as missing: they get `--wait-s` to arrive. An order whose details changed after it was emitted shows as wrong contents (the stream emits once).
    """
    _connect("reader").close()  # the database reachable, or the hint
    try:
        result = reconcile(settings, topic, wait_s=wait_s)
    except TopicMissing as error:
        typer.echo(f"{error}: has a worker run yet (`faust -A streams.app worker`), and is --topic right?",
                   err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{settings.mysql_database} vs {topic}: {result.summary()}")
    for finding, order_ids in findings(result).items():
        if order_ids:
            more = f" and {len(order_ids) - show:,} more" if len(order_ids) > show else ""
            typer.echo(f"  {finding}: {', '.join(order_ids[:show])}{more}")
    if not result.exact:
        raise typer.Exit(1)


def findings(result: Audit) -> dict[str, list[str]]:
    return {"missing": result.missing, "duplicated": sorted(result.duplicates),
            "wrong contents": result.wrong_contents, "unexpected": result.unexpected}


if __name__ == "__main__":
    run(cli)
