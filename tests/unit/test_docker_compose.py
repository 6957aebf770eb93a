"""docker-compose.yml cannot run here (no Docker engine): check that it agrees with the
settings module, the local stack and the Procfile instead."""

from __future__ import annotations

import shlex
import tomllib
from urllib.parse import urlsplit

import pytest
import yaml

from config import Settings
from config.settings import REPO_ROOT
from stack.services import BUCKETS

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SETTINGS_NAMES = {field.validation_alias for field in Settings.model_fields.values()}
APP_SERVICES = [name for name, service in SERVICES.items() if service.get("image") == "orderpipe:local"]


def host_of(value: str) -> str:
    return urlsplit(value if "//" in value else f"//{value}").hostname


def published(service: str) -> set[int]:
    return {int(str(port).split(":")[0]) for port in SERVICES[service].get("ports", [])}


def test_every_piece_of_the_pipeline_is_a_service():
    assert {"mysql", "kafka", "connect", "redis", "minio", "minio-buckets", "spark-master", "spark-worker-1",
            "spark-worker-2", "worker-1", "worker-2", "cdc", "batch"} <= set(SERVICES)
    assert set(APP_SERVICES) == {"worker-1", "worker-2", "cdc", "batch", "broker-metrics"}


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_use_only_the_settings_variable_names(service):
    environment = SERVICES[service]["environment"]
    assert set(environment) <= SETTINGS_NAMES, set(environment) - SETTINGS_NAMES
    settings = Settings(**{name: str(value) for name, value in environment.items()
                           if not str(value).startswith("${")})
    for address in (settings.kafka_bootstrap, settings.kafka_connect_url, settings.redis_url,
                    settings.mysql_host, settings.minio_endpoint, settings.spark_master):
        assert host_of(address) in SERVICES, f"{address} names no service"
    assert settings.cdc_connector == "mysql"  # MySQL 8 here, MariaDB in the local stack


def test_ports_are_the_settings_defaults():
    defaults = Settings()
    assert defaults.kafka_host_port[1] in published("kafka")
    assert defaults.kafka_connect_host_port[1] in published("connect")
    assert defaults.redis_host_port[1] in published("redis")
    assert defaults.mysql_port in published("mysql")
    assert {defaults.minio_host_port[1], defaults.minio_console_port} <= published("minio")
    assert {defaults.faust_web_port, defaults.faust_web_port + 1} == published("worker-1") | published("worker-2")


def test_workers_follow_the_offset_topic_connect_commits_to_often():
    connect = SERVICES["connect"]["environment"]
    assert COMPOSE["x-settings"]["CONNECT_OFFSETS_TOPIC"] == connect["OFFSET_STORAGE_TOPIC"]
    assert int(connect["OFFSET_FLUSH_INTERVAL_MS"]) <= 1000


def test_mysql_writes_the_row_binlog_debezium_reads_and_gets_the_schema():
    command = " ".join(SERVICES["mysql"]["command"])
    assert "--binlog-format=ROW" in command and "--log-bin" in command and "--server-id" in command
    mounts = " ".join(SERVICES["mysql"]["volumes"])
    assert "config/schema.sql" in mounts and (REPO_ROOT / "config/docker/grants.sh").exists()


def test_minio_gets_the_stacks_buckets():
    command = " ".join(SERVICES["minio-buckets"]["entrypoint"])
    assert all(f"lake/{bucket}" in command for bucket in BUCKETS)


def test_processes_match_the_procfile():
    procfile = dict(line.split(": ", 1) for line in (REPO_ROOT / "Procfile").read_text().splitlines()
                    if line and not line.startswith("#"))
    assert set(procfile) == {"worker", "cdc", "batch", "broker-metrics"}
    for process in ("cdc", "batch"):
        assert shlex.split(procfile[process]) == SERVICES[process]["command"]
    assert SERVICES["broker-metrics"]["command"] == [*shlex.split(procfile["broker-metrics"]), "--host", "0.0.0.0"]
    faust = shlex.split(procfile["worker"].split("exec ", 1)[1])
    for worker in ("worker-1", "worker-2"):
        command = SERVICES[worker]["command"]
        assert command[:3] == faust[:3] == ["faust", "-A", "streams.app"]
        assert command[4:7] == faust[4:7] == ["worker", "-l", "info"]
        assert command[command.index("--web-host") + 1] == worker


def test_the_image_holds_every_package():
    packages = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    for package in packages:
        assert f"COPY {package.rstrip('*')} " in dockerfile, package


def test_prometheus_scrapes_every_worker_s_metrics_and_the_brokers_view_and_reads_the_alert_rules():
    mounts = dict(volume.split(":")[:2] for volume in SERVICES["prometheus"]["volumes"])
    scrape = yaml.safe_load((REPO_ROOT / "config/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    targets = {target for group in jobs["orderpipe-workers"]["static_configs"] for target in group["targets"]}
    workers = {name for name in SERVICES if name.startswith("worker-")}

    assert mounts["./config/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert jobs["orderpipe-workers"]["metrics_path"] == "/metrics"
    assert targets == {f"{name}:6066" for name in workers}
    assert jobs["orderpipe-broker"]["static_configs"] == [{"targets": [f"broker-metrics:{Settings().broker_metrics_port}"]}]
    assert scrape["rule_files"] == [mounts["./config/alerts.yml"]]


def test_workers_bound_beyond_loopback_carry_a_token_prometheus_also_sends():
    scrape = yaml.safe_load((REPO_ROOT / "config/prometheus.yml").read_text())
    workers = [SERVICES[name] for name in SERVICES if name.startswith("worker-")]
    token = COMPOSE["x-settings"]["WEB_TOKEN"].split(":-", 1)[1].rstrip("}")

    assert all("--web-bind" in worker["command"] for worker in workers)
    assert scrape["scrape_configs"][0]["authorization"]["credentials"] == token
