"""Configuration: the one settings object and what it reads.

The one settings object (`settings.py`: also which secrets each process the stack starts may hold,
`PROCESS_CREDENTIALS`, and the one-line error when a login is missing), connector JSON (secrets as
`${file:...}` references Connect resolves), SQL schema, Prometheus' job and alert rules
(`prometheus.yml`, `alerts.yml`), how every command line answers bad arguments or a missing login
(`cli.py`).
"""

from config.settings import Settings, settings

__all__ = ["Settings", "settings"]
