"""What a run leaves in the broker: messages still in work or retry queues (stuck), and the
dead-letter queue with each message's reason."""

from __future__ import annotations

from collections.abc import Mapping

from common.amqp.admin import BrokerAdmin
from common.envelope import HEADER_DEAD_LETTER_CODE
from common.topology import Topology
from paymq_tools.chaos.observations import DELIVERY_LIMIT, DeadLetter


def work_and_retry_queues(topology: Topology) -> list[str]:
    return [
        *(topology.work_queue(channel) for channel in topology.channels),
        # A retry tier's queue has its exchange's name.
        *(topology.retry_exchange(delay_ms) for delay_ms in topology.retry_delays_ms),
    ]


def leftovers(admin: BrokerAdmin, topology: Topology) -> list[str]:
    """Message ids taken out of the work and retry queues (call once the workers stopped, so
    unacked deliveries are back in their queue)."""
    return [
        message.message_id or ""
        for queue in work_and_retry_queues(topology)
        for message in admin.drain(queue)
    ]


def dead_letters(admin: BrokerAdmin, topology: Topology) -> list[DeadLetter]:
    return [
        DeadLetter(message.message_id or "", dead_letter_reason(message.headers))
        for message in admin.drain(topology.dead_letter_queue)
    ]


def dead_letter_reason(headers: Mapping[str, object]) -> str:
    """The worker's code for its own dead-letter copies; the broker's reason (the delivery
    limit, for poison messages) for what the broker dead-lettered."""
    code = headers.get(HEADER_DEAD_LETTER_CODE)
    if code is not None:
        return _text(code)
    broker_reason = headers.get("x-first-death-reason")
    if broker_reason is not None:
        return f"broker:{_text(broker_reason)}"
    return f"broker:{DELIVERY_LIMIT}" if "x-death" in headers else "unknown"


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
