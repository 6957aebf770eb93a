"""`python -m stack rotate-secrets`: new passwords for the local stack's roles while it runs.

Each service keeps the old password working until nothing needs it:
- Redis takes the new password beside the old (`ACL SETUSER >new`), and drops the old once
  every holder runs with the new, closing the connections of those users opened before the
  rotation (Redis checks a password at login only);
- Kafka keeps one SCRAM password per user, and clients open connections all the time: the
  stream's, Connect's and the lake's roles move to a new user (`orderpipe-stream-2`, with the
  same ACLs), and the old user goes once no process uses it. The tools' user, a super user
  named in the brokers' configuration, changes its password in place;
- MySQL (`ALTER USER`) checks a password when a client connects: connections made with the
  old one carry on until their process restarts;
- MinIO checks every request, so the holders of a lake key stop before the key changes and
  start after;
- Kafka Connect reads its own Kafka login, its REST users and the connector's secrets from
  files at its start: it restarts with them (a connector's tasks alone, when only the
  connector's database password changed).
Then every process the stack started that holds an old value restarts with the new one, one
at a time (stack/holders.py). The secrets file holds the new values from the start: a
rotation cut short is finished by `python -m stack down` and `up` (each start sets every
service's users from the settings).
"""

from __future__ import annotations

import os
import secrets as tokens
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import redis
from dotenv import dotenv_values

from cdc import rest
from cdc.connector import connector_secrets
from config import Settings
from config.settings import INSECURE_MARK
from stack import control, holders, process, secrets
from stack.services import (KafkaConnect, MariaDB, Service, StackLayout, all_services, delete_scram_users,
                            grant_kafka_acls, grant_lake_users, render_properties, set_scram_passwords,
                            super_user_admin, write_private)

ServiceName = Literal["redis", "mysql", "kafka", "minio", "connect"]


@dataclass(frozen=True)
class Role:
    """One principal whose password the rotation changes: `variable` holds it (a URL with it,
    for Redis), `login` is its role in the settings."""
    name: str
    variable: str
    service: ServiceName
    login: str
    user_variable: str | None = None  # a role that moves to a new user at each rotation


ROLES = (
    Role("redis-guard", "REDIS_URL", "redis", "guard"),
    Role("redis-admin", "REDIS_ADMIN_URL", "redis", "operator"),
    Role("mysql-owner", "MYSQL_PASSWORD", "mysql", "owner"),
    Role("mysql-shop", "MYSQL_SHOP_PASSWORD", "mysql", "shop"),
    Role("mysql-cdc", "MYSQL_CDC_PASSWORD", "mysql", "cdc"),
    Role("mysql-reader", "MYSQL_READER_PASSWORD", "mysql", "reader"),
    Role("kafka-stream", "KAFKA_PASSWORD", "kafka", "stream", "KAFKA_USER"),
    Role("kafka-connect", "KAFKA_CONNECT_PASSWORD", "kafka", "connect", "KAFKA_CONNECT_USER"),
    Role("kafka-lake", "KAFKA_LAKE_PASSWORD", "kafka", "lake", "KAFKA_LAKE_USER"),
    Role("kafka-replay", "KAFKA_REPLAY_PASSWORD", "kafka", "replay", "KAFKA_REPLAY_USER"),
    Role("kafka-monitor", "KAFKA_MONITOR_PASSWORD", "kafka", "monitor", "KAFKA_MONITOR_USER"),
    Role("kafka-tools", "KAFKA_TOOLS_PASSWORD", "kafka", "tools"),
    Role("minio-lake", "MINIO_SECRET_KEY", "minio", "writer"),
    Role("minio-lake-reader", "MINIO_READER_SECRET_KEY", "minio", "reader"),
    Role("connect-rest", "KAFKA_CONNECT_REST_PASSWORD", "connect", "rest"),
)
BY_NAME = {role.name: role for role in ROLES}
# Principals a service itself starts with: they change with a restart of that service.
AT_RESTART = {
    "kafka-broker": "the brokers' own password (KAFKA_BROKER_PASSWORD) is in every node's configuration, and the "
                    "controllers check it there",
    "minio-root": "MinIO reads its root login (MINIO_ROOT_PASSWORD) at its start only",
}


