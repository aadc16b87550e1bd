"""The keyring: who may sign what, and start-up refusal of unusable keyrings."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from common.errors import ConfigurationError, KeyNotAllowed, UnknownKey
from common.keyring import (
    REQUEST_SIGNERS,
    Keyring,
    KeyRole,
    KeyStatus,
    TrustedKey,
    write_trusted_key,
)


def public_b64(algorithm: str) -> str:
    private = (
        Ed25519PrivateKey.generate() if algorithm == "ed25519" else X25519PrivateKey.generate()
    )
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode()


def trusted(key_id: str = "k-1", **changes: Any) -> TrustedKey:
    values: dict[str, Any] = {
        "key_id": key_id,
        "owner": "shop",
        "role": KeyRole.PRODUCER,
        "algorithm": "ed25519",
        "public_key": public_b64("ed25519"),
        "channels": ("card",),
    }
    return TrustedKey.model_validate({**values, **changes})


def test_a_keyring_loads_every_json_file_of_its_directory(tmp_path: Path):
    write_trusted_key(tmp_path, trusted("k-1"))
    write_trusted_key(tmp_path, trusted("k-2", role=KeyRole.WORKER))
    (tmp_path / "README.txt").write_text("ignored")
    assert len(Keyring.load(tmp_path)) == 2


def test_a_duplicate_key_id_is_a_configuration_error(tmp_path: Path):
    key = trusted("k-1")
    (tmp_path / "a.json").write_text(key.model_dump_json())
    (tmp_path / "b.json").write_text(trusted("k-1").model_dump_json())
    with pytest.raises(ConfigurationError, match="appears twice"):
        Keyring.load(tmp_path)


@pytest.mark.parametrize("role", [KeyRole.PRODUCER, KeyRole.WORKER])
def test_an_x25519_key_marked_as_a_signer_is_a_configuration_error(role: KeyRole):
    key = trusted(role=role, algorithm="x25519", public_key=public_b64("x25519"))
    with pytest.raises(ConfigurationError, match="must be ed25519"):
        Keyring([key])


def test_an_ed25519_key_marked_as_a_sealing_key_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="must be x25519"):
        Keyring([trusted(role=KeyRole.SEALING)])


def test_a_missing_keyring_directory_is_a_configuration_error(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        Keyring.load(tmp_path / "absent")


@pytest.mark.parametrize(
    "content",
    [
        "{",
        json.dumps({"key_id": "k-1"}),
        trusted().model_dump_json()[:-1] + ', "extra": 1}',
        trusted().model_dump_json().replace('"ed25519"', '"rsa"'),
        trusted().model_dump_json().replace('"active"', '"revoked"'),
    ],
    ids=["not-json", "incomplete", "extra-field", "algorithm", "status"],
)
def test_a_malformed_trusted_key_file_is_a_configuration_error(tmp_path: Path, content: str):
    (tmp_path / "k-1.json").write_text(content)
    with pytest.raises(ConfigurationError, match="not a valid trusted key"):
        Keyring.load(tmp_path)


def test_get_of_an_unknown_key_raises_unknown_key():
    with pytest.raises(UnknownKey):
        Keyring([trusted()]).get("k-2")


def test_authorize_returns_an_active_key_with_the_role_and_channel():
    key = trusted()
    assert Keyring([key]).authorize("k-1", role=KeyRole.PRODUCER, channel="card") == key


@pytest.mark.parametrize(
    ("changes", "role", "channel", "message"),
    [
        ({"status": KeyStatus.RETIRED}, KeyRole.PRODUCER, "card", "is retired"),
        ({}, KeyRole.WORKER, "card", "is a producer key, not worker"),
        ({}, KeyRole.PRODUCER, "digital_currency", "not allowed for channel"),
    ],
    ids=["retired", "wrong-role", "wrong-channel"],
)
def test_authorize_refuses_retired_keys_other_roles_and_other_channels(
    changes: dict[str, Any], role: KeyRole, channel: str, message: str
):
    keyring = Keyring([trusted(**changes)])
    with pytest.raises(KeyNotAllowed, match=message):
        keyring.authorize("k-1", role=role, channel=channel)


def test_a_retiring_key_still_verifies_what_it_signed():
    # Messages signed before the signer switched are in flight: they stay good.
    keyring = Keyring([trusted(status=KeyStatus.RETIRING)])
    assert keyring.authorize("k-1", role=KeyRole.PRODUCER, channel="card").key_id == "k-1"


def test_a_signer_takes_only_an_active_key_of_its_own_role():
    keyring = Keyring(
        [
            trusted("p-1"),
            trusted("p-0", status=KeyStatus.RETIRING),
            trusted("p-old", status=KeyStatus.RETIRED),
        ]
    )
    assert keyring.signing_entry("p-1", KeyRole.PRODUCER).key_id == "p-1"
    with pytest.raises(ConfigurationError, match="'p-0' is retiring: nothing new is signed"):
        keyring.signing_entry("p-0", KeyRole.PRODUCER)
    with pytest.raises(ConfigurationError, match="'p-old' is retired"):
        keyring.signing_entry("p-old", KeyRole.PRODUCER)
    with pytest.raises(ConfigurationError, match="is a producer key; this process signs with a"):
        keyring.signing_entry("p-1", KeyRole.WORKER)
    with pytest.raises(UnknownKey):
        keyring.signing_entry("p-2", KeyRole.PRODUCER)


def test_a_request_may_be_signed_by_a_producer_or_a_gateway_key_and_nothing_else():
    keyring = Keyring(
        [
            trusted("p-1"),
            trusted("g-1", owner="api-gateway", role=KeyRole.GATEWAY),
            trusted("w-1", owner="worker", role=KeyRole.WORKER),
        ]
    )
    assert keyring.authorize("p-1", role=REQUEST_SIGNERS, channel="card").key_id == "p-1"
    assert keyring.authorize("g-1", role=REQUEST_SIGNERS, channel="card").key_id == "g-1"
    with pytest.raises(KeyNotAllowed, match="is a worker key, not producer or gateway"):
        keyring.authorize("w-1", role=REQUEST_SIGNERS, channel="card")


def test_an_owner_holding_producer_and_gateway_keys_is_refused():
    # Idempotency is scoped by owner: a producer of the gateway's owner could take an API
    # tenant's idempotency key ("shop:victim") and leave the tenant's payment refused
    with pytest.raises(ConfigurationError, match="owner 'shop' holds both producer and gateway"):
        Keyring([trusted("p-1"), trusted("g-1", role=KeyRole.GATEWAY)])


def sealing(key_id: str, **changes: Any) -> TrustedKey:
    return trusted(
        key_id, role=KeyRole.SEALING, algorithm="x25519", public_key=public_b64("x25519"), **changes
    )


def test_the_sealing_key_is_the_only_active_one_for_the_channel():
    keyring = Keyring(
        [
            sealing("seal-1"),
            sealing("seal-3", status=KeyStatus.RETIRED),
            sealing("seal-4", channels=("digital_currency",)),
        ]
    )
    kid, public_key = keyring.sealing_key("card")
    assert kid == "seal-1"
    assert public_key.public_bytes_raw() == keyring.get("seal-1").raw_public_key()


def test_a_retiring_sealing_key_is_sealed_to_no_more():
    # Phasing the old key out ends the rotation's overlap: producers need no name again.
    keyring = Keyring([sealing("seal-1", status=KeyStatus.RETIRING), sealing("seal-2")])
    assert keyring.sealing_key("card")[0] == "seal-2"


def test_during_a_rotation_the_sealing_key_must_be_named():
    keyring = Keyring([sealing("seal-9"), sealing("seal-10")])
    with pytest.raises(ConfigurationError, match="PAYMQ_SEALING_KEY_ID"):
        keyring.sealing_key("card")
    assert keyring.sealing_key("card", "seal-10")[0] == "seal-10"


def test_no_active_sealing_key_for_a_channel_is_a_configuration_error():
    keyring = Keyring([sealing("seal-1", status=KeyStatus.RETIRED), trusted("k-1")])
    with pytest.raises(ConfigurationError, match="no active sealing key"):
        keyring.sealing_key("card")
