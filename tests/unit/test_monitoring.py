"""The monitoring's pure parts: the brokers' view of lag, Prometheus' configuration, the
doctor's reading of firing alerts and of how far the lake's deferred jobs are behind."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from config import Settings
from batch.tools.lake_reader import behind_since
from stack.doctor import firing
from stack.services import BrokerMetrics, Prometheus, all_services, prometheus_config
from streams.broker_metrics import group_lag, records_per_topic, watched_topics

ORDERS = "mysql.project_db.orders"


def test_lag_is_the_end_minus_the_groups_commit():
    lag = group_lag(committed={(ORDERS, 0): 70, (ORDERS, 1): 5}, starts={(ORDERS, 0): 0, (ORDERS, 1): 0},
                    ends={(ORDERS, 0): 100, (ORDERS, 1): 5})

    assert lag == {(ORDERS, 0): 30, (ORDERS, 1): 0}


def test_without_a_commit_the_group_has_the_whole_log_ahead_and_no_more_than_retention_kept():
    lag = group_lag(committed={(ORDERS, 0): -1001, (ORDERS, 2): 10}, starts={(ORDERS, 0): 40, (ORDERS, 1): 0, (ORDERS, 2): 60},
                    ends={(ORDERS, 0): 100, (ORDERS, 1): 7, (ORDERS, 2): 80})

    assert lag == {(ORDERS, 0): 60, (ORDERS, 1): 7, (ORDERS, 2): 20}


def test_records_appended_add_up_each_topics_partitions():
    assert records_per_topic({(ORDERS, 0): 3, (ORDERS, 1): 4, ("order_final", 0): 2}) == {ORDERS: 7, "order_final": 2}


def test_the_watched_topics_follow_the_settings():
    roles = watched_topics(Settings(_env_file=None, ORDER_FINAL_TOPIC="out", DEAD_LETTER_TOPIC="dlq"))

    assert roles == {ORDERS: "cdc", "mysql.project_db.order_details": "cdc", "out": "output",
                     "order_alerts": "alerts", "dlq": "dead_letter", "__debezium-heartbeat.mysql": "heartbeat"}


def test_prometheus_scrapes_every_worker_of_the_settings_and_the_brokers_view():
    settings = Settings(_env_file=None, METRICS_TARGETS="10.0.0.5:6066,10.0.0.6:6066", BROKER_METRICS_PORT=9400,
                        PROMETHEUS_SCRAPE_INTERVAL_S=1, PROMETHEUS_RULES="/etc/orderpipe/alerts.yml")
    config = prometheus_config(settings)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}

    assert jobs["orderpipe-workers"]["static_configs"] == [{"targets": ["10.0.0.5:6066", "10.0.0.6:6066"]}]
    assert "authorization" not in jobs["orderpipe-workers"]
    assert jobs["orderpipe-broker"]["static_configs"] == [{"targets": ["127.0.0.1:9400"]}]
    assert config["rule_files"] == ["/etc/orderpipe/alerts.yml"]
    assert config["global"] == {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"}


def test_prometheus_sends_the_web_token_when_the_workers_ask_for_one():
    config = prometheus_config(Settings(_env_file=None, WEB_TOKEN=SecretStr("s3cret")))
    workers = config["scrape_configs"][0]

    assert workers["authorization"] == {"type": "Bearer", "credentials": "s3cret"}
    assert config["global"]["scrape_timeout"] == "10s"


def test_the_optional_services_join_the_stack_only_when_asked(tmp_path: Path):
    settings = Settings(_env_file=None, STACK_HOME=tmp_path)
    names = [service.name for service in all_services(settings)]
    with_prometheus = all_services(settings, ("prometheus",))

    assert "prometheus" not in names
    assert [type(service) for service in with_prometheus[len(names):]] == [BrokerMetrics, Prometheus]
    assert with_prometheus[-1].argv()[-1] == "--web.listen-address=127.0.0.1:9090"
    assert not any("lifecycle" in argument for argument in with_prometheus[-1].argv())  # no stop or reload over HTTP


def test_prometheus_config_holding_the_workers_token_is_owner_only(tmp_path: Path):
    prometheus = all_services(Settings(_env_file=None, STACK_HOME=tmp_path, WEB_TOKEN="s3cret"), ("prometheus",))[-1]
    prometheus.prepare()

    conf = prometheus.layout.conf("prometheus.yml")
    assert "s3cret" in conf.read_text() and conf.stat().st_mode & 0o077 == 0


def test_the_doctor_makes_each_firing_alert_a_problem_with_its_fix():
    alerts = [{"labels": {"alertname": "OrderpipeWorkerDown"}, "state": "firing", "activeAt": "2026-11-25T12:00:01.5Z",
               "annotations": {"summary": "worker w1 does not answer", "fix": "restart it"}},
              {"labels": {"alertname": "OrderpipeDeadLetters"}, "state": "pending", "annotations": {}}]

    [problem] = firing(alerts)

    assert (problem.name, problem.ok, problem.fix) == ("alert OrderpipeWorkerDown", False, "restart it")
    assert problem.detail == "worker w1 does not answer (firing since 2026-11-25T12:00:01)"


def test_a_deferred_job_is_behind_since_the_oldest_commit_past_its_mark():
    commits = {3: 100.0, 4: 160.0, 5: 220.0}

    assert behind_since(commits, "3") == 160.0
    assert behind_since(commits, "5") is None  # read every commit
    assert behind_since(commits, None) == 100.0  # never run: behind since the table began
    assert behind_since({}, None) is None  # no table yet