class RotationRefused(RuntimeError):
    """The stack's secrets cannot be rotated as asked; the message says why and what to do."""


def chosen(names: Iterable[str]) -> list[Role]:
    """The roles named (every one, for none), in ROLES' order."""
    wanted = set(names) or set(BY_NAME)
    unknown = sorted(wanted - set(BY_NAME))
    for name in unknown:
        if name in AT_RESTART:
            raise RotationRefused(f"{name} cannot rotate while the stack runs: {AT_RESTART[name]}. Edit it in the "
                                  "secrets file, then `python -m stack down` and `up`")
    if unknown:
        raise RotationRefused(f"unknown role(s) {', '.join(unknown)}; one of: {', '.join(BY_NAME)}")
    return [role for role in ROLES if role.name in wanted]


def with_password(url: str, password: str) -> str:
    """`url` with its password replaced (its user, host, port and path kept)."""
    parts = urlsplit(url)
    netloc = f"{quote(parts.username or '', safe='')}:{quote(password, safe='')}@{parts.hostname}"
    return urlunsplit(parts._replace(netloc=netloc + (f":{parts.port}" if parts.port else "")))


def password_of(value: str) -> str:
    """A variable's password: the value itself, or a URL's password (as its client reads it)."""
    return unquote(urlsplit(value).password or "") if "://" in value else value


def next_user(user: str) -> str:
    """The user a renamed role moves to: `orderpipe-stream` -> `orderpipe-stream-2` -> `-3`..."""
    base, _, generation = user.rpartition("-")
    return f"{base}-{int(generation) + 1}" if base and generation.isdigit() else f"{user}-2"


def variables(roles: Iterable[Role]) -> list[str]:
    """Every variable a rotation of `roles` changes: passwords, and the users of renamed roles."""
    return [variable for role in roles for variable in (role.variable, role.user_variable) if variable]


def new_values(current: Mapping[str, str], roles: Iterable[Role],
               make: Callable[[], str] = lambda: tokens.token_urlsafe(24)) -> dict[str, str]:
    """The variables of `roles` with new passwords (a URL's password replaced in the URL), and
    renamed roles' next users."""
    made = {}
    for role in roles:
        value = current[role.variable]
        made[role.variable] = with_password(value, make()) if "://" in value else make()
        if role.user_variable:
            made[role.user_variable] = next_user(current[role.user_variable])
    return made


def refusals(settings: Settings, roles: Iterable[Role], file_values: Mapping[str, str],
             overridden: Iterable[str]) -> list[str]:
    """Why these roles cannot rotate on this stack (nothing: they can)."""
    if (settings.stack_home / INSECURE_MARK).exists():
        return [f"the stack under {settings.stack_home} was made with --insecure: it has no passwords to rotate"]
    reasons = []
    for variable in variables(roles):
        if variable in overridden:
            reasons.append(f"{variable} is set in the environment or .env: the rotation changes the stack's "
                           f"secrets file only; change it where it is set")
        elif not file_values.get(variable):
            reasons.append(f"{variable} is not in the secrets file {secrets.path(settings.stack_home)}: "
                           "`python -m stack up` adds it")
    return reasons


def overridden_variables(env_file: Path = Path(".env")) -> set[str]:
    """Variables a deployment sets (the environment, `.env`): they win over the secrets file."""
    return set(os.environ) | (set(dotenv_values(env_file)) if env_file.is_file() else set())


