"""The five services of the local stack, each a process on loopback, and the optional ones
(`up --with prometheus`: Prometheus and the brokers' view it scrapes).

A service knows its command line, its one-time preparation (formatting Kafka's storage,
creating MariaDB's datadir), a cheap health probe, and an idempotent bootstrap run after
every start (users and grants, buckets). Ports come from the settings, so the stack
serves exactly the addresses the product's clients are configured with.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from typing import get_args

import httpx
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError
import redis
import yaml
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)
from minio import Minio
from minio.credentials import StaticProvider
from minio.minioadmin import MinioAdmin
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from cdc import rest
from cdc.connector import CONNECT_CONFIGS_TOPIC, CONNECT_GROUP, CONNECT_STATUS_TOPIC, cdc_topics, connector_secrets
from cdc.offsets import clear_stored_skips
from config import Settings
from config.settings import KafkaRole, MinioRole
from stack import secrets, tls
from source.database import SCHEMA, schema_statements
from stack.install import Toolchain, which

log = logging.getLogger("stack")

BUCKETS = ("bronze", "silver", "gold")
# The one all-powerful user that stacks made before they had secrets of their own.
LEGACY_USER = Settings.model_fields["mysql_user"].default
LOG4J = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.reflections=ERROR
"""


@dataclass(frozen=True)
class StackLayout:
    """Everything the running stack writes lives under one (git-ignored) folder."""

    home: Path

    def data(self, service: str) -> Path:
        return self.home / "data" / service

    def logfile(self, service: str) -> Path:
        return self.home / "logs" / f"{service}.log"

    @property
    def run(self) -> Path:
        return self.home / "run"

    def pidfile(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    def conf(self, name: str) -> Path:
        return self.home / "conf" / name


def render_properties(values: dict[str, object]) -> str:
    return "".join(f"{key}={str(value).replace(chr(92), chr(92) * 2)}\n" for key, value in values.items())


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (it holds a secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


class Service:
    name: str
    wave: int = 0  # services of wave N start once every service of wave N-1 is healthy

    def __init__(self, settings: Settings, layout: StackLayout, tools: Toolchain) -> None:
        self.settings, self.layout, self.tools = settings, layout, tools

    @property
    def port(self) -> int:
        raise NotImplementedError

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {}

    def prepare(self) -> None:
        """Create config and data on first start; keep existing data."""

    def probe(self) -> bool:
        """One cheap health check; True when the service answers as it should."""
        raise NotImplementedError

    def bootstrap(self) -> None:
        """Idempotent setup after each start (users, grants, buckets)."""


def _java(heap: str, log4j: Path, main_class: str, *args: str, classpath: str, options: list[str] = ()) -> list[str]:
    java = which("java") or "java"
    return [java, "-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}", *options, "-cp", classpath, main_class, *args]


def java_with_argument_file(command: list[str], main_class: str, argfile: Path) -> list[str]:
    """`command` with its main class and arguments moved into a private argument file (`java
    @file`): a secret among them is then not in the process list."""
    at = command.index(main_class)
    quoted = ('"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"' for argument in command[at:])
    write_private(argfile, "\n".join(quoted) + "\n")
    return [*command[:at], f"@{argfile}"]


class KafkaRefusesLogin(RuntimeError):
    """Neither super user's login gets an answer from Kafka."""


class KafkaLayoutError(RuntimeError):
    """The stack's Kafka data was made for another number of brokers."""


class Kafka(Service):
    """One node of the local Kafka cluster (KRaft: each node a broker and a controller):
    `kafka`, then `kafka-2`, `kafka-3`... with KAFKA_BROKERS > 1, each with ports of its own
    (settings.kafka_nodes) and every node a voter of the controller quorum."""

    def __init__(self, settings: Settings, layout: StackLayout, tools: Toolchain, node: int = 1) -> None:
        super().__init__(settings, layout, tools)
        self.node = node
        self.name = "kafka" if node == 1 else f"kafka-{node}"

    @property
    def port(self) -> int:
        return self.settings.kafka_nodes[self.node - 1][1]

    def properties(self) -> dict[str, object]:
        host = self.settings.kafka_host_port[0]
        _, port, controller = self.settings.kafka_nodes[self.node - 1]
        replicas, in_sync = self.settings.replication_factor, self.settings.min_insync_replicas
        return {
            "process.roles": "broker,controller",
            "node.id": self.node,
            "controller.quorum.voters": ",".join(f"{node}@{host}:{voter}"
                                                 for node, _, voter in self.settings.kafka_nodes),
            "listeners": f"{self.client_listener}://{host}:{port},CONTROLLER://{host}:{controller}",
            "advertised.listeners": f"{self.client_listener}://{host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": self.client_listener,
            **self.security(),
            "log.dirs": self.layout.data(self.name),
            # Topics made by the brokers themselves, or by a client that names no replication.
            "default.replication.factor": replicas,
            "min.insync.replicas": in_sync,
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": in_sync,
            # Consumers join at once instead of waiting 3 s for peers.
            "group.initial.rebalance.delay.ms": 0,
            "auto.create.topics.enable": "true",
            # Topics created on first use get the stream's partition count, not 1.
            "num.partitions": self.settings.topic_partitions,
        } | (self.quick_fencing() if self.settings.kafka_brokers > 1 else {})

    @property
    def client_listener(self) -> str:
        return "CLIENT" if self.settings.kafka_login("broker") else "PLAINTEXT"

    def security(self) -> dict[str, object]:
        """Every listener behind SASL when the settings hold credentials: clients and brokers
        with SCRAM (users kept in the cluster's metadata, made at format), the controller
        listener with PLAIN (SCRAM's users live in the metadata the controllers serve)."""
        login = self.settings.kafka_login("broker")
        if not login:
            return {"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"}
        user, password = login
        mechanism = self.settings.kafka_sasl_mechanism
        return {
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": ";".join(f"User:{user}" for user in secrets.kafka_super_users(self.settings)),
            "allow.everyone.if.no.acl.found": "false",
            "listener.security.protocol.map":
                f"CLIENT:{self.settings.kafka_security_protocol},CONTROLLER:SASL_PLAINTEXT",
            **self.tls(),
            "sasl.enabled.mechanisms": mechanism,
            "sasl.mechanism.inter.broker.protocol": mechanism,
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config":
                f'org.apache.kafka.common.security.plain.PlainLoginModule required username="{user}" '
                f'password="{password}" user_{user}="{password}";',
            f"listener.name.client.{mechanism.lower()}.sasl.jaas.config":
                f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{password}";',
        }

    def tls(self) -> dict[str, object]:
        """The client listener's key store (the stack's brokers' certificate, stack/tls.py) and
        the trust store the brokers check each other with, when the settings name a CA."""
        if not self.settings.kafka_ssl_ca:
            return {}
        return {"ssl.keystore.type": "PEM", "ssl.keystore.location": tls.broker_file(self.settings.stack_home),
                "ssl.truststore.type": "PEM", "ssl.truststore.location": self.settings.kafka_ssl_ca}

    def scram_users(self) -> list[str]:
        """`--add-scram` arguments of the storage format: every role's user."""
        return [f"--add-scram={self.settings.kafka_sasl_mechanism}=[name={user},password={password}]"
                for user, password in kafka_logins(self.settings)]

    @staticmethod
    def quick_fencing() -> dict[str, object]:
        # A killed broker stays registered (and leader of its partitions) until the quorum
        # leader misses its heartbeats for broker.session.timeout.ms: 9 s by default, which
        # alone would spend most of a 10 s pause. Loopback heartbeats do not get lost.
        return {"broker.session.timeout.ms": 4000, "broker.heartbeat.interval.ms": 1000}

    def prepare(self) -> None:
        conf, log4j = self.layout.conf(f"{self.name}.properties"), self.layout.conf("log4j.properties")
        write_private(conf, render_properties(self.properties()))
        log4j.write_text(LOG4J)
        self._check_quorum_size()
        self._check_security()
        if self.settings.kafka_ssl_ca and not tls.broker_file(self.settings.stack_home).exists():
            raise KafkaLayoutError(f"KAFKA_SSL_CA is set but the stack under {self.settings.stack_home} has no broker "
                                   "certificate: `python -m stack up --tls` makes both")
        if (self.layout.data(self.name) / "meta.properties").exists():
            return
        # one option word: a random id may begin with "-", which the tool would take for an option
        format_storage = _java("512m", log4j, "kafka.tools.StorageTool", "format",
                               f"--cluster-id={self._cluster_id()}", "-c", str(conf), *self.scram_users(),
                               classpath=self.tools.java_classpath)
        argfile = self.layout.conf(f"{self.name}-format.args")
        try:
            formatted = subprocess.run(java_with_argument_file(format_storage, "kafka.tools.StorageTool", argfile),
                                       capture_output=True, text=True)
        finally:
            argfile.unlink(missing_ok=True)
        if formatted.returncode != 0:
            raise RuntimeError(f"formatting Kafka's storage in {self.layout.data(self.name)} failed: "
                               f"{(formatted.stderr or formatted.stdout).strip()[-500:]}")

    def _check_quorum_size(self) -> None:
        """Each node's data belongs to a quorum of a given size: refuse to start it in another."""
        recorded, wanted = self.layout.conf("kafka-brokers"), str(self.settings.kafka_brokers)
        made = (self.layout.data("kafka") / "meta.properties").exists()
        if not made or not recorded.exists():
            recorded.write_text("1" if made else wanted)  # data made before it was kept had one
        if recorded.read_text().strip() != wanted:
            raise KafkaLayoutError(
                f"the Kafka data under {self.layout.home} was made for {recorded.read_text().strip()} broker(s), "
                f"not KAFKA_BROKERS={wanted}: use another STACK_HOME, or stop the stack and remove "
                f"{self.layout.home / 'data'}/kafka*")

    def _check_security(self) -> None:
        """SCRAM users are made when the storage is formatted: data formatted for PLAINTEXT
        has none, so it cannot start with SASL (nor the other way round)."""
        recorded, wanted = self.layout.conf("kafka-security"), "sasl" if self.settings.kafka_login("broker") else "plaintext"
        made = (self.layout.data(self.name) / "meta.properties").exists()
        if not made or not recorded.exists():
            recorded.write_text("plaintext" if made else wanted)  # data made before SASL was PLAINTEXT
        if recorded.read_text().strip() != wanted:
            raise KafkaLayoutError(
                f"the Kafka data under {self.layout.home} was made for {recorded.read_text().strip()} clients, "
                f"the settings ask for {wanted}: stop the stack and remove {self.layout.home / 'data'}/kafka* "
                "(its topics go; the connector snapshots the database again), or use another STACK_HOME")

    def _cluster_id(self) -> str:
        """One cluster id for every node: kept beside the configs (a stack made before there
        could be several nodes has it only in the first node's data)."""
        kept = self.layout.conf("kafka-cluster-id")
        if kept.exists():
            return kept.read_text().strip()
        first = self.layout.data("kafka") / "meta.properties"
        found = re.search(r"^cluster\.id=(.+)$", first.read_text(), re.MULTILINE) if first.exists() else None
        cluster_id = found[1].strip() if found else base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        kept.write_text(cluster_id)
        return cluster_id

    def argv(self) -> list[str]:
        return _java("1g", self.layout.conf("log4j.properties"), "kafka.Kafka",
                     str(self.layout.conf(f"{self.name}.properties")), classpath=self.tools.java_classpath)

    def bootstrap(self) -> None:
        if self.node != 1:
            return
        if self.settings.kafka_login("broker"):
            set_kafka_access(self.settings)
        else:
            make_cdc_topics(AdminClient({**self.settings.kafka_client_config(), "log_level": 0}), self.settings)

    def probe(self) -> bool:
        """This node answers as a broker of the cluster (with several, once the quorum has a leader)."""
        host = self.settings.kafka_host_port[0]
        admin = AdminClient({**self.settings.kafka_client_config(), "bootstrap.servers": f"{host}:{self.port}",
                             "log_level": 0})
        try:
            return self.node in admin.list_topics(timeout=2).brokers
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False


# Kafka Connect's REST API asks for a login (HTTP Basic) checked against a users file.
REST_LOGIN_EXTENSION = "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension"
REST_LOGIN_MODULE = "org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule"


class KafkaConnect(Service):
    name = "kafka-connect"
    wave = 1

    @property
    def port(self) -> int:
        return self.settings.kafka_connect_host_port[1]

    def properties(self) -> dict[str, object]:
        host, port = self.settings.kafka_connect_host_port
        return {
            "bootstrap.servers": self.settings.kafka_bootstrap,
            # Connect's own clients and its connectors' producers, consumers and admin client.
            **{key: value for prefix in ("", "producer.", "consumer.", "admin.")
               for key, value in self.settings.kafka_java_config("connect", prefix).items()},
            "group.id": CONNECT_GROUP,
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable": "false",
            "value.converter.schemas.enable": "false",
            "offset.storage.topic": self.settings.connect_offsets_topic,
            "config.storage.topic": CONNECT_CONFIGS_TOPIC,
            "status.storage.topic": CONNECT_STATUS_TOPIC,
            "offset.storage.replication.factor": self.settings.replication_factor,
            "config.storage.replication.factor": self.settings.replication_factor,
            "status.storage.replication.factor": self.settings.replication_factor,
            # The workers settle a quiet partition's orders only up to the binlog position
            # committed here (agents/settling.py): this bounds how long those orders wait.
            "offset.flush.interval.ms": 200,
            # A worker whose group session expired (the broker restarted) rejoins as a new
            # member; Connect then holds its old connectors and tasks back this long, waiting
            # for the "departed" member (5 minutes by default) while the CDC stands still.
            # The stack runs one Connect worker: there is no one to wait for.
            "scheduled.rebalance.max.delay.ms": 0,
            "listeners": f"http://{host}:{port}",
            "rest.advertised.host.name": host,
            "rest.advertised.port": port,
            "plugin.path": self.tools.connect_plugins,
            # A connector's `${file:<path>:<key>}` is read from that file by the worker: the
            # connector secrets file only, not any file a connector config names.
            "config.providers": "file",
            "config.providers.file.class": "org.apache.kafka.common.config.provider.FileConfigProvider",
            "config.providers.file.param.allowed.paths": self.settings.connector_secrets_path,
        } | ({"rest.extension.classes": REST_LOGIN_EXTENSION} if self.settings.kafka_connect_rest_login else {})

    def prepare(self) -> None:
        conf = self.layout.conf("connect-distributed.properties")
        write_private(conf, render_properties(self.properties()))
        self.layout.conf("log4j.properties").write_text(LOG4J)
        write_private(Path(self.settings.connector_secrets_path), render_properties(connector_secrets(self.settings)))
        if login := self.settings.kafka_connect_rest_login:
            users = self.layout.conf("connect-rest-users.properties")
            write_private(users, render_properties({login[0]: login[1]}))
            write_private(self.layout.conf("connect-rest-jaas.conf"),
                          f'KafkaConnect {{\n  {REST_LOGIN_MODULE} required\n  file="{users}";\n}};\n')
        if corrected := clear_stored_skips(self.settings):
            log.info("kafka-connect: stored offsets of %s resume without skipped events (cdc/offsets.py)",
                     ", ".join(sorted(corrected)))

    def argv(self) -> list[str]:
        login_config = ([f"-Djava.security.auth.login.config={self.layout.conf('connect-rest-jaas.conf')}"]
                        if self.settings.kafka_connect_rest_login else [])
        return _java("1g", self.layout.conf("log4j.properties"),
                     "org.apache.kafka.connect.cli.ConnectDistributed",
                     str(self.layout.conf("connect-distributed.properties")),
                     classpath=self.tools.java_classpath, options=login_config)

    def probe(self) -> bool:
        try:
            with rest.client(self.settings) as connect:
                plugins = connect.get("/connector-plugins", timeout=2)
            return plugins.status_code == 200 and "MariaDbConnector" in plugins.text
        except httpx.HTTPError:
            return False


class MariaDB(Service):
    name = "mariadb"

    @property
    def port(self) -> int:
        return self.settings.mysql_port

    @property
    def socket(self) -> Path:
        return self.layout.data(self.name) / "mysqld.sock"

    def cnf(self) -> str:
        data = self.layout.data(self.name)
        return "\n".join([
            "[mysqld]",
            f"datadir={data / 'db'}",
            f"socket={self.socket}",
            f"pid-file={data / 'mysqld.pid'}",
            f"port={self.port}",
            f"bind-address={self.settings.mysql_host}",
            f"log-bin={data / 'binlog'}",
            "binlog_format=ROW",
            "binlog_row_image=FULL",
            "server-id=1",
            "expire_logs_days=2",
            # A local dev database: flush the redo log per commit, fsync it once a second.
            # Commits stop waiting on the disk (3x the generator's rate); only an OS crash
            # could lose the last second.
            "innodb_flush_log_at_trx_commit=2",
            "skip-name-resolve",
            "local-infile=1",
            "character-set-server=utf8mb4",
            "collation-server=utf8mb4_unicode_ci",
            "",
        ])

    def prepare(self) -> None:
        conf = self.layout.conf("my.cnf")
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(self.cnf())
        data = self.layout.data(self.name)
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)  # its socket is root's only way in
        if (data / "db" / "mysql").is_dir():
            return
        subprocess.run([which("mariadb-install-db") or "mariadb-install-db", f"--defaults-file={conf}",
                        f"--user={getpass.getuser()}", "--auth-root-authentication-method=normal",
                        "--skip-test-db"], check=True, capture_output=True)

    def argv(self) -> list[str]:
        return [which("mariadbd") or "mariadbd", f"--defaults-file={self.layout.conf('my.cnf')}",
                f"--user={getpass.getuser()}"]

    def root_sql(self, sql: str) -> subprocess.CompletedProcess[str]:
        """Run SQL as MariaDB's root over the local socket (bootstrap, a rotation, tests' own users).
        The SQL goes in on stdin: a password in it stays out of the process list."""
        client = which("mariadb") or "mariadb"
        return subprocess.run([client, f"--socket={self.socket}", "-uroot"], input=sql,
                              capture_output=True, text=True, timeout=30)

    def probe(self) -> bool:
        return self.socket.exists() and self.root_sql("SELECT 1").returncode == 0

    def bootstrap(self) -> None:
        s = self.settings
        logins = {role: s.mysql_login(role) for role in ("owner", "shop", "cdc", "reader")}
        users = {user for user, _ in logins.values()}
        # Table grants need their tables: the schema is made here, before the users.
        sql = "\n".join([
            # Debian's anonymous users shadow 'user'@'%' for local logins: drop them. Root
            # keeps no password and only its socket (in the owner-only data folder): its TCP
            # logins go.
            "DELETE FROM mysql.global_priv WHERE User='' OR (User='root' AND Host<>'localhost');",
            "FLUSH PRIVILEGES;",
            f"CREATE DATABASE IF NOT EXISTS `{s.mysql_database}`;",
            f"USE `{s.mysql_database}`;",
            *(f"{statement};" for statement in schema_statements(SCHEMA.read_text())),
            "" if LEGACY_USER in users else f"DROP USER IF EXISTS '{LEGACY_USER}'@'%';",
            secrets.mysql_grants(s.mysql_database, logins),
        ])
        result = self.root_sql(sql)
        if result.returncode != 0:
            raise RuntimeError(f"MariaDB bootstrap failed: {result.stderr.strip()}")


class Redis(Service):
    name = "redis"

    @property
    def port(self) -> int:
        return self.settings.redis_host_port[1]

    def argv(self) -> list[str]:
        host, port = self.settings.redis_host_port
        argv = [which("redis-server") or "redis-server", "--bind", host, "--port", str(port),
                "--dir", str(self.layout.data(self.name)), "--daemonize", "no",
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        # the stack's users (stack/secrets.py), or a password alone: in the owner-only ACL file,
        # never on the command line, where any local user could read it
        return [*argv, "--aclfile", str(self.acl_file)] if urlsplit(self.settings.redis_url).password else argv

    @property
    def acl_file(self) -> Path:
        return self.layout.conf("redis-users.acl")

    def prepare(self) -> None:
        self.layout.data(self.name).mkdir(parents=True, exist_ok=True)
        if urlsplit(self.settings.redis_url).password:
            self.acl_file.parent.mkdir(parents=True, exist_ok=True)
            self.acl_file.touch(mode=0o600)
            self.acl_file.write_text(secrets.redis_acl(self.settings.redis_url, self.settings.redis_operator_url))

    def probe(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.settings.redis_url, socket_timeout=2).ping())
        except redis.RedisError:
            return False


class MinIO(Service):
    name = "minio"

    @property
    def port(self) -> int:
        return self.settings.minio_host_port[1]

    def env(self) -> dict[str, str]:
        user, password = self.settings.minio_login("root")
        return {"MINIO_ROOT_USER": user, "MINIO_ROOT_PASSWORD": password,
                "MINIO_BROWSER": "on", "MINIO_UPDATE": "off"}

    def prepare(self) -> None:
        self.layout.data(self.name).mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        host, port = self.settings.minio_host_port
        return [str(self.tools.minio_bin), "server", str(self.layout.data(self.name)),
                "--address", f"{host}:{port}",
                "--console-address", f"{host}:{self.settings.minio_console_port}", "--quiet"]


    def probe(self) -> bool:
        try:
            live = httpx.get(f"http://{self.settings.minio_endpoint}/minio/health/live", timeout=2)
            return live.status_code == 200
        except httpx.HTTPError:
            return False

    def bootstrap(self) -> None:
        set_minio_access(self.settings)


def set_minio_access(settings: Settings) -> None:
    """The layers' buckets, and the lake's users with their policies, as MinIO's root: at each
    `stack up`, and by docker-compose's `minio-access`."""
    client = minio_client(settings, "root")
    for bucket in BUCKETS:
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
    grant_lake_users(settings)


def grant_lake_users(settings: Settings) -> None:
    """The lake's writer and reader, each with its policy on the layers' buckets. A user that is
    MinIO's root (a deployment that set no others) is left as it is, and a reader that is the
    writer (one that set no reader) keeps the writer's policy."""
    root = settings.minio_login("root")
    admin = MinioAdmin(endpoint=settings.minio_endpoint, credentials=StaticProvider(*root), secure=False)
    policies = secrets.minio_policies(lake_buckets(settings))
    writer = settings.minio_login("writer")[0]
    for role, policy_user in (("writer", secrets.LAKE_WRITER), ("reader", secrets.LAKE_READER)):
        access_key, secret_key = settings.minio_login(role)
        if access_key == root[0] or (role == "reader" and access_key == writer):
            continue
        admin.policy_add(policy_user, policy=policies[policy_user])
        admin.user_add(access_key, secret_key)
        admin.policy_set(policy_user, user=access_key)


def kafka_logins(settings: Settings) -> list[tuple[str, str]]:
    """Every role's SASL user and password (roles sharing a user: once)."""
    return sorted({login for role in get_args(KafkaRole) if (login := settings.kafka_login(role))})


def kafka_answers(bootstrap: str, **auth: str) -> bool:
    """Whether Kafka serves metadata to a client with `auth` (aiokafka's keywords; none: a
    PLAINTEXT client). A SASL listener closes a PLAINTEXT client's connection at once, which
    aiokafka reports at once (librdkafka would retry until its timeout)."""
    async def ask() -> bool:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **auth)
        try:
            await client.bootstrap()
            return True
        except KafkaConnectionError:
            return False
        finally:
            await client.close()

    aiokafka_log = logging.getLogger("aiokafka")
    level = aiokafka_log.level
    aiokafka_log.setLevel(logging.CRITICAL)  # the refusal is the answer, not an error to print
    try:
        return asyncio.run(ask())
    finally:
        aiokafka_log.setLevel(level)


