"""How every `python -m ...` command of the project answers bad arguments, a missing login or a
missing install: one line on stderr naming the problem and the fix, exit 2; never a usage box or a
traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer

from config.settings import MissingCredentials, NotInstalled
try:  # Typer vendors click (0.24 on) and re-exports only some of its exceptions, not their base
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:
    from click.exceptions import NoArgsIsHelpError, UsageError


def run(cli: typer.Typer | Callable, prog_name: str | None = None) -> None:
    """Run a Typer app (or a single command function) as the process's command line;
    `prog_name`: what its usage lines call it, when not `python -m <its package>`."""
    run_command(command_of(cli), prog_name=prog_name)


def command_of(cli: typer.Typer | Callable):
    """The click command of a Typer app or of a single command function."""
    if not isinstance(cli, typer.Typer):
        function, cli = cli, typer.Typer(add_completion=False)
        cli.command()(function)
    return typer.main.get_command(cli)


def run_command(command, args: list[str] | None = None, prog_name: str | None = None) -> None:
    """Run `command` on `args` (the process's own when None); exits with its outcome."""
    try:
        outcome = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except NoArgsIsHelpError as error:  # `no_args_is_help`: the help is the answer
        typer.echo(error.ctx.get_help())
        sys.exit(0)
    except UsageError as error:
        sys.stderr.write(f"{usage_line(error)}\n")
        sys.exit(error.exit_code)
    except (MissingCredentials, NotInstalled) as error:
        sys.stderr.write(f"{error}\n")
        sys.exit(2)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    sys.exit(outcome if isinstance(outcome, int) else 0)


def usage_line(error: UsageError) -> str:
    """`python -m cdc show: Missing argument 'TOPIC'. (python -m cdc show --help)`"""
    where = error.ctx.command_path if error.ctx is not None else "error"
    return f"{where}: {error.format_message()} ({where} --help)"
