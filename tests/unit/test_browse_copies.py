"""What a queue browser puts back in place of a message it looked at: the same message, minus
the broker's count of the delivery it took, plus the routing key the default exchange drops."""

from __future__ import annotations

from common.amqp.browse import kept_headers
from common.envelope import HEADER_ORIGINAL_ROUTING_KEY, InboundMessage

DEATH = [{"reason": "delivery_limit", "count": 1, "queue": "p.work.card", "routing-keys": ["card"]}]


def test_a_copy_keeps_every_header_but_the_delivery_count_and_names_its_routing_key() -> None:
    headers = {"paymq-route": "card", "x-death": DEATH, "x-delivery-count": 7}

    assert kept_headers(headers, "card") == {
        "paymq-route": "card",
        "x-death": DEATH,
        HEADER_ORIGINAL_ROUTING_KEY: "card",
    }


def test_a_copy_of_a_copy_keeps_the_first_routing_key_not_the_queue_name() -> None:
    headers = {HEADER_ORIGINAL_ROUTING_KEY: "card", "x-delivery-count": 0}

    assert kept_headers(headers, "p.dead-letter") == {HEADER_ORIGINAL_ROUTING_KEY: "card"}


def _inbound(routing_key: str, headers: dict[str, object]) -> InboundMessage:
    return InboundMessage(
        body=b"{}",
        exchange="",
        routing_key=routing_key,
        content_type="application/json",
        message_id="m-1",
        message_type="paymq.payment_request.v1",
        headers=headers,
    )


def test_a_message_put_back_reads_as_routed_to_its_first_routing_key() -> None:
    put_back = _inbound("p.dead-letter", {HEADER_ORIGINAL_ROUTING_KEY: "digital_currency"})

    assert put_back.original_routing_key == "digital_currency"


def test_a_message_never_put_back_reads_as_routed_to_its_own_routing_key() -> None:
    assert _inbound("card", {}).original_routing_key == "card"