def set_kafka_access(settings: Settings, *, wait_s: float = 0) -> None:
    """Every role's SCRAM password and ACLs as the settings have them, and the CDC topics: what
    each start of a stack's Kafka needs (`stack up`, docker-compose's `kafka-access`). `wait_s`: how long to
    wait for a broker to let the tools' or the brokers' user in first."""
    for attempt in Retrying(stop=stop_after_delay(wait_s), wait=wait_fixed(2), reraise=True,
                            retry=retry_if_exception_type(KafkaRefusesLogin)):
        with attempt:
            set_kafka_passwords(settings)
    grant_kafka_acls(settings)
    make_cdc_topics(super_user_admin(settings), settings)


def make_cdc_topics(admin: AdminClient, settings: Settings) -> list[str]:
    """The settings' CDC topics that are missing, made as the connector would make them (the
    workers may not: their login reads CDC topics only). The names made."""
    found = admin.list_topics(timeout=30).topics
    missing = [topic for topic in cdc_topics(settings) if topic.topic not in found]
    made = []
    for name, done in (admin.create_topics(missing, request_timeout=30).items() if missing else ()):
        try:
            done.result()
            made.append(name)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # made by another meanwhile
                raise
    if made:
        log.info("kafka: made the CDC topics %s (%d partitions each)", ", ".join(made), settings.topic_partitions)
    return made


