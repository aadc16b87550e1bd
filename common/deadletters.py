"""Dead-lettering: the copy of a refused or abandoned message that goes to the dead-letter
exchange for an operator, with why it is there. Pure. The one place that decides what such a
copy may hold: never a card number in clear, never an oversized body."""

from __future__ import annotations

import dataclasses
import json

from common.envelope import (
    HEADER_DEAD_LETTER_CODE,
    HEADER_DEAD_LETTER_REASON,
    HEADER_DEAD_LETTERED_AT_MS,
    InboundMessage,
    OutboundMessage,
)
from common.errors import BodyTooLarge, PanInClear, PaymqError
from common.pan import contains_pan, document_fields_with_pans
from common.redact import mask_pans
from common.topology import Topology


def dead_letter_copy(
    message: InboundMessage, topology: Topology, error: PaymqError, now_ms: int
) -> OutboundMessage:
    """The message as received, for an operator, with why it is there; a message whose body
    holds a card number in clear (whatever it was refused for) is kept with every card number
    masked instead (such a body would be refused again anyway), and one refused for its size
    without its body (its reason says how large it was): the dead-letter queue is not where an
    oversized body gets stored after all."""
    copy = message.resend(
        topology.dead_letter_exchange,
        message.routing_key,
        {
            HEADER_DEAD_LETTER_CODE: error.code,
            HEADER_DEAD_LETTER_REASON: mask_pans(error.reason)[:500],
            HEADER_DEAD_LETTERED_AT_MS: now_ms,
        },
    )
    if isinstance(error, BodyTooLarge):
        copy = dataclasses.replace(copy, body=b"")
    elif isinstance(error, PanInClear) or holds_card_number(message.body):
        masked = mask_pans(message.body.decode("utf-8", errors="replace")).encode()
        copy = dataclasses.replace(copy, body=masked)
    return copy


def holds_card_number(body: bytes) -> bool:
    """Whether a body holds a card number in clear: in a JSON document's fields, or anywhere
    in a body that is not JSON."""
    try:
        document = json.loads(body)
    except ValueError:  # not JSON (or not UTF-8): any digits may be a card number
        return contains_pan(body.decode("utf-8", errors="replace"))
    return bool(document_fields_with_pans(document))
