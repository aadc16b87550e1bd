"""`paymq bench`'s hop figures: percentiles read from the workers' histograms as Prometheus's
histogram_quantile reads them (linear within a bucket)."""

from __future__ import annotations

import math

import pytest

from paymq_tools.bench.accounting import bucket_quantile

INF = math.inf
#: 50 observations at or below 1 ms, 50 more at or below 2 ms, none above.
CUMULATIVE = {0.001: 50.0, 0.002: 100.0, 0.005: 100.0, INF: 100.0}


@pytest.mark.parametrize(
    ("q", "expected_s"),
    [(0.25, 0.0005), (0.5, 0.001), (0.75, 0.0015), (0.99, 0.00198)],
)
def test_a_percentile_is_interpolated_within_its_bucket(q: float, expected_s: float) -> None:
    assert bucket_quantile(CUMULATIVE, q) == pytest.approx(expected_s)


def test_a_percentile_past_the_last_finite_bucket_is_that_bucket_s_bound() -> None:
    # 10 of 100 above 5 ms: where in (5 ms, inf) is unknown, so 5 ms is said, as Prometheus does
    cumulative = {0.001: 50.0, 0.005: 90.0, INF: 100.0}
    assert bucket_quantile(cumulative, 0.99) == pytest.approx(0.005)
