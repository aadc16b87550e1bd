"""What the consumer needs of a broker session, and nothing more.

`common.amqp.session.AmqpSession` is the session in production; the unit tests run the consumer
on an in-memory stub (tests/stubs/session.py) to prove its ack rules without a broker. Both
satisfy `ConsumerSession`, and mypy checks that they do. A method the consumer starts to use
goes here first, so the stub has to follow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from common.amqp.confirms import OnConfirm
from common.amqp.session import DeliveryToken, OnMessage, SessionListener, SessionOptions
from common.envelope import OutboundMessage
from common.settings import Settings


class ConsumerSession(Protocol):
    # --- any thread -----------------------------------------------------------------------------

    @property
    def consuming(self) -> bool:
        """The broker has confirmed the consumer on the current connection."""

    def call_threadsafe(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the I/O thread."""

    def stop(self) -> None:
        """Close the connections and make `run()` return."""

    def run(self) -> None:
        """Connect, and serve the I/O loop in this thread until `stop()`."""

    # --- I/O thread only --------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Connected, with a publishing channel in confirm mode."""

    @property
    def generation(self) -> int:
        """Counts connections: a delivery token of an earlier generation is void."""

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> object:
        """Run `callback` on the I/O thread after `delay_s`."""

    def publish(self, message: OutboundMessage, on_confirm: OnConfirm) -> None:
        """Publish with confirms; `on_confirm` runs once, with None or the error."""

    def consume(self, queue: str, prefetch: int, on_message: OnMessage) -> None:
        """Start consuming `queue` with manual acks (again after every reconnect)."""

    def pause_consumer(self) -> None:
        """Take no more deliveries until `resume_consumer`."""

    def resume_consumer(self) -> None:
        """Take deliveries again after `pause_consumer`."""

    def cancel_consumer(self, on_cancelled: Callable[[], None]) -> None:
        """Stop the broker's deliveries; `on_cancelled` runs once it has."""

    def ack(self, token: DeliveryToken) -> bool:
        """Ack the delivery on its own channel; False if that channel is gone."""

    def reject(self, token: DeliveryToken) -> bool:
        """Return the delivery to its queue; False if its channel is gone."""


#: Opens the consumer's session around the consumer, its listener.
SessionFactory = Callable[[SessionListener], ConsumerSession]


def session_options(settings: Settings, name: str) -> SessionOptions:
    return SessionOptions(
        url=settings.broker.amqp_url,
        name=name,
        heartbeat_s=settings.broker.heartbeat_s,
        connect_timeout_s=settings.broker.connect_timeout_s,
        reconnect_max_delay_s=settings.broker.reconnect_max_delay_s,
    )
