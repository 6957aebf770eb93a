from __future__ import annotations

import os
import stat
from itertools import count
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from dotenv import dotenv_values

from config import Settings
from stack import holders, rotation, secrets


def test_every_role_of_the_stacks_secrets_file_rotates_but_the_services_own_logins():
    made = secrets.made("127.0.0.1", 6379)
    passwords = {name for name in made if name.endswith(("_PASSWORD", "_SECRET_KEY", "_URL"))}

    rotated = {role.variable for role in rotation.ROLES}
    assert passwords - rotated == {"KAFKA_BROKER_PASSWORD", "MINIO_ROOT_PASSWORD"}
    assert rotated <= passwords
    assert {"kafka-broker", "minio-root"} == set(rotation.AT_RESTART)


def test_no_role_named_means_every_role_and_a_services_own_login_is_refused_with_the_way_to_change_it():
    assert rotation.chosen([]) == list(rotation.ROLES)
    assert [role.name for role in rotation.chosen(["kafka-stream", "redis-guard"])] == ["redis-guard", "kafka-stream"]
    with pytest.raises(rotation.RotationRefused, match="stack down.*up"):
        rotation.chosen(["kafka-broker"])
    with pytest.raises(rotation.RotationRefused, match="unknown role.*redis-guard"):
        rotation.chosen(["kafka"])


def test_a_urls_password_is_replaced_and_the_rest_of_it_kept():
    url = "redis://orderpipe-guard:old%2Fpw@127.0.0.1:6379/2"
    renewed = rotation.with_password(url, "n/ew:pw@")

    parts = urlsplit(renewed)
    assert (parts.username, parts.hostname, parts.port, parts.path) == ("orderpipe-guard", "127.0.0.1", 6379, "/2")
    assert rotation.password_of(renewed) == "n/ew:pw@"  # as redis-py reads it from the URL
    assert "n%2Few%3Apw%40@" in renewed
    assert rotation.password_of("plain-secret") == "plain-secret"


def test_new_values_are_new_for_each_role_urls_stay_urls_and_kafkas_client_roles_get_a_new_user():
    current = {"REDIS_URL": "redis://orderpipe-guard:a@127.0.0.1:6379/2", "KAFKA_PASSWORD": "b",
               "KAFKA_USER": "orderpipe-stream", "KAFKA_TOOLS_PASSWORD": "c"}
    roles = rotation.chosen(["redis-guard", "kafka-stream", "kafka-tools"])
    numbers = count()
    made = rotation.new_values(current, roles, lambda: f"new{next(numbers)}")

    assert rotation.variables(roles) == ["REDIS_URL", "KAFKA_PASSWORD", "KAFKA_USER", "KAFKA_TOOLS_PASSWORD"]
    assert made == {"REDIS_URL": "redis://orderpipe-guard:new0@127.0.0.1:6379/2", "KAFKA_PASSWORD": "new1",
                    "KAFKA_USER": "orderpipe-stream-2", "KAFKA_TOOLS_PASSWORD": "new2"}  # a super user keeps its name


def test_a_renamed_user_counts_its_generations():
    assert [rotation.next_user(user) for user in ("orderpipe-stream", "orderpipe-stream-2", "orderpipe-stream-9",
                                                  "stream")] == ["orderpipe-stream-2", "orderpipe-stream-3",
                                                                 "orderpipe-stream-10", "stream-2"]


def test_a_variable_set_by_the_environment_or_missing_from_the_file_or_an_insecure_stack_is_refused(tmp_path):
    settings = Settings(STACK_HOME=str(tmp_path))
    roles = rotation.chosen(["kafka-stream", "mysql-cdc", "minio-lake"])
    file_values = {"KAFKA_PASSWORD": "a", "KAFKA_USER": "orderpipe-stream", "MYSQL_CDC_PASSWORD": "b"}

    reasons = rotation.refusals(settings, roles, file_values, overridden={"KAFKA_USER"})
    assert len(reasons) == 2
    assert "KAFKA_USER is set in the environment" in reasons[0]
    assert "MINIO_SECRET_KEY is not in the secrets file" in reasons[1]
    assert rotation.refusals(settings, roles[1:2], file_values, overridden=set()) == []
    (tmp_path / "insecure").write_text("")
    assert "--insecure" in rotation.refusals(settings, roles, file_values, overridden=set())[0]


