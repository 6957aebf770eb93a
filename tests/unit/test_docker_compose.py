"""docker-compose.yml cannot run here (no Docker engine): check that it agrees with the
settings module, the local stack and the Procfile instead."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import string
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from dotenv import dotenv_values

from cdc.connector import connector_config, connector_secrets
from config import Settings
from config.settings import REPO_ROOT
from stack import install, secrets
from stack.services import BUCKETS, REST_LOGIN_EXTENSION, REST_LOGIN_MODULE, Kafka

# A credential's name (a *_FILE names where secrets are, it holds none).
SECRET_NAMES = re.compile(r"^(?!\w*_FILE$)\w*(PASSWORD|SECRET|TOKEN)")
DOTENV_VARIABLE = re.compile(r"\$\{([A-Z_]+):\?[^}]*\}")

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SETTINGS_NAMES = {field.validation_alias for field in Settings.model_fields.values()}
APP_SERVICES = [name for name, service in SERVICES.items() if service.get("image") == "orderpipe:local"]
SPARK_CLUSTER = [name for name, service in SERVICES.items() if service.get("image", "").startswith("apache/spark:")]
SPARK_DRIVER = "batch"
# Spark's own variables (its launcher and its SecurityManager read them), the driver's besides the settings.
SPARK_VARIABLES = {"_SPARK_AUTH_SECRET", "SPARK_CONF_DIR"}
# A published port: [address:]host:container, the address a variable with its default.
PORT = re.compile(r"^(?:(?P<address>\$\{BIND_ADDRESS:-(?P<default>[^}]*)\}|[^:]+):)?(?P<host>\d+):(?P<container>\d+)$")


def host_of(value: str) -> str:
    return urlsplit(value if "//" in value else f"//{value}").hostname


def ports(service: str) -> list[re.Match]:
    found = [PORT.match(str(port)) for port in SERVICES[service].get("ports", [])]
    assert all(found), SERVICES[service]["ports"]
    return found


def published(service: str) -> set[int]:
    return {int(port["host"]) for port in ports(service)}


def from_dotenv(value: str) -> str:
    """`value` with each .env variable filled in as compose would, by a stand-in."""
    return DOTENV_VARIABLE.sub(lambda variable: f"{variable[1].lower()}-from-dotenv", value)


def test_every_piece_of_the_pipeline_is_a_service():
    assert {"mysql", "kafka", "connect", "redis", "minio", "minio-access", "spark-master", "spark-worker-1",
            "spark-worker-2", "worker-1", "worker-2", "cdc", "batch"} <= set(SERVICES)
    assert set(APP_SERVICES) == {"worker-1", "worker-2", "cdc", "batch", "broker-metrics", "source", "kafka-access",
                                 "minio-access"}


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_use_only_the_settings_variable_names(service):
    environment = {name: value for name, value in SERVICES[service]["environment"].items()
                   if not (service == SPARK_DRIVER and name in SPARK_VARIABLES)}
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


def test_only_the_ports_a_user_needs_are_published():
    assert {name: published(name) for name in SERVICES if published(name)} == {
        "mysql": {3306}, "kafka": {9092}, "connect": {8083}, "redis": {6379}, "minio": {9000, 9001},
        "worker-1": {6066}, "worker-2": {6067}, "prometheus": {9090},
        "spark-master": {8080},  # its web UI; the cluster's 7077 is for the containers only
    }


@pytest.mark.parametrize("service", [name for name in SERVICES if SERVICES[name].get("ports")])
def test_published_ports_listen_on_loopback_unless_bind_address_says_otherwise(service):
    for port in ports(service):
        assert port["address"] and port["default"] == "127.0.0.1", port.string


def test_workers_follow_the_offset_topic_connect_commits_to_often():
    connect = SERVICES["connect"]["environment"]
    assert COMPOSE["x-settings"]["CONNECT_OFFSETS_TOPIC"] == connect["OFFSET_STORAGE_TOPIC"]
    assert int(connect["OFFSET_FLUSH_INTERVAL_MS"]) <= 1000


def test_mysql_writes_the_row_binlog_debezium_reads_and_gets_the_schema():
    command = " ".join(SERVICES["mysql"]["command"])
    assert "--binlog-format=ROW" in command and "--log-bin" in command and "--server-id" in command
    mounts = " ".join(SERVICES["mysql"]["volumes"])
    assert "config/schema.sql" in mounts and (REPO_ROOT / "config/docker/grants.sh").exists()


def test_minio_gets_the_stacks_buckets_and_users_from_the_stacks_own_command_with_every_key_from_dotenv():
    access = SERVICES["minio-access"]

    assert access["command"] == ["python", "-m", "stack", "minio-access"] and "entrypoint" not in access
    assert credentials("minio-access") == {"MINIO_ROOT_PASSWORD", "MINIO_SECRET_KEY"}
    assert {name: DOTENV_VARIABLE.fullmatch(access["environment"][name])[1] for name in (
        "MINIO_ROOT_USER", "MINIO_ACCESS_KEY")} == {"MINIO_ROOT_USER": "MINIO_ROOT_USER", "MINIO_ACCESS_KEY": "MINIO_ACCESS_KEY"}
    lake_users = [name for name in APP_SERVICES if "MINIO_SECRET_KEY" in SERVICES[name]["environment"]]
    assert "batch" in lake_users
    for name in set(lake_users) - {"minio-access"}:
        assert SERVICES[name]["depends_on"]["minio-access"] == {"condition": "service_completed_successfully"}, name


def test_every_image_is_pinned_and_minio_is_built_from_the_local_stack_s_pinned_source():
    images = {name: service["image"] for name, service in SERVICES.items()}
    assert {name: image for name, image in images.items() if ":" not in image or image.endswith(":latest")} == {}
    minio = SERVICES["minio"]
    assert minio["build"]["args"]["MINIO_VERSION"] == install.MINIO_VERSION
    assert minio["image"].endswith(f":{install.MINIO_VERSION}")
    dockerfile = (REPO_ROOT / minio["build"]["dockerfile"]).read_text()
    assert f"{install.MINIO_MODULE}@${{MINIO_VERSION}}" in dockerfile and "USER minio" in dockerfile


def procfile_commands() -> dict[str, tuple[dict[str, str], list[str]]]:
    """Each Procfile process: the variables its line sets, and its command."""
    commands = {}
    for line in (REPO_ROOT / "Procfile").read_text().splitlines():
        if line and not line.startswith("#"):
            name, command = line.split(": ", 1)
            words = shlex.split(command.split("&& ", 1)[-1])
            assignments = [word for word in words if re.fullmatch(r"[A-Z_]+=\S*", word)]
            commands[name] = (dict(word.split("=", 1) for word in assignments),
                              [word for word in words if word not in assignments and word != "exec"])
    return commands


def test_processes_match_the_procfile():
    procfile = {name: command for name, (_, command) in procfile_commands().items()}
    assert set(procfile) == {"worker", "cdc", "batch", "broker-metrics"}
    for process in ("cdc", "batch"):
        assert procfile[process] == SERVICES[process]["command"]
    assert SERVICES["broker-metrics"]["command"] == [*procfile["broker-metrics"], "--host", "0.0.0.0"]
    faust = procfile["worker"]
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


def test_each_procfile_process_takes_only_its_roles_secrets_from_the_stacks_file():
    roles = {name: variables.get("STACK_SECRETS_ROLE") for name, (variables, _) in procfile_commands().items()}

    assert roles == {"worker": "worker", "cdc": "connector-watcher", "broker-metrics": "broker-metrics", "batch": "lake"}


def test_each_process_gets_only_the_credentials_it_uses():
    assert credentials("worker-1") == credentials("worker-2") == {"WEB_TOKEN", "KAFKA_PASSWORD"}
    assert SERVICES["worker-1"]["environment"]["REDIS_URL"].startswith(f"redis://{secrets.GUARD_USER}:${{REDIS_GUARD_PASSWORD:?")
    # the connector's own secrets are Connect's (its secrets file); `cdc snapshot` signals as MySQL's cdc user
    assert credentials("cdc") == {"MYSQL_CDC_PASSWORD", "KAFKA_CONNECT_REST_PASSWORD"}
    assert credentials("batch") == {"MYSQL_READER_PASSWORD", "MINIO_SECRET_KEY", "KAFKA_LAKE_PASSWORD", "_SPARK_AUTH_SECRET"}
    assert credentials("broker-metrics") == {"KAFKA_MONITOR_PASSWORD"}
    assert credentials("source") == {"MYSQL_PASSWORD", "MYSQL_SHOP_PASSWORD"}
    assert credentials("kafka-access") == {variable.replace("_USER", "_PASSWORD") for variable in secrets.KAFKA_USERS}


def test_kafka_users_are_the_local_stacks_and_every_kafka_client_waits_for_their_access():
    for name in APP_SERVICES:
        users = {variable: user for variable, user in SERVICES[name]["environment"].items()
                 if variable.startswith("KAFKA_") and variable.endswith("_USER") and variable != "KAFKA_CONNECT_REST_USER"}
        assert users.items() <= secrets.KAFKA_USERS.items(), name
        assert SERVICES[name]["environment"].get("KAFKA_CONNECT_REST_USER", secrets.CONNECT_REST_USER) == secrets.CONNECT_REST_USER
    assert set(SERVICES["kafka-access"]["environment"]) >= set(secrets.KAFKA_USERS)
    assert SERVICES["kafka-access"]["command"] == ["python", "-m", "stack", "kafka-access"]
    for name in [*(service for service in APP_SERVICES if service not in ("kafka-access", "minio-access")), "connect"]:
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


RECORD_RUN = '#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"\nenv | cut -d= -f1 > "$0.env"\n'


def test_compose_kafka_formats_with_no_password_on_a_command_line_and_none_left_in_its_environment(tmp_path):
    kafka = tmp_path / "kafka"
    (kafka / "bin").mkdir(parents=True)
    (kafka / "bin" / "kafka-storage.sh").write_text("#!/bin/sh\necho -AbCdEfGhIjKlMnOpQrStUv\n")
    (kafka / "bin" / "kafka-run-class.sh").write_text(  # keeps the argument file it was given
        '#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"\ncp -p "${1#@}" "$0.argfile"\n')
    (kafka / "bin" / "kafka-server-start.sh").write_text(RECORD_RUN)
    for tool in (kafka / "bin").iterdir():
        tool.chmod(0o700)
    script = (REPO_ROOT / "config/docker/kafka.sh").read_text()
    for name, value in {"kafka": kafka, "conf": tmp_path / "orderpipe.properties", "data": tmp_path / "data"}.items():
        script = re.sub(rf"^{name}=.*$", f"{name}={value}", script, flags=re.MULTILINE)
    (tmp_path / "kafka.sh").write_text(script)
    environment = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path),
                   **{name: "broker-secret-from-dotenv" for name in SERVICES["kafka"]["environment"]}}
    subprocess.run(["/bin/sh", str(tmp_path / "kafka.sh")], check=True, capture_output=True, env=environment)
    ran = kafka / "bin" / "kafka-run-class.sh"

    [argument_file] = ran.with_suffix(".sh.args").read_text().splitlines()
    assert argument_file.startswith("@") and not Path(argument_file[1:]).exists()  # removed once formatted
    assert "broker-secret-from-dotenv" in ran.with_suffix(".sh.argfile").read_text()
    assert owner_only(ran.with_suffix(".sh.argfile")) and owner_only(tmp_path / "orderpipe.properties")
    assert set(SERVICES["kafka"]["environment"]) == {"KAFKA_BROKER_PASSWORD"}  # the tools' is kafka-access's
    started = kafka / "bin" / "kafka-server-start.sh"
    assert started.with_suffix(".sh.args").read_text().split() == [str(tmp_path / "orderpipe.properties")]
    assert "KAFKA_BROKER_PASSWORD" not in started.with_suffix(".sh.env").read_text().split()


def test_compose_mysql_grants_log_in_as_root_with_no_password_on_a_command_line(tmp_path):
    (tmp_path / "mysql").write_text(  # a stand-in: its arguments, its option file and that file's mode
        '#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"\nfile="${1#--defaults-extra-file=}"\n'
        'cat "$file" > "$0.login"\nstat -c %a "$file" > "$0.mode"\ncat > "$0.sql"\n')
    (tmp_path / "mysql").chmod(0o700)
    environment = {name: f"{name.lower()}-from-dotenv" for name in SERVICES["mysql"]["environment"] if "PASSWORD" in name}
    subprocess.run(["/bin/sh", str(REPO_ROOT / "config/docker/grants.sh")], check=True, capture_output=True,
                   env={"PATH": f"{tmp_path}:{os.environ['PATH']}", "TMPDIR": str(tmp_path),
                        "MYSQL_DATABASE": "project_db", **environment})
    arguments = (tmp_path / "mysql.args").read_text()

    assert not any(value in arguments for value in environment.values())
    assert 'password="mysql_root_password-from-dotenv"' in (tmp_path / "mysql.login").read_text()
    assert (tmp_path / "mysql.mode").read_text().strip() == "600"
    assert "IDENTIFIED BY 'mysql_shop_password-from-dotenv'" in (tmp_path / "mysql.sql").read_text()
    assert not [path for path in tmp_path.iterdir() if path.name.startswith("tmp")]  # the option file removed
    assert SERVICES["mysql"]["environment"]["MYSQL_ROOT_HOST"] == "localhost"  # root never over TCP


def test_compose_connect_logs_in_as_the_local_stacks_connect_does():
    environment = SERVICES["connect"]["environment"]
    password = "connect-from-dotenv"
    worker = {name.removeprefix("CONNECT_").lower().replace("_", "."): re.sub(r"\$\{[^}]*\}", password, value)
              for name, value in environment.items() if name.startswith("CONNECT_")}
    settings = Settings(_env_file=None, STACK_HOME="/nonexistent-stack",
                        KAFKA_CONNECT_USER=secrets.KAFKA_USERS["KAFKA_CONNECT_USER"], KAFKA_CONNECT_PASSWORD=password)
    logins = {name: value for name, value in worker.items() if re.search(r"(^|\.)(security\.protocol|sasl\.)", name)}

    assert logins == {name: value for prefix in ("", "producer.", "consumer.", "admin.")
                      for name, value in settings.kafka_java_config("connect", prefix).items()}


def mounts(service: str) -> dict[str, str]:
    """The service's files from the repository: each one's place in the container -> its path here."""
    found = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target, *options = volume.split(":")
        if source.startswith("./"):
            assert options == ["ro"], volume
            found[target] = source
    return found


def inside(root: Path, path: str) -> Path:
    """A container's `path` under `root`, where a test runs its script."""
    return root / path.lstrip("/")


