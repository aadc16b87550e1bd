"""Key generation: a 0600 private key and its trusted entry; init is idempotent."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from common.errors import ConfigurationError, UnknownKey
from common.keygen import generate_key, init_keys, remove_key, set_status
from common.keyring import PRIVATE_DIR, TRUSTED_DIR, Keyring, KeyRole, KeyStatus
from common.signing import REQUEST_TYPE, SignedFields, Signer, verify


def init(keys_dir: Path) -> list[str]:
    created = init_keys(
        keys_dir, producer_key_id="producer-1", worker_key_id="worker-1", sealing_key_id="seal-1"
    )
    return [key.key_id for key in created]


def test_a_private_key_file_is_readable_by_its_owner_only(tmp_path: Path):
    generated = generate_key(
        tmp_path, key_id="p-1", owner="shop", role=KeyRole.PRODUCER, channels=("card",)
    )
    assert stat.S_IMODE(generated.private_path.stat().st_mode) == 0o600
    assert generated.private_path == tmp_path / PRIVATE_DIR / "p-1.pem"


def test_the_trusted_entry_records_owner_role_algorithm_channels_and_status(tmp_path: Path):
    generated = generate_key(
        tmp_path, key_id="w-1", owner="workers", role=KeyRole.WORKER, channels=("card",)
    )
    entry = json.loads(generated.trusted_path.read_text())
    assert entry | {"public_key": None} == {
        "key_id": "w-1",
        "owner": "workers",
        "role": "worker",
        "algorithm": "ed25519",
        "public_key": None,
        "channels": ["card"],
        "status": "active",
    }


def test_sealing_keys_are_x25519(tmp_path: Path):
    generate_key(tmp_path, key_id="s-1", owner="cards", role=KeyRole.SEALING, channels=("card",))
    key = Keyring.load(tmp_path / TRUSTED_DIR).get("s-1")
    assert key.algorithm == "x25519"


def test_generate_refuses_to_overwrite_an_existing_private_key(tmp_path: Path):
    generate_key(tmp_path, key_id="p-1", owner="a", role=KeyRole.PRODUCER, channels=("card",))
    before = (tmp_path / PRIVATE_DIR / "p-1.pem").read_bytes()
    with pytest.raises(ConfigurationError, match="already exists"):
        generate_key(tmp_path, key_id="p-1", owner="b", role=KeyRole.PRODUCER, channels=("card",))
    assert (tmp_path / PRIVATE_DIR / "p-1.pem").read_bytes() == before


def test_generate_refuses_unknown_channels_before_writing_anything(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="unknown channels"):
        generate_key(tmp_path, key_id="p-1", owner="a", role=KeyRole.PRODUCER, channels=("wire",))
    assert not any(tmp_path.iterdir())


def test_init_keys_creates_a_producer_a_gateway_a_worker_and_a_card_sealing_key(tmp_path: Path):
    assert init(tmp_path) == ["producer-1", "gateway-1", "worker-1", "seal-1"]
    keyring = Keyring.load(tmp_path / TRUSTED_DIR)
    roles = {key.key_id: (key.role, key.channels) for key in keyring.trusted_keys()}
    assert roles == {
        "producer-1": (KeyRole.PRODUCER, ("card", "digital_currency")),
        "gateway-1": (KeyRole.GATEWAY, ("card", "digital_currency")),
        "worker-1": (KeyRole.WORKER, ("card", "digital_currency")),
        "seal-1": (KeyRole.SEALING, ("card",)),
    }


def test_init_keys_is_idempotent_and_keeps_existing_keys(tmp_path: Path):
    init(tmp_path)
    files = sorted(tmp_path.rglob("*"))
    contents = {path: path.read_bytes() for path in files if path.is_file()}
    assert init(tmp_path) == []
    assert sorted(tmp_path.rglob("*")) == files
    assert {path: path.read_bytes() for path in contents} == contents


def test_init_keys_creates_only_the_missing_keys(tmp_path: Path):
    generate_key(tmp_path, key_id="worker-1", owner="w", role=KeyRole.WORKER, channels=("card",))
    assert init(tmp_path) == ["producer-1", "gateway-1", "seal-1"]


def test_a_generated_key_signs_what_its_keyring_verifies(tmp_path: Path):
    init(tmp_path)
    fields = SignedFields(REQUEST_TYPE, "producer-1", "card", "m-1", 1, 2)
    signature = Signer.load(tmp_path, "producer-1").sign(fields, b"{}")
    verify(Keyring.load(tmp_path / TRUSTED_DIR), fields, b"{}", signature)


def test_set_status_retires_and_reactivates_a_key(tmp_path: Path):
    init(tmp_path)
    set_status(tmp_path, "producer-1", KeyStatus.RETIRED)
    assert Keyring.load(tmp_path / TRUSTED_DIR).get("producer-1").status is KeyStatus.RETIRED
    set_status(tmp_path, "producer-1", KeyStatus.ACTIVE)
    assert Keyring.load(tmp_path / TRUSTED_DIR).get("producer-1").status is KeyStatus.ACTIVE


def test_set_status_of_an_unknown_key_is_a_configuration_error(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="no trusted key"):
        set_status(tmp_path, "nobody", KeyStatus.RETIRED)


def test_a_key_generated_without_an_owner_gets_its_roles_owner(tmp_path: Path):
    init(tmp_path)
    generate_key(tmp_path, key_id="gateway-2", role=KeyRole.GATEWAY, channels=("card",))
    keyring = Keyring.load(tmp_path / TRUSTED_DIR)
    assert keyring.get("gateway-2").owner == keyring.get("gateway-1").owner == "api-gateway"


def test_generate_refuses_a_key_that_would_break_the_keyring_before_writing_anything(
    tmp_path: Path,
):
    init(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    # An owner that holds producer keys may not hold a gateway key: every process reading
    # the keyring would stop at its next start.
    with pytest.raises(ConfigurationError, match="both producer and gateway"):
        generate_key(
            tmp_path, key_id="gateway-2", owner="producer", role=KeyRole.GATEWAY, channels=("card",)
        )
    assert sorted(tmp_path.rglob("*")) == before
    Keyring.load(tmp_path / TRUSTED_DIR)


def test_generate_refuses_a_key_id_the_keyring_already_trusts(tmp_path: Path):
    init(tmp_path)
    (tmp_path / PRIVATE_DIR / "worker-1.pem").unlink()  # the entry alone, copied from elsewhere
    entry = (tmp_path / TRUSTED_DIR / "worker-1.json").read_bytes()
    with pytest.raises(ConfigurationError, match="appears twice"):
        generate_key(tmp_path, key_id="worker-1", role=KeyRole.WORKER, channels=("card",))
    assert (tmp_path / TRUSTED_DIR / "worker-1.json").read_bytes() == entry


def test_a_trusted_entry_is_replaced_whole_never_rewritten_in_place(tmp_path: Path):
    init(tmp_path)
    path = tmp_path / TRUSTED_DIR / "producer-1.json"
    inode = path.stat().st_ino
    set_status(tmp_path, "producer-1", KeyStatus.RETIRED)
    # A new file renamed over the old one: a process reading the directory meanwhile sees
    # the old entry or the new, never a truncated one.
    assert path.stat().st_ino != inode
    assert [p.name for p in (tmp_path / TRUSTED_DIR).iterdir() if p.name.startswith(".")] == []


def test_remove_deletes_a_retired_keys_entry_and_private_file(tmp_path: Path):
    init(tmp_path)
    set_status(tmp_path, "producer-1", KeyStatus.RETIRED)
    removed = remove_key(tmp_path, "producer-1")
    assert removed == [
        tmp_path / TRUSTED_DIR / "producer-1.json",
        tmp_path / PRIVATE_DIR / "producer-1.pem",
    ]
    assert not any(path.exists() for path in removed)
    with pytest.raises(UnknownKey):
        Keyring.load(tmp_path / TRUSTED_DIR).get("producer-1")


@pytest.mark.parametrize("status", [KeyStatus.ACTIVE, KeyStatus.RETIRING])
def test_remove_refuses_a_key_that_still_verifies(tmp_path: Path, status: KeyStatus):
    init(tmp_path)
    set_status(tmp_path, "producer-1", status)
    with pytest.raises(ConfigurationError, match="retire it first"):
        remove_key(tmp_path, "producer-1")
    assert (tmp_path / TRUSTED_DIR / "producer-1.json").exists()
    assert (tmp_path / PRIVATE_DIR / "producer-1.pem").exists()


def test_init_after_a_rotation_does_not_bring_the_first_keys_back(tmp_path: Path):
    # Given a deployment whose first gateway and sealing keys were replaced and removed
    init(tmp_path)
    for key_id, role in (("gateway-2", KeyRole.GATEWAY), ("seal-2", KeyRole.SEALING)):
        generate_key(tmp_path, key_id=key_id, role=role, channels=("card",))
    for old in ("gateway-1", "seal-1"):
        set_status(tmp_path, old, KeyStatus.RETIRED)
        remove_key(tmp_path, old)
    # When init runs again (the Compose stack runs it at every start)
    # Then it creates nothing: a new gateway-1 and seal-1 would be active beside their
    # successors, and two active sealing keys leave producers unable to choose
    assert init(tmp_path) == []
