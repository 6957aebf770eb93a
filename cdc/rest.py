"""Kafka Connect's REST API: put a connector's config, wait until it runs, read, restart, delete.

Every restart of a connector's task that this project asks of a running Kafka Connect goes
through `stop` and `resume_without_skips`: its stored offset loses the event counts Debezium
would skip (cdc.offsets; a start of Kafka Connect itself is `clear_stored_skips`)."""

from __future__ import annotations

import time

import httpx
from tenacity import retry, retry_if_exception, stop_after_delay, wait_fixed

from cdc.offsets import without_skips
from config import Settings


class ConnectorFailed(RuntimeError):
    """The connector or one of its tasks is FAILED; the message carries Connect's trace."""


class ConnectorNotRunning(TimeoutError):
    """The connector did not reach RUNNING in time."""


def client(settings: Settings) -> httpx.Client:
    """Kafka Connect's REST API at KAFKA_CONNECT_URL, logged in as its REST user when one is set."""
    login = settings.kafka_connect_rest_login
    return httpx.Client(base_url=settings.kafka_connect_url, timeout=30, auth=httpx.BasicAuth(*login) if login else None)


def _unreachable_or_rebalancing(error: BaseException) -> bool:
    """Worth asking again: Connect did not answer, or its workers are rebalancing (409)."""
    return isinstance(error, httpx.TransportError) or (
        isinstance(error, httpx.HTTPStatusError) and error.response.status_code == 409)


@retry(retry=retry_if_exception(_unreachable_or_rebalancing), stop=stop_after_delay(60),
       wait=wait_fixed(1), reraise=True)
def put_config(connect: httpx.Client, name: str, config: dict[str, str]) -> bool:
    """Create, or update if it differs; either way its task starts stopped and is resumed
    without skips (a connector registered again finds its old offsets). True if the
    connector was created now."""
    current = connect.get(f"/connectors/{name}/config")
    if current.status_code not in (200, 404):
        current.raise_for_status()
    if current.status_code == 200 and current.json() == {**config, "name": name}:
        return False
    created = current.status_code == 404
    if created:
        response = connect.post("/connectors", json={"name": name, "config": config, "initial_state": "STOPPED"})
    else:
        stop(connect, name)
        response = connect.put(f"/connectors/{name}/config", json=config)
    if response.status_code >= 400:
        raise ConnectorFailed(f"Kafka Connect refused the config of {name}: "
                              f"{response.status_code} {response.text[:2000]}")
    resume_without_skips(connect, name)
    return created


def names(connect: httpx.Client) -> list[str]:
    """Every connector registered on the Kafka Connect cluster."""
    response = connect.get("/connectors")
    response.raise_for_status()
    return sorted(response.json())


def status(connect: httpx.Client, name: str) -> dict | None:
    response = connect.get(f"/connectors/{name}/status")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def failure(report: dict) -> str | None:
    """A readable account of what failed in a status report, or None if nothing did."""
    parts = [("connector", report["connector"])] + [(f"task {t['id']}", t) for t in report["tasks"]]
    failed = [f"{what} FAILED on {state.get('worker_id')}:\n{state.get('trace', '(no trace)')}"
              for what, state in parts if state["state"] == "FAILED"]
    return "\n".join(failed) or None


def is_running(report: dict | None) -> bool:
    return bool(report and report["tasks"] and report["connector"]["state"] == "RUNNING"
                and all(task["state"] == "RUNNING" for task in report["tasks"]))


def wait_running(connect: httpx.Client, name: str, timeout_s: float = 120) -> dict:
    """Block until the connector and all its tasks are RUNNING; raise on FAILED or timeout."""
    deadline = time.monotonic() + timeout_s
    report = None
    while time.monotonic() < deadline:
        report = status(connect, name)
        if report and (why := failure(report)):
            raise ConnectorFailed(why)
        if is_running(report):
            return report
        time.sleep(0.5)
    raise ConnectorNotRunning(f"connector {name} not RUNNING after {timeout_s:.0f} s; last status: {report}")


def delete_with_offsets(connect: httpx.Client, name: str, timeout_s: float = 30) -> bool:
    """Stop the connector, delete its stored source offsets, then the connector: registered
    again later, it starts afresh (a snapshot) instead of resuming where it stood, with the
    whole binlog since then to read first. False if there was none."""
    if status(connect, name) is None:
        return False
    stop(connect, name, timeout_s)
    connect.delete(f"/connectors/{name}/offsets").raise_for_status()
    return delete(connect, name)


def stop(connect: httpx.Client, name: str, timeout_s: float = 30) -> None:
    """Stop the connector and its tasks (KIP-875), their offsets committed; until STOPPED."""
    connect.put(f"/connectors/{name}/stop").raise_for_status()
    deadline = time.monotonic() + timeout_s
    while (state := status(connect, name)) is not None and state["connector"]["state"] != "STOPPED":
        if time.monotonic() > deadline:
            raise ConnectorNotRunning(f"{name} did not stop in {timeout_s:.0f} s")
        time.sleep(0.5)


def resume_without_skips(connect: httpx.Client, name: str) -> bool:
    """Resume a stopped connector, its stored offset first cleared of the events Debezium
    would skip (cdc.offsets). True if there were some."""
    response = connect.get(f"/connectors/{name}/offsets")
    response.raise_for_status()
    stored = response.json().get("offsets") or []
    cleared = [{"partition": entry["partition"], "offset": resumable} for entry in stored
               if (resumable := without_skips(entry["offset"])) is not None]
    if cleared:
        connect.patch(f"/connectors/{name}/offsets", json={"offsets": cleared}).raise_for_status()
    connect.put(f"/connectors/{name}/resume").raise_for_status()
    return bool(cleared)


def delete(connect: httpx.Client, name: str) -> bool:
    """Delete the connector; False if there was none."""
    response = connect.delete(f"/connectors/{name}")
    if response.status_code == 404:
        return False
    response.raise_for_status()
    return True


def restart_failed(connect: httpx.Client, name: str, report: dict) -> list[str]:
    """Restart a connector with anything FAILED, the connector and its tasks (stopped, then
    resumed without skips); names of what had failed."""
    failed = (["connector"] if report["connector"]["state"] == "FAILED" else []) + \
        [f"task {task['id']}" for task in report["tasks"] if task["state"] == "FAILED"]
    if failed:
        stop(connect, name)
        resume_without_skips(connect, name)
    return failed


def committed_offset(connect: httpx.Client, name: str) -> dict | None:
    """The connector's committed source offset (KIP-875); None if it has none yet."""
    response = connect.get(f"/connectors/{name}/offsets")
    response.raise_for_status()
    offsets = response.json().get("offsets") or []
    return offsets[0]["offset"] if offsets else None