def stale_connections(clients: Iterable[Mapping[str, str]], users: set[str], opened_before: int) -> list[str]:
    """The ids of the clients (Redis' CLIENT LIST) logged in as one of `users` and opened
    before the client `opened_before` (ids only grow): those that may hold an old password."""
    return [client["id"] for client in clients if client.get("user") in users and int(client["id"]) < opened_before]


def rewrite_secrets_file(stack_home: Path, values: Mapping[str, str]) -> None:
    """Give `values`' variables their new values in the secrets file (owner-only, replaced at
    once and synced: the services hold the new passwords from now on)."""
    found = secrets.path(stack_home)
    lines = [f"{line.split('=', 1)[0]}={values[line.split('=', 1)[0]]}"
             if "=" in line and line.split("=", 1)[0] in values else line
             for line in found.read_text().splitlines()]
    secrets.replace_durably(found, "\n".join(lines) + "\n")


def user_of(settings: Settings, role: Role) -> str:
    if role.service == "redis":
        return urlsplit(settings.redis_url if role.login == "guard" else settings.redis_operator_url).username or ""
    if role.service == "mysql":
        return settings.mysql_login(role.login)[0]
    if role.service == "kafka":
        return settings.kafka_login(role.login)[0]
    if role.service == "minio":
        return settings.minio_login(role.login)[0]
    return settings.kafka_connect_rest_login[0]


def rotate(settings: Settings, roles: list[Role], say: Callable[[str], None] = print) -> list[str]:
    """Rotate `roles` on the stack the settings describe; the names of the processes restarted."""
    file_values = {name: value for name, value in dotenv_values(secrets.path(settings.stack_home)).items() if value}
    if reasons := refusals(settings, roles, file_values, overridden_variables()):
        raise RotationRefused("; ".join(reasons))
    old_values = {variable: file_values[variable] for variable in variables(roles)}
    new_settings = settings.with_variables(new_values(old_values, roles))
    return Rotation(settings, new_settings, roles, say).run(old_values)


