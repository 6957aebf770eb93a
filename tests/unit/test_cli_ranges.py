"""Every numeric option of every command line is bounded: a value out of range gets exit 2 and
one line naming the option, before the command does anything."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import typer

from config.cli import command_of, run_command

CLI_MODULES = ["stack", "cdc", "streams", "source", "demo", "batch",
               "batch.tools.maintain", "batch.tools.report", "batch.layers.bronze",  # python -m batch maintain|report|archive
               "bench.stream", "bench.profile", "bench.peers", "bench.batch", "bench.metrics_burst", "bench.cdc_lag",
               "bench.stream_rss", "bench.peers.quix_completion", "bench.peers.legacy"]

# Options in files another change owns; strict: once bounded there, remove them from here.


def cli_of(module_name: str):
    """The module's Typer app (`cli`), else its `main` function, as `python -m` runs it."""
    try:
        module = importlib.import_module(f"{module_name}.__main__")
    except ModuleNotFoundError as error:
        if error.name != f"{module_name}.__main__":
            raise
        module = importlib.import_module(module_name)
    cli = getattr(module, "cli", None)
    return cli if isinstance(cli, typer.Typer) else module.main


def leaves(command, path: list[str]) -> Iterator[tuple[list[str], object]]:
    if hasattr(command, "commands"):  # a group
        for name, sub in command.commands.items():
            yield from leaves(sub, [*path, name])
    else:
        yield path, command


def number_type(option) -> type | None:
    """int or float for a numeric option (one value, a list of them, or optional), else None."""
    descriptor = getattr(option, "type_descriptor", None)
    if descriptor is not None:  # Typer 0.24 on: its own parameter types
        annotation = descriptor.annotation
        element = getattr(annotation, "__args__", (annotation,))[0] if descriptor.is_list else annotation
        return element if element in (int, float) else None
    kind = getattr(option.type, "name", "")  # click's types, before
    return {"integer": int, "integer range": int, "float": float, "float range": float}.get(kind)


def bounds(option) -> tuple[float | None, float | None]:
    holder = option if hasattr(option, "min") else option.type
    return getattr(holder, "min", None), getattr(holder, "max", None)


def numeric_options() -> list:
    found = []
    for module_name in CLI_MODULES:
        for path, command in leaves(command_of(cli_of(module_name)), []):
            for option in command.params:
                kind = number_type(option)
                if kind is not None:
                    name = option.opts[0]
                    found.append(pytest.param(module_name, path, name, kind,
                                              id=" ".join([module_name, *path, name])))
    return found


NUMERIC_OPTIONS = numeric_options()


def out_of_range(kind: type, low: float | None, high: float | None) -> list[str]:
    values = []
    if low is not None:
        values.append(low - 1 if kind is int else (low / 2 if low > 0 else low - 1))
    if high is not None:
        values.append(high + 1)
    return [str(kind(value)) for value in values]


def test_the_walk_finds_the_options_it_is_meant_to_check():
    ids = {param.id for param in NUMERIC_OPTIONS}
    assert {"source generate --orders", "streams dead-letters replay --offset", "bench.peers --workers",
            "stack logs --lines", "batch.layers.bronze --every"} <= ids, sorted(ids)


@pytest.mark.parametrize(("module_name", "path", "name", "kind"), NUMERIC_OPTIONS)
def test_a_value_out_of_range_is_refused_in_one_line_naming_the_option(module_name, path, name, kind,
                                                                        tmp_path, monkeypatch, capsys):
    command = command_of(cli_of(module_name))
    leaf = dict((tuple(p), c) for p, c in leaves(command, []))[tuple(path)]
    option = next(o for o in leaf.params if o.opts[0] == name)
    values = out_of_range(kind, *bounds(option))
    assert values, f"{' '.join([module_name, *path, name])} has neither min= nor max="

    def must_not_run(*_, **__):
        raise AssertionError(f"the command ran with {name} out of range")

    monkeypatch.setattr(leaf, "callback", must_not_run)
    monkeypatch.chdir(tmp_path)
    for value in values:
        with pytest.raises(SystemExit) as exit_:
            run_command(command, [*path, f"{name}={value}"])
        stderr = capsys.readouterr().err

        assert exit_.value.code == 2, (value, stderr)
        assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
        assert f"'{name}'" in stderr, stderr
    assert os.listdir(tmp_path) == []


def test_generate_with_negative_orders_exits_2_before_writing_anything(tmp_path):
    # A MySQL port nothing listens on: should the check ever lapse, the run fails to connect
    # instead of writing orders into the stack's database.
    environment = {**os.environ, "MYSQL_PORT": "1", "PYTHONPATH": os.getcwd()}
    answer = subprocess.run([sys.executable, "-m", "source", "generate", "--orders", "-5"], cwd=tmp_path,
                            env=environment, capture_output=True, text=True, timeout=60)

    assert answer.returncode == 2, answer.stderr
    assert answer.stderr == ("python -m source generate: Invalid value for '--orders': Input should be greater "
                             "than or equal to 1 (python -m source generate --help)\n")
    assert list(tmp_path.iterdir()) == []  # no manifest.json


def test_chaos_shares_that_sum_above_one_are_refused_naming_them(tmp_path):
    environment = {**os.environ, "MYSQL_PORT": "1", "PYTHONPATH": os.getcwd()}
    answer = subprocess.run([sys.executable, "-m", "source", "generate", "--update", "0.6", "--cancel", "0.6"],
                            cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60)

    assert answer.returncode == 2, answer.stderr
    assert answer.stderr.count("\n") == 1 and "'--update', '--cancel'" in answer.stderr, answer.stderr
    assert list(tmp_path.iterdir()) == []
