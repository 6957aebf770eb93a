"""`python -m stack doctor`: is the pipeline healthy right now? One table, the fix named.

Every check talks to the services at the addresses in the settings (no pid files), so it
answers for a remote stack too, and a check whose service is down reports that and lets
the others run. A check is a problem (exit 1) or information.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import mysql.connector
import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
import orjson
from minio.error import S3Error
from redis.backoff import NoBackoff
from redis.retry import Retry

from batch.clocks import CRASH_LOOP_WINDOW_S, LEASE_S, STALENESS_BOUND_S, TRAILING_AFTER_S
from batch.fastlane.lease import fresh, owner_of, read_state
from batch.flows import DEFERRED
from batch.tools.lake_reader import behind_since
from cdc import rest
from config import Settings
from config.settings import INSECURE_DEFAULTS, KAFKA_CLIENT_ROLES
from stack import secrets
from stack.services import EVERY_ACL, all_services, kafka_answers, minio_client

DEAD_LETTER_WINDOW_S = 3600


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _mysql_answers(settings: Settings) -> bool:
    """MariaDB's own probe uses the local socket; a remote stack is asked over TCP."""
    try:
        user, password = settings.mysql_login("owner")
        connection = mysql.connector.connect(host=settings.mysql_host, port=settings.mysql_port,
                                             user=user, password=password, connection_timeout=5)
    except mysql.connector.Error:
        return False
    connection.close()
    return True


def _mysql_lets_in(settings: Settings, user: str, password: str) -> bool:
    try:
        mysql.connector.connect(host=settings.mysql_host, port=settings.mysql_port, user=user,
                                password=password, connection_timeout=5).close()
    except mysql.connector.Error:
        return False
    return True


def with_credentials(settings: Settings) -> str:
    """How to put a service found open behind the stack's users."""
    if (settings.stack_home / secrets.INSECURE_MARK).exists():
        return ("this stack was made with `python -m stack up --insecure`; for one with credentials, use "
                "another STACK_HOME (docs/operations.md, Security)")
    return "run it with the stack's users: `python -m stack down`, then `up` (docs/operations.md, Security)"


def mysql_access(settings: Settings) -> Iterator[Check]:
    """Whether MySQL lets in root without a password, or the settings' default login, and
    which user each role connects as."""
    default = (Settings.model_fields["mysql_user"].default, INSECURE_DEFAULTS["MYSQL_PASSWORD"])
    open_logins = [f"{user} ({'no password' if not password else 'its default password'})"
                   for user, password in (("root", ""), default) if _mysql_lets_in(settings, user, password)]
    if open_logins:
        yield Check("mysql access", False, f"{settings.mysql_host}:{settings.mysql_port} lets in {', '.join(open_logins)}",
                    with_credentials(settings))
        return
    roles = ", ".join(f"{role} {settings.mysql_login(role)[0]}" for role in ("owner", "shop", "cdc", "reader"))
    yield Check("mysql access", True, f"credentials required; {roles}")


def kafka_access(settings: Settings) -> Iterator[Check]:
    """Whether Kafka answers a client that presents no credentials."""
    if not kafka_answers(settings.kafka_bootstrap):
        roles = ", ".join(f"{role} {login[0]}" for role in (*KAFKA_CLIENT_ROLES, "tools")
                          if (login := settings.kafka_login(role)))
        yield Check("kafka access", True, f"no answer without credentials; {roles or 'no SASL user set'}")
        yield from kafka_acls(settings)
        return
    yield Check("kafka access", False, f"{settings.kafka_bootstrap} answers without credentials (PLAINTEXT): "
                                       "any process reaching it reads and writes every topic",
                with_credentials(settings))


def holds_secret(key: str) -> bool:
    return key.endswith((".password", "sasl.jaas.config"))


