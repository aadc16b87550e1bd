"""pika's types <-> paymq's plain messages, and connection parameters from a broker address."""

from __future__ import annotations

import pika
from pika.spec import Basic, BasicProperties

from common.amqp.nodes import NodeRotation
from common.envelope import InboundMessage, OutboundMessage
from common.pan import contains_pan
from common.redact import mask_pans


def properties_for(message: OutboundMessage) -> BasicProperties:
    return BasicProperties(
        content_type=message.content_type,
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=message.message_id,
        type=message.message_type,
        timestamp=message.timestamp_s,
        headers=dict(message.headers),
    )


def inbound_from(
    method: Basic.Deliver | Basic.GetOk, properties: BasicProperties, body: bytes
) -> InboundMessage:
    message_id = properties.message_id
    # A producer chooses the id, and results, dead letters and logs echo it: a card number in
    # it is masked here, before anything reads it, and the message is refused.
    card_number_in_id = message_id is not None and contains_pan(message_id)
    return InboundMessage(
        body=body,
        exchange=method.exchange,
        routing_key=method.routing_key,
        content_type=properties.content_type,
        message_id=mask_pans(message_id) if card_number_in_id else message_id,
        card_number_in_message_id=card_number_in_id,
        message_type=properties.type,
        headers=dict(properties.headers or {}),
        redelivered=bool(method.redelivered),
        content_encoding=properties.content_encoding,
    )


def connection_parameters(
    url: str, *, heartbeat_s: int, connect_timeout_s: float, name: str
) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = heartbeat_s
    params.socket_timeout = connect_timeout_s
    params.stack_timeout = connect_timeout_s
    params.connection_attempts = 1
    # A broker memory/disk alarm blocks publishers; past this, the connection is dropped and
    # unconfirmed messages are republished with the same message id on a new one.
    params.blocked_connection_timeout = 60
    params.client_properties = {"connection_name": name}
    return params


def node_parameters(
    address: str, *, heartbeat_s: int, connect_timeout_s: float, name: str
) -> list[pika.URLParameters]:
    """Parameters for every node of the address, in an order of this call's own: pika's
    BlockingConnection tries them in turn and keeps the first that opens."""
    return [
        connection_parameters(
            url, heartbeat_s=heartbeat_s, connect_timeout_s=connect_timeout_s, name=name
        )
        for url in NodeRotation(address).urls
    ]
