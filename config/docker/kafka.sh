#!/bin/sh
# Kafka in docker-compose: one KRaft node with the local stack's security (stack/services.py
# Kafka.security): clients and the broker itself over SASL/SCRAM, the controller listener over
# SASL/PLAIN, KRaft's authorizer with no access where no rule allows it. The brokers' SCRAM
# user is made when the storage is first formatted (a broker must log in to itself before any
# admin call); the `kafka-access` service then logs in as it and sets every other role's
# password (the tools' too) and ACLs (`python -m stack kafka-access`). Passwords go into
# properties and JAAS quotes as they are: `python -m stack compose-env` makes them URL-safe.
# The password is in no command line (the format's arguments are a private `java @file`) and
# not in the broker's environment once its properties are written.
set -eu
umask 077  # the properties and the format's arguments hold the brokers' password
kafka=/opt/kafka
conf=/opt/kafka/config/orderpipe.properties
data=/var/lib/kafka/data
mechanism=SCRAM-SHA-256
broker=orderpipe-broker
tools=orderpipe-tools

cat > "$conf" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@kafka:9093
listeners=CLIENT://:9092,CONTROLLER://:9093
advertised.listeners=CLIENT://kafka:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=CLIENT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:$broker;User:$tools
allow.everyone.if.no.acl.found=false
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
sasl.enabled.mechanisms=$mechanism
sasl.mechanism.inter.broker.protocol=$mechanism
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$broker" password="$KAFKA_BROKER_PASSWORD" user_$broker="$KAFKA_BROKER_PASSWORD";
listener.name.client.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$broker" password="$KAFKA_BROKER_PASSWORD";
log.dirs=$data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
num.partitions=4
EOF

if [ ! -e "$data/meta.properties" ]; then
  args=$(mktemp)
  printf '"%s"\n' kafka.tools.StorageTool format "--cluster-id=$("$kafka/bin/kafka-storage.sh" random-uuid)" \
    -c "$conf" "--add-scram=$mechanism=[name=$broker,password=$KAFKA_BROKER_PASSWORD]" > "$args"
  formatted=0
  "$kafka/bin/kafka-run-class.sh" "@$args" || formatted=$?
  rm -f "$args"
  [ "$formatted" -eq 0 ]
fi
unset KAFKA_BROKER_PASSWORD
exec "$kafka/bin/kafka-server-start.sh" "$conf"
