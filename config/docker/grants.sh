#!/bin/sh
# MySQL 8 in docker-compose: the grants Debezium's MySQL connector needs, for MYSQL_USER.
mysql -uroot -p"$MYSQL_ROOT_PASSWORD" -e "GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, \
  REPLICATION CLIENT ON *.* TO '$MYSQL_USER'@'%'; FLUSH PRIVILEGES;"
