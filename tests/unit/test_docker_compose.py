"""docker-compose.yml cannot run here (no Docker engine): check that it agrees with the
settings module, the local stack and the Procfile instead."""

from __future__ import annotations

import json
import re
import shlex
import string
import tomllib
from urllib.parse import urlsplit

import pytest
import yaml
from dotenv import dotenv_values

from config import Settings
from config.settings import REPO_ROOT
from stack import secrets
from stack.services import BUCKETS, Kafka

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
    assert set(APP_SERVICES) == {"worker-1", "worker-2", "cdc", "batch", "broker-metrics", "source", "kafka-access"}


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
    assert credentials("worker-1") == credentials("worker-2") == {"WEB_TOKEN", "KAFKA_PASSWORD"}
    assert SERVICES["worker-1"]["environment"]["REDIS_URL"].startswith(f"redis://{secrets.GUARD_USER}:${{REDIS_GUARD_PASSWORD:?")
    assert credentials("cdc") == {"MYSQL_CDC_PASSWORD", "KAFKA_CONNECT_PASSWORD", "KAFKA_TOOLS_PASSWORD"}
    assert credentials("batch") == {"MYSQL_READER_PASSWORD", "MINIO_SECRET_KEY", "KAFKA_LAKE_PASSWORD"}
    assert credentials("broker-metrics") == {"KAFKA_TOOLS_PASSWORD"}
    assert credentials("source") == {"MYSQL_PASSWORD", "MYSQL_SHOP_PASSWORD"}
    assert credentials("kafka-access") == {variable.replace("_USER", "_PASSWORD") for variable in secrets.KAFKA_USERS}


def test_kafka_users_are_the_local_stacks_and_every_kafka_client_waits_for_their_access():
    for name in APP_SERVICES:
        users = {variable: user for variable, user in SERVICES[name]["environment"].items()
                 if variable.startswith("KAFKA_") and variable.endswith("_USER")}
        assert users.items() <= secrets.KAFKA_USERS.items(), name
    assert set(SERVICES["kafka-access"]["environment"]) >= set(secrets.KAFKA_USERS)
    assert SERVICES["kafka-access"]["command"] == ["python", "-m", "stack", "kafka-access"]
    for name in [*(service for service in APP_SERVICES if service != "kafka-access"), "connect"]:
        assert SERVICES[name]["depends_on"]["kafka-access"] == {"condition": "service_completed_successfully"}, name


def compose_kafka_script() -> tuple[dict[str, str], str]:
    """config/docker/kafka.sh's own variables, and its properties with every variable filled in."""
    script = (REPO_ROOT / "config/docker/kafka.sh").read_text()
    variables = dict(re.findall(r"^(\w+)=(\S+)$", script, re.MULTILINE))
    passwords = {name: f"{name.lower()}-from-dotenv" for name in SERVICES["kafka"]["environment"]}
    properties = re.search(r'cat > "\$conf" <<EOF\n(.*?)\nEOF', script, re.DOTALL)[1]
    return variables, string.Template(properties).substitute(variables | passwords)


def test_compose_kafka_asks_every_client_and_broker_for_the_local_stacks_sasl_and_acls():
    variables, properties = compose_kafka_script()
    rendered = dict(line.split("=", 1) for line in properties.splitlines())
    settings = Settings(_env_file=None, STACK_HOME="/nonexistent-stack",
                        KAFKA_BROKER_USER=variables["broker"],
                        KAFKA_BROKER_PASSWORD="kafka_broker_password-from-dotenv",
                        KAFKA_TOOLS_USER=variables["tools"],
                        KAFKA_TOOLS_PASSWORD="kafka_tools_password-from-dotenv")
    local_stack = Kafka(settings, None, None).security()  # type: ignore[arg-type]

    assert {name: rendered.get(name) for name in local_stack} == {name: str(value)
                                                                  for name, value in local_stack.items()}
    assert rendered["advertised.listeners"] == f"CLIENT://{COMPOSE['x-settings']['KAFKA_BOOTSTRAP']}"
    assert {variables["broker"], variables["tools"]} == {secrets.KAFKA_USERS["KAFKA_BROKER_USER"],
                                                         secrets.KAFKA_USERS["KAFKA_TOOLS_USER"]}
    assert rendered["num.partitions"] == COMPOSE["x-settings"]["TOPIC_PARTITIONS"]


def test_compose_connect_logs_in_as_the_local_stacks_connect_does():
    environment = SERVICES["connect"]["environment"]
    password = "connect-from-dotenv"
    worker = {name.removeprefix("CONNECT_").lower().replace("_", "."): re.sub(r"\$\{[^}]*\}", password, value)
              for name, value in environment.items() if name.startswith("CONNECT_")}
    settings = Settings(_env_file=None, STACK_HOME="/nonexistent-stack",
                        KAFKA_CONNECT_USER=secrets.KAFKA_USERS["KAFKA_CONNECT_USER"], KAFKA_CONNECT_PASSWORD=password)

    assert worker == {name: value for prefix in ("", "producer.", "consumer.", "admin.")
                      for name, value in settings.kafka_java_config("connect", prefix).items()}


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


@pytest.mark.parametrize("service", APP_SERVICES)
def test_a_secret_setting_takes_the_dotenv_variable_of_its_own_name(service):
    taken = {name: re.findall(r"\$\{([A-Z_]+):\?", str(value))
             for name, value in SERVICES[service]["environment"].items()}
    assert all(variables == [name] for name, variables in taken.items() if SECRET_NAMES.search(name)), taken
