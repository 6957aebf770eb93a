#!/bin/sh
# Kafka Connect in docker-compose, before the image's own entrypoint: the secrets it was given
# in its environment (from .env) into owner-only files, then the variables dropped, so no
# password is on a command line nor in the worker's environment.
# - $CONNECTOR_SECRETS_FILE: what a connector config names by `${file:<it>:<key>}` (Connect's
#   FileConfigProvider reads it; cdc/connector.py `connector_secrets` has the same keys): the
#   MySQL cdc user's password, and the JAAS line of Connect's Kafka user for the schema
#   history's clients, the one Connect's own clients use.
# - the REST API's users (HTTP Basic, BasicAuthSecurityRestExtension) and the JAAS file that
#   names them (KAFKA_OPTS points the JVM at it). An empty users file would let anyone in, so
#   a missing password stops the start.
# Values go in as they are: `python -m stack compose-env` makes them URL-safe.
set -eu
umask 077
secrets=/kafka/secrets
rest_user=orderpipe-connect-admin
entrypoint=/docker-entrypoint.sh
: "${CONNECTOR_SECRETS_FILE:?}" "${MYSQL_CDC_PASSWORD:?}" "${CONNECT_SASL_JAAS_CONFIG:?}"
: "${KAFKA_CONNECT_REST_PASSWORD:?}"

mkdir -p "$secrets" "$(dirname "$CONNECTOR_SECRETS_FILE")"
chmod 700 "$secrets"

cat > "$CONNECTOR_SECRETS_FILE" <<EOF
database.password=$MYSQL_CDC_PASSWORD
kafka.sasl.jaas.config=$CONNECT_SASL_JAAS_CONFIG
EOF

cat > "$secrets/connect-rest-users.properties" <<EOF
$rest_user=$KAFKA_CONNECT_REST_PASSWORD
EOF

cat > "$secrets/connect-rest-jaas.conf" <<EOF
KafkaConnect {
  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required
  file="$secrets/connect-rest-users.properties";
};
EOF

unset MYSQL_CDC_PASSWORD KAFKA_CONNECT_REST_PASSWORD
exec "$entrypoint" "$@"
