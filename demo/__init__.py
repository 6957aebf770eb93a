"""`python -m demo`: the whole pipeline on the local stack, checked against ground truth."""
