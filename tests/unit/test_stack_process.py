from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from config.settings import REPO_ROOT
from stack import process
from stack.services import java_with_argument_file


def test_start_records_the_process_and_stop_ends_it_with_its_children(tmp_path: Path):
    pidfile, logfile = tmp_path / "run" / "svc.pid", tmp_path / "logs" / "svc.log"
    # given a process that forks a child, as MariaDB and the JVM launchers do
    script = "import subprocess, time; c = subprocess.Popen(['sleep', '300']); print('child', c.pid, 'ready', flush=True); time.sleep(300)"
    pid = process.start([sys.executable, "-c", script], pidfile=pidfile, logfile=logfile)
    deadline = time.monotonic() + 10
    while not re.search(r"child \d+ ready", logfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = psutil.Process(pid).children()[0]

    assert process.running_pid(pidfile) == pid

    # when it is stopped
    stopped = process.stop(pidfile, grace_s=5)

    # then parent and child are gone, and so is the pid file
    assert stopped == pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    assert not pidfile.exists()
    assert "starting:" in logfile.read_text()


def test_a_recycled_pid_is_not_taken_for_the_recorded_process(tmp_path: Path):
    # given a pid file naming a live pid (this test's own) but another start time
    pidfile = tmp_path / "svc.pid"
    me = psutil.Process()
    pidfile.write_text(f"{me.pid} {me.create_time() - 1000}")

    # then the stack neither reports nor stops it
    assert process.running_pid(pidfile) is None
    assert process.stop(pidfile) is None
    assert me.is_running()


def test_a_recycled_pid_is_not_taken_for_the_recorded_process_by_its_start_after_boot(tmp_path: Path):
    pidfile = tmp_path / "svc.pid"
    me = psutil.Process()
    since_boot = me.create_time() - psutil.boot_time()
    pidfile.write_text(f"{me.pid} {me.create_time()} {since_boot - 1000}")

    assert process.running_pid(pidfile) is None


def test_a_wall_clock_step_does_not_make_a_running_service_look_stopped(tmp_path: Path):
    # given a pid file written before the wall clock was stepped by 21 s (NTP)
    pidfile = tmp_path / "svc.pid"
    me = psutil.Process()
    since_boot = me.create_time() - psutil.boot_time()
    pidfile.write_text(f"{me.pid} {me.create_time() - 21} {since_boot}")

    # then the recorded process is still found by its start after boot
    assert process.running_pid(pidfile) == me.pid


def test_listening_pid_finds_the_owner_of_a_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        assert process.listening_pid(port) == psutil.Process().pid
    assert process.listening_pid(port) is None


def test_a_java_commands_arguments_move_to_a_private_file_the_launcher_reads(tmp_path):
    command = ["java", "-Xmx1g", "-cp", "libs/*", "kafka.tools.StorageTool", "format",
               '--add-scram=SCRAM-SHA-256=[name=u,password=p"s\\w]']
    argfile = tmp_path / "format.args"

    hidden = java_with_argument_file(command, "kafka.tools.StorageTool", argfile)

    assert hidden == ["java", "-Xmx1g", "-cp", "libs/*", f"@{argfile}"]
    assert argfile.stat().st_mode & 0o777 == 0o600
    assert argfile.read_text().splitlines() == [
        '"kafka.tools.StorageTool"', '"format"', '"--add-scram=SCRAM-SHA-256=[name=u,password=p\\"s\\\\w]"']


def test_a_stopped_process_its_parent_has_not_reaped_yet_counts_as_ended(tmp_path: Path):
    """A worker started by a test and stopped by another process (a rotation) stays a zombie
    until the test reaps it: the stop must not wait out its grace for that."""
    pidfile, logfile = tmp_path / "run" / "svc.pid", tmp_path / "logs" / "svc.log"
    script = ("import sys, time; from pathlib import Path; from stack import process; "
              "process.start(['sleep', '300'], pidfile=Path(sys.argv[1]), logfile=Path(sys.argv[2])); time.sleep(300)")
    parent = subprocess.Popen([sys.executable, "-c", script, str(pidfile), str(logfile)], cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 10
        while process.running_pid(pidfile) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = process.running_pid(pidfile)

        started = time.monotonic()
        assert process.stop(pidfile, grace_s=20) == pid
        waited = time.monotonic() - started

        assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # its parent has not reaped it
        assert waited < 10, f"the stop waited {waited:.1f} s for a process that had ended"
    finally:
        parent.kill()
        parent.wait()


def test_a_started_process_inherits_no_secret_the_settings_or_a_name_says(tmp_path: Path, monkeypatch):
    inherited = {"AWS_SECRET_ACCESS_KEY": "a", "AWS_SESSION_TOKEN": "b", "_SPARK_AUTH_SECRET": "c",
                 "KAFKA_LAKE_PASSWORD": "d", "GITHUB_TOKEN": "e", "MINIO_SECRET_KEY": "f"}
    for name, value in {**inherited, "ORDERPIPE_HARMLESS": "kept"}.items():
        monkeypatch.setenv(name, value)
    pidfile, logfile = tmp_path / "env.pid", tmp_path / "env.log"

    process.start(["sh", "-c", "env; sleep 5"], pidfile=pidfile, logfile=logfile, env={"KAFKA_LAKE_PASSWORD": "given"})
    deadline = time.monotonic() + 10
    while "ORDERPIPE_HARMLESS" not in logfile.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.stop(pidfile)

    seen = dict(line.split("=", 1) for line in logfile.read_text().splitlines() if "=" in line and " " not in line)
    assert seen["ORDERPIPE_HARMLESS"] == "kept" and seen["KAFKA_LAKE_PASSWORD"] == "given"
    assert (set(inherited) - {"KAFKA_LAKE_PASSWORD"}) & set(seen) == set()


def test_a_process_s_peak_memory_is_its_high_water_mark_and_none_once_it_is_gone():
    script = "b = bytearray(200 * 2**20); del b; print('freed', flush=True); import time; time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "freed"
        assert process.peak_rss_mb(child.pid) >= 200  # the buffer it freed still counts
        assert psutil.Process(child.pid).memory_info().rss < 150 * 2**20
    finally:
        child.kill()
        child.wait()
    assert process.peak_rss_mb(child.pid) is None