def set_kafka_passwords(settings: Settings) -> None:
    """Every role's SCRAM password as the settings have it, set through the admin API at each
    start, so a password edited in the secrets file is the cluster's after the next `stack up`,
    its topics kept. The stack logs in as the tools' user or, when the cluster refuses that
    password (the one being changed), as the brokers': change those two at different starts."""
    admin = super_user_admin(settings)
    set_scram_passwords(admin, settings.kafka_sasl_mechanism, kafka_logins(settings))
    remove_unnamed_scram_users(admin, {user for user, _ in kafka_logins(settings)})


def remove_unnamed_scram_users(admin: AdminClient, named: set[str]) -> list[str]:
    """Remove the SCRAM users the settings no longer name (a role's user renamed by hand, a
    rotation cut short): their passwords would still let a client in. The users removed."""
    described = admin.describe_user_scram_credentials().result(timeout=30)
    deletions = [UserScramCredentialDeletion(user, info.mechanism) for user, description in described.items()
                 if user not in named for info in description.scram_credential_infos]
    for done in (admin.alter_user_scram_credentials(deletions, request_timeout=30).values() if deletions else ()):
        done.result()
    removed = sorted({deletion.user for deletion in deletions})
    if removed:
        log.info("kafka: removed the SCRAM users the settings no longer name: %s", ", ".join(removed))
    return removed


