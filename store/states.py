"""A payment's states and the only transitions between them. Pure.

    received -> processing -> succeeded | declined | failed | expired | rejected
                    |  ^   -> pending  -> succeeded | failed
                    v  |   -> in_doubt -> succeeded | declined | failed
                  retrying -> expired | in_doubt

`processing` means a worker holds the claim and may be calling the provider; `retrying` means
the payment waits in a retry tier with nobody working on it. `pending` (the provider accepted,
settles later) and `in_doubt` (the provider may have acted) are left only by the reconciler.
Nothing leaves a terminal state.
"""

from __future__ import annotations

from enum import StrEnum

from common.errors import InvalidTransition


class State(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    FAILED = "failed"
    EXPIRED = "expired"
    REJECTED = "rejected"
    PENDING = "pending"
    IN_DOUBT = "in_doubt"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def has_result(self) -> bool:
        """A result event was published on entering this state (and is stored to repeat)."""
        return self.terminal or self in (State.PENDING, State.IN_DOUBT)


_TERMINAL = frozenset(
    {State.SUCCEEDED, State.DECLINED, State.FAILED, State.EXPIRED, State.REJECTED}
)

_ALLOWED: dict[State, frozenset[State]] = {
    State.RECEIVED: frozenset({State.PROCESSING, State.REJECTED, State.EXPIRED}),
    State.PROCESSING: frozenset(
        {
            # Re-routed to another provider before it was sent there (recorded, not a move).
            State.PROCESSING,
            State.RETRYING,
            State.SUCCEEDED,
            State.DECLINED,
            State.FAILED,
            State.EXPIRED,
            State.REJECTED,
            State.PENDING,
            State.IN_DOUBT,
        }
    ),
    State.RETRYING: frozenset({State.PROCESSING, State.EXPIRED, State.IN_DOUBT}),
    # A pending card payment waits for the payer (3-D Secure), who may fail or abandon it.
    State.PENDING: frozenset({State.SUCCEEDED, State.DECLINED, State.FAILED}),
    State.IN_DOUBT: frozenset({State.SUCCEEDED, State.PENDING, State.DECLINED, State.FAILED}),
}


def can_move(current: State, target: State) -> bool:
    return target in _ALLOWED.get(current, frozenset())


def check_transition(current: State, target: State) -> State:
    if not can_move(current, target):
        raise InvalidTransition(f"a payment cannot go from {current} to {target}")
    return target
