"""`python -m demo`: the whole pipeline on the local stack, checked against ground truth.

`make demo`'s job, `python -m demo`, and its report (`report.py`: what went in and out, how fast,
whether exact) (`lake.py`: the continuous lake beside the workers, Gold against the manifest,
freshness).
"""
