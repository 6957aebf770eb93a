from __future__ import annotations

import pytest

from config import Settings
from config.settings import INSECURE_DEFAULTS, INSECURE_MARK, PROCESS_CREDENTIALS, SECRET_VARIABLES, MissingCredentials


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch):
    for name in ("KAFKA_BOOTSTRAP", "REDIS_URL", "MYSQL_PORT", "MINIO_ENDPOINT", "LAKE_URI"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)

    assert settings.kafka_host_port == ("127.0.0.1", 9092)
    assert settings.kafka_connect_host_port == ("127.0.0.1", 8083)
    assert settings.redis_host_port == ("127.0.0.1", 6379)
    assert settings.minio_host_port == ("127.0.0.1", 9000)
    assert settings.mysql_port == 3306
    assert settings.redis_url.endswith("/2")


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "broker-a:19092,broker-b:19092")
    monkeypatch.setenv("MYSQL_PORT", "3307")
    monkeypatch.setenv("MYSQL_PASSWORD", "s3cret")
    monkeypatch.setenv("REDIS_URL", "redis://:pw@cache:6380/2")

    settings = Settings(_env_file=None)

    assert settings.kafka_host_port == ("broker-a", 19092)
    assert settings.mysql_port == 3307
    assert settings.mysql_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.redis_host_port == ("cache", 6380)
    assert settings.mysql_jdbc_url == "jdbc:mysql://127.0.0.1:3307/project_db"


def test_a_bad_port_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MYSQL_PORT", "three-three-oh-six")

    with pytest.raises(ValueError, match="MYSQL_PORT"):
        Settings(_env_file=None)


@pytest.mark.parametrize(("lake_uri", "expected"), [
    ("s3a://", "s3a://bronze/orders"),
    ("file:///tmp/lake", "file:///tmp/lake/bronze/orders"),
    ("s3a://lake/", "s3a://lake/bronze/orders"),
])
def test_lake_paths_put_the_layer_under_the_lake_uri(monkeypatch: pytest.MonkeyPatch, lake_uri, expected):
    monkeypatch.setenv("LAKE_URI", lake_uri)

    assert Settings(_env_file=None).lake_path("bronze", "orders") == expected


def test_a_relative_stack_home_is_made_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STACK_HOME", ".stack-3")  # mariadb-install-db, run from elsewhere, needs it whole

    assert Settings(_env_file=None).stack_home == tmp_path / ".stack-3"


def test_no_password_has_a_default_but_on_a_stack_made_insecure(tmp_path):
    secure = Settings(_env_file=None, STACK_HOME=str(tmp_path / "secure"))
    (tmp_path / "open").mkdir()
    (tmp_path / "open" / INSECURE_MARK).write_text("made by `python -m stack up --insecure`")
    insecure = Settings(_env_file=None, STACK_HOME=str(tmp_path / "open"))

    with pytest.raises(MissingCredentials, match="python -m stack up"):
        secure.mysql_login("reader")
    with pytest.raises(MissingCredentials, match="MINIO_SECRET_KEY"):
        secure.minio_login("reader")
    assert (insecure.mysql_login(), insecure.minio_login()[1]) == (("admin", INSECURE_DEFAULTS["MYSQL_PASSWORD"]),
                                                                  INSECURE_DEFAULTS["MINIO_SECRET_KEY"])


def test_a_process_given_its_own_credentials_gets_no_other_and_reads_no_secrets_file(tmp_path):
    (tmp_path / "secrets.env").write_text("MYSQL_PASSWORD=owner-pw\nKAFKA_USER=stream\nKAFKA_PASSWORD=stream-pw\n")
    everything = Settings(_env_file=None, STACK_HOME=str(tmp_path), WEB_TOKEN="token")

    worker_env = everything.as_env("worker")
    worker = Settings(_env_file=None, **worker_env)

    assert {name for name in worker_env if name in SECRET_VARIABLES} == {"KAFKA_PASSWORD", "REDIS_URL", "WEB_TOKEN"}
    assert worker.kafka_login("stream") == ("stream", "stream-pw") and worker.mysql_password is None
    assert everything.as_env()["MYSQL_PASSWORD"] == "owner-pw"


def test_a_process_the_stack_started_reads_no_dotenv_of_the_folder_it_runs_in(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("KAFKA_TOOLS_USER=planted\nKAFKA_TOOLS_PASSWORD=planted-pw\n")
    monkeypatch.delenv("KAFKA_TOOLS_USER", raising=False)
    monkeypatch.delenv("KAFKA_TOOLS_PASSWORD", raising=False)
    monkeypatch.setenv("STACK_HOME", str(tmp_path / "no-stack"))

    assert Settings().kafka_tools_user == "planted"  # a user's own shell: .env is read
    monkeypatch.setenv("READ_STACK_SECRETS", "false")
    assert Settings().kafka_tools_user is None and Settings().kafka_tools_password is None


def test_no_process_the_stack_starts_holds_a_super_users_password():
    super_users = {"KAFKA_TOOLS_PASSWORD", "KAFKA_BROKER_PASSWORD", "MYSQL_ROOT_PASSWORD", "MINIO_ROOT_PASSWORD",
                   "REDIS_ADMIN_URL"}
    held = {process: own & super_users for process, own in PROCESS_CREDENTIALS.items()}

    assert held == {process: set() for process in PROCESS_CREDENTIALS}
    assert PROCESS_CREDENTIALS["broker-metrics"] == {"KAFKA_MONITOR_PASSWORD"}


def test_a_process_naming_its_role_takes_only_that_roles_secrets_from_the_stacks_file(tmp_path):
    (tmp_path / "secrets.env").write_text("MYSQL_PASSWORD=owner-pw\nKAFKA_TOOLS_USER=orderpipe-tools\n"
                                          "KAFKA_TOOLS_PASSWORD=tools-pw\nKAFKA_MONITOR_USER=orderpipe-monitor\n"
                                          "KAFKA_MONITOR_PASSWORD=monitor-pw\nKAFKA_CONNECT_REST_PASSWORD=rest-pw\n")
    monitor = Settings(_env_file=None, STACK_HOME=str(tmp_path), STACK_SECRETS_ROLE="broker-metrics")
    watcher = Settings(_env_file=None, STACK_HOME=str(tmp_path), STACK_SECRETS_ROLE="connector-watcher")
    everything = Settings(_env_file=None, STACK_HOME=str(tmp_path))

    assert monitor.kafka_login("monitor") == ("orderpipe-monitor", "monitor-pw")
    assert monitor.kafka_tools_password is None and monitor.mysql_password is None
    assert monitor.kafka_tools_user == "orderpipe-tools"  # names are no secret
    assert watcher.kafka_connect_rest_password.get_secret_value() == "rest-pw" and watcher.kafka_monitor_password is None
    assert everything.kafka_tools_password.get_secret_value() == "tools-pw"
    with pytest.raises(ValueError, match="broker-metrics"):
        Settings(_env_file=None, STACK_HOME=str(tmp_path), STACK_SECRETS_ROLE="admin")
