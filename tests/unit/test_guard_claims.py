"""What a claim found on an order's guard key means to a worker (agents.emission.guard, agents.emission.exactly_once)."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from agents.emission.exactly_once import RESOLVE_OWN_FAILURE_AFTER_MS, Emission
from agents.emission.guard import Claim, FailedSend, Outcome, claim_value, judge, judge_own, sent_value

TTL_MS, AFTER_MS = 35_000, 5_000


def test_a_claim_is_held_until_its_lifetime_is_over_then_stale():
    ours = claim_value("worker-a", 1_000)

    assert judge(ours, 1_000 + TTL_MS, TTL_MS).outcome is Outcome.HELD
    assert judge(ours, 1_001 + TTL_MS, TTL_MS) == Claim(Outcome.STALE, ours, 1_000)
    assert judge(sent_value(0, 7), 10**12, TTL_MS).outcome is Outcome.SENT


def test_our_own_failed_send_is_stale_a_few_seconds_after_the_failure_not_at_the_claims_end():
    ours = claim_value("worker-a", 1_000)
    failure = FailedSend(ours, failed_at_ms=3_000)
    held = judge(ours, 3_000 + AFTER_MS - 1, TTL_MS)

    assert judge_own(held, failure, 3_000 + AFTER_MS - 1, AFTER_MS) == held
    assert judge_own(held, failure, 3_000 + AFTER_MS, AFTER_MS) == Claim(Outcome.STALE, ours, 1_000)


def test_a_claim_that_is_not_our_failed_one_is_judged_as_before():
    ours, theirs = claim_value("worker-a", 1_000), claim_value("worker-b", 1_000)
    failure = FailedSend(ours, failed_at_ms=3_000)
    late = 3_000 + AFTER_MS

    assert judge_own(judge(theirs, late, TTL_MS), failure, late, AFTER_MS).outcome is Outcome.HELD
    assert judge_own(judge(ours, late, TTL_MS), None, late, AFTER_MS).outcome is Outcome.HELD
    assert judge_own(judge(sent_value(0, 7), late, TTL_MS), failure, late, AFTER_MS).outcome is Outcome.SENT
    assert judge_own(Claim(Outcome.CLAIMED), failure, late, AFTER_MS).outcome is Outcome.CLAIMED


def test_the_emission_forgets_a_failure_once_its_key_holds_anything_else():
    emission = Emission([], Counter())
    output = SimpleNamespace(topic=SimpleNamespace(get_topic_name=lambda: "order_final"))
    ours = claim_value("worker-a", 1_000)
    emission._remember_failure(output, "o-1", ours)
    failed_at = emission.failed_sends[("order_final", "o-1")].failed_at_ms
    held = Claim(Outcome.HELD, ours, 1_000)

    assert emission._after_own_failure(output, "o-1", held, failed_at + 1).outcome is Outcome.HELD
    assert emission._after_own_failure(output, "o-1", held, failed_at + RESOLVE_OWN_FAILURE_AFTER_MS).outcome \
        is Outcome.STALE
    assert emission.failed_sends  # kept until the key changes: a lookup that fails is tried again
    taken_over = Claim(Outcome.HELD, claim_value("worker-a", failed_at + 6_000), failed_at + 6_000)
    assert emission._after_own_failure(output, "o-1", taken_over, failed_at + 7_000) == taken_over
    assert emission.failed_sends == {}