def set_scram_passwords(admin: AdminClient, mechanism: str, logins: Iterable[tuple[str, str]]) -> None:
    """Each (user, password)'s SCRAM credential, made or replaced; connections already logged in keep going."""
    scram = ScramMechanism[mechanism.replace("-", "_")]
    upserts = [UserScramCredentialUpsertion(user, ScramCredentialInfo(scram, 4096), password.encode())
               for user, password in logins]
    for done in admin.alter_user_scram_credentials(upserts, request_timeout=30).values():
        done.result()


def delete_scram_users(admin: AdminClient, mechanism: str, users: Iterable[str]) -> None:
    scram = ScramMechanism[mechanism.replace("-", "_")]
    deletions = [UserScramCredentialDeletion(user, scram) for user in users]
    for done in admin.alter_user_scram_credentials(deletions, request_timeout=30).values():
        done.result()


def super_user_admin(settings: Settings) -> AdminClient:
    """An admin client logged in as the tools' user, else (its password being changed) the brokers'."""
    for role in ("tools", "broker"):
        if kafka_answers(settings.kafka_bootstrap, **settings.kafka_aiokafka_auth(role)):
            return AdminClient({**settings.kafka_client_config(role), "log_level": 0})
    raise KafkaRefusesLogin(f"Kafka at {settings.kafka_bootstrap} answers neither the tools' nor the brokers' login "
                            "(KAFKA_TOOLS_PASSWORD, KAFKA_BROKER_PASSWORD): is it up? Change those two passwords "
                            "one at a time, with a start between")


