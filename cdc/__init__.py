"""Debezium connector registration against Kafka Connect's REST API."""
