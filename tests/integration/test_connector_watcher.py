"""The connector watcher as a stack process (stack.watcher): it keeps the connector there and
running, and `python -m stack down`'s sweep stops it."""

from __future__ import annotations

from contextlib import contextmanager

from pydantic import SecretStr

from cdc import rest
from cdc.connector import connector_config, server_id
from config import Settings
from source import database
from stack import control, process
from stack.services import StackLayout, all_services
from stack.watcher import HEALER, name, start_watcher, stop_watcher
from tests.integration.waiting import wait_for


def test_the_watcher_registers_its_connector_and_brings_it_back_when_deleted(settings: Settings, unique_name: str):
    with database.scratch_database(settings, unique_name) as scratch:
        database.apply_schema(database.connect(scratch))
        connect = rest.client(scratch)
        pid = start_watcher(scratch, interval_s=3)
        try:
            registered = wait_for(lambda: rest.is_running(rest.status(connect, scratch.cdc_connector_name)), 120)
            rest.delete(connect, scratch.cdc_connector_name)
            gone = wait_for(lambda: rest.status(connect, scratch.cdc_connector_name) is None, 30)
            back = wait_for(lambda: rest.is_running(rest.status(connect, scratch.cdc_connector_name)), 120)
            again = start_watcher(scratch)  # already running: the same process
        finally:
            stop_watcher(scratch)
            rest.delete(connect, scratch.cdc_connector_name)
        log = StackLayout(scratch.stack_home).logfile(name(scratch)).read_text()

    assert registered and back, log[-2000:]
    assert gone, "the deleted connector never disappeared (or the watcher raced it back before a poll)"
    assert again == pid
    assert log.count(f"connector {scratch.cdc_connector_name} registered") >= 2


def test_a_watcher_whose_config_connect_refuses_says_why_and_keeps_running(settings: Settings, unique_name: str):
    with database.scratch_database(settings, unique_name) as scratch:
        unreadable = scratch.model_copy(update={"connector_secrets_file": f"/nonexistent/{unique_name}.properties"})
        log = StackLayout(scratch.stack_home).logfile(name(scratch))
        pid = start_watcher(unreadable, interval_s=1)
        try:
            said = wait_for(lambda: log.read_text().count("refused the config") >= 2, 60)
            alive = process.running_pid(StackLayout(scratch.stack_home).pidfile(name(scratch)))
        finally:
            stop_watcher(scratch)
            rest.delete(rest.client(scratch), scratch.cdc_connector_name)

    assert said and alive == pid, log.read_text()[-2000:]
    assert "Traceback" not in log.read_text()


def test_stack_down_stops_watchers_with_the_workers(settings: Settings, unique_name: str, tmp_path):
    home = settings.model_copy(update={"stack_home": tmp_path, "cdc_connector_name": unique_name})
    layout = StackLayout(tmp_path)
    pid = process.start(["sleep", "300"], pidfile=layout.pidfile(name(home)), logfile=layout.logfile(name(home)))

    stopped = control.down([service for service in control_services(home)])

    assert (name(home), pid) in stopped
    assert process.running_pid(layout.pidfile(name(home))) is None


def control_services(settings: Settings):
    """The stack's services for `settings` with nothing of theirs running under its home."""
    from stack.services import all_services
    return all_services(settings)



def test_the_stacks_healer_restarts_a_failed_task_once_its_cause_is_gone(settings: Settings, unique_name: str):
    healer = process.running_pid(StackLayout(settings.stack_home).pidfile(HEALER))
    assert healer is not None, "the stack's connector healer is not running: `python -m stack up` starts it"
    user, password = f"cdc_{unique_name}", "local-dev-only"
    with database.scratch_database(settings, unique_name) as scratch, mysql_user(settings, user, password) as as_root:
        database.apply_schema(database.connect(scratch))
        as_root(f"GRANT SELECT, RELOAD, SHOW DATABASES, LOCK TABLES ON *.* TO '{user}'@'%'")  # no binlog reading
        limited = scratch.model_copy(update={"mysql_cdc_user": user, "mysql_cdc_password": SecretStr(password)})
        connect = rest.client(scratch)
        name = scratch.cdc_connector_name
        # this user's password is the test's own, not the one in Connect's connector secrets file
        rest.put_config(connect, name, connector_config(limited, **{"database.server.id": server_id(name),
                                                                    "database.password": password}))
        try:
            failed = wait_for(lambda: (report := rest.status(connect, name)) is not None and rest.failure(report), 120)
            as_root(f"GRANT REPLICATION SLAVE, BINLOG MONITOR, REPLICA MONITOR ON *.* TO '{user}'@'%'")  # the fix
            healed = wait_for(lambda: rest.is_running(rest.status(connect, name)), 120)
        finally:
            rest.delete(connect, name)
    log = StackLayout(settings.stack_home).logfile(HEALER).read_text()

    assert failed, "the task never failed without its REPLICATION privileges"
    assert healed, log[-2000:]
    assert f"connector {name}: restarted task 0" in log


@contextmanager
def mysql_user(settings: Settings, user: str, password: str):
    """A MariaDB user of the test's own, created and dropped as root; yields a function
    running SQL as root (for its grants)."""
    mariadb = next(service for service in all_services(settings) if service.name == "mariadb")

    def as_root(sql: str) -> None:
        result = mariadb.root_sql(sql)
        assert result.returncode == 0, result.stderr

    as_root(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
    try:
        yield as_root
    finally:
        as_root(f"DROP USER IF EXISTS '{user}'@'%'")
