from __future__ import annotations

import time

import redis

from config import Settings


def test_set_nx_grants_a_key_once_on_db_2(settings: Settings, unique_name: str):
    client = redis.Redis.from_url(settings.redis_url)
    key = f"order_trigger_lock:{unique_name}"

    first = client.set(key, "worker-a", nx=True, ex=60)
    second = client.set(key, "worker-b", nx=True, ex=60)

    assert first is True
    assert second is None
    assert client.get(key) == b"worker-a"
    assert client.client_info()["db"] == 2
    client.delete(key)


def test_set_nx_can_be_taken_again_after_the_ttl_expires(settings: Settings, unique_name: str):
    client = redis.Redis.from_url(settings.redis_url)
    key = f"order_trigger_lock:{unique_name}"

    assert client.set(key, "worker-a", nx=True, px=200) is True
    time.sleep(0.4)

    assert client.set(key, "worker-b", nx=True, px=200) is True
    assert client.get(key) == b"worker-b"