def connect_access(settings: Settings) -> Iterator[Check]:
    """Whether Kafka Connect's REST API answers without a login, and whether a connector's
    config read through it shows a secret."""
    anonymous = httpx.get(f"{settings.kafka_connect_url}/connectors", timeout=5)
    if anonymous.status_code != 401:
        yield Check("connect access", False, f"{settings.kafka_connect_url} answers without a login "
                                             f"({anonymous.status_code}): anyone reaching it may change or delete "
                                             "connectors", with_credentials(settings))
        return
    with rest.client(settings) as connect:
        shown = {name: connect.get(f"/connectors/{name}/config").json() for name in rest.names(connect)}
    secrets_shown = sorted(name for name, config in shown.items()
                           if any(holds_secret(key) and not value.startswith("${") for key, value in config.items()))
    if secrets_shown:
        yield Check("connect access", False, f"login required, but the config of {', '.join(secrets_shown)} shows "
                                             "a password", "register it again: `python -m cdc register` sends "
                                                           "references to the connector secrets file")
        return
    yield Check("connect access", True, f"login required ({settings.kafka_connect_rest_user}); "
                                        f"{len(shown)} connector config(s), no secret shown")


def kafka_acls(settings: Settings) -> Iterator[Check]:
    """Whether Kafka runs an authorizer, and how many rules it holds (the tools' user lists them)."""
    admin = AdminClient({**settings.kafka_client_config("tools"), "log_level": 0})
    try:
        rules = admin.describe_acls(EVERY_ACL, request_timeout=5).result()
    except KafkaException as error:
        if error.args[0].code() != KafkaError.SECURITY_DISABLED:
            raise
        yield Check("kafka acls", False, "no authorizer: every login may read, write and delete every topic",
                    with_credentials(settings))
        return
    users = sorted({rule.principal.removeprefix("User:") for rule in rules})
    yield Check("kafka acls", True, f"{len(rules)} rules for {', '.join(users) or 'nobody'}; others refused")


def minio_access(settings: Settings) -> Iterator[Check]:
    """Whether MinIO lists a layer's bucket for an anonymous request."""
    bucket = settings.lake_path("gold").removeprefix("s3a://").split("/")[0]
    listing = httpx.get(f"http://{settings.minio_endpoint}/{bucket}?list-type=2", timeout=5)
    if listing.status_code == 200:
        yield Check("minio access", False, f"{settings.minio_endpoint} lists bucket {bucket} to anyone",
                    f"remove its anonymous policy: `mc anonymous set none <alias>/{bucket}`")
        return
    roles = ", ".join(f"{role} {settings.minio_login(role)[0]}" for role in ("writer", "reader"))
    yield Check("minio access", True, f"credentials required; lake {roles}")


def services(settings: Settings) -> Iterator[Check]:
    for service in all_services(settings):
        healthy = _mysql_answers(settings) if service.name == "mariadb" else service.probe()
        yield Check(f"service {service.name}", healthy, f"port {service.port} " + ("answers" if healthy else "does not answer"),
                    "" if healthy else f"start it: `python -m stack up` (locally), or check {service.name} at its address")


def connector(settings: Settings) -> Iterator[Check]:
    name = settings.cdc_connector_name
    with rest.client(settings) as connect:
        report = rest.status(connect, name)
    if report is None:
        yield Check("connector", False, f"{name} is not registered", "`python -m cdc register`")
        return
    states = [f"connector {report['connector']['state']}"] + [f"task {t['id']} {t['state']}" for t in report["tasks"]]
    running = rest.is_running(report)
    yield Check("connector", running, f"{name}: {', '.join(states)}",
                "" if running else "`python -m cdc watch` restarts failed tasks (it prints their trace); "
                                   f"or POST {settings.kafka_connect_url}/connectors/{name}/restart?includeTasks=true")


def cdc_topics(settings: Settings) -> Iterator[Check]:
    admin = AdminClient(settings.kafka_client_config())
    found = admin.list_topics(timeout=5).topics
    for table in ("orders", "order_details"):
        topic = settings.cdc_topic(table)
        if topic not in found:
            yield Check(f"topic {topic}", False, "missing", "`python -m stack up` (compose: the kafka-access "
                        "service) makes it with TOPIC_PARTITIONS partitions; the workers may not")
            continue
        partitions = len(found[topic].partitions)
        right = partitions == settings.topic_partitions
        yield Check(f"topic {topic}", right, f"{partitions} partitions (TOPIC_PARTITIONS={settings.topic_partitions})",
                    "" if right else "recreate the topic with TOPIC_PARTITIONS partitions, or set TOPIC_PARTITIONS "
                                     f"to {partitions} everywhere (docs/scaling.md)")


