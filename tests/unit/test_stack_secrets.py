from __future__ import annotations

import functools
import hashlib
import os
import ssl
import stat
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from dotenv import dotenv_values

from config import Settings
from config.settings import REPO_ROOT
from stack import secrets, tls


def test_a_stacks_first_start_makes_owner_only_credentials_and_never_rewrites_them(tmp_path):
    assert {"REDIS_URL", "KAFKA_USER", "MYSQL_USER"} <= secrets.ensure(tmp_path, "127.0.0.1", 6379)
    first = secrets.path(tmp_path).read_text()

    assert secrets.ensure(tmp_path, "127.0.0.1", 6379) == set()
    assert secrets.path(tmp_path).read_text() == first
    assert stat.S_IMODE(secrets.path(tmp_path).stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    urls = dict(line.split("=", 1) for line in first.splitlines() if not line.startswith("#"))
    guard, admin = urlsplit(urls["REDIS_URL"]), urlsplit(urls["REDIS_ADMIN_URL"])
    assert (guard.username, admin.username) == (secrets.GUARD_USER, secrets.ADMIN_USER)
    assert len(guard.password) >= 32 and guard.password != admin.password
    assert guard.path == admin.path == "/2"


def test_another_stack_gets_other_passwords(tmp_path):
    secrets.ensure(tmp_path / "a", "127.0.0.1", 6379)
    secrets.ensure(tmp_path / "b", "127.0.0.1", 6379)

    assert secrets.path(tmp_path / "a").read_text() != secrets.path(tmp_path / "b").read_text()


def test_settings_read_the_stacks_secrets_unless_the_environment_sets_them(tmp_path,
                                                                            monkeypatch: pytest.MonkeyPatch):
    for name in ("REDIS_URL", "REDIS_ADMIN_URL"):
        monkeypatch.delenv(name, raising=False)
    secrets.ensure(tmp_path, "127.0.0.1", 6379)
    made = dict(line.split("=", 1) for line in secrets.path(tmp_path).read_text().splitlines()
                if not line.startswith("#"))

    from_file = Settings(_env_file=None, STACK_HOME=str(tmp_path))
    monkeypatch.setenv("REDIS_URL", "redis://ops:pw@cache:6380/2")
    from_environment = Settings(_env_file=None, STACK_HOME=str(tmp_path))

    assert (from_file.redis_url, from_file.redis_operator_url) == (made["REDIS_URL"], made["REDIS_ADMIN_URL"])
    assert from_environment.redis_url == "redis://ops:pw@cache:6380/2"
    assert Settings(_env_file=None, STACK_HOME=str(tmp_path / "none")).redis_operator_url == "redis://ops:pw@cache:6380/2"


def test_redis_refuses_anyone_without_credentials_and_limits_the_guard_to_its_keys_and_commands():
    acl = secrets.redis_acl("redis://orderpipe-guard:g-pw@h:6379/2", "redis://orderpipe-admin:a-pw@h:6379/2")
    users = {line.split()[1]: line.split()[2:] for line in acl.splitlines()}

    assert users["default"] == ["off"]
    guard, admin = users["orderpipe-guard"], users["orderpipe-admin"]
    assert guard[:2] == ["on", "#" + hashlib.sha256(b"g-pw").hexdigest()]
    assert {"~order_trigger_lock:*", "~dead_letter_claim:*", "-@all"} <= set(guard)
    assert not {"~*", "+@all", "+flushdb", "+del", "+keys"} & set(guard)
    assert admin[:2] == ["on", "#" + hashlib.sha256(b"a-pw").hexdigest()] and "+@all" in admin
    assert "g-pw" not in acl and "a-pw" not in acl


def test_a_stack_made_before_a_principal_existed_gets_it_appended_and_keeps_the_rest(tmp_path):
    secrets.path(tmp_path).write_text("REDIS_URL=redis://orderpipe-guard:old@h:6379/2\n")

    assert "REDIS_URL" not in secrets.ensure(tmp_path, "127.0.0.1", 6379)
    values = dict(line.split("=", 1) for line in secrets.path(tmp_path).read_text().splitlines()
                  if not line.startswith("#"))

    assert values["REDIS_URL"] == "redis://orderpipe-guard:old@h:6379/2"
    assert {values[name] for name in secrets.MYSQL_USERS} == set(secrets.MYSQL_USERS.values())
    assert len({values[name.replace("_USER", "_PASSWORD")] for name in secrets.MYSQL_USERS}) == 4
    assert secrets.ensure(tmp_path, "127.0.0.1", 6379) == set()


def test_each_mysql_role_connects_as_its_own_user_or_as_the_owner_when_unset(tmp_path):
    shared = Settings(_env_file=None, STACK_HOME=str(tmp_path), MYSQL_USER="app", MYSQL_PASSWORD="pw")
    split = Settings(_env_file=None, STACK_HOME=str(tmp_path), MYSQL_USER="app", MYSQL_PASSWORD="pw",
                     MYSQL_READER_USER="lake", MYSQL_READER_PASSWORD="lake-pw")

    assert {role: shared.mysql_login(role) for role in ("owner", "shop", "cdc", "reader")} == \
        dict.fromkeys(("owner", "shop", "cdc", "reader"), ("app", "pw"))
    assert (split.mysql_login("reader"), split.mysql_login("cdc")) == (("lake", "lake-pw"), ("app", "pw"))


def grants_of(sql: str) -> dict[str, list[str]]:
    granted: dict[str, list[str]] = {}
    for statement in sql.split(";\n"):
        if statement.startswith("GRANT "):
            privileges, user = statement.removeprefix("GRANT ").rsplit(" TO ", 1)
            granted.setdefault(user.split("@")[0].strip("'"), []).append(privileges)
    return granted


def test_mysql_roles_get_only_what_they_use():
    logins = {"owner": ("o", "o-pw"), "shop": ("s", "s-pw"), "cdc": ("c", "c-pw"), "reader": ("r", "r'pw")}
    granted = grants_of(secrets.mysql_grants("project_db", logins))

    assert all(privileges.startswith("SELECT ON ") for privileges in granted["r"])
    assert not any("ALL" in p or "*.*" in p or "CREATE" in p or "DROP" in p for p in granted["s"])
    assert "SELECT, INSERT, UPDATE, DELETE ON `project_db`.orders" in granted["s"]
    assert "SELECT ON `project_db`.customers" in granted["s"]
    server_wide = [p for p in granted["c"] if p.endswith(" ON *.*")]
    assert server_wide == ["RELOAD, SHOW DATABASES, REPLICATION SLAVE, BINLOG MONITOR, REPLICA MONITOR ON *.*"]
    assert "INSERT, DELETE ON `project_db`.debezium_signal" in granted["c"]
    assert not any("UPDATE" in p or "ALL" in p for p in granted["c"])
    assert not any(p.endswith(" ON *.*") for p in granted["o"] + granted["s"] + granted["r"])
    assert "IDENTIFIED BY 'r''pw'" in secrets.mysql_grants("project_db", logins)


def test_the_lake_writer_and_reader_reach_only_the_layers_buckets():
    policies = secrets.minio_policies({"bronze", "silver", "gold"})
    writer, reader = policies[secrets.LAKE_WRITER], policies[secrets.LAKE_READER]

    def actions(policy) -> set[str]:
        return {action for statement in policy["Statement"] for action in statement["Action"]}

    def resources(policy) -> set[str]:
        return {resource for statement in policy["Statement"] for resource in statement["Resource"]}

    layers = {f"arn:aws:s3:::{bucket}" for bucket in ("bronze", "silver", "gold")}
    assert resources(writer) == resources(reader) == layers | {f"{arn}/*" for arn in layers}
    assert {"s3:PutObject", "s3:DeleteObject", "s3:GetObject"} <= actions(writer)
    assert not {action for action in actions(writer) | actions(reader)
                if action == "s3:*" or "Bucket" in action and action not in
                {"s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"}}
    assert actions(reader) == {"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"}


def test_minio_roles_use_the_lake_writers_keys_when_unset(tmp_path):
    shared = Settings(_env_file=None, STACK_HOME=str(tmp_path), MINIO_ACCESS_KEY="lake", MINIO_SECRET_KEY="lake-pw")
    split = Settings(_env_file=None, STACK_HOME=str(tmp_path), MINIO_ACCESS_KEY="lake", MINIO_SECRET_KEY="lake-pw",
                     MINIO_ROOT_USER="root", MINIO_ROOT_PASSWORD="root-pw")

    assert {shared.minio_login(role) for role in ("root", "writer", "reader")} == {("lake", "lake-pw")}
    assert (split.minio_login("root"), split.minio_login("reader")) == (("root", "root-pw"), ("lake", "lake-pw"))


def test_kafka_clients_authenticate_as_their_role_or_speak_plaintext_without_credentials(tmp_path):
    plain = Settings(_env_file=None, STACK_HOME=str(tmp_path))
    secured = Settings(_env_file=None, STACK_HOME=str(tmp_path), KAFKA_USER="stream", KAFKA_PASSWORD="s-pw",
                       KAFKA_LAKE_USER="lake", KAFKA_LAKE_PASSWORD="l-pw")

    assert plain.kafka_client_config() == {"bootstrap.servers": "127.0.0.1:9092"}
    assert plain.kafka_java_config("lake") == plain.kafka_aiokafka_auth() == {}
    assert secured.kafka_client_config("tools") | {} == {
        "bootstrap.servers": "127.0.0.1:9092", "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "stream", "sasl.password": "s-pw"}
    lake = secured.kafka_java_config("lake", prefix="kafka.")
    assert lake["kafka.security.protocol"] == "SASL_PLAINTEXT"
    assert 'ScramLoginModule required username="lake" password="l-pw";' in lake["kafka.sasl.jaas.config"]
    assert secured.kafka_aiokafka_auth()["sasl_plain_username"] == "stream"


def test_with_the_stacks_ca_every_kafka_client_speaks_tls_and_checks_the_brokers_against_it(tmp_path):
    assert tls.ensure(tmp_path, ["127.0.0.1"])
    ca = tmp_path / "conf" / "tls" / "ca.pem"
    over_tls = Settings(_env_file=None, STACK_HOME=str(tmp_path), KAFKA_USER="stream", KAFKA_PASSWORD="s-pw")

    assert over_tls.kafka_ssl_ca == ca  # from the secrets file
    assert over_tls.kafka_client_config() | {} == {
        "bootstrap.servers": "127.0.0.1:9092", "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "stream", "sasl.password": "s-pw", "ssl.ca.location": str(ca)}
    lake = over_tls.kafka_java_config("lake", prefix="kafka.")
    assert (lake["kafka.security.protocol"], lake["kafka.ssl.truststore.type"],
            lake["kafka.ssl.truststore.location"]) == ("SASL_SSL", "PEM", str(ca))
    auth = over_tls.kafka_aiokafka_auth()
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["ssl_context"].verify_mode == ssl.CERT_REQUIRED and auth["ssl_context"].check_hostname


def test_the_brokers_certificate_is_the_stacks_cas_for_every_name_clients_dial_and_its_key_owner_only(tmp_path):
    tls.ensure(tmp_path, ["kafka.internal"])
    pem = tls.broker_file(tmp_path).read_bytes()
    ca = x509.load_pem_x509_certificate((tmp_path / "conf" / "tls" / "ca.pem").read_bytes())
    broker = x509.load_pem_x509_certificates(pem)[0]

    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8: what Kafka's PEM key store reads
    assert stat.S_IMODE(tls.broker_file(tmp_path).stat().st_mode) == 0o600
    assert broker.issuer == ca.subject
    names = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"kafka.internal", "localhost"}
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert not tls.ensure(tmp_path, ["kafka.internal"])  # made once: a later start keeps them
    assert tls.broker_file(tmp_path).read_bytes() == pem


def kafka_roles(tmp_path, **users: str) -> Settings:
    env = {f"KAFKA_{role.upper()}_USER" if role != "stream" else "KAFKA_USER": user for role, user in users.items()}
    passwords = {name.replace("_USER", "_PASSWORD"): "pw" for name in env}
    return Settings(_env_file=None, STACK_HOME=str(tmp_path), **env, **passwords)


def allowed(acls: list[secrets.KafkaAcl], user: str, resource: str, name: str) -> set[str]:
    """The operations `user` may do on the topic or group `name`."""
    return {operation for acl in acls if acl.user == user and acl.resource == resource
            and (name.startswith(acl.name) if acl.prefixed else name == acl.name) for operation in acl.operations}


def test_kafka_roles_get_only_what_they_use_and_the_brokers_and_tools_everything(tmp_path):
    settings = kafka_roles(tmp_path, stream="s", connect="c", lake="l", replay="r", tools="t", broker="b")
    acls = secrets.kafka_acls(settings)
    cdc = settings.cdc_topic("orders")

    assert secrets.kafka_super_users(settings) == ["b", "t"]
    assert {acl.user for acl in acls} == {"s", "c", "l", "r"}
    assert allowed(acls, "r", "topic", cdc) == {"WRITE", "DESCRIBE"}  # dead letters replayed; none made
    assert allowed(acls, "r", "topic", "_connect_configs") == allowed(acls, "r", "topic", "order_final") == set()
    assert {acl.resource for acl in acls if acl.user == "r"} == {"topic"}
    assert allowed(acls, "s", "topic", cdc) == {"READ", "DESCRIBE"}  # the stack makes the CDC topics
    assert "CREATE" in allowed(acls, "s", "topic", f"{settings.stream_app_id}-settle-ticks")  # the worker makes
    assert {"WRITE", "READ"} <= allowed(acls, "s", "topic", "order_final_scratch")  # a scratch stream's output
    assert "WRITE" in allowed(acls, "s", "topic", "orderpipe-order_progress-changelog")
    assert allowed(acls, "s", "group", "orderpipe-rebuild-order_final_v2") == {"READ", "DESCRIBE"}
    assert allowed(acls, "s", "topic", "_connect_configs") == set()
    assert {"WRITE", "CREATE"} <= allowed(acls, "c", "topic", cdc)
    assert "READ" not in allowed(acls, "c", "topic", "order_final")
    assert allowed(acls, "c", "group", "connect-cluster") == {"READ", "DESCRIBE"}
    assert allowed(acls, "l", "topic", cdc) == {"READ", "DESCRIBE"}
    assert allowed(acls, "l", "topic", "order_final") == allowed(acls, "l", "group", "orderpipe") == set()
    # no role may delete or alter anything, nor touch the cluster
    assert not {operation for acl in acls for operation in acl.operations} & {"DELETE", "ALTER", "ALL", "ALTER_CONFIGS"}


def test_a_deployment_without_a_replay_user_replays_as_the_tools_never_as_the_workers(tmp_path):
    settings = kafka_roles(tmp_path, stream="s", tools="t")

    assert settings.kafka_login("replay") == ("t", "pw")
    assert "WRITE" not in allowed(secrets.kafka_acls(settings), "s", "topic", settings.cdc_topic("orders"))


def test_roles_sharing_a_super_users_login_need_no_rule_and_a_peer_gets_its_own_names(tmp_path):
    shared = kafka_roles(tmp_path, stream="app")  # every role falls back to KAFKA_USER
    split = kafka_roles(tmp_path, stream="s", tools="t", broker="b")

    assert secrets.kafka_super_users(shared) == ["app"] and secrets.kafka_acls(shared) == []
    peer = secrets.kafka_acls(split, peer="project_db_bench_quix1")
    assert "WRITE" in allowed(peer, "s", "topic", "changelog__project_db_bench_quix1--orders--default")
    assert "READ" in allowed(peer, "s", "group", "project_db_bench_quix1-orders")
    assert allowed(secrets.kafka_acls(split), "s", "group", "project_db_bench_quix1") == set()
    own = kafka_roles(tmp_path, stream="s", connect="c", lake="l", tools="t", broker="b")
    cdc = own.cdc_topic("orders")
    assert "DESCRIBE_CONFIGS" in allowed(secrets.kafka_acls(own, peer="project_db_bench_quix1"), "s", "topic", cdc)
    assert "DESCRIBE_CONFIGS" not in allowed(secrets.kafka_acls(own), "s", "topic", cdc)  # Quix's need only


def test_an_insecure_stack_gets_no_credentials_and_its_settings_keep_the_development_logins(
        tmp_path, monkeypatch: pytest.MonkeyPatch):
    for name in ("KAFKA_USER", "KAFKA_TOOLS_USER", "KAFKA_BROKER_USER", "REDIS_URL", "MYSQL_USER", "MINIO_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)

    assert secrets.prepare(tmp_path, "127.0.0.1", 6379, insecure=True) == set()

    made = Settings(_env_file=None, STACK_HOME=str(tmp_path))
    assert not secrets.path(tmp_path).exists() and (tmp_path / secrets.INSECURE_MARK).exists()
    assert made.kafka_login("broker") is None and made.kafka_login("tools") is None
    assert urlsplit(made.redis_url).password is None
    assert made.mysql_login("reader") == ("admin", "admin")
    assert secrets.prepare(tmp_path, "127.0.0.1", 6379, insecure=True) == set()  # started again as it was made


def test_a_stack_keeps_the_mode_it_was_made_with_and_the_refusal_names_the_way_out(tmp_path):
    secrets.prepare(tmp_path / "insecure", "127.0.0.1", 6379, insecure=True)
    secrets.prepare(tmp_path / "secure", "127.0.0.1", 6379)

    with pytest.raises(secrets.SecurityModeError, match=r"made with `python -m stack up --insecure`.*STACK_HOME"):
        secrets.prepare(tmp_path / "insecure", "127.0.0.1", 6379)
    with pytest.raises(secrets.SecurityModeError, match=r"made with credentials.*without --insecure.*STACK_HOME"):
        secrets.prepare(tmp_path / "secure", "127.0.0.1", 6379, insecure=True)
    assert not secrets.path(tmp_path / "insecure").exists()
    assert not (tmp_path / "secure" / secrets.INSECURE_MARK).exists()


def test_the_doctor_sends_an_open_insecure_stack_to_another_home_and_an_open_stack_to_a_restart(tmp_path):
    from stack import doctor

    secrets.prepare(tmp_path / "insecure", "127.0.0.1", 6379, insecure=True)

    insecure = doctor.with_credentials(Settings(_env_file=None, STACK_HOME=str(tmp_path / "insecure")))
    other = doctor.with_credentials(Settings(_env_file=None, STACK_HOME=str(tmp_path / "made-before-credentials")))
    assert "--insecure" in insecure and "another STACK_HOME" in insecure
    assert "`python -m stack down`, then `up`" in other


def test_compose_env_writes_an_owner_only_env_and_never_over_an_existing_one(tmp_path):
    run = functools.partial(subprocess.run, [sys.executable, "-m", "stack", "compose-env"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    first = run()
    written = dotenv_values(tmp_path / ".env")
    second = run()

    assert first.returncode == 0, first.stderr
    assert set(written) == set(secrets.COMPOSE_SECRETS) and len(set(written.values())) == len(written)
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    assert second.returncode == 1 and "exists" in second.stderr
    assert dotenv_values(tmp_path / ".env") == written  # untouched
