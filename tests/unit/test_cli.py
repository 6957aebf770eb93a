"""Every command line answers bad arguments with one line and exit 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from config.settings import REPO_ROOT

COMMANDS = ["stack", "cdc", "streams", "streams dead-letters", "source", "batch", "batch maintain", "batch report",
            "batch archive", "batch audit", "demo", "bench.stream", "bench.profile", "bench.peers", "bench.batch", "bench.metrics_burst"]


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_option_gets_one_line_naming_it_and_exit_2(command: str):
    answer = subprocess.run([sys.executable, "-m", *command.split(), "--no-such-option"],
                            capture_output=True, text=True, timeout=60)

    assert answer.returncode == 2, answer.stderr
    assert answer.stderr.count("\n") == 1 and "Traceback" not in answer.stderr, answer.stderr
    assert "--no-such-option" in answer.stderr and "--help" in answer.stderr, answer.stderr


def test_a_missing_argument_and_a_bad_value_are_named():
    missing = subprocess.run([sys.executable, "-m", "cdc", "show"], capture_output=True, text=True, timeout=60)
    bad = subprocess.run([sys.executable, "-m", "batch", "platinum"], capture_output=True, text=True, timeout=60)

    assert (missing.returncode, missing.stderr) == (2, "python -m cdc show: Missing argument 'topic'. "
                                                       "(python -m cdc show --help)\n")
    assert bad.returncode == 2 and "'platinum' is not one of 'bronze', 'silver', 'gold'" in bad.stderr, bad.stderr


def test_help_still_explains_and_exits_0():
    answer = subprocess.run([sys.executable, "-m", "cdc", "heal", "--help"], capture_output=True, text=True, timeout=60)

    assert answer.returncode == 0 and "every connector" in answer.stdout, answer.stdout



@pytest.mark.parametrize(("args", "named"), [(["up", "--brokers", "6"], "--brokers"), (["up", "--with", "grafana"], "grafana"),
                                             (["up", "--insecure", "--tls"], "--tls")])
def test_the_stack_refuses_what_it_cannot_run_in_one_line(args: list[str], named: str):
    answer = subprocess.run([sys.executable, "-m", "stack", *args], capture_output=True, text=True, timeout=60)

    assert answer.returncode == 2 and answer.stderr.count("\n") == 1 and named in answer.stderr, answer.stderr


def test_a_snapshot_of_a_table_the_connector_does_not_capture_is_refused_before_anything_is_asked():
    answer = subprocess.run([sys.executable, "-m", "cdc", "snapshot", "--table", "orders", "--table", "invoices"],
                            capture_output=True, text=True, timeout=60, env={"KAFKA_BOOTSTRAP": "127.0.0.1:1", "PATH": ""})

    assert answer.returncode == 2
    assert answer.stderr == ("--table invoices: not captured by the connector; one of orders, order_details, "
                             "customers, payment_method\n")


def test_a_stack_made_with_credentials_is_not_started_insecure_and_the_answer_says_what_to_do(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "STACK_HOME": str(tmp_path)}
    (tmp_path / "secrets.env").write_text("KAFKA_USER=orderpipe-stream\n")

    answer = subprocess.run([sys.executable, "-m", "stack", "up", "--insecure"], capture_output=True, text=True,
                            timeout=60, env=env)

    assert answer.returncode == 1 and answer.stderr.count("\n") == 1, answer.stderr
    assert "made with credentials" in answer.stderr and "STACK_HOME" in answer.stderr, answer.stderr
    assert not (tmp_path / "insecure").exists()


def test_kafka_access_without_a_kafka_user_or_a_kafka_to_reach_says_which_in_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "STACK_HOME": str(tmp_path), "KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    command = [sys.executable, "-m", "stack", "kafka-access", "--wait", "0"]

    no_user = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    unreachable = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                 env=env | {"KAFKA_TOOLS_USER": "orderpipe-tools", "KAFKA_TOOLS_PASSWORD": "secret"})

    assert no_user.returncode == 2 and no_user.stderr.count("\n") == 1, no_user.stderr
    assert "KAFKA_TOOLS_USER" in no_user.stderr
    assert unreachable.returncode == 1 and unreachable.stderr.count("\n") == 1, unreachable.stderr
    assert "127.0.0.1:1" in unreachable.stderr and "KAFKA_TOOLS_PASSWORD" in unreachable.stderr


@pytest.mark.parametrize(("command", "variable"), [("source load", "MYSQL_PASSWORD"), ("batch", "MINIO_SECRET_KEY")])
def test_a_command_with_no_password_set_stops_in_one_line_naming_the_fix(tmp_path, command: str, variable: str):
    """No secrets file, no variable: no default password to fall back on."""
    answer = subprocess.run([sys.executable, "-m", *command.split()], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={"PATH": os.environ["PATH"], "HOME": os.environ["HOME"],
                                              "PYTHONPATH": str(REPO_ROOT), "STACK_HOME": str(tmp_path)})

    assert answer.returncode == 2, answer.stderr[-2000:]
    [line] = answer.stderr.strip().splitlines()
    assert "`python -m stack up`" in line and variable in line
