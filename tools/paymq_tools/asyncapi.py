"""docs/asyncapi.yaml: an AsyncAPI 3.0 document of every exchange, queue and message, built from
the topology (common/topology.py), the envelope's headers and the models' JSON Schemas, so it
cannot say anything the code does not do. `paymq contract` writes it; a test keeps it current
and validates it against AsyncAPI's own JSON Schema (npm `@asyncapi/specs`)."""

from __future__ import annotations

from typing import Any

import yaml

from common import envelope
from common.models import PaymentRequest, PaymentResult
from common.signing import REQUEST_TYPE, RESULT_TYPE
from common.topology import Topology
from common.tracing import TRACEPARENT, TRACESTATE

_REF = "#/components/schemas/{model}"
_INT_HEADER = {"type": "integer", "minimum": 0}
_TEXT_HEADER = {"type": "string"}

_SIGNED_HEADERS = {
    envelope.HEADER_KEY_ID: _TEXT_HEADER | {"description": "The signing key's id."},
    envelope.HEADER_ROUTE: _TEXT_HEADER
    | {"description": "Requests: the channel (the routing key). Results: the result routing key."},
    envelope.HEADER_CREATED_AT_MS: _INT_HEADER | {"description": "Milliseconds since the epoch."},
    envelope.HEADER_EXPIRES_AT_MS: _INT_HEADER
    | {"description": "After this the message is not acted on (requests: `expired`)."},
    envelope.HEADER_SIGNATURE: _TEXT_HEADER
    | {"description": "Ed25519 signature, base64, of the signing input (docs/protocol.md)."},
}
_RETRY_HEADERS = {
    envelope.HEADER_ATTEMPTS: _INT_HEADER | {"description": "Provider attempts so far."},
    envelope.HEADER_OUTCOME_UNKNOWN: _INT_HEADER
    | {"description": "1 when an earlier attempt's outcome was unknown."},
    envelope.HEADER_NOT_BEFORE_MS: _INT_HEADER,
    envelope.HEADER_RETRY_KEY_ID: _TEXT_HEADER,
    envelope.HEADER_RETRY_SIGNATURE: _TEXT_HEADER
    | {"description": "The worker's signature over the retry state."},
}
#: Optional and unsigned: correlation only, never authority (common/tracing.py).
_TRACE_HEADERS = {
    TRACEPARENT: _TEXT_HEADER
    | {
        "description": "W3C Trace Context of the span that made the message (OpenTelemetry); "
        "not signed, never acted on.",
        "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
    },
    TRACESTATE: _TEXT_HEADER | {"description": "W3C Trace Context vendor state."},
}
_DEAD_LETTER_HEADERS = {
    envelope.HEADER_DEAD_LETTER_CODE: _TEXT_HEADER | {"description": "Why: the result's code."},
    envelope.HEADER_DEAD_LETTER_REASON: _TEXT_HEADER,
    envelope.HEADER_DEAD_LETTERED_AT_MS: _INT_HEADER,
    envelope.HEADER_ORIGINAL_ROUTING_KEY: _TEXT_HEADER
    | {
        "description": "On a dead letter put back by `paymq dlq` after a look, through the "
        "default exchange: the routing key it had (its channel)."
    },
}