def workers(settings: Settings, worker_url: str) -> Iterator[Check]:
    """Every worker, found as the dashboard finds them: any one worker names them all."""
    try:
        rows = httpx.get(f"{worker_url}/dashboard/data", timeout=5).json()["workers"]
    except (httpx.HTTPError, ValueError, KeyError) as error:
        yield Check("workers", False, f"none answers at {worker_url} ({type(error).__name__})",
                    "start them: `faust -A streams.app worker` (README), or pass --worker-url")
        return
    for row in rows:
        if not row.get("reachable"):
            yield Check(f"worker {row['url']}", False, f"unreachable: {row.get('error', '')}"[:120],
                        "see its log; a worker that died leaves its partitions to the others after the session timeout")
        else:
            lag = row.get("lag")
            yield Check(f"worker {row['url']}", lag is not None, f"{row.get('worker')}: lag {lag} records, "
                        f"{row.get('events_in', 0):,} events in, {row.get('completed', 0):,} completed",
                        "" if lag is not None else "lag unknown: rebalancing, or its consumer is not running")


def _newest_append_ms(settings: Settings, topic: str) -> int | None:
    consumer = Consumer({**settings.kafka_client_config(), "group.id": "doctor",
                         "enable.auto.commit": False})
    try:
        found = consumer.list_topics(topic, timeout=5).topics.get(topic)
        if found is None or found.error is not None:
            return None
        newest = None
        for partition in found.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)
            if high > low:
                consumer.assign([TopicPartition(topic, partition, high - 1)])
                message = consumer.consume(1, timeout=5)
                if message and not message[0].error():
                    newest = max(newest or 0, message[0].timestamp()[1])
        return newest
    finally:
        consumer.close()


def order_final(settings: Settings) -> Iterator[Check]:
    newest = _newest_append_ms(settings, settings.order_final_topic)
    detail = "empty or missing" if newest is None else f"newest message {age(time.time() - newest / 1000)}"
    yield Check(f"topic {settings.order_final_topic}", True, detail)


def dead_letters(settings: Settings) -> Iterator[Check]:
    consumer = Consumer({**settings.kafka_client_config(), "group.id": "doctor",
                         "enable.auto.commit": False})
    topic, since_ms = settings.dead_letter_topic, int((time.time() - DEAD_LETTER_WINDOW_S) * 1000)
    try:
        found = consumer.list_topics(topic, timeout=5).topics.get(topic)
        count = 0
        if found is not None and found.error is None:
            starts = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in found.partitions], timeout=5)
            for start in starts:
                high = consumer.get_watermark_offsets(TopicPartition(topic, start.partition), timeout=5)[1]
                count += high - start.offset if start.offset >= 0 else 0
    finally:
        consumer.close()
    yield Check("dead letters", count == 0, f"{count:,} in the last hour",
                "" if count == 0 else "`python -m streams dead-letters list --since 1h`; replay after a fix")


def gold(settings: Settings) -> Iterator[Check]:
    client = minio_client(settings, "reader")
    bucket, _, prefix = settings.lake_path("gold", "facts", "fact_orders").removeprefix("s3a://").partition("/")
    logs = list(client.list_objects(bucket, prefix=f"{prefix}/_delta_log/", recursive=True)) \
        if client.bucket_exists(bucket) else []
    if not logs:
        yield Check("gold", True, "no Gold run yet (`python -m batch`)")
        return
    newest = max(entry.last_modified for entry in logs).timestamp()
    yield Check("gold", True, f"last fact_orders commit {age(time.time() - newest)}")


def fast_lane(settings: Settings) -> Iterator[Check]:
    """Whether the fast lane runs (its lease, renewed every few seconds) and how far behind it is."""
    yield fast_lane_check(read_state(settings), time.time())


