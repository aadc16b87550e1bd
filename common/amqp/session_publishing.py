"""The publishing side of AmqpSession (common/amqp/session.py): persistent publishes with
publisher confirms, on a channel that is renewed after a nack.

A nack renews the publish channel: the next publishes go on a new channel of the same
connection, and the old one closes once its last publish is settled. RabbitMQ 3.10 keeps
nacking every publish on a channel whose first publish to a quorum queue came just after that
queue's leader node died, until the node is back, while a new channel is accepted at once; a
client that reconnects quickly to another node meets exactly that. Other nacks (a queue full
with reject-publish overflow) cost one channel open, at most once per RENEW_INTERVAL_S.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pika.adapters.select_connection import SelectConnection
from pika.channel import Channel
from pika.spec import Basic, BasicProperties

from common.amqp.confirms import ConfirmTracker, OnConfirm
from common.amqp.convert import properties_for
from common.envelope import OutboundMessage
from common.errors import PublishFailed

logger = logging.getLogger("paymq.amqp")

#: A nack renews the publish channel at most this often (see the module's docstring).
RENEW_INTERVAL_S = 1.0


class PublishingSide:
    """AmqpSession's publishing half (a mixin): `__init__` sets up its own state; the
    annotations name what it uses of the session's."""

    _connection: SelectConnection | None
    _ready: bool
    _on_channel_closed: Callable[[Channel, Exception], None]

    def __init__(self) -> None:
        self._publish_channel: Channel | None = None
        self._confirms = ConfirmTracker()
        #: A publish channel opening to replace the current one after a nack, and the one it
        #: replaces, open until its last publish is settled.
        self._renewal: Channel | None = None
        self._retiring: tuple[Channel, ConfirmTracker] | None = None
        self._renewed_at = -RENEW_INTERVAL_S
        self._outbox: deque[tuple[OutboundMessage, OnConfirm]] = deque()
        #: Publish channels replaced after a nack, on any connection (see the module's doc).
        self.channels_renewed = 0

    def publish(self, message: OutboundMessage, on_confirm: OnConfirm) -> None:
        """Publish persistently with confirms; `on_confirm` runs once on this thread with None
        or the error. While disconnected, messages wait for the next connection."""
        channel = self._publish_channel
        if not self._ready or channel is None or not self._writable(channel):
            self._outbox.append((message, on_confirm))
            return
        channel.basic_publish(
            message.exchange,
            message.routing_key,
            message.body,
            properties_for(message),
            mandatory=message.mandatory,
        )
        self._confirms.published(message.message_id, message.routing_key, on_confirm)

    def _send_outbox(self) -> None:
        """Publish what waited for a publish channel in confirm mode."""
        outbox, self._outbox = self._outbox, deque()
        for message, on_confirm in outbox:
            self.publish(message, on_confirm)

    def _writable(self, channel: Channel) -> bool:
        """Frames can go out on this publishing channel: it and its connection are open (a
        lost connection closes its channels one by one, and a channel may still say it is
        open on a connection that is not)."""
        connection = self._connection
        return channel.is_open and connection is not None and connection.is_open

    def _confirm_mode(self, channel: Channel, then: Callable[[ConfirmTracker], None]) -> None:
        # Delivery tags restart at 1 on every channel: a tracker of its own, so no confirm on
        # this channel can ever resolve a publish made on another one.
        tracker = ConfirmTracker()

        def returned(_ch: Channel, _m: Basic.Return, props: BasicProperties, _b: bytes) -> None:
            tracker.returned(props.message_id)

        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(returned)
        channel.confirm_delivery(
            lambda frame: self._on_confirm(channel, tracker, frame),
            callback=lambda _frame: then(tracker),
        )

    def _on_confirm(self, channel: Channel, tracker: ConfirmTracker, frame: Any) -> None:
        method = frame.method
        if isinstance(method, Basic.Ack):
            tracker.acked(method.delivery_tag, multiple=method.multiple)
        else:
            if channel is self._publish_channel:
                self._renew_publish_channel()  # first: what the callbacks republish waits
            tracker.nacked(method.delivery_tag, multiple=method.multiple)
        self._close_retiring_when_settled()

    # --- a new publish channel after a nack ----------------------------------------------

    def _renew_publish_channel(self) -> None:
        connection, channel = self._connection, self._publish_channel
        now = time.monotonic()
        if (
            connection is None
            or not connection.is_open
            or channel is None
            or self._renewal is not None
            or now - self._renewed_at < RENEW_INTERVAL_S
        ):
            return
        self._renewed_at = now
        self.channels_renewed += 1
        self._drop_retiring(PublishFailed("publish channel replaced twice before its confirms"))
        logger.warning("the broker refused a publish (nack): publishing on a new channel")
        # Until the new channel is in confirm mode, publishes wait in the outbox.
        self._retiring, self._publish_channel = (channel, self._confirms), None
        self._renewal = connection.channel(on_open_callback=self._on_renewal_open)

    def _on_renewal_open(self, channel: Channel) -> None:
        if channel is not self._renewal:
            return  # its connection went meanwhile

        def renewed(tracker: ConfirmTracker) -> None:
            if channel is not self._renewal:
                return
            self._renewal = None
            self._publish_channel, self._confirms = channel, tracker
            self._send_outbox()
            self._close_retiring_when_settled()

        self._confirm_mode(channel, renewed)

    def _close_retiring_when_settled(self) -> None:
        if self._retiring is not None and not self._retiring[1]:
            channel, _ = self._retiring
            self._retiring = None
            if self._writable(channel):
                channel.close()

    def _drop_retiring(self, error: PublishFailed) -> None:
        """Fail what is still unconfirmed on the replaced channel (its callers republish)."""
        if self._retiring is None:
            return
        channel, tracker = self._retiring
        self._retiring = None
        if self._writable(channel):
            channel.close()
        tracker.fail_all(error)

    # --- connection lost, session stopped -------------------------------------------------

    def _publishing_lost(self, reason: str) -> None:
        """The connection is gone: every publish not yet confirmed fails (callers republish)."""
        self._publish_channel = None
        self._renewal = None
        self._confirms.fail_all(PublishFailed(f"{reason} (before confirm)"))
        self._drop_retiring(PublishFailed(f"{reason} (before confirm)"))

    def _publishing_stopped(self) -> None:
        """Nothing more will be published: fail the unconfirmed and what waits to be sent."""
        self._confirms.fail_all(PublishFailed("session stopped before confirm"))
        self._drop_retiring(PublishFailed("session stopped before confirm"))
        outbox, self._outbox = self._outbox, deque()
        for _message, on_confirm in outbox:
            on_confirm(PublishFailed("session stopped before the message was sent"))
