"""Kafka Connect's REST API: put a connector's config, wait until it runs, read, delete."""

from __future__ import annotations

import time

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed


class ConnectorFailed(RuntimeError):
    """The connector or one of its tasks is FAILED; the message carries Connect's trace."""


class ConnectorNotRunning(TimeoutError):
    """The connector did not reach RUNNING in time."""


def client(connect_url: str) -> httpx.Client:
    return httpx.Client(base_url=connect_url, timeout=30)


@retry(retry=retry_if_exception_type(httpx.TransportError), stop=stop_after_delay(60),
       wait=wait_fixed(1), reraise=True)
def put_config(connect: httpx.Client, name: str, config: dict[str, str]) -> bool:
    """Create or update (idempotent PUT). True if the connector was created now."""
    response = connect.put(f"/connectors/{name}/config", json=config)
    if response.status_code >= 400:
        raise ConnectorFailed(f"Kafka Connect refused the config of {name}: "
                              f"{response.status_code} {response.text[:2000]}")
    return response.status_code == 201


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
    connect.put(f"/connectors/{name}/stop").raise_for_status()
    deadline = time.monotonic() + timeout_s
    while (state := status(connect, name)) is not None and state["connector"]["state"] != "STOPPED":
        if time.monotonic() > deadline:
            raise ConnectorNotRunning(f"{name} did not stop in {timeout_s:.0f} s")
        time.sleep(0.5)
    connect.delete(f"/connectors/{name}/offsets").raise_for_status()
    return delete(connect, name)


def delete(connect: httpx.Client, name: str) -> bool:
    """Delete the connector; False if there was none."""
    response = connect.delete(f"/connectors/{name}")
    if response.status_code == 404:
        return False
    response.raise_for_status()
    return True


def restart_failed(connect: httpx.Client, name: str, report: dict) -> list[str]:
    """Restart the connector and tasks that are FAILED; names of what was restarted."""
    restarted = []
    if report["connector"]["state"] == "FAILED":
        connect.post(f"/connectors/{name}/restart").raise_for_status()
        restarted.append("connector")
    for task in report["tasks"]:
        if task["state"] == "FAILED":
            connect.post(f"/connectors/{name}/tasks/{task['id']}/restart").raise_for_status()
            restarted.append(f"task {task['id']}")
    return restarted


def committed_offset(connect: httpx.Client, name: str) -> dict | None:
    """The connector's committed source offset (KIP-875); None if it has none yet."""
    response = connect.get(f"/connectors/{name}/offsets")
    response.raise_for_status()
    offsets = response.json().get("offsets") or []
    return offsets[0]["offset"] if offsets else None
