"""The connector watcher as a stack process (stack.watcher): it keeps the connector there and
running, and `python -m stack down`'s sweep stops it."""

from __future__ import annotations

import time

from cdc import rest
from config import Settings
from source import database
from stack import control, process
from stack.services import StackLayout
from stack.watcher import name, start_watcher, stop_watcher


def test_the_watcher_registers_its_connector_and_brings_it_back_when_deleted(settings: Settings, unique_name: str):
    with database.scratch_database(settings, unique_name) as scratch:
        database.apply_schema(database.connect(scratch))
        connect = rest.client(scratch.kafka_connect_url)
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


def wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False
