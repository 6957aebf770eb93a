"""The local stack: real services as processes on loopback, for the demo, tests and benchmarks.

The local stack on loopback (`services.py`: Kafka, Connect + Debezium, MariaDB, Redis, MinIO; with
`--with prometheus` also Prometheus and the brokers' view it scrapes), `python -m stack
up|down|status` (`control.py`: wave by wave, each wave's set-up once it is healthy), what it
installs once per machine (`install.py`), processes by pid file (`process.py`), worker processes
(`workers.py`), scratch resources for tests and benchmarks (`scratch.py`: a lake in a bucket of its
own, and `cdc_caught_up`: a marker row waited for on the CDC topics), the continuous lake as a stack
process (`lake_process.py`: started, stopped, and waited for until its progress says it has applied what the
CDC topics hold), `python -m stack doctor` (`doctor.py`: every check against the addresses in the
settings, and Prometheus' firing alerts), the connector healer and watcher as stack processes
(`watcher.py`), the stack's credentials (`secrets.py`: made at random on its first start unless
`--insecure` marks the home instead, one principal per role, Redis's ACL file, MySQL's users and
grants, MinIO's lake policies and Kafka's ACLs from them; `compose-env`: docker-compose's `.env`;
`kafka-access`: every role's Kafka password and ACLs on a Kafka the stack does not run), TLS for
Kafka's client listener (`tls.py`: the stack's CA and its brokers' certificate, `stack up --tls`),
`python -m stack rotate-secrets` (`rotation.py`: each service moved to new passwords while it runs;
`holders.py`: the stack's processes holding a secret, restarted one by one as they were started).
"""
