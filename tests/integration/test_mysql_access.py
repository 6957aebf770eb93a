"""The stack's MySQL users against the real server: each role may do its work and is refused
the rest; root and the old default login are refused over TCP."""

from __future__ import annotations

import mysql.connector
import pytest
from mysql.connector import errorcode

from config import Settings
from config.settings import INSECURE_DEFAULTS
from source import database

DENIED = (errorcode.ER_TABLEACCESS_DENIED_ERROR, errorcode.ER_DBACCESS_DENIED_ERROR,
          errorcode.ER_SPECIFIC_ACCESS_DENIED_ERROR)


def refused(settings: Settings, role: str, sql: str) -> bool:
    connection = database.connect(settings, role=role)
    try:
        connection.cursor().execute(sql)
    except mysql.connector.Error as error:
        return error.errno in DENIED
    finally:
        connection.close()
    return False


@pytest.fixture
def roles(settings: Settings) -> Settings:
    users = {settings.mysql_login(role)[0] for role in ("owner", "shop", "cdc", "reader")}
    assert len(users) == 4, "the stack gives each MySQL role its own user (stack/secrets.py)"
    return settings


def test_each_role_does_its_own_work(roles: Settings):
    for role, sql in {"shop": "SELECT COUNT(*) FROM customers",
                      "reader": "SELECT COUNT(*) FROM order_details",
                      "cdc": "SHOW MASTER STATUS"}.items():
        connection = database.connect(roles, role=role)
        cursor = connection.cursor()
        cursor.execute(sql)
        assert cursor.fetchall(), role
        connection.close()


def test_the_reader_only_reads(roles: Settings):
    assert refused(roles, "reader", "DELETE FROM orders WHERE 1 = 0")
    assert refused(roles, "reader", "INSERT INTO debezium_signal (id, type) SELECT 'x', 'y' FROM DUAL WHERE 1 = 0")


def test_the_shop_writes_orders_but_not_the_schema_nor_the_reference_data(roles: Settings, unique_name: str):
    assert refused(roles, "shop", f"CREATE TABLE {unique_name} (id INT)")
    assert refused(roles, "shop", "DELETE FROM customers WHERE 1 = 0")
    assert refused(roles, "shop", "SELECT * FROM debezium_signal")
    owner = database.connect(roles)
    owner.cursor().execute(f"DROP TABLE IF EXISTS {unique_name}")  # if the shop could make it
    owner.close()


def test_the_connector_reads_and_signals_but_changes_no_order(roles: Settings):
    assert refused(roles, "cdc", "UPDATE orders SET num_products = num_products WHERE 1 = 0")
    assert refused(roles, "cdc", "DELETE FROM order_details WHERE 1 = 0")


@pytest.mark.parametrize("login", ["root without a password", "the old default login"])
def test_no_login_without_the_stacks_credentials(settings: Settings, login: str):
    user, password = ("root", "") if login.startswith("root") else (
        Settings.model_fields["mysql_user"].default, INSECURE_DEFAULTS["MYSQL_PASSWORD"])

    with pytest.raises(mysql.connector.Error, match="Access denied"):
        mysql.connector.connect(host=settings.mysql_host, port=settings.mysql_port, user=user, password=password,
                                connection_timeout=5)
