"""The local stack's credentials: made at random on its first `stack up`, kept in
`<STACK_HOME>/secrets.env` (readable by its owner only), read by the settings from there.

One principal per role, each with only what it needs:
- `orderpipe-guard` (Redis, REDIS_URL): the workers' claims, `order_trigger_lock:*` and
  `dead_letter_claim:*` only, with the few commands they send (GET, SET, the guard's scripts);
- `orderpipe-admin` (Redis, REDIS_ADMIN_URL): operators, benchmarks and tests (every command);
- `orderpipe-owner` (MySQL, MYSQL_USER): the database's schema and reference data, operators'
  tools, and the scratch databases of tests and benchmarks;
- `orderpipe-shop` (MYSQL_SHOP_USER): the order generator, standing in for the shop: reads the
  reference tables, writes orders and their details;
- `orderpipe-cdc` (MYSQL_CDC_USER): the Debezium connector: Debezium's documented grants
  (binlog, snapshot locks) and its signal table's snapshot windows;
- `orderpipe-reader` (MYSQL_READER_USER): the lake's first load and the audits, SELECT only;
- Kafka (SASL/SCRAM, made when its storage is formatted; ACLs from `kafka_acls`):
  `orderpipe-stream` (KAFKA_USER, the workers), `orderpipe-connect` (Kafka Connect and its
  connector), `orderpipe-lake` (the lake's Kafka source), `orderpipe-replay` (dead letters
  replayed into the CDC topics the settings name, nothing else), `orderpipe-monitor`
  (broker-metrics: describes the stream's topics and group), and the super users `orderpipe-tools`
  (operators' tools, the stack, tests, benchmarks) and `orderpipe-broker` (the brokers to each
  other and to the controllers);
- MinIO's root (MINIO_ROOT_USER): the stack's buckets, users and policies, tests' scratch lakes;
- `orderpipe-lake` (MINIO_ACCESS_KEY): the lake's jobs, reading and writing the layers' buckets;
- `orderpipe-lake-reader` (MINIO_READER_ACCESS_KEY): the report, the audit, the demo's check
  and `stack doctor`, reading them;
- `orderpipe-connect-admin` (KAFKA_CONNECT_REST_USER): Kafka Connect's REST API (the `cdc`
  commands, the stack, tests); the connector's own secrets are in a file only Connect reads
  (cdc/connector.py `connector_secrets`).

A variable set in the environment or `.env` wins over the file (a real deployment's secrets);
`stack up` never rewrites the file (a principal it lacks is appended); `python -m stack
rotate-secrets` does, while the stack runs (stack/rotation.py).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dataclasses import dataclass
from typing import Literal

from dotenv import dotenv_values

from cdc.connector import (CDC_TOPIC_PREFIX, CONNECT_CONFIGS_TOPIC, CONNECT_GROUP, CONNECT_STATUS_TOPIC,
                           SCHEMA_HISTORY_PREFIX, heartbeat_topic)
from config import Settings
from config.settings import INSECURE_MARK, KAFKA_CLIENT_ROLES, STACK_SECRETS_FILE, MysqlRole

GUARD_USER, ADMIN_USER = "orderpipe-guard", "orderpipe-admin"
LAKE_WRITER, LAKE_READER = "orderpipe-lake", "orderpipe-lake-reader"
CONNECT_REST_USER = "orderpipe-connect-admin"
KAFKA_USERS = {"KAFKA_USER": "orderpipe-stream", "KAFKA_CONNECT_USER": "orderpipe-connect",
               "KAFKA_LAKE_USER": "orderpipe-lake", "KAFKA_REPLAY_USER": "orderpipe-replay",
               "KAFKA_MONITOR_USER": "orderpipe-monitor",
               "KAFKA_TOOLS_USER": "orderpipe-tools",
               "KAFKA_BROKER_USER": "orderpipe-broker"}
MYSQL_USERS = {"MYSQL_USER": "orderpipe-owner", "MYSQL_SHOP_USER": "orderpipe-shop",
               "MYSQL_CDC_USER": "orderpipe-cdc", "MYSQL_READER_USER": "orderpipe-reader"}
# What the workers' Redis user may do: connect (the URL's db is a SELECT), claim, mark, and
# load the guard's scripts again after a Redis restart.
GUARD_RULES = ("resetkeys ~order_trigger_lock:* ~dead_letter_claim:* resetchannels -@all "
               "+auth +hello +ping +select +get +set +evalsha +eval +script|load")


def path(stack_home: Path) -> Path:
    return stack_home / STACK_SECRETS_FILE


def made(redis_host: str, redis_port: int) -> dict[str, str]:
    """New random credentials for every principal, as the variables the settings read."""
    def redis_url(user: str) -> str:
        return f"redis://{user}:{secrets.token_urlsafe(24)}@{redis_host}:{redis_port}/2"

    mysql = {}
    for variable, user in MYSQL_USERS.items():
        mysql[variable] = user
        mysql[variable.replace("_USER", "_PASSWORD")] = secrets.token_urlsafe(24)
    minio = {"MINIO_ROOT_USER": "orderpipe-root", "MINIO_ROOT_PASSWORD": secrets.token_urlsafe(24),
             "MINIO_ACCESS_KEY": LAKE_WRITER, "MINIO_SECRET_KEY": secrets.token_urlsafe(24),
             "MINIO_READER_ACCESS_KEY": LAKE_READER, "MINIO_READER_SECRET_KEY": secrets.token_urlsafe(24)}
    kafka = {}
    for variable, user in KAFKA_USERS.items():
        kafka[variable] = user
        kafka[variable.replace("_USER", "_PASSWORD")] = secrets.token_urlsafe(24)
    connect = {"KAFKA_CONNECT_REST_USER": CONNECT_REST_USER, "KAFKA_CONNECT_REST_PASSWORD": secrets.token_urlsafe(24)}
    return {"REDIS_URL": redis_url(GUARD_USER), "REDIS_ADMIN_URL": redis_url(ADMIN_USER), **mysql, **minio, **kafka,
            **connect}




class SecurityModeError(RuntimeError):
    """A stack made with credentials started without them, or the other way round."""


def prepare(stack_home: Path, redis_host: str, redis_port: int, *, insecure: bool = False) -> set[str]:
    """The stack's credentials before a start (`ensure`), or, for `insecure`, none: the home
    is marked instead, and the settings keep their development defaults. A home keeps the
    mode it was made with: its services' data holds the users (Kafka's storage, MariaDB's
    grants), so switching would leave half of them behind."""
    marker = stack_home / INSECURE_MARK
    if insecure:
        if path(stack_home).exists():
            raise SecurityModeError(
                f"the stack under {stack_home} was made with credentials ({path(stack_home)}): run "
                "`python -m stack up` without --insecure, or give the insecure stack a home of its own "
                "(STACK_HOME=.stack-insecure python -m stack up --insecure)")
        stack_home.mkdir(parents=True, exist_ok=True)
        marker.write_text("made by `python -m stack up --insecure`: no credentials, no ACLs\n")
        return set()
    if marker.exists():
        raise SecurityModeError(
            f"the stack under {stack_home} was made with `python -m stack up --insecure`: run that again, "
            f"or, for a stack with credentials, stop it and remove {stack_home} (its data goes), or use "
            "another STACK_HOME")
    return ensure(stack_home, redis_host, redis_port)


def ensure(stack_home: Path, redis_host: str, redis_port: int) -> set[str]:
    """Write the stack's secrets file (owner-only) if it does not exist yet, or append the
    principals it lacks; the variables it wrote. Existing values are never changed."""
    stack_home.mkdir(parents=True, exist_ok=True)
    stack_home.chmod(0o700)  # the services' configs under it hold passwords too (Kafka's, Connect's)
    return record(stack_home, made(redis_host, redis_port))


def record(stack_home: Path, values: dict[str, str]) -> set[str]:
    """Append to the secrets file (owner-only) each of `values` it does not set yet; the names
    appended. Existing values are never changed."""
    found = path(stack_home)
    present = set(dotenv_values(found)) if found.is_file() else set()
    missing = {name: value for name, value in values.items() if name not in present}
    if not missing:
        return set()
    descriptor = os.open(found, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a") as file:
        if not present:
            file.write("# Made by `python -m stack up`: this stack's credentials. Keep it private.\n")
        file.write("".join(f"{name}={value}\n" for name, value in missing.items()))
        file.flush()
        os.fsync(file.fileno())  # a password a service now holds must outlive a crash of the machine
    return set(missing)


def replace_durably(target: Path, text: str) -> None:
    """`target` (owner-only) holding `text`, whole or not at all, on disk before this returns:
    written beside it, synced, renamed over it, the rename synced."""
    written = target.with_suffix(".new")
    descriptor = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    written.replace(target)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


# docker-compose.yml's secrets, each read from `.env` (the names .env.example lists).
COMPOSE_SECRETS = ("MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD", "MYSQL_SHOP_PASSWORD", "MYSQL_CDC_PASSWORD",
                   "MYSQL_READER_PASSWORD", "REDIS_GUARD_PASSWORD", "REDIS_ADMIN_PASSWORD",
                   "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "WEB_TOKEN",
                   "KAFKA_CONNECT_REST_PASSWORD", "SPARK_AUTH_SECRET",
                   *(variable.replace("_USER", "_PASSWORD") for variable in KAFKA_USERS))


def compose_env() -> str:
    """A `.env` for docker-compose.yml with a random value for each of its secrets."""
    return "".join(f"{name}={secrets.token_urlsafe(24)}\n" for name in COMPOSE_SECRETS)


def mysql_grants(database: str, logins: dict[MysqlRole, tuple[str, str]]) -> str:
    """SQL (run as root) that makes each role's user with only what it needs, on `database` and
    on the `<database>_<suffix>` scratch databases of tests and benchmarks. Roles sharing a
    user (a deployment that sets only MYSQL_USER) get the union of their grants."""
    scratch = "`" + database.replace("_", r"\_") + r"\_%`"  # a LIKE pattern
    main = f"`{database}`"
    grants: dict[MysqlRole, list[str]] = {
        "owner": [f"ALL PRIVILEGES ON {main}.*", f"ALL PRIVILEGES ON {scratch}.*"],
        "shop": [f"SELECT ON {main}.customers", f"SELECT ON {main}.payment_method",
                 f"SELECT, INSERT, UPDATE, DELETE ON {main}.orders",
                 f"SELECT, INSERT, UPDATE, DELETE ON {main}.order_details",
                 f"SELECT, INSERT, UPDATE, DELETE ON {scratch}.*"],
        # Debezium's grants: RELOAD and the binlog privileges exist only server-wide. Its
        # incremental snapshots write and delete window marks in the signal table (a scratch
        # database's signal table has no name to grant on before the test makes it).
        "cdc": ["RELOAD, SHOW DATABASES, REPLICATION SLAVE, BINLOG MONITOR, REPLICA MONITOR ON *.*",
                f"SELECT, LOCK TABLES ON {main}.*", f"INSERT, DELETE ON {main}.debezium_signal",
                f"SELECT, LOCK TABLES, INSERT, DELETE ON {scratch}.*"],
        "reader": [f"SELECT ON {main}.*", f"SELECT ON {scratch}.*"],
    }
    statements = []
    for role, (user, password) in logins.items():
        statements += [f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY {sql_string(password)}",
                       mysql_password_change(user, password),
                       *(f"GRANT {grant} TO '{user}'@'%'" for grant in grants[role])]
    return ";\n".join([*statements, "FLUSH PRIVILEGES"]) + ";\n"


def sql_string(text: str) -> str:
    """`text` as a quoted SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def mysql_password_change(user: str, password: str) -> str:
    return f"ALTER USER '{user}'@'%' IDENTIFIED BY {sql_string(password)}"


