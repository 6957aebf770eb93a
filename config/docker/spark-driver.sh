#!/bin/sh
# The Spark driver in docker-compose (`batch`), before its command: a driver of a standalone
# cluster must hold the secret in its own configuration (`spark.authenticate.secret`: Spark
# refuses to start an application on a spark:// master otherwise), so spark-defaults.conf's
# copy in $SPARK_CONF_DIR gets it from the environment, owner-only. spark-submit reads that
# file inside its JVM: the secret is on no command line. The executors get it from their
# worker (_SPARK_AUTH_SECRET), never from the driver.
set -eu
umask 077
: "${_SPARK_AUTH_SECRET:?}" "${SPARK_CONF_DIR:?}"
mkdir -p "$SPARK_CONF_DIR"
chmod 700 "$SPARK_CONF_DIR"
defaults=/orderpipe/spark-defaults.conf
{
  cat "$defaults"
  printf 'spark.authenticate.secret %s\n' "$_SPARK_AUTH_SECRET"
} > "$SPARK_CONF_DIR/spark-defaults.conf"
exec "$@"
