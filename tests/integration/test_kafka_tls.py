"""Kafka's client listener over TLS (`python -m stack up --tls`): every broker proves its name
with the stack's CA, and a client that does not check it, or speaks no TLS, gets no answer.

Marked `tls`: on a stack without TLS these are deselected and named in the summary. CI runs
them on its three-broker stack, which it starts with --tls (docs/testing.md)."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
import trustme
from confluent_kafka.admin import AdminClient

from config import Settings
from stack import doctor

pytestmark = pytest.mark.tls


def test_every_broker_proves_its_name_with_the_stacks_ca(settings: Settings):
    host = settings.kafka_host_port[0]
    trusting = ssl.create_default_context(cafile=str(settings.kafka_ssl_ca))

    for _, port, _ in settings.kafka_nodes:
        with socket.create_connection((host, port), timeout=5) as raw, \
                trusting.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            assert tls.getpeercert()["subjectAltName"]

    assert AdminClient({**settings.kafka_client_config(), "log_level": 0}).list_topics(timeout=10).brokers


def test_a_client_trusting_another_ca_or_speaking_no_tls_gets_no_answer(settings: Settings, tmp_path: Path):
    login = settings.kafka_aiokafka_auth("tools")
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))

    assert doctor.kafka_answers(settings.kafka_bootstrap, **login)
    assert not doctor.kafka_answers(settings.kafka_bootstrap,
                                    **{**login, "ssl_context": ssl.create_default_context(cafile=str(other_ca))})
    assert not doctor.kafka_answers(settings.kafka_bootstrap, **{
        **{key: value for key, value in login.items() if key != "ssl_context"}, "security_protocol": "SASL_PLAINTEXT"})
