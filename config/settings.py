"""The one settings object. Every environment variable the product reads is a field here.

Defaults are the local stack (`python -m stack up`) on loopback. No password has a default:
the local stack's are in its secrets file (made by `python -m stack up`), a deployment sets
the variables; only a stack made with `python -m stack up --insecure` gets INSECURE_DEFAULTS.
"""

from __future__ import annotations

import os
import re

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
# The local stack's credentials, made by its first `python -m stack up` (stack/secrets.py),
# under STACK_HOME; a variable set in the environment or `.env` wins over the file.
STACK_SECRETS_FILE = "secrets.env"
INSECURE_MARK = "insecure"  # beside it: a stack made by `python -m stack up --insecure`
# LOCAL-DEVELOPMENT DEFAULTS, for a stack made with `--insecure` only (deliberately open).
INSECURE_DEFAULTS = {"MYSQL_PASSWORD": "admin", "MINIO_SECRET_KEY": "admin123"}
LOCAL_BROKER_STEP = 100  # the local stack's brokers listen on 9092, 9192, 9292, ...
MysqlRole = Literal["owner", "shop", "cdc", "reader"]
MinioRole = Literal["root", "writer", "reader"]
KafkaRole = Literal["stream", "connect", "lake", "replay", "monitor", "tools", "broker"]
# The roles that are no super user: each has its own ACLs (stack/secrets.py kafka_acls).
KAFKA_CLIENT_ROLES: tuple[KafkaRole, ...] = ("stream", "connect", "lake", "replay", "monitor")
ProcessRole = Literal["worker", "lake", "connector-watcher", "broker-metrics"]


class MissingCredentials(RuntimeError):
    """A login the command needs is not set; the message names the fix."""


