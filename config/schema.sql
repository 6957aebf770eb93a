-- Source schema of project_db (the ARCHITECTURE contract). Idempotent: safe to apply again.
-- An order is complete when its number of distinct detail rows equals num_products.

CREATE TABLE IF NOT EXISTS customers (
    id          INT           NOT NULL PRIMARY KEY,
    name        VARCHAR(100)  NOT NULL,
    email       VARCHAR(150)  NOT NULL,
    phone       VARCHAR(30)   NOT NULL,
    city        VARCHAR(60)   NOT NULL,
    created_at  DATETIME(3)   NOT NULL
);

CREATE TABLE IF NOT EXISTS payment_method (
    id          INT           NOT NULL PRIMARY KEY,
    name        VARCHAR(50)   NOT NULL,
    provider    VARCHAR(50)   NOT NULL
);

CREATE TABLE IF NOT EXISTS orders (
    id                 CHAR(36)     NOT NULL PRIMARY KEY,
    customer_id        INT          NOT NULL,
    store_id           INT          NOT NULL,
    payment_method_id  INT          NOT NULL,
    num_products       INT          NOT NULL,
    `timestamp`        DATETIME(3)  NOT NULL,
    KEY orders_by_timestamp (`timestamp`)
);

CREATE TABLE IF NOT EXISTS order_details (
    order_id    CHAR(36)  NOT NULL,
    product_id  INT       NOT NULL,
    quantity    INT       NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

-- Debezium's signal table (in the captured database, as Debezium asks): `python -m cdc
-- snapshot` writes execute-snapshot signals here, and the connector its snapshot windows.
-- The stream never reads it.
CREATE TABLE IF NOT EXISTS debezium_signal (
    id    VARCHAR(64)    NOT NULL PRIMARY KEY,
    type  VARCHAR(32)    NOT NULL,
    data  VARCHAR(8192)  NULL
);
