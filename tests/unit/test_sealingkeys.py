"""A card worker's private sealing keys follow its keys directory: a key added during a rotation
opens without a restart, a key removed opens no more, a broken file at start-up stops it."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.details import SealedCard
from common.errors import ConfigurationError, SealedDataInvalid
from common.keygen import generate_key, init_keys, remove_key, set_status
from common.keyring import PRIVATE_DIR, TRUSTED_DIR, Keyring, KeyRole, KeyStatus
from common.sealing import CardData, open_card, seal_card
from common.sealingkeys import SealingKeys
from common.trustedkeys import trusted_keyring

AAD = b"the signed prefix\n"
CARD = CardData(number="4242424242424242", exp_month=12, exp_year=2031, cvc="123")


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    init_keys(tmp_path, producer_key_id="p-1", worker_key_id="w-1", sealing_key_id="seal-1")
    return tmp_path


def sealed_to(keys: Path, kid: str) -> SealedCard:
    _, public_key = Keyring.load(keys / TRUSTED_DIR).sealing_key("card", kid)
    return seal_card(CARD, kid=kid, public_key=public_key, aad=AAD)


def test_a_sealing_key_added_while_the_worker_runs_opens_card_data_sealed_to_it(keys: Path):
    private_keys = SealingKeys(keys, trusted_keyring(keys, check_every_s=0.0))
    assert list(private_keys) == ["seal-1"]
    generate_key(keys, key_id="seal-2", role=KeyRole.SEALING, channels=("card",))
    sealed = sealed_to(keys, "seal-2")
    assert open_card(sealed, private_keys=private_keys, aad=AAD) == CARD


def test_a_retired_sealing_key_still_opens_until_it_is_removed(keys: Path):
    private_keys = SealingKeys(keys, trusted_keyring(keys, check_every_s=0.0))
    sealed = sealed_to(keys, "seal-1")
    generate_key(keys, key_id="seal-2", role=KeyRole.SEALING, channels=("card",))
    set_status(keys, "seal-1", KeyStatus.RETIRED)
    assert open_card(sealed, private_keys=private_keys, aad=AAD) == CARD
    remove_key(keys, "seal-1")
    with pytest.raises(SealedDataInvalid, match="no private sealing key 'seal-1'"):
        open_card(sealed, private_keys=private_keys, aad=AAD)


def test_a_private_file_that_is_not_a_sealing_key_stops_the_worker_at_start(keys: Path):
    (keys / PRIVATE_DIR / "seal-1.pem").write_bytes((keys / PRIVATE_DIR / "w-1.pem").read_bytes())
    with pytest.raises(ConfigurationError, match="not an X25519 key"):
        SealingKeys(keys, trusted_keyring(keys))


def test_a_broken_file_for_a_new_key_refuses_its_messages_and_is_read_again(keys: Path):
    private_keys = SealingKeys(keys, trusted_keyring(keys, check_every_s=0.0))
    generate_key(keys, key_id="seal-2", role=KeyRole.SEALING, channels=("card",))
    sealed = sealed_to(keys, "seal-2")
    good = (keys / PRIVATE_DIR / "seal-2.pem").read_bytes()
    (keys / PRIVATE_DIR / "seal-2.pem").write_text("half a key")
    with pytest.raises(SealedDataInvalid, match="no private sealing key 'seal-2'"):
        open_card(sealed, private_keys=private_keys, aad=AAD)
    (keys / PRIVATE_DIR / "seal-2.pem").write_bytes(good)
    assert open_card(sealed, private_keys=private_keys, aad=AAD) == CARD
