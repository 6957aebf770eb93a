"""The fast lane: the lake's hot path in Python (delta-rs + Polars), no JVM."""
