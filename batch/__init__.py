"""Batch lakehouse: PySpark jobs taking MySQL through Bronze -> Silver -> Gold on MinIO."""
