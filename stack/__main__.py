"""`python -m stack install|up|down|status|logs|doctor|rotate-secrets|compose-env|kafka-access|minio-access`: the local stack of real services on loopback,
and one health check of the whole pipeline."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from minio.error import MinioAdminException, S3Error
from rich.console import Console
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed
from urllib3.exceptions import MaxRetryError, ProtocolError
from rich.table import Table

from config import Settings, settings
from config.cli import run
from config.settings import KAFKA_CLIENT_ROLES
from stack import control, doctor as health, process, rotation, secrets, tls
from stack.install import ExtraUnavailable, InstallError, Toolchain
from stack.services import (BUCKETS, OPTIONAL_SERVICES, KafkaLayoutError, KafkaRefusesLogin, StackLayout,
                            all_services, set_kafka_access, set_minio_access)
from stack.watcher import HEALER, start_healer

cli = typer.Typer(
    help="Local stack for the order pipeline: Kafka (KRaft), Kafka Connect + Debezium, "
         "MariaDB, Redis and MinIO as processes on loopback. Data and logs live under "
         "STACK_HOME (default .stack/), downloads under STACK_CACHE (default ~/.cache/orderpipe).",
    no_args_is_help=True, add_completion=False,
)
console = Console(stderr=True)
MAX_BROKERS = 5
Extra = Enum("Extra", {name: name for name in OPTIONAL_SERVICES}, type=str)
With = Annotated[list[Extra] | None, typer.Option(
    "--with", help="Optional services as well (repeatable): prometheus = Prometheus with config/alerts.yml, "
                   "scraping METRICS_TARGETS and the brokers' view (`python -m streams broker-metrics`).")]


def extras(chosen: list[Extra] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(extra.value for extra in chosen or ()))


@cli.callback()
def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s stack  %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("mysql.connector").setLevel(logging.WARNING)


@cli.command("compose-env")
def compose_env(
    path: Annotated[Path, typer.Option("--to", help="Where to write it (never over an existing file).")] = Path(".env"),
) -> None:
    """Write a `.env` for docker-compose.yml with a random value for each secret, readable by its owner only."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        console.print(f"[red]stack compose-env:[/red] {path} exists: its secrets may be a running stack's; "
                      "move it away first, or write elsewhere with --to", markup=True, highlight=False)
        raise typer.Exit(1) from None
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.compose_env())
    console.print(f"wrote {path} (owner-only): a random value for each of docker-compose.yml's secrets", highlight=False)


