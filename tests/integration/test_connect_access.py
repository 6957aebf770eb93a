"""Kafka Connect's REST API answers only its own login, and a connector's config read through
it shows where its secrets are, never their values."""

from __future__ import annotations

import httpx
import pytest

from cdc import rest
from cdc.connector import connector_config, connector_secrets
from config import Settings
from stack.doctor import connect_access


@pytest.mark.parametrize("caller", ["anonymous", "a wrong password", "the workers' Kafka login"])
def test_connects_rest_api_refuses_a_caller_without_its_login(settings: Settings, unique_name: str, caller: str):
    auth = {"anonymous": None, "a wrong password": (settings.kafka_connect_rest_user, "not-the-password"),
            "the workers' Kafka login": settings.kafka_login("stream")}[caller]
    with httpx.Client(base_url=settings.kafka_connect_url, timeout=10, auth=auth) as stranger:
        listed = stranger.get("/connectors")
        created = stranger.post("/connectors", json={"name": unique_name, "config": {"connector.class": "x"}})

    assert (listed.status_code, created.status_code) == (401, 401)
    with rest.client(settings) as connect:
        assert unique_name not in rest.names(connect)


def test_the_doctor_flags_a_connector_whose_config_shows_a_password(settings: Settings, unique_name: str):
    with rest.client(settings) as connect:
        [before] = connect_access(settings)
        assert before.ok, before  # the connector `cdc register` wrote shows no secret
        leaking = {**connector_config(settings),
                   "database.password": connector_secrets(settings)["database.password"]}
        response = connect.post("/connectors", json={"name": unique_name, "config": leaking, "initial_state": "STOPPED"})
        assert response.status_code == 201, response.text
        try:
            [check] = connect_access(settings)
        finally:
            rest.delete(connect, unique_name)

    assert not check.ok and unique_name in check.detail, check
    assert connector_secrets(settings)["database.password"] not in check.detail  # named, not shown
