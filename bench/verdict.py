"""A benchmark's figures stand only if the product's output was right: the verdict of its audits."""

from __future__ import annotations

from collections.abc import Iterable

from source.order_final_audit import Audit


def audit_verdict(audits: Iterable[tuple[str, Audit]]) -> tuple[int, str]:
    """The exit code and the closing line for the audits of a benchmark's runs (label, audit):
    0 when every one is exact, else 1 with each run that is not and what it got wrong. No audit
    at all is a failure too: nothing was checked."""
    audits = list(audits)
    if not audits:
        return 1, "audit FAILED: no run of the product was audited"
    failed = [f"{label} ({', '.join(f'{check} {count:,}' for check, count in audit.faults().items())})"
              for label, audit in audits if not audit.exact]
    if failed:
        return 1, f"audit FAILED in {len(failed)} of {len(audits)} run(s): " + "; ".join(failed)
    return 0, f"audit: every run exact ({len(audits)} run(s))"
