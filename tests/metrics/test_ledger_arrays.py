"""The in-memory ledger's aggregates: exact beyond int64, the same in any customer block size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execmetrics.metrics import ledger_arrays
from execmetrics.metrics.ledger_arrays import (
    CHURN,
    EXPANSION,
    NEVER,
    NEW,
    Groups,
    LedgerArrays,
    opening_balances,
    period_flows,
    retention_12m,
)

# (customer, occurred_at, type, mrr_before, mrr_after, paying_since); next_at is derived.
Movement = tuple[int, int, int, int, int, int]


def ledger_of(movements: list[Movement]) -> LedgerArrays:
    movements = sorted(movements, key=lambda m: (m[1], m[0]))
    following: dict[int, int] = {}
    next_at = []
    for customer, occurred_at, *_ in reversed(movements):
        next_at.append(following.get(customer, NEVER))
        following[customer] = occurred_at
    next_at.reverse()

    def column(values: list[int]) -> np.ndarray:  # type: ignore[type-arg]
        return np.array(values, dtype=np.int64)

    return LedgerArrays(
        column([m[0] for m in movements]),
        column([m[1] for m in movements]),
        column([m[2] for m in movements]),
        column([m[4] - m[3] for m in movements]),
        column([m[4] for m in movements]),
        column([m[5] for m in movements]),
        column(next_at),
    )


def everyone(ledger: LedgerArrays) -> Groups:
    return Groups(np.zeros(len(ledger), dtype=np.int64), [None])


def test_sums_beyond_int64_are_exact() -> None:
    big = 2**62 + 1  # four customers' MRR adds up to more than int64 holds
    ledger = ledger_of([(c, 10, NEW, 0, big, 10) for c in range(1, 5)])
    groups = everyone(ledger)
    assert opening_balances(ledger, groups, 20) == {None: (4 * big, 4)}
    flow = period_flows(ledger, groups, [0, 100])[(0, None)]
    assert flow.mrr["new"] == 4 * big and flow.count["new"] == 4
    assert retention_12m(ledger, groups, [(50, 60)]) == {(0, None): (4 * big, 4 * big, 4 * big)}


def test_retention_pairs_each_customer_at_two_instants() -> None:
    ledger = ledger_of(
        [
            (1, 10, NEW, 0, 1000, 10),
            (1, 30, EXPANSION, 1000, 1500, 10),  # grows: counts 1500, capped at 1000
            (2, 10, NEW, 0, 700, 10),
            (2, 40, CHURN, 700, 0, 10),  # gone by `now`
            (3, 25, NEW, 0, 900, 25),  # joined after `then`: not in the window
        ]
    )
    figures = retention_12m(ledger, everyone(ledger), [(20, 50), (10, 20)])
    assert figures[(0, None)] == (1700, 1500, 1000)
    # At instant 10 itself nothing is in effect yet: a span starts just after its instant.
    assert figures[(1, None)] == (0, 0, 0)


movements = st.lists(
    st.tuples(
        st.integers(1, 40),  # customer
        st.integers(0, 60),  # instant
        st.integers(1, 10_000),  # MRR after
    ),
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(movements)
def test_retention_is_the_same_in_any_block_size(
    raw: list[tuple[int, int, int]],
) -> None:
    # One movement per customer and instant, each setting the customer's MRR.
    unique = {(customer, at): mrr for customer, at, mrr in raw}
    by_customer: dict[int, int] = {}
    rows: list[Movement] = []
    for (customer, at), mrr in sorted(unique.items(), key=lambda item: item[0][1]):
        before = by_customer.get(customer, 0)
        rows.append((customer, at, NEW if before == 0 else EXPANSION, before, mrr, at))
        by_customer[customer] = mrr
    ledger = ledger_of(rows)
    codes = Groups(ledger.customer % 3, [0, 1, 2])
    windows = [(t, t + 12) for t in range(0, 50, 7)]
    whole = retention_12m(ledger, codes, windows)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ledger_arrays, "CUSTOMER_BLOCK", 3)
        assert retention_12m(ledger, codes, windows) == whole
    # And the same as pairing each customer's MRR directly.
    for number, (then, now) in enumerate(windows):
        for group in range(3):
            expected = [0, 0, 0]
            for customer in {r[0] for r in rows if r[0] % 3 == group}:
                at_then = mrr_at(rows, customer, then)
                if at_then > 0:
                    at_now = mrr_at(rows, customer, now)
                    expected[0] += at_then
                    expected[1] += at_now
                    expected[2] += min(at_now, at_then)
            assert whole[(number, group)] == tuple(expected)


def mrr_at(rows: list[Movement], customer: int, instant: int) -> int:
    """MRR in effect at `instant`: the last movement strictly before it."""
    earlier = [r for r in rows if r[0] == customer and r[1] < instant]
    return max(earlier, key=lambda r: r[1])[4] if earlier else 0