class NotInstalled(RuntimeError):
    """A piece `python -m stack install` puts in place is absent; the message names that command."""


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    """Split `host:port` (or a URL) into its host and port."""
    parts = urlsplit(address if "//" in address else f"//{address}")
    return parts.hostname or "127.0.0.1", parts.port or default_port


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    # --- Kafka and Kafka Connect -------------------------------------------------------
    # Default: every broker of the local stack (KAFKA_BROKERS of them, LOCAL_BROKER_STEP apart).
    kafka_bootstrap: str = Field("127.0.0.1:9092", validation_alias="KAFKA_BOOTSTRAP")
    # Brokers in the cluster (the local stack runs this many): every topic the project creates
    # gets min(3, brokers) replicas, and with 3 or more, 2 must be in sync for a write.
    kafka_brokers: int = Field(1, validation_alias="KAFKA_BROKERS", ge=1, le=5)
    kafka_connect_url: str = Field("http://127.0.0.1:8083", validation_alias="KAFKA_CONNECT_URL")
    # The Debezium connector: MariaDB's locally, MySQL's for MySQL 8 (docker-compose).
    cdc_connector: Literal["mariadb", "mysql"] = Field("mariadb", validation_alias="CDC_CONNECTOR")
    cdc_connector_name: str = Field("project-db-cdc", validation_alias="CDC_CONNECTOR_NAME")
    # Kafka Connect's REST API login (its own role: the stack, `cdc` and the tests); unset, requests
    # carry no credentials (a Connect without its BasicAuthSecurityRestExtension).
    kafka_connect_rest_user: str | None = Field(None, validation_alias="KAFKA_CONNECT_REST_USER")
    kafka_connect_rest_password: SecretStr | None = Field(None, validation_alias="KAFKA_CONNECT_REST_PASSWORD")
    # The connector's secrets as Connect's worker reads them (its FileConfigProvider): a connector
    # config holds `${file:<this>:<key>}`, never a value. Unset: the local stack's file,
    # <STACK_HOME>/conf/connector-secrets.properties.
    connector_secrets_file: str | None = Field(None, validation_alias="CONNECTOR_SECRETS_FILE")
    # False for a process the stack starts with only its own credentials (Settings.as_env): it
    # does not read the stack's secrets file either.
    read_stack_secrets: bool = Field(True, validation_alias="READ_STACK_SECRETS")
    # A process that reads the secrets file itself (the Procfile's) takes only the secrets of
    # this role from it (PROCESS_CREDENTIALS: worker, lake, connector-watcher, broker-metrics).
    stack_secrets_role: ProcessRole | None = Field(None, validation_alias="STACK_SECRETS_ROLE")
    # Kafka Connect's offset storage topic (its `offset.storage.topic`): the workers read the
    # connector's committed binlog position there, to settle orders on quiet partitions.
    connect_offsets_topic: str = Field("_connect_offsets", validation_alias="CONNECT_OFFSETS_TOPIC")
    # SASL credentials, a principal per role (stack/secrets.py): the workers', then Kafka
    # Connect's, the lake's, the dead-letter replay's, the monitor's, operators' tools' and the brokers' own. Each role uses the
    # workers' when its own is unset; with none set, clients speak PLAINTEXT.
    kafka_user: str | None = Field(None, validation_alias="KAFKA_USER")
    kafka_password: SecretStr | None = Field(None, validation_alias="KAFKA_PASSWORD")
    kafka_connect_user: str | None = Field(None, validation_alias="KAFKA_CONNECT_USER")
    kafka_connect_password: SecretStr | None = Field(None, validation_alias="KAFKA_CONNECT_PASSWORD")
    kafka_lake_user: str | None = Field(None, validation_alias="KAFKA_LAKE_USER")
    kafka_lake_password: SecretStr | None = Field(None, validation_alias="KAFKA_LAKE_PASSWORD")
    # `streams dead-letters replay`: writes the CDC topics, nothing else
    kafka_replay_user: str | None = Field(None, validation_alias="KAFKA_REPLAY_USER")
    kafka_replay_password: SecretStr | None = Field(None, validation_alias="KAFKA_REPLAY_PASSWORD")
    # `streams broker-metrics`: describes the stream's topics and group, reads and writes nothing
    kafka_monitor_user: str | None = Field(None, validation_alias="KAFKA_MONITOR_USER")
    kafka_monitor_password: SecretStr | None = Field(None, validation_alias="KAFKA_MONITOR_PASSWORD")
    kafka_tools_user: str | None = Field(None, validation_alias="KAFKA_TOOLS_USER")
    kafka_tools_password: SecretStr | None = Field(None, validation_alias="KAFKA_TOOLS_PASSWORD")
    kafka_broker_user: str | None = Field(None, validation_alias="KAFKA_BROKER_USER")
    kafka_broker_password: SecretStr | None = Field(None, validation_alias="KAFKA_BROKER_PASSWORD")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-256", validation_alias="KAFKA_SASL_MECHANISM")
    # The CA (PEM) that signed the brokers' certificates. Set, the SASL clients speak TLS
    # (SASL_SSL) and verify each broker's name against it; `python -m stack up --tls` makes
    # the local stack's and sets this in its secrets file.
    kafka_ssl_ca: Path | None = Field(None, validation_alias="KAFKA_SSL_CA")
    # Partitions of the CDC topics, the stream's tables and order_final: the most workers
    # that can share the stream.
    topic_partitions: int = Field(4, validation_alias="TOPIC_PARTITIONS", ge=1)

    # --- The stream (Faust) ---------------------------------------------------------------
    # The app id names the consumer group, the table changelogs and the internal topics.
    stream_app_id: str = Field("orderpipe", validation_alias="STREAM_APP_ID")
    faust_web_port: int = Field(6066, validation_alias="FAUST_WEB_PORT")  # worker N serves on +N-1
    # Asked of every web request when a worker is bound beyond loopback (streams/runtime/web_access.py).
    web_token: SecretStr | None = Field(None, validation_alias="WEB_TOKEN")
    # The hosts a worker sends that token to (comma-separated): another worker's views are asked,
    # and a table view's request forwarded, only at these or the worker's own host; loopback when
    # empty. A member of the group announces its own address: this keeps the token from any other.
    web_peer_hosts: str = Field("", validation_alias="WEB_PEER_HOSTS")
    order_final_topic: str = Field("order_final", validation_alias="ORDER_FINAL_TOPIC")
    dead_letter_topic: str = Field("order_cdc_dead_letter", validation_alias="DEAD_LETTER_TOPIC")
    # Alerts (agents/alerts.py): a complete order with this many items in all, or products, is
    # `bulk`; an incomplete one quiet this long is `stalled`.
    order_alerts_topic: str = Field("order_alerts", validation_alias="ORDER_ALERTS_TOPIC")
    alert_bulk_quantity: int = Field(12, validation_alias="ALERT_BULK_QUANTITY", ge=1)
    alert_bulk_products: int = Field(10, validation_alias="ALERT_BULK_PRODUCTS", ge=1)
    stall_after_s: float = Field(300.0, validation_alias="STALL_AFTER_S", gt=0)
    # Bounds how long a live worker may take from claiming an order to an acknowledged send.
    producer_request_timeout_s: float = Field(30.0, validation_alias="PRODUCER_REQUEST_TIMEOUT_S", gt=0)

    # A cancelled order's state is dropped this long after the worker saw it deleted, an
    # emitted order's marker this long after it was made (agents/retention.py).
    state_retention_s: float = Field(86_400.0, validation_alias="STATE_RETENTION_S", gt=0)

    # --- Redis: the completion guard lives in the URL's database (db 2 by default) --------
    # The workers' guard user; the local stack's is in its secrets file (stack/secrets.py).
    redis_url: str = Field("redis://127.0.0.1:6379/2", validation_alias="REDIS_URL")
    # Operators, benchmarks and tests: a user that may run every command (REDIS_URL's when unset).
    redis_admin_url: str | None = Field(None, validation_alias="REDIS_ADMIN_URL")

    # --- MySQL / MariaDB source ----------------------------------------------------------
    mysql_host: str = Field("127.0.0.1", validation_alias="MYSQL_HOST")
    mysql_port: int = Field(3306, validation_alias="MYSQL_PORT")
    # The owner: schema, reference data, operators' tools, tests' scratch databases. Each
    # role below uses the owner's login when its own is unset; the local stack's secrets
    # file sets all of them (stack/secrets.py says what each may do).
    mysql_user: str = Field("admin", validation_alias="MYSQL_USER")
    mysql_password: SecretStr | None = Field(None, validation_alias="MYSQL_PASSWORD")
    mysql_database: str = Field("project_db", validation_alias="MYSQL_DATABASE")
    # The shop (the order generator): reads the reference tables, writes orders and details.
    mysql_shop_user: str | None = Field(None, validation_alias="MYSQL_SHOP_USER")
    mysql_shop_password: SecretStr | None = Field(None, validation_alias="MYSQL_SHOP_PASSWORD")
    # The CDC connector: Debezium's grants (binlog, snapshot) and its signal table.
    mysql_cdc_user: str | None = Field(None, validation_alias="MYSQL_CDC_USER")
    mysql_cdc_password: SecretStr | None = Field(None, validation_alias="MYSQL_CDC_PASSWORD")
    # The lake's first load and the audits: SELECT only.
    mysql_reader_user: str | None = Field(None, validation_alias="MYSQL_READER_USER")
    mysql_reader_password: SecretStr | None = Field(None, validation_alias="MYSQL_READER_PASSWORD")

    # --- MinIO / the lake ----------------------------------------------------------------
    minio_endpoint: str = Field("127.0.0.1:9000", validation_alias="MINIO_ENDPOINT")
    # The lake's jobs (they write the layers). Each role below uses these keys when its own
    # are unset; the local stack's secrets file sets all of them (stack/secrets.py).
    minio_access_key: str = Field("admin", validation_alias="MINIO_ACCESS_KEY")
    minio_secret_key: SecretStr | None = Field(None, validation_alias="MINIO_SECRET_KEY")
    # The report, the audit, the demo's check and `stack doctor`: read the layers only.
    minio_reader_access_key: str | None = Field(None, validation_alias="MINIO_READER_ACCESS_KEY")
    minio_reader_secret_key: SecretStr | None = Field(None, validation_alias="MINIO_READER_SECRET_KEY")
    # MinIO's root: the local stack's buckets, users and policies, and tests' scratch lakes.
    minio_root_user: str | None = Field(None, validation_alias="MINIO_ROOT_USER")
    minio_root_password: SecretStr | None = Field(None, validation_alias="MINIO_ROOT_PASSWORD")
    lake_uri: str = Field("s3a://", validation_alias="LAKE_URI")

    # --- Spark and the batch layers ------------------------------------------------------
    spark_master: str = Field("local[*]", validation_alias="SPARK_MASTER")
    # The driver's heap (with `local[*]`, the executors' too): the continuous lake keeps the
    # dimension rows and key sets the hot path joins with in memory across micro-batches.
    spark_driver_memory: str = Field("4g", validation_alias="SPARK_DRIVER_MEMORY", pattern=r"^\d+[kmgt]$")
    # Incremental Bronze re-reads orders this far behind its watermark: rows committed late
    # (a transaction's NOW() is taken before it commits) are still caught.
    batch_lookback_minutes: int = Field(60, validation_alias="BATCH_LOOKBACK_MINUTES", ge=0)
    # `python -m batch maintain` keeps files older versions need this long; a layer's next
    # run reads its input's change feed from them, so keep it above the time between runs.
    lake_vacuum_retain_hours: float = Field(168, validation_alias="LAKE_VACUUM_RETAIN_HOURS", ge=0)
    # Fault tests only: the lake's process kills itself (SIGKILL) at this named point between two
    # of its commits, `point` or `point@n` for its n-th time there (batch.kill_points).
    lake_kill_at: str | None = Field(None, validation_alias="LAKE_KILL_AT")

    # --- Monitoring (Prometheus; config/alerts.yml) -----------------------------------------
    prometheus_url: str = Field("http://127.0.0.1:9090", validation_alias="PROMETHEUS_URL")
    # The workers' web addresses Prometheus scrapes (the demo's two workers by default).
    metrics_targets: str = Field("127.0.0.1:6066,127.0.0.1:6067", validation_alias="METRICS_TARGETS")
    # `python -m streams broker-metrics`: the consumer group's lag and the topics' growth as the
    # brokers see them, so they are known while every worker is down.
    broker_metrics_port: int = Field(9308, validation_alias="BROKER_METRICS_PORT")
    prometheus_scrape_interval_s: float = Field(15.0, validation_alias="PROMETHEUS_SCRAPE_INTERVAL_S", gt=0)
    prometheus_rules: Path = Field(REPO_ROOT / "config" / "alerts.yml", validation_alias="PROMETHEUS_RULES")

    # --- Local stack (only `python -m stack` reads these) ------------------------------
    stack_home: Path = Field(REPO_ROOT / ".stack", validation_alias="STACK_HOME")
    stack_cache: Path = Field(Path.home() / ".cache" / "orderpipe", validation_alias="STACK_CACHE")
    stack_start_timeout_s: float = Field(120.0, validation_alias="STACK_START_TIMEOUT_S")
    kafka_controller_port: int = Field(9093, validation_alias="KAFKA_CONTROLLER_PORT")
    minio_console_port: int = Field(9001, validation_alias="MINIO_CONSOLE_PORT")

    @field_validator("stack_home", "stack_cache", "prometheus_rules")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        """The stack's tools run from other directories (STACK_HOME=.stack-3 is the checkout's)."""
        return path.expanduser().absolute()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        """A process the stack started (READ_STACK_SECRETS=false) takes its settings from its
        environment alone: no `.env` of whatever folder it runs in either."""
        if os.environ.get("READ_STACK_SECRETS", "true").lower() == "false":
            return init_settings, env_settings, file_secret_settings
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _local_stack_secrets(cls, data: object) -> object:
        """The variables of the stack's secrets file that nothing else set."""
        if not isinstance(data, dict):
            return data
        home = Path(data.get("STACK_HOME", data.get("stack_home", REPO_ROOT / ".stack"))).expanduser().absolute()
        found = home / STACK_SECRETS_FILE
        given = {str(name).upper() for name in data}
        if (home / INSECURE_MARK).exists():
            return {**{name: value for name, value in INSECURE_DEFAULTS.items() if name not in given}, **data}
        if not found.is_file() or str(data.get("READ_STACK_SECRETS", "true")).lower() == "false":
            return data
        stored = {name: value for name, value in dotenv_values(found).items() if value and name not in given}
        if role := data.get("STACK_SECRETS_ROLE", data.get("stack_secrets_role")):
            own = PROCESS_CREDENTIALS.get(str(role), frozenset())  # an unknown role: the field's error names the roles
            stored = {name: value for name, value in stored.items() if name not in SECRET_VARIABLES or name in own}
        return {**stored, **data}

    @model_validator(mode="before")
    @classmethod
    def _bootstrap_every_local_broker(cls, data: object) -> object:
        if not isinstance(data, dict) or "KAFKA_BOOTSTRAP" in data or "kafka_bootstrap" in data:
            return data
        brokers = str(data.get("KAFKA_BROKERS", data.get("kafka_brokers", 1)))
        if brokers.isdigit() and int(brokers) > 1:
            data = {**data, "KAFKA_BOOTSTRAP": ",".join(
                f"127.0.0.1:{9092 + LOCAL_BROKER_STEP * node}" for node in range(int(brokers)))}
        return data

    @property
    def spark_jars_dir(self) -> Path:
        """The lake's Spark jars and their list (`jars.txt`), as `python -m stack install` leaves them."""
        return self.stack_cache / "spark-jars"

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        return _host_port(self.kafka_bootstrap.split(",")[0], 9092)

    @property
    def replication_factor(self) -> int:
        """Replicas of every topic the project creates or asks Connect to create."""
        return min(3, self.kafka_brokers)

    @property
    def min_insync_replicas(self) -> int:
        """Replicas that must have a write before it is acknowledged (producers use acks=all)."""
        return 2 if self.replication_factor >= 3 else 1

    @property
    def kafka_nodes(self) -> list[tuple[int, int, int]]:
        """The local stack's Kafka nodes (each a broker and a controller): node id, broker port,
        controller port; node N's ports are LOCAL_BROKER_STEP * (N - 1) above the first's."""
        port = self.kafka_host_port[1]
        return [(node + 1, port + LOCAL_BROKER_STEP * node, self.kafka_controller_port + LOCAL_BROKER_STEP * node)
                for node in range(self.kafka_brokers)]

    @property
    def prometheus_host_port(self) -> tuple[str, int]:
        return _host_port(self.prometheus_url, 9090)

    @property
    def kafka_connect_host_port(self) -> tuple[str, int]:
        return _host_port(self.kafka_connect_url, 8083)

    @property
    def kafka_connect_rest_login(self) -> tuple[str, str] | None:
        if not self.kafka_connect_rest_user or self.kafka_connect_rest_password is None:
            return None
        return self.kafka_connect_rest_user, self.kafka_connect_rest_password.get_secret_value()

    @property
    def connector_secrets_path(self) -> str:
        return self.connector_secrets_file or str(self.stack_home / "conf" / "connector-secrets.properties")

    @property
    def redis_operator_url(self) -> str:
        """Redis as an operator: REDIS_ADMIN_URL, else REDIS_URL."""
        return self.redis_admin_url or self.redis_url

    @property
    def redis_host_port(self) -> tuple[str, int]:
        return _host_port(self.redis_url, 6379)

    @property
    def minio_host_port(self) -> tuple[str, int]:
        return _host_port(self.minio_endpoint, 9000)

    def mysql_login(self, role: MysqlRole = "owner") -> tuple[str, str]:
        """The user and password `role` connects with: its own, else the owner's."""
        user = getattr(self, f"mysql_{role}_user") if role != "owner" else None
        password = getattr(self, f"mysql_{role}_password") if role != "owner" else None
        if not user or password is None:
            user, password = self.mysql_user, self._required(self.mysql_password, "MYSQL_PASSWORD", f"MySQL's {role}")
        return user, password.get_secret_value()

    def kafka_login(self, role: KafkaRole = "stream") -> tuple[str, str] | None:
        """The SASL user and password `role` authenticates with (its own, else the workers'; the
        replay's and the monitor's, else the tools': they write the CDC topics or describe groups
        not the workers'), or None: PLAINTEXT."""
        prefix = "kafka" if role == "stream" else f"kafka_{role}"
        user, password = getattr(self, f"{prefix}_user"), getattr(self, f"{prefix}_password")
        if (not user or password is None) and role in ("replay", "monitor"):
            return self.kafka_login("tools")
        if not user or password is None:
            user, password = self.kafka_user, self.kafka_password
        return (user, password.get_secret_value()) if user and password is not None else None

    @property
    def kafka_speaks_sasl(self) -> bool:
        """Kafka asks for logins: these settings name a SASL user for some role. (A process that
        holds none of the Kafka passwords, Connect's watcher, still writes configs that log in.)"""
        return any(getattr(self, "kafka_user" if role == "stream" else f"kafka_{role}_user")
                   for role in get_args(KafkaRole))

    @property
    def kafka_security_protocol(self) -> str:
        """What a client with a SASL login speaks: over TLS when a CA is set."""
        return "SASL_SSL" if self.kafka_ssl_ca else "SASL_PLAINTEXT"

    def kafka_client_config(self, role: KafkaRole = "tools") -> dict[str, str]:
        """A librdkafka client's (confluent-kafka's) connection settings as `role`."""
        login = self.kafka_login(role)
        config = {"bootstrap.servers": self.kafka_bootstrap}
        if login:
            config |= {"security.protocol": self.kafka_security_protocol, "sasl.mechanism": self.kafka_sasl_mechanism,
                       "sasl.username": login[0], "sasl.password": login[1]}
            if self.kafka_ssl_ca:
                config["ssl.ca.location"] = str(self.kafka_ssl_ca)
        return config

    def kafka_java_config(self, role: KafkaRole, prefix: str = "", jaas: str | None = None) -> dict[str, str]:
        """A Java client's security settings as `role` (Connect, Spark's Kafka source), each
        name after `prefix` ("producer.", "kafka."); `jaas`: what stands for the role's login
        (a reference its reader resolves) when this process does not hold it."""
        login = self.kafka_login(role)
        if jaas is None and login:
            jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                    f'username="{login[0]}" password="{login[1]}";')
        if jaas is None or not self.kafka_speaks_sasl:
            return {}
        tls = ({f"{prefix}ssl.truststore.type": "PEM", f"{prefix}ssl.truststore.location": str(self.kafka_ssl_ca)}
               if self.kafka_ssl_ca else {})
        return {f"{prefix}security.protocol": self.kafka_security_protocol,
                f"{prefix}sasl.mechanism": self.kafka_sasl_mechanism, f"{prefix}sasl.jaas.config": jaas, **tls}

    def kafka_aiokafka_auth(self, role: KafkaRole = "stream") -> dict[str, object]:
        """An aiokafka client's authentication keyword arguments as `role`."""
        login = self.kafka_login(role)
        if not login:
            return {}
        tls = {"ssl_context": self.kafka_ssl_context()} if self.kafka_ssl_ca else {}
        return {"security_protocol": self.kafka_security_protocol, "sasl_mechanism": self.kafka_sasl_mechanism,
                "sasl_plain_username": login[0], "sasl_plain_password": login[1], **tls}

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """A Python client's TLS context, verifying the brokers against KAFKA_SSL_CA; None without one."""
        return ssl.create_default_context(cafile=str(self.kafka_ssl_ca)) if self.kafka_ssl_ca else None

    def minio_login(self, role: MinioRole = "writer") -> tuple[str, str]:
        """The access and secret key `role` uses: its own, else the lake writer's."""
        user, password = {"reader": (self.minio_reader_access_key, self.minio_reader_secret_key),
                          "root": (self.minio_root_user, self.minio_root_password)}.get(role, (None, None))
        if not user or password is None:
            user, password = self.minio_access_key, self._required(self.minio_secret_key, "MINIO_SECRET_KEY",
                                                                   f"MinIO's {role}")
        return user, password.get_secret_value()

    def _required(self, secret: SecretStr | None, variable: str, login: str) -> SecretStr:
        if secret is None:
            raise MissingCredentials(
                f"no password for {login} login: `python -m stack up` makes the local stack's "
                f"({self.stack_home / STACK_SECRETS_FILE}); elsewhere set {variable} (docs/operations.md, Security)")
        return secret

    @property
    def mysql_jdbc_url(self) -> str:
        # jdbc:mysql:// makes Spark pick its MySQL dialect (backtick quoting); the MariaDB
        # 2.7 driver accepts the scheme. See ARCHITECTURE.md, "Local stack".
        return f"jdbc:mysql://{self.mysql_host}:{self.mysql_port}/{self.mysql_database}"

    def as_env(self, process: ProcessRole | None = None) -> dict[str, str]:
        """These settings as environment variables, for a child process. For a `process` of
        PROCESS_CREDENTIALS, only its own secrets, and it reads no secrets file; else all."""
        own = PROCESS_CREDENTIALS[process] if process else None
        env = {}
        for name, info in type(self).model_fields.items():
            value, variable = getattr(self, name), info.validation_alias
            if value is None or (own is not None and variable in SECRET_VARIABLES and variable not in own):
                continue
            env[variable] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        return env | ({"READ_STACK_SECRETS": "false"} if process else {})

    def with_variables(self, values: Mapping[str, str]) -> Settings:
        """These settings with some variables given new values (by their variable names)."""
        fields = {info.validation_alias: (name, info) for name, info in type(self).model_fields.items()}
        update = {}
        for variable, value in values.items():
            name, info = fields[variable]
            update[name] = SecretStr(value) if "SecretStr" in str(info.annotation) else value
        return self.model_copy(update=update)

    def cdc_topic(self, table: str) -> str:
        """`mysql.project_db.<table>`: Debezium's `<topic.prefix>.<database>.<table>`."""
        return f"mysql.{self.mysql_database}.{table}"

    def lake_path(self, layer: str, *parts: str) -> str:
        """URI of a lake folder: `lake_path("bronze", "orders")` -> `s3a://bronze/orders`."""
        base = self.lake_uri if self.lake_uri.endswith("://") else self.lake_uri.rstrip("/") + "/"
        return base + "/".join((layer, *parts))