EVERY_ACL = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)  # matches every rule the cluster holds


def grant_kafka_acls(settings: Settings, *, peer: str | None = None, keep_others: bool = False) -> None:
    """Each role's ACLs (stack/secrets.py) for these settings' names, at each start; a benchmark's
    `peer` contender's before it starts. Granting a rule twice is a no-op. At a start (no
    `peer`) the stack owns the cluster's ACLs: any rule it does not make is removed, so a
    narrowed rule or a renamed user loses what it had; `keep_others` keeps them (a rotation's
    renamed users, while their old names are still in use)."""
    admin = AdminClient({**settings.kafka_client_config("tools"), "log_level": 0})
    wanted = kafka_acl_bindings(settings, peer=peer)
    for done in admin.create_acls(wanted, request_timeout=30).values():
        done.result()
    if peer is None and not keep_others:
        granted = admin.describe_acls(EVERY_ACL, request_timeout=30).result()
        stale = [AclBindingFilter(acl.restype, acl.name, acl.resource_pattern_type, acl.principal, acl.host,
                                  acl.operation, acl.permission_type) for acl in set(granted) - set(wanted)]
        if stale:
            for done in admin.delete_acls(stale, request_timeout=30).values():
                done.result()
            log.info("kafka ACLs: %d rule(s) the stack does not make removed", len(stale))


