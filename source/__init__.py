"""The source database: its schema, reference data, the order traffic and its ground truth.

Schema apply and bulk loads (`database.py`), reference data as pure rows from a random seed
(`reference.py`), the order traffic as a pure plan from a random seed with its ground truth,
the manifest (`traffic.py`), the generator writing it as a shop would (`generate.py`), the
audit of `order_final` against the manifest (`order_final_audit.py`) or the database itself
(`reconcile.py`); `python -m source`.
"""
