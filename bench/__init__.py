"""Benchmarks: figures, and ratios against contenders run in the same process.

Benchmarks printing figures and ratios against contenders run in the same process: the stream
(`stream.py`; `bare_agent.py`, Faust's own per-record ceiling), a long run's memory
(`stream_rss.py`), where a worker's CPU goes (`profile.py`), the codec per record (`codec.py`),
scraping's cost (`metrics_burst.py`), CDC lag (`cdc_lag.py`), the lake (`batch.py`; the fast lane
alone on lakes of two sizes: `fast_lane.py`), ours beside Quix Streams and the legacy pipeline (`peers/`), and
whether a run's figures stand (`verdict.py`: its audits).
"""