def kafka_acl_bindings(settings: Settings, *, peer: str | None = None) -> list[AclBinding]:
    kinds = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
    return [AclBinding(kinds[acl.resource], acl.name,
                       ResourcePatternType.PREFIXED if acl.prefixed else ResourcePatternType.LITERAL,
                       f"User:{acl.user}", "*", AclOperation[operation], AclPermissionType.ALLOW)
            for acl in secrets.kafka_acls(settings, peer=peer) for operation in acl.operations]


def lake_buckets(settings: Settings) -> set[str]:
    """The buckets the lake's layers live in (LAKE_URI's, or one per layer)."""
    return {settings.lake_path(layer).removeprefix("s3a://").split("/")[0] for layer in BUCKETS}


def minio_client(settings: Settings, role: MinioRole = "writer") -> Minio:
    access_key, secret_key = settings.minio_login(role)
    return Minio(settings.minio_endpoint, access_key=access_key, secret_key=secret_key, secure=False)


def prometheus_config(settings: Settings) -> dict[str, object]:
    """Prometheus' configuration: every worker in METRICS_TARGETS, the brokers' view
    (`python -m streams broker-metrics`), and the alert rules."""
    every = f"{settings.prometheus_scrape_interval_s:g}s"
    workers: dict[str, object] = {"job_name": "orderpipe-workers", "metrics_path": "/metrics",
                                  "static_configs": [{"targets": settings.metrics_targets.split(",")}]}
    if settings.web_token is not None:
        workers["authorization"] = {"type": "Bearer", "credentials": settings.web_token.get_secret_value()}
    host = settings.prometheus_host_port[0]
    return {
        "global": {"scrape_interval": every, "evaluation_interval": every,
                   "scrape_timeout": f"{min(settings.prometheus_scrape_interval_s, 10):g}s"},
        "rule_files": [str(settings.prometheus_rules)],
        "scrape_configs": [workers, {"job_name": "orderpipe-broker", "static_configs": [
            {"targets": [f"{host}:{settings.broker_metrics_port}"]}]}],
    }


