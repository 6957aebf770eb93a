"""Peer benchmarks: the same completion job done other ways, measured beside ours (python -m bench.peers)."""
