"""The published contract: JSON Schemas of the models and test vectors for other implementations.

`paymq contract export` writes docs/schemas/*.schema.json and docs/vectors/*.json; tests fail
when the committed files differ from what the code generates (the sealed-card vector is random by
nature, so its test opens it instead of regenerating it).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import BaseModel

from common.envelope import sign_message
from common.keyring import TrustedKey
from common.models import PaymentRequest, PaymentResult
from common.sealing import CardData, seal_card
from common.signing import REQUEST_TYPE, SignedFields, Signer
from paymq_tools.asyncapi import asyncapi_yaml

SCHEMAS: dict[str, type[BaseModel]] = {
    "payment_request": PaymentRequest,
    "payment_result": PaymentResult,
    "card_data": CardData,
    "trusted_key": TrustedKey,
}

#: Fixed test keys. Never use them for anything but checking an implementation.
VECTOR_SIGNING_SEED = bytes.fromhex(
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
)
VECTOR_SEALING_SEED = bytes.fromhex(
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
)
VECTOR_CREATED_AT_MS = 1_764_000_000_000
VECTOR_EXPIRES_AT_MS = VECTOR_CREATED_AT_MS + 86_400_000

VECTOR_REQUEST_BODY = (
    b'{"payment_id":"0b6e8f5e-4a8e-4c52-9a57-3f1d8b6c2a10","idempotency_key":"order-1001",'
    b'"merchant_reference":"order-1001","amount":{"amount_minor":1050,"currency":"USD"},'
    b'"details":{"type":"card","source":{"type":"token","token":"tok_visa"}},'
    b'"created_at":"2025-11-24T16:00:00Z","expires_at":"2025-11-25T16:00:00Z","metadata":{}}'
)


def schema_documents() -> dict[str, str]:
    """File name -> JSON text of each schema (stable formatting)."""
    out = {}
    for name, model in SCHEMAS.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://paymq.dev/schemas/{name}.schema.json"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _raw_public(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def signature_vector() -> dict[str, Any]:
    """Deterministic: Ed25519 signatures depend only on the key and the input."""
    key = Ed25519PrivateKey.from_private_bytes(VECTOR_SIGNING_SEED)
    fields = SignedFields(
        message_type=REQUEST_TYPE,
        key_id="vector-producer-1",
        route="card",
        message_id="5f0c2b8e-9d3a-4e61-8a0f-2c7d9e4b1a36",
        created_at_ms=VECTOR_CREATED_AT_MS,
        expires_at_ms=VECTOR_EXPIRES_AT_MS,
    )
    message = sign_message(
        Signer(fields.key_id, key),
        fields,
        VECTOR_REQUEST_BODY,
        exchange="paymq.requests",
        routing_key="card",
    )
    return {
        "description": "A payment request signed with Ed25519 (docs/protocol.md#signatures).",
        "private_key_seed_hex": VECTOR_SIGNING_SEED.hex(),
        "public_key_base64": _b64(_raw_public(key)),
        "amqp": {
            "exchange": message.exchange,
            "routing_key": message.routing_key,
            "properties": {
                "message_id": message.message_id,
                "type": message.message_type,
                "content_type": message.content_type,
                "delivery_mode": 2,
            },
            "headers": dict(message.headers),
        },
        "body_utf8": VECTOR_REQUEST_BODY.decode(),
        "signing_input_base64": _b64(fields.signing_input(VECTOR_REQUEST_BODY)),
        "signing_input_prefix_utf8": fields.prefix().decode("ascii"),
        "signature_base64": message.headers["paymq-signature"],
    }


def sealed_card_vector() -> dict[str, Any]:
    """Random by nature (fresh data key, HPKE ephemeral key): check it by opening it."""
    recipient = X25519PrivateKey.from_private_bytes(VECTOR_SEALING_SEED)
    card = CardData(number="4242424242424242", exp_month=12, exp_year=2030, cvc="123")
    aad = signature_vector()["signing_input_prefix_utf8"].encode("ascii")
    sealed = seal_card(card, kid="vector-card-seal-1", public_key=recipient.public_key(), aad=aad)
    return {
        "description": "Card data sealed for a card worker (docs/protocol.md#card-data-sealing).",
        "recipient_private_key_hex": VECTOR_SEALING_SEED.hex(),
        "recipient_public_key_base64": _b64(_raw_public(recipient)),
        "hpke_info_utf8": "paymq.card_data.v1\nvector-card-seal-1",
        "associated_data_utf8": aad.decode("ascii"),
        "sealed": sealed.model_dump(mode="json"),
        "plaintext_utf8": card.model_dump_json(),
    }


def export(directory: Path, *, include_sealed: bool = True) -> list[Path]:
    written = []
    schemas = directory / "schemas"
    schemas.mkdir(parents=True, exist_ok=True)
    for name, text in schema_documents().items():
        path = schemas / name
        path.write_text(text)
        written.append(path)
    vectors = directory / "vectors"
    vectors.mkdir(parents=True, exist_ok=True)
    documents = {"signature.json": signature_vector()}
    if include_sealed:
        documents["sealed_card.json"] = sealed_card_vector()
    for name, document in documents.items():
        path = vectors / name
        path.write_text(json.dumps(document, indent=2) + "\n")
        written.append(path)
    asyncapi = directory / "asyncapi.yaml"
    asyncapi.write_text(asyncapi_yaml())
    written.append(asyncapi)
    return written