@cli.command("kafka-access")
def kafka_access(
    wait: Annotated[float, typer.Option(min=0, help="Seconds to wait for Kafka to let a super user in.")] = 120,
) -> None:
    """Set every role's Kafka SCRAM password and ACLs from the settings, on a Kafka the stack does not run (docker-compose.yml's `kafka-access` service; `stack up` does it at each start).

    Logs in as the tools' user (KAFKA_TOOLS_USER), else the brokers'. Rules the settings do not make are removed. Exits 1 with the reason if Kafka lets in neither.
    """
    if not settings.kafka_login("tools"):
        console.print("stack kafka-access: no Kafka user in the settings (KAFKA_TOOLS_USER and "
                      "KAFKA_TOOLS_PASSWORD, or KAFKA_USER and KAFKA_PASSWORD)", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    try:
        set_kafka_access(settings, wait_s=wait)
    except KafkaRefusesLogin as error:
        console.print(f"[red]stack kafka-access:[/red] {error}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    roles = ", ".join(f"{role} {login[0]}" for role in (*KAFKA_CLIENT_ROLES, "tools")
                      if (login := settings.kafka_login(role)))
    console.print(f"kafka access set at {settings.kafka_bootstrap}: {roles}", highlight=False, soft_wrap=True)


@cli.command("minio-access")
def minio_access(
    wait: Annotated[float, typer.Option(min=0, help="Seconds to wait for MinIO to let its root in.")] = 120,
) -> None:
    """Make the layers' buckets and the lake's users with their policies, as MinIO's root, on a MinIO the stack does not run (docker-compose's `minio-access` service; `stack up` does it at each start).

    Every key comes from the environment, none from the command line. Exits 1 with the reason if MinIO does not let the root in.
    """
    try:
        for attempt in Retrying(stop=stop_after_delay(wait), wait=wait_fixed(2), reraise=True,
                                retry=retry_if_exception_type((MaxRetryError, ProtocolError, OSError))):
            with attempt:
                set_minio_access(settings)
    except (S3Error, MinioAdminException, MaxRetryError, ProtocolError, OSError) as error:
        console.print(f"[red]stack minio-access:[/red] MinIO at {settings.minio_endpoint}: {error}", markup=True,
                      highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    writer, reader = settings.minio_login("writer")[0], settings.minio_login("reader")[0]
    console.print(f"minio access set at {settings.minio_endpoint}: buckets {', '.join(BUCKETS)}; lake writer {writer}"
                  + ("" if reader == writer else f", reader {reader}"), highlight=False, soft_wrap=True)


@cli.command()
def install(with_: With = None) -> None:
    """Install everything the stack and the lake's Spark jobs need, start nothing; a second run finds it all and returns at once.

    Debian's packages (apt-get: MariaDB, Redis, Chromium for the dashboard's browser test); Kafka's and Kafka
    Connect's jars, the Debezium plugins and the Spark jars (S3A, the AWS SDK, Delta Lake, the MariaDB JDBC
    driver, Spark's Kafka source) through Maven with the versions pinned in stack/pom.xml and
    stack/spark-jars.xml; MinIO built with `go install` at a pinned version. Everything but the apt packages
    goes under STACK_CACHE (default ~/.cache/orderpipe); Maven's downloads also stay in its local repository
    (~/.m2). `stack up`, `make demo` and `make test` run this first.
    """
    tools = Toolchain(settings.stack_cache)
    started = time.monotonic()
    try:
        tools.install(extras(with_))
    except ExtraUnavailable as error:
        console.print(f"stack install --with: {error}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except InstallError as error:
        console.print(f"[red]stack install failed:[/red] {error}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    console.print(f"installed in {time.monotonic() - started:.1f} s: {tools.cache} "
                  f"(Kafka {tools.kafka_version}, Debezium {tools.debezium_version}, MinIO, Spark's jars)",
                  highlight=False, soft_wrap=True)


@cli.command()
def up(
    install_only: Annotated[bool, typer.Option(help="Install what is missing, start nothing.")] = False,
    brokers: Annotated[int | None, typer.Option(
        min=1, max=5, help="Kafka brokers to run (default KAFKA_BROKERS, 1). Topics get min(3, brokers) "
                           "replicas; run workers and tools with the same KAFKA_BROKERS.")] = None,
    with_: With = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Make no credentials: Kafka in PLAINTEXT without ACLs, Redis without a password, "
                           "MySQL's and MinIO's development logins (admin). For experiments on a machine of "
                           "your own; `python -m stack doctor` names every open service. A stack keeps the "
                           "mode it was first started with.")] = False,
    tls_: Annotated[bool, typer.Option(
        "--tls", help="Kafka's client listener over TLS (SASL_SSL) with a CA the stack makes "
                      "(<STACK_HOME>/conf/tls/ca.pem, KAFKA_SSL_CA in the secrets file); the stack keeps it "
                      "on at later starts. Stop the stack first when turning it on.")] = False,
) -> None:
    """Install what is missing, start every service, wait until all are healthy. The first
    start makes the stack's credentials (<STACK_HOME>/secrets.env, owner-only), unless
    --insecure.

    Idempotent: services already running are left as they are. Exits 1 naming the service
    and its log file if one fails to start.
    """
    started = time.monotonic()
    stack = settings if brokers in (None, settings.kafka_brokers) else Settings(KAFKA_BROKERS=brokers)
    if insecure and tls_:
        console.print("stack up: --tls needs the stack's Kafka users; --insecure makes none", highlight=False)
        raise typer.Exit(2)
    try:
        with control.alone(stack.stack_home, "python -m stack up"):
            start_stack(stack, started, install_only=install_only, brokers=brokers, with_=with_,
                        insecure=insecure, tls_=tls_)
    except control.StackBusy as error:
        console.print(f"[red]stack up:[/red] {error}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def start_stack(stack: Settings, started: float, *, install_only: bool, brokers: int | None, with_,
                insecure: bool, tls_: bool) -> None:
    """`up`'s work, alone on the stack."""
    try:
        made = secrets.prepare(stack.stack_home, *stack.redis_host_port, insecure=insecure)
    except secrets.SecurityModeError as error:
        console.print(f"[red]stack up:[/red] {error}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    layout = StackLayout(stack.stack_home)
    if tls_ and not stack.kafka_ssl_ca and process.running_pid(layout.pidfile("kafka")):
        console.print("[red]stack up:[/red] kafka runs without TLS; `python -m stack down`, then `up --tls`",
                      markup=True, highlight=False)
        raise typer.Exit(1)
    if tls_ and tls.ensure(stack.stack_home, [stack.kafka_host_port[0]]):
        console.print(f"TLS for Kafka's clients: the stack's CA is {tls.folder(stack.stack_home) / tls.CA_FILE}",
                      highlight=False)
        made.add("KAFKA_SSL_CA")
    if made:
        console.print(f"credentials made for this stack: {secrets.path(stack.stack_home)} (owner-only)", highlight=False)
        for service, variable in (("redis", "REDIS_URL"), ("kafka", "KAFKA_USER")):
            if variable in made and process.running_pid(layout.pidfile(service)):
                console.print(f"[red]stack up:[/red] {service} runs without the stack's users; "
                              "`python -m stack down`, then `up` again", markup=True, highlight=False)
                raise typer.Exit(1)
    if made or insecure:  # read again: the credentials just made, or an insecure stack's defaults
        stack = Settings(**({} if brokers is None else {"KAFKA_BROKERS": brokers}))
    try:
        Toolchain(stack.stack_cache).install(extras(with_))
        if not install_only:
            control.up(all_services(stack, extras(with_)), stack.stack_start_timeout_s)
    except ExtraUnavailable as error:
        console.print(f"stack up --with: {error}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except (InstallError, control.StackError, KafkaLayoutError, subprocess.CalledProcessError) as error:
        console.print(f"[red]stack up failed:[/red] {error}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    console.print(f"stack ready in {time.monotonic() - started:.1f} s")
    if not install_only:
        console.print(f"connector healer running (pid {start_healer(stack)}): restarts any connector's "
                      f"failed tasks; log {StackLayout(stack.stack_home).logfile(HEALER)}", highlight=False)
        report(stack, extras(with_))


@cli.command("rotate-secrets")
def rotate_secrets(
    roles: Annotated[list[str] | None, typer.Argument(
        metavar="ROLE", help=f"Roles to rotate (default every one): {', '.join(rotation.BY_NAME)}.",
        show_default=False)] = None,
) -> None:
    """New passwords for the local stack's roles while it runs: each service takes the new one, the secrets file holds it, and every process the stack started that holds an old one restarts with the new, one at a time.

    Redis keeps both passwords until its holders have restarted; Kafka and MySQL keep the connections already logged in; the continuous lake stops while its MinIO key changes; Kafka Connect restarts for its own logins. Processes the stack did not start (workers of your own, a Procfile's) read the new values at their next start. kafka-broker and minio-root change with a restart of their service (edit the secrets file, `down`, `up`).

    Exits 1 naming the step that failed: `python -m stack down` and `up` then finish the rotation.
    """
    try:
        chosen = rotation.chosen(roles or ())
        with control.alone(settings.stack_home, "python -m stack rotate-secrets"):
            restarted = rotation.rotate(settings, chosen, say=logging.getLogger("stack").info)
    except (rotation.RotationRefused, control.StackBusy) as error:
        console.print(f"stack rotate-secrets: {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except Exception as error:  # noqa: BLE001 - any failure of a service: say how to finish
        console.print(f"[red]stack rotate-secrets failed:[/red] {type(error).__name__}: {error}. The secrets file "
                      f"holds the new passwords: `python -m stack down` and `python -m stack up` set them on every "
                      "service", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(f"rotated {', '.join(role.name for role in chosen)}; restarted {len(restarted)} process(es)"
                  f"{': ' + ', '.join(restarted) if restarted else ''}", highlight=False, soft_wrap=True)


@cli.command()
def down() -> None:
    """Stop every process the stack started (by pid), leaving data in place."""
    every_broker = Settings(KAFKA_BROKERS=MAX_BROKERS)  # however many the stack was started with
    for name, pid in control.down(all_services(settings, tuple(OPTIONAL_SERVICES)) + [
            service for service in all_services(every_broker) if service.name.startswith("kafka-")]):
        console.print(f"stopped {name} (pid {pid})")


@cli.command()
def status(
    brokers: Annotated[int | None, typer.Option(min=1, max=5, help="Kafka brokers the stack runs "
                                                                   "(default KAFKA_BROKERS, 1).")] = None,
    with_: With = None,
) -> None:
    """Each service with its port, pid and health. Exits 1 unless all are healthy."""
    report(settings if brokers in (None, settings.kafka_brokers) else Settings(KAFKA_BROKERS=brokers), extras(with_))


def report(stack: Settings, optional: tuple[str, ...] = ()) -> None:
    rows = control.status(all_services(stack, optional))
    table = Table("service", "port", "pid", "health")
    colours = {"healthy": "green", "unhealthy": "red", "stopped": "yellow"}
    for row in rows:
        table.add_row(row.name, str(row.port), str(row.pid or "-"),
                      f"[{colours[row.state]}]{row.state}[/]")
    Console().print(table)
    if not all(row.healthy for row in rows):
        raise typer.Exit(1)


@cli.command()
def logs(
    service: Annotated[str, typer.Argument(help="kafka, kafka-connect, mariadb, redis, minio, prometheus or "
                                                 "broker-metrics")],
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="How many last lines.")] = 50,
) -> None:
    """Print the last lines of a service's log, and the log's path."""
    by_name = {s.name: s for s in all_services(settings, tuple(OPTIONAL_SERVICES))}
    if service not in by_name:
        console.print(f"unknown service {service!r}; one of: {', '.join(by_name)}")
        raise typer.Exit(2)
    chosen = by_name[service]
    console.print(f"# {chosen.layout.logfile(chosen.name)}")
    print(control.log_tail(chosen, lines))


@cli.command()
def doctor(
    worker_url: Annotated[str, typer.Option(help="Any one Faust worker's web address (it names the others).")]
        = f"http://127.0.0.1:{settings.faust_web_port}",
) -> None:
    """Is the pipeline healthy now? Services, connector and tasks, CDC topics, workers and their lag, dead letters in the last hour, the newest order_final message, the last Gold commit, Redis memory and AOF, and the alerts firing in Prometheus (PROMETHEUS_URL) when one runs. Exits 1 on any problem, naming the fix.

    Works against a remote stack from the settings alone.
    """
    checks = health.examine(settings, worker_url)
    table = Table(title="orderpipe doctor")
    for column in ("check", "state", "detail", "fix"):
        table.add_column(column)
    for check in checks:
        table.add_row(check.name, "ok" if check.ok else "[red]PROBLEM[/red]", check.detail, check.fix)
    Console(width=160).print(table)
    problems = [check.name for check in checks if not check.ok]
    if problems:
        typer.echo(f"{len(problems)} problem(s): {', '.join(problems)}", err=True)
        raise typer.Exit(1)



if __name__ == "__main__":
    run(cli)
