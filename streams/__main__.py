"""`python -m streams rebuild`: operations on the stream beside its workers."""

from __future__ import annotations

from typing import Annotated

import typer

from config import settings
from streams.rebuild import RebuildWorker, wait_caught_up

cli = typer.Typer(help="Operate the stream: rebuild an output topic from the CDC topics.", no_args_is_help=True,
                  add_completion=False)


@cli.callback()
def commands() -> None:
    """Operate the stream beside its workers."""


@cli.command()
def rebuild(
    output: Annotated[str, typer.Option(help="The topic to derive (created if missing); never the live one.")],
    web_port: Annotated[int, typer.Option(help="Port of the rebuild worker's web server.")] = 6166,
    quiet_s: Annotated[float, typer.Option(help="Caught up once nothing new was emitted for this long.")] = 10.0,
    timeout_s: Annotated[float, typer.Option(help="Longest run.")] = 3600.0,
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


if __name__ == "__main__":
    cli()
