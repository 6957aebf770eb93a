from __future__ import annotations

import hashlib
import stat
from urllib.parse import urlsplit

import pytest

from config import Settings
from stack import secrets


def test_a_stacks_first_start_makes_owner_only_credentials_and_never_rewrites_them(tmp_path):
    assert secrets.ensure(tmp_path, "127.0.0.1", 6379) is True
    first = secrets.path(tmp_path).read_text()

    assert secrets.ensure(tmp_path, "127.0.0.1", 6379) is False
    assert secrets.path(tmp_path).read_text() == first
    assert stat.S_IMODE(secrets.path(tmp_path).stat().st_mode) == 0o600
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
