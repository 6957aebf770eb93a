"""The Debezium connector on Kafka Connect, and the CDC topics' readers.

The connector's configuration from its JSON template and the settings (`connector.py`), registration
and restarts (`rest.py`), whole-topic readers (`topics.py`), incremental snapshots (`incremental_snapshot.py`:
the signal written, the connector's committed offset followed), stored offsets made safe to resume
from (`offsets.py`: the events Debezium would skip on restart cleared, before Kafka Connect starts
and whenever a connector is resumed); `python -m cdc
register|watch|heal|status|delete|show|snapshot`.
"""