def minio_policies(buckets: set[str]) -> dict[str, dict]:
    """MinIO policies (IAM JSON) by user: the lake's writer may read and write the layers'
    buckets, its reader read them; neither may touch another bucket, make one, or
    administer MinIO."""
    def statement(actions: list[str], resources: list[str]) -> dict:
        return {"Effect": "Allow", "Action": actions, "Resource": resources}

    in_buckets = [f"arn:aws:s3:::{bucket}" for bucket in sorted(buckets)]
    objects = [f"{arn}/*" for arn in in_buckets]
    listing = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    return {
        LAKE_WRITER: {"Version": "2012-10-17", "Statement": [
            statement(listing, in_buckets),
            statement(["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                       "s3:ListMultipartUploadParts"], objects)]},
        LAKE_READER: {"Version": "2012-10-17", "Statement": [
            statement(["s3:ListBucket", "s3:GetBucketLocation"], in_buckets),
            statement(["s3:GetObject"], objects)]},
    }


def redis_acl(guard_url: str, admin_url: str) -> str:
    """Redis's ACL file for these two URLs' users: no access without credentials, the guard's
    user limited to its keys and commands; a URL with a password and no user, the default
    user's password. Passwords are stored as their SHA-256."""
    def user(url: str, rules: str) -> str:
        parts = urlsplit(url)
        return f"user {parts.username} on #{hashlib.sha256(unquote(parts.password or '').encode()).hexdigest()} {rules}\n"

    if not urlsplit(guard_url).username:  # a password alone (`--insecure`, a deployment's): the default user's
        return user(guard_url.replace("://:", "://default:", 1), "~* &* +@all")
    admin = "" if urlsplit(admin_url).username == urlsplit(guard_url).username else user(admin_url, "~* &* +@all")
    return "user default off\n" + user(guard_url, GUARD_RULES) + admin


@dataclass(frozen=True)
class KafkaAcl:
    """One ALLOW rule: `user` may do `operations` (Kafka's names) on the topics or groups named
    `name`, or on every one whose name begins with it (`prefixed`)."""
    user: str
    resource: Literal["topic", "group"]
    name: str
    prefixed: bool
    operations: tuple[str, ...]


# A producer's first send may make its topic (auto-create), so writing comes with CREATE.
READ, WRITE = ("READ", "DESCRIBE"), ("WRITE", "CREATE", "DESCRIBE")
OWN = ("READ", "WRITE", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS")
QUIX_TOPIC_KINDS = ("changelog__", "repartition__")  # Quix Streams names its internal topics <kind><group>--...


def kafka_super_users(settings: Settings) -> list[str]:
    """The brokers (to each other and the controllers) and operators' tools: every operation."""
    return sorted({login[0] for role in ("broker", "tools") if (login := settings.kafka_login(role))})


def kafka_acls(settings: Settings, *, peer: str | None = None) -> list[KafkaAcl]:
    """What each client role may do on Kafka with StandardAuthorizer: anything not allowed here
    is refused (super users aside). Names follow the settings, and prefixes cover what derives
    from them: a rebuild's app id and topics, tests' and benchmarks' scratch streams. Roles that
    share a user (a deployment setting only KAFKA_USER) get the union; a role whose user is a
    super user needs no rule. `peer`: a benchmark contender's name, run as the workers' user:
    its groups and topics begin with it (Quix Streams' internal topics with a kind first)."""
    supers = set(kafka_super_users(settings))
    users = {role: login[0] for role in KAFKA_CLIENT_ROLES
             if (login := settings.kafka_login(role)) and login[0] not in supers}
    rules: dict[str, list[tuple[Literal["topic", "group"], str, bool, tuple[str, ...]]]] = {
        # the workers: CDC records and Connect's committed positions in; their own internal
        # topics (changelogs, the assignor's, the settle ticks), group and outputs. No CDC
        # topic made or written (the stack makes them), nothing deleted.
        "stream": [("topic", CDC_TOPIC_PREFIX, True, READ),
                   ("topic", settings.connect_offsets_topic, False, READ),
                   ("topic", settings.stream_app_id, True, OWN),
                   *(("topic", topic, True, OWN) for topic in (settings.order_final_topic, settings.order_alerts_topic,
                                                               settings.dead_letter_topic)),
                   ("group", settings.stream_app_id, True, READ)],
        # Kafka Connect: the CDC topics and Debezium's own out; its internal topics and group
        "connect": [("topic", CDC_TOPIC_PREFIX, True, WRITE + ("DESCRIBE_CONFIGS",)),
                    ("topic", heartbeat_topic(), False, WRITE),
                    ("topic", SCHEMA_HISTORY_PREFIX, True, OWN),
                    *(("topic", topic, False, OWN) for topic in (settings.connect_offsets_topic, CONNECT_CONFIGS_TOPIC,
                                                                 CONNECT_STATUS_TOPIC)),
                    ("group", CONNECT_GROUP, False, READ),
                    ("group", SCHEMA_HISTORY_PREFIX, True, READ)],
        # the lake: the CDC topics in, with Spark's Kafka source's generated groups
        "lake": [("topic", CDC_TOPIC_PREFIX, True, READ),
                 ("group", "spark-kafka-source-", True, READ)],
        # dead letters replayed: written to the CDC topics (the tool names which), none made
        "replay": [("topic", CDC_TOPIC_PREFIX, True, ("WRITE", "DESCRIBE"))],
        # broker-metrics: the end offsets of the stream's topics and its group's commits, described
        "monitor": [*(("topic", topic, True, ("DESCRIBE",)) for topic in (
                        CDC_TOPIC_PREFIX, heartbeat_topic(), settings.order_final_topic, settings.order_alerts_topic,
                        settings.dead_letter_topic)),
                    ("group", settings.stream_app_id, True, ("DESCRIBE",))],
    }
    if peer:  # Quix Streams also reads its source topics' configs as it starts
        rules["stream"] += [("group", peer, True, READ), ("topic", CDC_TOPIC_PREFIX, True, ("DESCRIBE_CONFIGS",)),
                            *(("topic", f"{kind}{peer}", True, OWN) for kind in ("", *QUIX_TOPIC_KINDS))]
    return [KafkaAcl(user, resource, name, prefixed, operations)
            for role, user in users.items() for resource, name, prefixed, operations in rules[role]]
