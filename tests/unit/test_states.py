"""The payment state machine: the transitions a payment may make, and none out of the end."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import InvalidTransition
from store.states import State, can_move, check_transition

TERMINAL = [s for s in State if s.terminal]


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (State.RECEIVED, State.PROCESSING),
        (State.PROCESSING, State.SUCCEEDED),
        (State.PROCESSING, State.RETRYING),
        (State.RETRYING, State.PROCESSING),
        (State.RETRYING, State.EXPIRED),
        (State.PROCESSING, State.IN_DOUBT),
        (State.IN_DOUBT, State.SUCCEEDED),
        (State.IN_DOUBT, State.FAILED),
        (State.PROCESSING, State.PENDING),
        (State.PENDING, State.SUCCEEDED),
    ],
)
def test_the_payment_lifecycle_allows_its_steps(source: State, target: State):
    assert check_transition(source, target) is target


@given(source=st.sampled_from(TERMINAL), target=st.sampled_from(list(State)))
def test_nothing_leaves_a_terminal_state(source: State, target: State):
    assert not can_move(source, target)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (State.RETRYING, State.SUCCEEDED),  # only an attempt, under a claim, can succeed
        (State.PENDING, State.IN_DOUBT),
        (State.IN_DOUBT, State.PROCESSING),  # never attempted again once in doubt
        (State.RECEIVED, State.SUCCEEDED),
    ],
)
def test_shortcuts_are_refused(source: State, target: State):
    with pytest.raises(InvalidTransition):
        check_transition(source, target)


def test_pending_and_in_doubt_have_results_but_are_not_terminal():
    for state in (State.PENDING, State.IN_DOUBT):
        assert state.has_result
        assert not state.terminal
    assert not State.RETRYING.has_result