def _headers(*groups: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for group in groups:
        properties |= group
    return {"type": "object", "properties": properties, "required": list(required)}


def _message(name: str, message_type: str, model: str, headers: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": message_type,
        "title": name,
        "contentType": "application/json",
        "headers": headers,
        "payload": {"$ref": _REF.format(model=model)},
        "bindings": {"amqp": {"messageType": message_type, "bindingVersion": "0.3.0"}},
    }


def _exchange(name: str, kind: str) -> dict[str, Any]:
    return {
        "is": "routingKey",
        "exchange": {"name": name, "type": kind, "durable": True, "autoDelete": False},
        "bindingVersion": "0.3.0",
    }


def _queue(name: str) -> dict[str, Any]:
    return {
        "is": "queue",
        "queue": {"name": name, "durable": True, "exclusive": False, "autoDelete": False},
        "bindingVersion": "0.3.0",
    }


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (PaymentRequest, PaymentResult):
        schema = model.model_json_schema(ref_template=_REF)
        schemas |= schema.pop("$defs", {})
        schemas[model.__name__] = schema
    converted: dict[str, Any] = _asyncapi_discriminators(schemas)
    return converted


def _asyncapi_discriminators(node: Any) -> Any:
    """pydantic writes OpenAPI's discriminator object; an AsyncAPI schema names the property."""
    if isinstance(node, dict):
        return {
            key: value["propertyName"]
            if key == "discriminator" and isinstance(value, dict)
            else _asyncapi_discriminators(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_asyncapi_discriminators(item) for item in node]
    return node


def asyncapi_document(topology: Topology | None = None) -> dict[str, Any]:
    topology = topology or Topology()
    request_headers = _headers(
        _SIGNED_HEADERS, _RETRY_HEADERS, _TRACE_HEADERS, required=tuple(_SIGNED_HEADERS)
    )
    result_headers = _headers(_SIGNED_HEADERS, _TRACE_HEADERS, required=tuple(_SIGNED_HEADERS))
    dead_headers = _headers(_SIGNED_HEADERS, _RETRY_HEADERS, _TRACE_HEADERS, _DEAD_LETTER_HEADERS)
    messages = {
        "PaymentRequest": _message(
            "A signed payment request", REQUEST_TYPE, "PaymentRequest", request_headers
        ),
        "PaymentResult": _message(
            "A signed result event", RESULT_TYPE, "PaymentResult", result_headers
        ),
        "DeadLetter": _message(
            "A request or result set aside, with why", REQUEST_TYPE, "PaymentRequest", dead_headers
        ),
    }
    request_ref = {"$ref": "#/components/messages/PaymentRequest"}
    result_ref = {"$ref": "#/components/messages/PaymentResult"}
    channels: dict[str, Any] = {
        "requests": {
            "address": topology.requests_exchange,
            "description": "Producers publish signed requests here, routing key = channel "
            f"({', '.join(topology.channels)}); persistent, mandatory, with confirms.",
            "messages": {"PaymentRequest": request_ref},
            "bindings": {"amqp": _exchange(topology.requests_exchange, "direct")},
        },
        "results": {
            "address": topology.results_exchange,
            "description": "Workers publish signed result events, routing key "
            "`<channel>.<status>`; bind a queue of your own to subscribe: durable, "
            "`x-queue-type: quorum`, an `x-delivery-limit`, a dead-letter exchange with "
            "`x-dead-letter-strategy: "
            "at-least-once` and `x-overflow: reject-publish`, and no length limit or TTL. "
            "Events published before your binding exists are never delivered to it.",
            "messages": {"PaymentResult": result_ref},
            "bindings": {"amqp": _exchange(topology.results_exchange, "topic")},
        },
        "notifications": {
            "address": topology.notifications_queue,
            "description": "Every result event (bound to the results exchange with `#`), for "
            "one application that consumes it, up to `x-max-length` events "
            f"({topology.notifications_max_length}, PAYMQ_NOTIFICATIONS_MAX_LENGTH): past it "
            "the oldest is dropped (`x-overflow: drop-head`). Whoever must see every event "
            "binds a queue of its own to the results exchange.",
            "messages": {"PaymentResult": result_ref},
            "bindings": {"amqp": _queue(topology.notifications_queue)},
        },
        "webhooks": {
            "address": topology.webhooks_queue,
            "description": "Every result event, for `paymq webhooks run` to POST to registered "
            "URLs (docs/webhooks.md); quorum, delivery limit, dead-lettered. Declared by that "
            "process only: events published before its first run are not delivered.",
            "messages": {"PaymentResult": result_ref},
            "bindings": {"amqp": _queue(topology.webhooks_queue)},
        },
        "deadLetter": {
            "address": topology.dead_letter_queue,
            "description": "Rejected, expired and in-doubt requests (and what the broker "
            "dead-lettered), with the reason in headers.",
            "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
            "bindings": {"amqp": _queue(topology.dead_letter_queue)},
        },
    }
    for channel in topology.channels:
        queue = topology.work_queue(channel)
        channels[f"work.{channel}"] = {
            "address": queue,
            "description": f"The {channel} workers' queue (quorum, delivery limit "
            f"{topology.delivery_limit}).",
            "messages": {"PaymentRequest": request_ref},
            "bindings": {"amqp": _queue(queue)},
        }
    for delay_ms in topology.retry_delays_ms:
        queue = topology.retry_exchange(delay_ms)
        channels[f"retry.{delay_ms}ms"] = {
            "address": queue,
            "description": f"Retry tier: a request waits {delay_ms} ms, then returns to the "
            "requests exchange with the worker's signed retry state.",
            "messages": {"PaymentRequest": request_ref},
            "bindings": {"amqp": _queue(queue)},
        }
    operations: dict[str, Any] = {
        "sendPaymentRequest": {
            "action": "send",
            "channel": {"$ref": "#/channels/requests"},
            "summary": "Publish a signed payment request (persistent, mandatory, confirmed).",
            "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True, "bindingVersion": "0.3.0"}},
        },
        "receiveResult": {
            "action": "receive",
            "channel": {"$ref": "#/channels/notifications"},
            "summary": "Receive result events (or bind your own queue to the results exchange).",
        },
        "sendResult": {
            "action": "send",
            "channel": {"$ref": "#/channels/results"},
            "summary": "A worker publishes a payment's signed result.",
        },
        "receiveWebhookEvent": {
            "action": "receive",
            "channel": {"$ref": "#/channels/webhooks"},
            "summary": "The webhook sender verifies each result event and delivers it.",
        },
        "receiveDeadLetter": {
            "action": "receive",
            "channel": {"$ref": "#/channels/deadLetter"},
            "summary": "Inspect and replay what was set aside (`paymq dlq`).",
        },
    }
    for channel in topology.channels:
        operations[f"receive.{channel}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/work.{channel}"},
            "summary": f"A {channel} worker consumes requests.",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "paymq",
            "version": "1",
            "description": "Signed payment requests over RabbitMQ, executed by per-channel "
            "workers, with signed result events. Exact bytes, signatures and semantics: "
            "docs/protocol.md. Names shown for the default prefix `paymq`.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": _schemas()},
    }


def asyncapi_yaml() -> str:
    text: str = yaml.safe_dump(asyncapi_document(), sort_keys=True, allow_unicode=True, width=100)
    return text