class BrokerMetrics(Service):
    """`python -m streams broker-metrics`: the consumer group's lag as the brokers see it."""

    name = "broker-metrics"
    wave = 1

    @property
    def port(self) -> int:
        return self.settings.broker_metrics_port

    def env(self) -> dict[str, str]:
        return self.settings.as_env("broker-metrics")

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "streams", "broker-metrics", "--port", str(self.port)]

    def probe(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False


class Prometheus(Service):
    name = "prometheus"
    wave = 1

    @property
    def port(self) -> int:
        return self.settings.prometheus_host_port[1]

    def prepare(self) -> None:
        conf = self.layout.conf("prometheus.yml")
        conf.parent.mkdir(parents=True, exist_ok=True)
        write_private(conf, yaml.safe_dump(prometheus_config(self.settings), sort_keys=False))  # the workers' token
        self.layout.data(self.name).mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        host, port = self.settings.prometheus_host_port
        return [which("prometheus") or "prometheus", f"--config.file={self.layout.conf('prometheus.yml')}",
                f"--storage.tsdb.path={self.layout.data(self.name)}", "--storage.tsdb.retention.time=2d",
                f"--web.listen-address={host}:{port}"]  # no --web.enable-lifecycle: no one may stop it over HTTP

    def probe(self) -> bool:
        try:
            return httpx.get(f"{self.settings.prometheus_url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


SERVICE_TYPES: tuple[type[Service], ...] = (MariaDB, Redis, MinIO, Kafka, KafkaConnect)
OPTIONAL_SERVICES: dict[str, tuple[type[Service], ...]] = {"prometheus": (BrokerMetrics, Prometheus)}


def all_services(settings: Settings, extras: tuple[str, ...] = ()) -> list[Service]:
    """The stack's services, with the optional ones named in `extras` (OPTIONAL_SERVICES)."""
    layout = StackLayout(settings.stack_home)
    tools = Toolchain(settings.stack_cache)
    services = [kind(settings, layout, tools) for kind in SERVICE_TYPES]
    services[SERVICE_TYPES.index(Kafka) + 1:SERVICE_TYPES.index(Kafka) + 1] = [
        Kafka(settings, layout, tools, node) for node in range(2, settings.kafka_brokers + 1)]
    return services + [kind(settings, layout, tools) for extra in extras for kind in OPTIONAL_SERVICES[extra]]
