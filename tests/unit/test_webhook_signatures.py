"""Webhook signatures (common/webhooks.py): Standard Webhooks, signed and verified with an
injected clock; every malformed input is one WebhookSignatureInvalid."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from common.errors import ConfigurationError, WebhookSignatureInvalid
from common.models import PaymentResult, PaymentStatus
from common.webhooks import new_webhook_secret, sign_webhook, verify_webhook

NOW_S = 1_764_000_000
EVENT_ID = str(uuid.UUID("5f0c2a4e-6d7b-4f1e-9c3a-2b8d1e0f4a6c"))


def result_body(event_id: str = EVENT_ID) -> bytes:
    result = PaymentResult(
        event_id=uuid.UUID(event_id),
        payment_id=uuid.uuid4(),
        request_message_id="m-1",
        idempotency_key="order-1",
        merchant_reference="order-1",
        channel="card",
        status=PaymentStatus.SUCCEEDED,
        amount=None,
        attempts=1,
        payment_created_at=datetime.fromtimestamp(NOW_S, UTC),
        occurred_at=datetime.fromtimestamp(NOW_S, UTC),
    )
    return result.model_dump_json().encode()


@pytest.fixture
def secret() -> str:
    return new_webhook_secret()


def test_a_new_secret_is_whsec_and_32_random_bytes(secret: str):
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_webhook_secret() != secret


def test_a_signed_webhook_verifies_and_yields_its_result(secret: str):
    body = result_body()
    headers = sign_webhook(secret, EVENT_ID, body, NOW_S)
    result = verify_webhook(secret, headers, body, now_s=NOW_S)
    assert str(result.event_id) == EVENT_ID
    assert headers["webhook-id"] == EVENT_ID
    assert headers["webhook-timestamp"] == str(NOW_S)


def test_the_signature_is_hmac_sha256_over_id_timestamp_and_body_as_the_spec_says(secret: str):
    body = result_body()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{EVENT_ID}.{NOW_S}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert sign_webhook(secret, EVENT_ID, body, NOW_S)["webhook-signature"] == f"v1,{expected}"


def test_the_reference_library_verifies_what_we_sign(secret: str):
    now_s = int(datetime.now(UTC).timestamp())
    body = result_body()
    Webhook(secret).verify(body, sign_webhook(secret, EVENT_ID, body, now_s))


def test_header_names_are_matched_in_any_case(secret: str):
    body = result_body()
    headers = {k.title(): v for k, v in sign_webhook(secret, EVENT_ID, body, NOW_S).items()}
    assert verify_webhook(secret, headers, body, now_s=NOW_S).event_id == uuid.UUID(EVENT_ID)


def test_one_matching_signature_among_several_is_enough(secret: str):
    body = result_body()
    headers = sign_webhook(secret, EVENT_ID, body, NOW_S)
    headers["webhook-signature"] = "v2,abc v1,AAAA " + headers["webhook-signature"]
    verify_webhook(secret, headers, body, now_s=NOW_S)


def test_a_tampered_body_is_refused(secret: str):
    body = result_body()
    headers = sign_webhook(secret, EVENT_ID, body, NOW_S)
    with pytest.raises(WebhookSignatureInvalid, match="no webhook-signature matches"):
        verify_webhook(secret, headers, body.replace(b'"order-1"', b'"order-2"'), now_s=NOW_S)


def test_a_webhook_signed_with_another_secret_is_refused(secret: str):
    body = result_body()
    headers = sign_webhook(new_webhook_secret(), EVENT_ID, body, NOW_S)
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(secret, headers, body, now_s=NOW_S)


def test_a_changed_webhook_id_is_refused(secret: str):
    body = result_body()
    headers = sign_webhook(secret, EVENT_ID, body, NOW_S) | {"webhook-id": str(uuid.uuid4())}
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(secret, headers, body, now_s=NOW_S)


def test_a_signed_body_whose_event_id_differs_from_the_header_is_refused(secret: str):
    body = result_body()
    other = str(uuid.uuid4())
    with pytest.raises(WebhookSignatureInvalid, match="differs"):
        verify_webhook(secret, sign_webhook(secret, other, body, NOW_S), body, now_s=NOW_S)


def test_a_signed_body_that_is_not_a_result_event_is_refused(secret: str):
    body = b'{"hello": "world"}'
    with pytest.raises(WebhookSignatureInvalid, match="not a result event"):
        verify_webhook(secret, sign_webhook(secret, EVENT_ID, body, NOW_S), body, now_s=NOW_S)


@pytest.mark.parametrize("offset_s", [-301, 301, -86_400])
def test_a_timestamp_outside_the_tolerance_is_refused(secret: str, offset_s: int):
    body = result_body()
    headers = sign_webhook(secret, EVENT_ID, body, NOW_S + offset_s)
    with pytest.raises(WebhookSignatureInvalid, match="off, more than 300 s"):
        verify_webhook(secret, headers, body, now_s=NOW_S)


@pytest.mark.parametrize("offset_s", [-300, 300])
def test_a_timestamp_at_the_edge_of_the_tolerance_is_accepted(secret: str, offset_s: int):
    body = result_body()
    verify_webhook(
        secret, sign_webhook(secret, EVENT_ID, body, NOW_S + offset_s), body, now_s=NOW_S
    )


def test_the_tolerance_is_an_argument(secret: str):
    body = result_body()
    headers = sign_webhook(secret, EVENT_ID, body, NOW_S - 10)
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(secret, headers, body, now_s=NOW_S, tolerance_s=5)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(secret: str, missing: str):
    body = result_body()
    headers = sign_webhook(secret, EVENT_ID, body, NOW_S)
    del headers[missing]
    with pytest.raises(WebhookSignatureInvalid, match="missing"):
        verify_webhook(secret, headers, body, now_s=NOW_S)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook-timestamp", "1e9"),
        ("webhook-timestamp", "nan"),
        ("webhook-timestamp", "-5"),
        ("webhook-timestamp", "17640000000000000"),
        ("webhook-signature", "v1"),
        ("webhook-signature", "v1,not base64!"),
        ("webhook-signature", "v1,a,b,c"),
        ("webhook-signature", ","),
        ("webhook-signature", "   "),
    ],
)
def test_garbled_headers_are_refused_with_one_error_class(secret: str, name: str, value: str):
    body = result_body()
    headers = sign_webhook(secret, EVENT_ID, body, NOW_S) | {name: value}
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(secret, headers, body, now_s=NOW_S)


def test_a_body_that_is_not_utf8_is_refused(secret: str):
    headers = sign_webhook(secret, EVENT_ID, b"{}", NOW_S)
    with pytest.raises(WebhookSignatureInvalid, match="UTF-8"):
        verify_webhook(secret, headers, b"\xff\xfe", now_s=NOW_S)


@pytest.mark.parametrize("bad", ["whsec_not base64!", "whsec_", "whsec_AAAA"])
def test_an_unusable_secret_is_a_configuration_error(bad: str):
    with pytest.raises(ConfigurationError):
        sign_webhook(bad, EVENT_ID, b"{}", NOW_S)
