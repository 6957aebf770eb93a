"""TLS on Kafka's client listener (`python -m stack up --tls`): a CA the stack makes for
itself and one certificate for its brokers, valid for every name a client dials (the
bootstrap's hosts, 127.0.0.1, localhost). The CA's path goes to the secrets file as
KAFKA_SSL_CA, so every process of the stack speaks SASL_SSL and verifies the brokers
against it. The controllers' listener stays SASL on loopback.

Files under `<STACK_HOME>/conf/tls/`: `ca.pem` (the CA's certificate, for clients) and
`broker.pem` (the brokers' private key, PKCS#8 as Kafka's PEM key store wants it, then the
certificate chain; owner-only).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization

from stack import secrets

CA_FILE, BROKER_FILE = "ca.pem", "broker.pem"


def folder(stack_home: Path) -> Path:
    return stack_home / "conf" / "tls"


def broker_file(stack_home: Path) -> Path:
    return folder(stack_home) / BROKER_FILE


def ensure(stack_home: Path, hosts: Iterable[str]) -> bool:
    """Make the CA and the brokers' certificate unless they exist, and record the CA in the
    secrets file; True when the secrets file gained KAFKA_SSL_CA now (running clients and
    brokers do not know yet)."""
    ca_file = folder(stack_home) / CA_FILE
    if not ca_file.exists() or not broker_file(stack_home).exists():
        folder(stack_home).mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name="orderpipe local stack")
        issued = ca.issue_cert(*dict.fromkeys([*hosts, "127.0.0.1", "localhost"]))
        key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), password=None)
        pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
        chain = b"".join(blob.bytes() for blob in issued.cert_chain_pems)
        descriptor = os.open(broker_file(stack_home), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pkcs8 + chain)
        ca.cert_pem.write_to_path(str(ca_file))
    return bool(secrets.record(stack_home, {"KAFKA_SSL_CA": str(ca_file)}))