@dataclass(frozen=True)
class Rotation:
    """The stack's services and processes moved from the `old` settings' passwords of `roles`
    to the `new` settings'."""
    old: Settings
    new: Settings
    roles: list[Role]
    say: Callable[[str], None]

    def run(self, old_values: Mapping[str, str]) -> list[str]:
        new_values = {variable: self.new.as_env()[variable] for variable in old_values}
        old_passwords = {role.variable: old_values[role.variable] for role in self.roles}
        services = {service.name: service for service in all_services(self.new)}
        layout = StackLayout(self.old.stack_home)
        holding = [holder for holder in holders.running(layout, skip=set(services)) if holder.holds(old_passwords)]
        lake_keys = {role.variable: old_values[role.variable] for role in self.of("minio")}
        stopped_first = [holder for holder in holding if holder.holds(lake_keys)]

        rewrite_secrets_file(self.old.stack_home, new_values)
        self.say(f"new passwords for {self.named(self.roles)} in {secrets.path(self.old.stack_home)}")
        for holder in stopped_first:
            self.say(f"stopping {holder.name} first (it holds a MinIO key, checked at every request)")
            holders.stop(holder)
        redis_admin, opened_before = self.redis_add()
        self.kafka()
        self.mysql(services["mariadb"])
        self.minio()
        self.connect(services["kafka-connect"])
        for holder in holding:
            self.say(f"restarting {holder.name}: {', '.join(sorted(holder.holds(old_passwords)))}")
            (holders.start if holder in stopped_first else holders.restart)(holder, old_values, new_values)
        if redis_admin:
            self.redis_drop(redis_admin, old_values, services["redis"], opened_before)
        self.kafka_drop_old_users()
        return [holder.name for holder in holding]

    def of(self, service: ServiceName) -> list[Role]:
        return [role for role in self.roles if role.service == service]

    @staticmethod
    def named(roles: Iterable[Role]) -> str:
        return ", ".join(role.name for role in roles)

    def new_password(self, role: Role) -> str:
        return password_of(self.new.as_env()[role.variable])

    def redis_add(self) -> tuple[redis.Redis | None, int]:
        """The new passwords beside the old; the admin connection (logged in with the old one)
        that drops the old ones at the end, and its client id: every connection older than it
        was opened before any new password existed."""
        if not self.of("redis"):
            return None, 0
        admin = redis.Redis.from_url(self.old.redis_operator_url)
        opened_before = admin.client_id()
        for role in self.of("redis"):
            admin.execute_command("ACL", "SETUSER", user_of(self.old, role), f">{self.new_password(role)}")
        self.say(f"redis: new passwords beside the old for {self.named(self.of('redis'))}")
        return admin, opened_before

    def redis_drop(self, admin: redis.Redis, old_values: Mapping[str, str], server: Service,
                   opened_before: int) -> None:
        for role in self.of("redis"):
            admin.execute_command("ACL", "SETUSER", user_of(self.old, role), f"<{password_of(old_values[role.variable])}")
        server.prepare()  # its users file, read at its next start
        users = {user_of(self.old, role) for role in self.of("redis")}
        closed = stale_connections(admin.client_list(), users, opened_before)
        for client_id in closed:
            admin.client_kill_filter(_id=client_id)
        self.say(f"redis: old passwords removed; {len(closed)} connection(s) of theirs opened before the rotation closed")

    def kafka(self) -> None:
        """The tools' new password in place; each renamed role's new user, with its ACLs (the old
        user keeps its own until `kafka_drop_old_users`)."""
        if not (roles := self.of("kafka")):
            return
        set_scram_passwords(super_user_admin(self.old), self.old.kafka_sasl_mechanism,
                            [(user_of(self.new, role), self.new_password(role)) for role in roles])
        grant_kafka_acls(self.new, keep_others=True)
        self.say("kafka: " + ", ".join(f"{role.name} now {user_of(self.new, role)}" if role.user_variable
                                       else f"{role.name} a new password" for role in roles))

    def kafka_drop_old_users(self) -> None:
        """The renamed roles' old users, and their ACLs, once no process of the stack uses them."""
        if renamed := [role for role in self.of("kafka") if role.user_variable]:
            grant_kafka_acls(self.new)
            delete_scram_users(super_user_admin(self.new), self.new.kafka_sasl_mechanism,
                               [user_of(self.old, role) for role in renamed])
            self.say(f"kafka: old users removed: {', '.join(user_of(self.old, role) for role in renamed)}")

    def mysql(self, database: MariaDB) -> None:
        for role in self.of("mysql"):
            result = database.root_sql(secrets.mysql_password_change(user_of(self.old, role), self.new_password(role)))
            if result.returncode != 0:
                raise RuntimeError(f"mysql: ALTER USER for {role.name} failed: {result.stderr.strip()}")
        if roles := self.of("mysql"):
            self.say(f"mysql: new passwords for {self.named(roles)}")

    def minio(self) -> None:
        if roles := self.of("minio"):
            grant_lake_users(self.new)
            self.say(f"minio: new keys for {self.named(roles)}")

    def connect(self, connect: KafkaConnect) -> None:
        """Connect restarted for its own logins (its start writes its files from the new
        settings); for the database's password alone, the connectors' tasks."""
        names = {role.name for role in self.roles}
        if names & {"connect-rest", "kafka-connect"}:
            process.stop(connect.layout.pidfile(connect.name))
            control.up([connect], self.new.stack_start_timeout_s)
            self.say("kafka-connect: restarted with its new logins")
        elif "mysql-cdc" in names:
            write_private(Path(self.new.connector_secrets_path), render_properties(connector_secrets(self.new)))
            with rest.client(self.new) as client:
                for name in rest.names(client):
                    rest.stop(client, name)
                    rest.resume_without_skips(client, name)
            self.say("kafka-connect: connectors restarted with the database's new password")
