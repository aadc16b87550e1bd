"""The published contract files stay true to the code: schemas, vectors, configuration docs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jsonschema import Draft202012Validator

from common.models import PaymentRequest
from common.sealing import CardData
from paymq.configdoc import render
from paymq_tools.contract import schema_documents, signature_vector

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_committed_json_schemas_match_the_models() -> None:
    for name, text in schema_documents().items():
        committed = (DOCS / "schemas" / name).read_text()
        assert committed == text, f"docs/schemas/{name} is stale: run `paymq contract`"


def test_json_schemas_are_valid_and_accept_the_vector_body() -> None:
    schema = json.loads((DOCS / "schemas" / "payment_request.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    body = json.loads(json.loads((DOCS / "vectors" / "signature.json").read_text())["body_utf8"])
    Draft202012Validator(schema).validate(body)
    body["amount"]["amount_minor"] = 10.5
    assert not Draft202012Validator(schema).is_valid(body)


def test_committed_signature_vector_matches_the_code() -> None:
    committed = json.loads((DOCS / "vectors" / "signature.json").read_text())
    assert committed == json.loads(json.dumps(signature_vector()))


def test_signature_vector_verifies_from_its_documented_parts() -> None:
    # Given only the vector's fields, as another implementation would have them
    vector = json.loads((DOCS / "vectors" / "signature.json").read_text())
    prefix = vector["signing_input_prefix_utf8"].encode()
    body = vector["body_utf8"].encode()
    headers = vector["amqp"]["headers"]
    props = vector["amqp"]["properties"]
    rebuilt = (
        f"{props['type']}\n{headers['paymq-key-id']}\n{headers['paymq-route']}\n"
        f"{props['message_id']}\n{headers['paymq-created-at-ms']}\n"
        f"{headers['paymq-expires-at-ms']}\n"
    ).encode()
    # Then the signing input is prefix + body, and the signature verifies over it
    assert rebuilt == prefix
    assert base64.b64decode(vector["signing_input_base64"]) == prefix + body
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(vector["public_key_base64"]))
    public.verify(base64.b64decode(vector["signature_base64"]), prefix + body)
    PaymentRequest.model_validate_json(body)


def test_sealed_card_vector_opens_with_the_documented_steps() -> None:
    vector = json.loads((DOCS / "vectors" / "sealed_card.json").read_text())
    private = X25519PrivateKey.from_private_bytes(
        bytes.fromhex(vector["recipient_private_key_hex"])
    )
    sealed = vector["sealed"]
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    data_key = suite.decrypt(
        base64.b64decode(sealed["wrapped_key"]),
        private,
        info=vector["hpke_info_utf8"].encode(),
    )
    plaintext = AESGCM(data_key).decrypt(
        base64.b64decode(sealed["nonce"]),
        base64.b64decode(sealed["ciphertext"]),
        vector["associated_data_utf8"].encode(),
    )
    assert plaintext.decode() == vector["plaintext_utf8"]
    assert CardData.model_validate_json(plaintext).last4 == "4242"


def test_configuration_docs_match_the_settings_class() -> None:
    committed = (DOCS / "configuration.md").read_text()
    assert committed == render(), "docs/configuration.md is stale: run `paymq config docs`"