# Variables holding a secret (a password, key or token, or a URL with a password in it).
SECRET_VARIABLES = frozenset(
    [info.validation_alias for info in Settings.model_fields.values() if "SecretStr" in str(info.annotation)]
    + ["REDIS_URL", "REDIS_ADMIN_URL"])
# Names that say a secret whoever set them (the AWS SDK's keys, Spark's auth secret, a token):
# never passed on to a process the stack starts unless it is given them by name.
SECRET_NAME = re.compile(r"^AWS_|PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY", re.IGNORECASE)


def names_a_secret(variable: str) -> bool:
    return variable in SECRET_VARIABLES or SECRET_NAME.search(variable) is not None

# The secrets each process the stack starts holds (Settings.as_env): nothing else of the
# stack's credentials reaches its environment, and it reads no secrets file.
PROCESS_CREDENTIALS: dict[str, frozenset[str]] = {
    "worker": frozenset({"KAFKA_PASSWORD", "REDIS_URL", "WEB_TOKEN"}),
    "lake": frozenset({"KAFKA_LAKE_PASSWORD", "MYSQL_READER_PASSWORD", "MINIO_SECRET_KEY"}),
    # `cdc watch` and `cdc heal`: Connect's REST API only (a restarted task's skips are cleared
    # through it, cdc.rest.resume_without_skips; the connector's logins are file references)
    "connector-watcher": frozenset({"KAFKA_CONNECT_REST_PASSWORD"}),
    "broker-metrics": frozenset({"KAFKA_MONITOR_PASSWORD"}),
}

settings = Settings()