def fast_lane_check(state: dict | None, now: float) -> Check:
    """The fast lane's health from its lease: not running (stopped, failed and waiting to start
    again, silent), crash-looping, or not caught up with the CDC topics for TRAILING_AFTER_S is a
    problem. Pure."""
    name, start = "lake: fast lane", "start it: `python -m batch --continuous` (`make demo` starts the stack's)"
    if state is None:
        return Check(name, True, f"not started ({start.removeprefix('start it: ')})")
    silent = now - state["heartbeat"]
    failures = [failure for failure in state.get("failures") or () if now - failure["at"] <= CRASH_LOOP_WINDOW_S]
    last = f"the last {age(now - failures[-1]['at'])}: {failures[-1]['cause']}" if failures else ""
    if state.get("crash_loop") and failures and now < state.get("restart_at", now) + LEASE_S:
        return Check(name, False, f"crash-looping: {len(failures)} failures in {CRASH_LOOP_WINDOW_S / 60:.0f} min, {last}",
                     "its log says why (a record it cannot apply is quarantined, so this is no record's fault): "
                     "fix the cause; it keeps starting again")
    if state.get("released") and state.get("restart_at") and failures and now < state["restart_at"] + LEASE_S:
        return Check(name, False, f"failed, starts again in {max(0.0, state['restart_at'] - now):.0f} s; {last}",
                     "its log says why; it starts again by itself")
    if state.get("released"):
        return Check(name, False, f"stopped {age(silent)}", start)
    if not fresh(state, now):
        return Check(name, False, f"silent since {age(silent)} ({owner_of(state).says()}) without stopping",
                     "it died (killed, or out of memory): " + start + "; its log says why")
    left, caught_up_at = state.get("left"), state.get("caught_up_at")
    behind = "" if left is None else f", {left:,} records behind the CDC topics"
    if left and caught_up_at is not None and now - caught_up_at > TRAILING_AFTER_S:
        return Check(name, False, f"running ({owner_of(state).says()}) but trailing{behind}, last caught up "
                     f"{age(now - caught_up_at)}", "its log shows each micro-batch's time: a lake that cannot keep "
                     "up needs a larger micro-batch or a faster disk (docs/lake.md)")
    recent = f"; recovered from {len(failures)} failure(s), {last}" if failures else ""
    return Check(name, True, f"running ({owner_of(state).says()}), last seen {age(silent)}{behind}{recent}")


def deferred_work(settings: Settings) -> Iterator[Check]:
    """How far each of the continuous lake's deferred jobs (history, dimensions, products,
    marts) is behind its input: the age of the oldest commit it has not read yet."""
    client = minio_client(settings, "reader")

    def located(location: str) -> tuple[str, str]:
        bucket, _, key = location.removeprefix("s3a://").partition("/")
        return bucket, key

    def commits(location: str) -> dict[int, float]:
        bucket, key = located(f"{location}/_delta_log/")
        if not client.bucket_exists(bucket):
            return {}
        names = client.list_objects(bucket, prefix=key)
        return {int(entry.object_name.rsplit("/", 1)[-1][:-5]): entry.last_modified.timestamp() for entry in names
                if entry.object_name.endswith(".json") and entry.object_name.rsplit("/", 1)[-1][:-5].isdigit()}

    now = time.time()
    for job in DEFERRED:
        bucket, key = located(settings.lake_path(job.layer, f"{job.marks_file}.json"))
        try:
            marks = orjson.loads(client.get_object(bucket, key).read())["marks"]
        except S3Error:
            marks = {}
        oldest = min(filter(None, (behind_since(commits(location), marks.get(name))
                                   for name, location in job.inputs(settings).items())), default=None)
        stale_s = 0.0 if oldest is None else now - oldest
        yield Check(f"lake: {job.__name__}", stale_s <= STALENESS_BOUND_S,
                    "current with its input" if oldest is None else f"oldest input commit not applied: {age(stale_s)}",
                    "" if stale_s <= STALENESS_BOUND_S else
                    "is the continuous lake running (`python -m stack status`)? its log says why it is late")