def test_the_secrets_file_gets_the_new_values_in_place_keeping_the_rest_and_its_privacy(tmp_path):
    secrets.ensure(tmp_path, "127.0.0.1", 6379)
    before = dotenv_values(secrets.path(tmp_path))

    rotation.rewrite_secrets_file(tmp_path, {"KAFKA_PASSWORD": "rotated"})

    after = dotenv_values(secrets.path(tmp_path))
    assert after == {**before, "KAFKA_PASSWORD": "rotated"}
    assert list(after) == list(before)
    assert secrets.path(tmp_path).read_text().startswith("# Made by")
    assert stat.S_IMODE(secrets.path(tmp_path).stat().st_mode) == 0o600


def holder(name: str, environ: dict[str, str], argv: tuple[str, ...] = ("python",)) -> holders.Holder:
    return holders.Holder(Path(f"/run/{name}.pid"), Path(f"/logs/{name}.log"), argv, "/", environ)


def test_a_process_holds_a_secret_only_with_its_old_value_and_restarts_with_the_new_in_its_own_environment():
    worker = holder("orderpipe-worker-1", {"KAFKA_PASSWORD": "old", "REDIS_URL": "redis://g:x@h/2", "PATH": "/bin"},
                    ("python", "faust", "worker", "--web-port", "6066"))
    lake = holder("lake-default", {"KAFKA_LAKE_PASSWORD": "old", "KAFKA_PASSWORD": "another"})
    old = {"KAFKA_PASSWORD": "old"}

    assert worker.holds(old) == {"KAFKA_PASSWORD"}
    assert lake.holds(old) == set()  # the same variable with another value: not this secret
    assert worker.renewed(old, {"KAFKA_PASSWORD": "new"}) == {"KAFKA_PASSWORD": "new", "REDIS_URL": "redis://g:x@h/2",
                                                              "PATH": "/bin"}
    assert lake.renewed(old, {"KAFKA_PASSWORD": "new"}) == lake.environ  # its own value is not the stack's
    assert "MINIO_SECRET_KEY" not in worker.renewed({"MINIO_SECRET_KEY": "a"}, {"MINIO_SECRET_KEY": "b"})
    assert (worker.web_port, lake.web_port) == (6066, None)
    assert (worker.grace_s, lake.grace_s) == (30.0, 120.0)


def test_the_rewritten_secrets_file_is_on_disk_before_the_rotation_goes_on(tmp_path, monkeypatch):
    secrets.ensure(tmp_path, "127.0.0.1", 6379)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    rotation.rewrite_secrets_file(tmp_path, {"KAFKA_PASSWORD": "rotated"})

    assert synced == [str(secrets.path(tmp_path).with_suffix(".new")), str(tmp_path)]
    assert not secrets.path(tmp_path).with_suffix(".new").exists()


def test_a_rotated_user_s_connections_opened_before_the_rotation_are_the_ones_closed():
    clients = [{"id": "3", "user": "orderpipe-guard"}, {"id": "7", "user": "orderpipe-guard"},
               {"id": "5", "user": "default"}, {"id": "9", "user": "orderpipe-operator"},  # 9: the rotation's own
               {"id": "12", "user": "orderpipe-guard"}]  # 12: a holder restarted with the new password

    assert rotation.stale_connections(clients, {"orderpipe-guard", "orderpipe-operator"}, 9) == ["3", "7"]
    assert rotation.stale_connections(clients, set(), 9) == []