def properties(path: Path, separator: str = "=") -> dict[str, str]:
    """A properties file's keys and values (spark-defaults.conf's are separated by spaces)."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(re.split(separator, line, maxsplit=1) for line in lines if line and not line.startswith("#"))


def owner_only(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def run_entrypoint(service: str, root: Path, environment: dict[str, str], args: list[str],
                   **variables: str) -> tuple[list[str], set[str]]:
    """Run the service's entrypoint script (its mounted copy here) with `variables` (its own
    `name=value` lines) set for this test: the arguments and the variable names that reached
    the program it runs (a stand-in, whose path is `root`/exec)."""
    entrypoint = SERVICES[service]["entrypoint"]
    assert entrypoint[0] == "/bin/sh"
    script = (REPO_ROOT / mounts(service)[entrypoint[1]]).read_text()
    for name, value in variables.items():
        script, found = re.subn(rf"^{name}=.*$", f"{name}={value}", script, flags=re.MULTILINE)
        assert found == 1, name
    (root / "entrypoint.sh").write_text(script)
    (root / "exec").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"\nenv | cut -d= -f1 > "$0.env"\n')
    (root / "exec").chmod(0o700)
    subprocess.run(["/bin/sh", str(root / "entrypoint.sh"), *args], check=True, capture_output=True,
                   env={"PATH": os.environ["PATH"], **environment})
    return (root / "exec.args").read_text().splitlines(), set((root / "exec.env").read_text().split())


SPARK_SECURITY = {"spark.authenticate": "true", "spark.network.crypto.enabled": "true"}


@pytest.mark.parametrize("service", ["spark-master", "spark-worker-1", "spark-worker-2"])
def test_spark_s_master_and_workers_authenticate_and_encrypt_with_the_secret_from_dotenv(service):
    environment = SERVICES[service]["environment"]
    defaults = mounts(service)[f"{environment['SPARK_CONF_DIR']}/spark-defaults.conf"]

    assert service in SPARK_CLUSTER
    assert properties(REPO_ROOT / defaults, r"\s+").items() >= SPARK_SECURITY.items()
    assert DOTENV_VARIABLE.fullmatch(environment["_SPARK_AUTH_SECRET"])[1] == "SPARK_AUTH_SECRET"


def test_spark_s_driver_holds_the_cluster_s_settings_and_secret_in_an_owner_only_spark_defaults(tmp_path):
    batch = SERVICES[SPARK_DRIVER]
    environment = {name: from_dotenv(value) for name, value in batch["environment"].items() if name in SPARK_VARIABLES}
    conf_dir = inside(tmp_path, environment["SPARK_CONF_DIR"])
    script = (REPO_ROOT / mounts(SPARK_DRIVER)[batch["entrypoint"][1]]).read_text()
    defaults = mounts(SPARK_DRIVER)[re.search(r"^defaults=(\S+)$", script, re.MULTILINE)[1]]

    ran, _ = run_entrypoint(SPARK_DRIVER, tmp_path, {**environment, "SPARK_CONF_DIR": str(conf_dir)},
                            [str(tmp_path / "exec"), *batch["command"]], defaults=str(REPO_ROOT / defaults))
    written = conf_dir / "spark-defaults.conf"

    assert batch["environment"]["SPARK_MASTER"].startswith("spark://spark-master:")
    assert ran == batch["command"]
    assert defaults == mounts("spark-master")["/opt/spark/conf/spark-defaults.conf"]  # the cluster's own
    assert properties(written, r"\s+") == {**properties(REPO_ROOT / defaults, r"\s+"),
                                        "spark.authenticate.secret": "spark_auth_secret-from-dotenv"}
    assert properties(written, r"\s+").items() >= SPARK_SECURITY.items()
    assert owner_only(written) and owner_only(conf_dir)


# What becomes a process's command line: the entrypoint, the command, and the JVM's options.
COMMAND_LINE_VARIABLES = re.compile(r"(_OPTS|_ARGS|^JAVA_TOOL_OPTIONS)$")


@pytest.mark.parametrize("service", [*SPARK_CLUSTER, SPARK_DRIVER, "connect"])
def test_spark_s_and_connect_s_secrets_are_on_no_command_line(service):
    definition = SERVICES[service]
    command_line = " ".join([*definition.get("entrypoint", []), *definition.get("command", []),
                             *(str(value) for name, value in definition["environment"].items()
                               if COMMAND_LINE_VARIABLES.search(name))])

    assert not DOTENV_VARIABLE.search(command_line), command_line
    assert "spark.authenticate.secret" not in command_line and "SPARK_AUTH_SECRET" not in command_line


def run_connect_secrets(root: Path) -> tuple[list[str], set[str]]:
    connect = SERVICES["connect"]
    environment = {name: from_dotenv(str(value)) for name, value in connect["environment"].items()}
    environment["CONNECTOR_SECRETS_FILE"] = str(inside(root, environment["CONNECTOR_SECRETS_FILE"]))
    return run_entrypoint("connect", root, environment, connect["command"],
                          secrets=str(inside(root, "/kafka/secrets")), entrypoint=str(root / "exec"))


def test_compose_connect_asks_every_rest_call_for_the_login_cdc_has(tmp_path):
    connect, cdc = SERVICES["connect"]["environment"], SERVICES["cdc"]["environment"]
    ran, passed_on = run_connect_secrets(tmp_path)
    jaas = inside(tmp_path, connect["KAFKA_OPTS"].removeprefix("-Djava.security.auth.login.config="))
    module, users = re.fullmatch(r'KafkaConnect \{\s*(\S+) required\s+file="([^"]+)";\s*\};\s*', jaas.read_text()).groups()

    assert connect["CONNECT_REST_EXTENSION_CLASSES"] == REST_LOGIN_EXTENSION and module == REST_LOGIN_MODULE
    assert properties(Path(users)) == {cdc["KAFKA_CONNECT_REST_USER"]: from_dotenv(cdc["KAFKA_CONNECT_REST_PASSWORD"])}
    assert from_dotenv(connect["KAFKA_CONNECT_REST_PASSWORD"]) == from_dotenv(cdc["KAFKA_CONNECT_REST_PASSWORD"])
    assert owner_only(jaas) and owner_only(Path(users)) and owner_only(jaas.parent)
    assert ran == SERVICES["connect"]["command"] == ["start"]  # the image's entrypoint, as its CMD asks
    assert not {"KAFKA_CONNECT_REST_PASSWORD", "MYSQL_CDC_PASSWORD"} & passed_on  # not in the worker's environment


def test_compose_connect_holds_the_connector_s_secrets_its_config_refers_to(tmp_path):
    connect, cdc = SERVICES["connect"]["environment"], SERVICES["cdc"]["environment"]
    run_connect_secrets(tmp_path)
    written = inside(tmp_path, connect["CONNECTOR_SECRETS_FILE"])
    local_stack = Settings(_env_file=None, STACK_HOME="/nonexistent-stack",
                           KAFKA_CONNECT_USER=secrets.KAFKA_USERS["KAFKA_CONNECT_USER"],
                           KAFKA_CONNECT_PASSWORD="kafka_connect_password-from-dotenv",
                           MYSQL_CDC_USER=cdc["MYSQL_CDC_USER"], MYSQL_CDC_PASSWORD="mysql_cdc_password-from-dotenv")
    sent = connector_config(Settings(_env_file=None, STACK_HOME="/nonexistent-stack",
                                     **{name: from_dotenv(str(value)) for name, value in cdc.items()}))
    references = re.findall(r"\$\{file:([^:}]+):([^}]+)\}", json.dumps(sent))

    assert (connect["CONNECT_CONFIG_PROVIDERS"], connect["CONNECT_CONFIG_PROVIDERS_FILE_CLASS"]) == (
        "file", "org.apache.kafka.common.config.provider.FileConfigProvider")
    assert properties(written) == connector_secrets(local_stack)
    assert set(properties(written)) == {"database.password", "kafka.sasl.jaas.config"}
    assert {path for path, _ in references} == {cdc["CONNECTOR_SECRETS_FILE"]} == {connect["CONNECTOR_SECRETS_FILE"]}
    assert {key for _, key in references} == set(properties(written))
    assert connect["CONNECTOR_SECRETS_FILE"].startswith(connect["CONNECT_CONFIG_PROVIDERS_FILE_PARAM_ALLOWED_PATHS"] + "/")
    assert "-from-dotenv" not in json.dumps(sent) and "KAFKA_CONNECT_PASSWORD" not in cdc  # no password in it
    assert owner_only(written)


def test_compose_redis_has_the_local_stacks_users_and_rules_with_no_password_on_its_command_line(tmp_path):
    redis = SERVICES["redis"]
    environment = {name: from_dotenv(str(value)) for name, value in redis["environment"].items()}
    acl = inside(tmp_path, "/data/users.acl")
    ran, passed_on = run_entrypoint("redis", tmp_path, environment, [], acl=str(acl), entrypoint=str(tmp_path / "exec"))
    guard = f"redis://{secrets.GUARD_USER}:{environment['REDIS_GUARD_PASSWORD']}@redis:6379/2"
    admin = f"redis://{secrets.ADMIN_USER}:{environment['REDIS_ADMIN_PASSWORD']}@redis:6379/2"

    assert acl.read_text() == secrets.redis_acl(guard, admin)  # the local stack's file, byte for byte
    assert owner_only(acl)
    assert ran == ["redis-server", "--appendonly", "yes", "--aclfile", str(acl)]
    assert not {"REDIS_GUARD_PASSWORD", "REDIS_ADMIN_PASSWORD"} & passed_on
    assert not DOTENV_VARIABLE.search(" ".join([*redis["entrypoint"], *redis.get("command", [])]))


def test_every_compose_secret_comes_from_dotenv_with_no_default():
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    example = {line.split("=")[0] for line in (REPO_ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}

    assert set(re.findall(r"\$\{([A-Z_]+):\?", text)) == example == set(secrets.COMPOSE_SECRETS)
    assert set(re.findall(r"\$\{([A-Z_]+):-", text)) == {"BIND_ADDRESS"}, "a variable with a default"
    assert all(value == "" for value in dotenv_values(REPO_ROOT / ".env.example").values())


@pytest.mark.parametrize("service", APP_SERVICES)
def test_a_secret_setting_takes_the_dotenv_variable_of_its_own_name(service):
    taken = {name: re.findall(r"\$\{([A-Z_]+):\?", str(value))
             for name, value in SERVICES[service]["environment"].items()}
    # Spark's own name for its secret is _SPARK_AUTH_SECRET
    assert all(variables == [name.lstrip("_")] for name, variables in taken.items() if SECRET_NAMES.search(name)), taken


def test_the_image_installs_spark_s_jars_through_the_stack_s_pinned_install_before_any_session():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    cache = dockerfile.index("STACK_CACHE=/cache")
    assert cache < dockerfile.index("RUN python -m stack.install spark-jars") < dockerfile.index("COPY batch ")
