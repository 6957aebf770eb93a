"""docker-compose.yml cannot run here (no Docker engine): check that it agrees with the
settings module, the local stack and the Procfile instead."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from urllib.parse import urlsplit

import pytest
import yaml
from dotenv import dotenv_values

from config import Settings
from config.settings import REPO_ROOT
from stack import secrets
from stack.services import BUCKETS

SECRET_NAMES = re.compile(r"PASSWORD|SECRET|TOKEN")

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
    assert set(APP_SERVICES) == {"worker-1", "worker-2", "cdc", "batch", "broker-metrics", "source"}


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_use_only_the_settings_variable_names(service):
    environment = SERVICES[service]["environment"]
    assert set(environment) <= SETTINGS_NAMES, set(environment) - SETTINGS_NAMES
    settings = Settings(_env_file=None, STACK_HOME="/nonexistent-stack",
                        **{name: re.sub(r"\$\{[^}]*\}", "from-dotenv", str(value)) for name, value in environment.items()})
    addresses = {"KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "KAFKA_CONNECT_URL": settings.kafka_connect_url,
                 "REDIS_URL": settings.redis_url, "MYSQL_HOST": settings.mysql_host,
                 "MINIO_ENDPOINT": settings.minio_endpoint, "SPARK_MASTER": settings.spark_master}
    for name, address in addresses.items():
        if name in environment:
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


def test_minio_gets_the_stacks_buckets_and_the_lake_user_its_policy():
    command = " ".join(SERVICES["minio-buckets"]["entrypoint"])
    policy = json.loads((REPO_ROOT / "config/docker/minio-lake-writer.json").read_text())

    assert all(f"lake/{bucket}" in command for bucket in BUCKETS)
    assert policy == secrets.minio_policies(set(BUCKETS))[secrets.LAKE_WRITER]
    assert "mc admin policy attach lake orderpipe-lake --user" in command


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

    assert all("--web-bind" in worker["command"] for worker in workers)
    assert all(worker["environment"]["WEB_TOKEN"].startswith("${WEB_TOKEN:?") for worker in workers)
    assert COMPOSE["secrets"]["web_token"] == {"environment": "WEB_TOKEN"} and SERVICES["prometheus"]["secrets"] == ["web_token"]
    assert scrape["scrape_configs"][0]["authorization"]["credentials_file"] == "/run/secrets/web_token"


def credentials(service: str) -> set[str]:
    return {name for name in SERVICES[service]["environment"] if SECRET_NAMES.search(name)}


def test_each_process_gets_only_the_credentials_it_uses():
    assert credentials("worker-1") == credentials("worker-2") == {"WEB_TOKEN"}
    assert SERVICES["worker-1"]["environment"]["REDIS_URL"].startswith(f"redis://{secrets.GUARD_USER}:${{REDIS_GUARD_PASSWORD:?")
    assert credentials("cdc") == {"MYSQL_CDC_PASSWORD"}
    assert credentials("batch") == {"MYSQL_READER_PASSWORD", "MINIO_SECRET_KEY"}
    assert credentials("broker-metrics") == set()
    assert credentials("source") == {"MYSQL_PASSWORD", "MYSQL_SHOP_PASSWORD"}


def test_compose_redis_has_the_local_stacks_users_and_rules():
    command = SERVICES["redis"]["command"]
    users = " ".join(command).split(" --user ")[1:]

    assert users[0] == "default off"
    assert users[1].split(" ", 3)[0] == secrets.GUARD_USER and users[1].endswith(secrets.GUARD_RULES)
    assert users[2].split(" ")[0] == secrets.ADMIN_USER


def test_every_compose_secret_comes_from_dotenv_with_no_default():
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    example = {line.split("=")[0] for line in (REPO_ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}

    assert set(re.findall(r"\$\{([A-Z_]+):\?", text)) == example == set(secrets.COMPOSE_SECRETS)
    assert not re.search(r"\$\{[A-Z_]+:-", text), "a variable with a default"
    assert all(value == "" for value in dotenv_values(REPO_ROOT / ".env.example").values())
