"""The recovery figure: the longest time without a result event while a fault lasted. Pure."""

from __future__ import annotations

from paymq_tools.chaos.recovery import longest_gap_s


def test_no_fault_span_means_no_figure() -> None:
    assert longest_gap_s([1.0, 2.0], []) is None


def test_the_gap_from_the_fault_to_the_first_result_after_it_counts() -> None:
    # results every 0.5 s, then none from the kill at 10 s until 17.5 s
    arrivals = [9.0, 9.5, 17.5, 18.0]

    assert longest_gap_s(arrivals, [(10.0, 40.0)]) == 7.5


def test_a_stall_inside_the_span_counts_and_results_before_it_do_not() -> None:
    arrivals = [0.0, 5.0, 10.0, 10.5, 14.5, 15.0]

    assert longest_gap_s(arrivals, [(9.8, 20.0)]) == 4.0


def test_the_gap_running_past_the_end_of_the_span_counts_up_to_the_next_result() -> None:
    arrivals = [10.1, 19.0, 26.0, 26.5]

    assert longest_gap_s(arrivals, [(10.0, 20.0)]) == 8.9


def test_the_quiet_after_the_last_result_of_the_run_does_not_count() -> None:
    arrivals = [10.5, 11.0]

    assert longest_gap_s(arrivals, [(10.0, 40.0)]) == 0.5
