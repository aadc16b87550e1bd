"""Publisher-confirm bookkeeping: acks, nacks, returns and a lost channel."""

from __future__ import annotations

import pytest

from common.amqp.confirms import ConfirmTracker
from common.errors import BrokerUnavailable, PaymqError, PublishFailed, Unroutable


class Outcomes:
    """Collects what each publish's on_confirm callback was told, by message id."""

    def __init__(self) -> None:
        self.seen: dict[str, list[PaymqError | None]] = {}

    def publish(self, tracker: ConfirmTracker, message_id: str, routing_key: str = "rk") -> int:
        self.seen[message_id] = []
        return tracker.published(message_id, routing_key, self.seen[message_id].append)


@pytest.fixture
def tracker() -> ConfirmTracker:
    return ConfirmTracker()


@pytest.fixture
def outcomes() -> Outcomes:
    return Outcomes()


def test_delivery_tags_count_from_one(tracker: ConfirmTracker, outcomes: Outcomes):
    assert [outcomes.publish(tracker, m) for m in ("a", "b", "c")] == [1, 2, 3]
    assert len(tracker) == 3


def test_a_single_ack_confirms_only_its_tag(tracker: ConfirmTracker, outcomes: Outcomes):
    for message_id in ("a", "b"):
        outcomes.publish(tracker, message_id)
    tracker.acked(2, multiple=False)
    assert outcomes.seen == {"a": [], "b": [None]}
    assert len(tracker) == 1


def test_a_multiple_ack_confirms_every_tag_up_to_it(tracker: ConfirmTracker, outcomes: Outcomes):
    for message_id in ("a", "b", "c"):
        outcomes.publish(tracker, message_id)
    tracker.acked(2, multiple=True)
    assert outcomes.seen == {"a": [None], "b": [None], "c": []}


def test_a_multiple_ack_of_tag_zero_confirms_everything_outstanding(
    tracker: ConfirmTracker, outcomes: Outcomes
):
    for message_id in ("a", "b", "c"):
        outcomes.publish(tracker, message_id)
    tracker.acked(0, multiple=True)
    assert outcomes.seen == {"a": [None], "b": [None], "c": [None]}
    assert len(tracker) == 0


def test_a_nack_fails_the_publish(tracker: ConfirmTracker, outcomes: Outcomes):
    outcomes.publish(tracker, "a")
    outcomes.publish(tracker, "b")
    tracker.nacked(2, multiple=True)
    assert [type(e) for e in outcomes.seen["a"] + outcomes.seen["b"]] == [PublishFailed] * 2


def test_a_returned_then_acked_message_is_unroutable(tracker: ConfirmTracker, outcomes: Outcomes):
    outcomes.publish(tracker, "a", routing_key="card.succeeded")
    outcomes.publish(tracker, "b")
    tracker.returned("a")
    tracker.acked(2, multiple=True)
    [error] = outcomes.seen["a"]
    assert isinstance(error, Unroutable)
    assert "card.succeeded" in str(error)
    assert outcomes.seen["b"] == [None]


def test_a_return_marks_only_the_oldest_pending_publish_with_that_id(
    tracker: ConfirmTracker, outcomes: Outcomes
):
    first: list[PaymqError | None] = []
    second: list[PaymqError | None] = []
    tracker.published("same", "rk", first.append)
    tracker.published("same", "rk", second.append)
    tracker.returned("same")
    tracker.acked(0, multiple=True)
    assert isinstance(first[0], Unroutable)
    assert second == [None]


def test_a_return_for_an_unknown_message_changes_nothing(
    tracker: ConfirmTracker, outcomes: Outcomes
):
    outcomes.publish(tracker, "a")
    tracker.returned("other")
    tracker.returned(None)
    tracker.acked(1, multiple=False)
    assert outcomes.seen["a"] == [None]


def test_an_ack_for_an_unknown_tag_is_ignored(tracker: ConfirmTracker, outcomes: Outcomes):
    outcomes.publish(tracker, "a")
    tracker.acked(7, multiple=False)
    tracker.acked(1, multiple=False)
    tracker.acked(1, multiple=False)
    assert outcomes.seen["a"] == [None]


def test_fail_all_fails_everything_pending_exactly_once(
    tracker: ConfirmTracker, outcomes: Outcomes
):
    for message_id in ("a", "b", "c"):
        outcomes.publish(tracker, message_id)
    tracker.acked(1, multiple=False)
    lost = BrokerUnavailable("channel closed")
    tracker.fail_all(lost)
    tracker.fail_all(lost)
    assert outcomes.seen == {"a": [None], "b": [lost], "c": [lost]}
    assert len(tracker) == 0


def test_tags_keep_counting_after_fail_all(tracker: ConfirmTracker, outcomes: Outcomes):
    outcomes.publish(tracker, "a")
    tracker.fail_all(BrokerUnavailable("gone"))
    assert outcomes.publish(tracker, "b") == 2