def redis_state(settings: Settings) -> Iterator[Check]:
    host, port = settings.redis_host_port
    try:
        redis.Redis(host=host, port=port, socket_timeout=5, socket_connect_timeout=5,
                    retry=Retry(NoBackoff(), 0)).ping()  # redis-py retries a refusal by default
        yield Check("redis access", False, f"{host}:{port} answers without credentials",
                    with_credentials(settings))
    except redis.AuthenticationError:
        yield Check("redis access", True, "credentials required")
    client = redis.Redis.from_url(settings.redis_operator_url, socket_timeout=5, socket_connect_timeout=5)
    memory, persistence = client.info("memory"), client.info("persistence")
    aof_ok = persistence.get("aof_enabled") == 1 and persistence.get("aof_last_write_status") == "ok"
    yield Check("redis", aof_ok, f"{memory['used_memory_human']} used; AOF "
                f"{'on' if persistence.get('aof_enabled') else 'OFF'}, last write {persistence.get('aof_last_write_status')}",
                "" if aof_ok else "the guard's marks need AOF (appendonly yes): a restart would forget sent orders")


def firing(alerts: list[dict]) -> list[Check]:
    """One problem per firing alert of Prometheus' /api/v1/alerts, with the fix its rule names."""
    return [Check(f"alert {alert['labels']['alertname']}", False,
                  f"{alert.get('annotations', {}).get('summary', '')} (firing since {alert.get('activeAt', '?')[:19]})",
                  alert.get("annotations", {}).get("fix", ""))
            for alert in alerts if alert.get("state") == "firing"]


def prometheus_alerts(settings: Settings) -> Iterator[Check]:
    """The alerts Prometheus (config/alerts.yml) reports, when one runs at PROMETHEUS_URL."""
    try:
        alerts = httpx.get(f"{settings.prometheus_url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    except (httpx.HTTPError, ValueError, KeyError):
        yield Check("prometheus", True, f"none answers at {settings.prometheus_url}: no alerts to show "
                                        "(`python -m stack up --with prometheus` runs one)")
        return
    problems = firing(alerts)
    pending = sum(alert.get("state") == "pending" for alert in alerts)
    yield Check("prometheus", True, f"{len(problems)} alert(s) firing, {pending} pending")
    yield from problems


def examine(settings: Settings, worker_url: str) -> list[Check]:
    """Every check; one whose service is down says so without waiting on it, and one that cannot
    reach its service becomes a problem naming it."""
    sections: list[tuple[str, str | None, Callable[[], Iterator[Check]]]] = [  # name, the service it needs, check
        ("connector", "kafka-connect", lambda: connector(settings)),
        ("connect access", "kafka-connect", lambda: connect_access(settings)),
        ("CDC topics", "kafka", lambda: cdc_topics(settings)), ("workers", None, lambda: workers(settings, worker_url)),
        ("order_final", "kafka", lambda: order_final(settings)), ("dead letters", "kafka", lambda: dead_letters(settings)),
        ("gold", "minio", lambda: gold(settings)), ("lake: fast lane", "minio", lambda: fast_lane(settings)),
        ("lake deferred work", "minio", lambda: deferred_work(settings)),
        ("redis", "redis", lambda: redis_state(settings)), ("mysql access", "mariadb", lambda: mysql_access(settings)),
        ("minio access", "minio", lambda: minio_access(settings)), ("kafka access", "kafka", lambda: kafka_access(settings)),
        ("prometheus", None, lambda: prometheus_alerts(settings))]
    checks = list(services(settings))
    down = {check.name.removeprefix("service ") for check in checks if not check.ok}
    for name, service, run in sections:
        if service in down:
            checks.append(Check(name, False, f"not checked: {service} does not answer", "see the services above"))
            continue
        try:
            checks.extend(run())
        except Exception as error:  # noqa: BLE001 - Kafka, HTTP, Redis, S3: any failure is this section's finding
            checks.append(Check(name, False, f"could not check: {type(error).__name__}: {error}"[:160],
                                "its service is down or unreachable; see the services above"))
    return checks
