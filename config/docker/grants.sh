#!/bin/sh
# MySQL 8 in docker-compose, after the schema: the shop, the connector and the reader, each
# with only what it uses (stack/secrets.py has the local stack's MariaDB grants).
# Root's password from an owner-only option file, not the command line.
set -e
umask 077
login=$(mktemp)
trap 'rm -f "$login"' EXIT
printf '[client]\nuser=root\npassword="%s"\n' "$MYSQL_ROOT_PASSWORD" > "$login"
mysql --defaults-extra-file="$login" "$MYSQL_DATABASE" <<SQL
CREATE USER 'orderpipe-shop'@'%' IDENTIFIED BY '$MYSQL_SHOP_PASSWORD';
GRANT SELECT ON customers TO 'orderpipe-shop'@'%';
GRANT SELECT ON payment_method TO 'orderpipe-shop'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO 'orderpipe-shop'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON order_details TO 'orderpipe-shop'@'%';
-- Debezium's documented grants, and its signal table's snapshot windows.
CREATE USER 'orderpipe-cdc'@'%' IDENTIFIED BY '$MYSQL_CDC_PASSWORD';
GRANT RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'orderpipe-cdc'@'%';
GRANT SELECT, LOCK TABLES ON \`$MYSQL_DATABASE\`.* TO 'orderpipe-cdc'@'%';
GRANT INSERT, DELETE ON debezium_signal TO 'orderpipe-cdc'@'%';
CREATE USER 'orderpipe-reader'@'%' IDENTIFIED BY '$MYSQL_READER_PASSWORD';
GRANT SELECT ON \`$MYSQL_DATABASE\`.* TO 'orderpipe-reader'@'%';
FLUSH PRIVILEGES;
SQL
