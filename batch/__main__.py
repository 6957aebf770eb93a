"""`python -m batch [--full]`: Bronze, Silver and Gold, one after the other."""

from batch.cli import job

job(["bronze", "silver", "gold"], "Run the lake's three layers: MySQL -> Bronze -> Silver -> Gold on "
    "MinIO (Delta Lake), each reading only what changed since its last run.")()
