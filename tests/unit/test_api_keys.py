"""API keys: shown once, kept as SHA-256 digests with their channels, checked in constant time."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from common.errors import ConfigurationError
from producer.api.keys import PREFIX, ApiKeys, add_key, digest, keys_file, remove_key


def test_a_new_key_is_kept_only_as_its_digest_with_its_channels(tmp_path: Path) -> None:
    path = tmp_path / "api-keys.json"

    secret = add_key(path, "shop-eu", ["card"])

    assert secret.startswith(PREFIX)
    assert len(secret) > 40
    assert secret not in path.read_text()
    stored = json.loads(path.read_text())["keys"]
    assert stored == [{"id": "shop-eu", "sha256": digest(secret), "channels": ["card"]}]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_secret_authenticates_its_own_key_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "api-keys.json"
    shop = add_key(path, "shop", ["card", "digital_currency"])
    payouts = add_key(path, "payouts", ["digital_currency"])
    keys = ApiKeys.load(path)

    found_shop, found_payouts = keys.authenticate(shop), keys.authenticate(payouts)

    assert found_shop is not None
    assert (found_shop.id, found_shop.channels) == ("shop", ("card", "digital_currency"))
    assert found_payouts is not None
    assert found_payouts.id == "payouts"
    assert keys.authenticate(shop + "x") is None
    assert keys.authenticate("") is None


def test_no_file_means_no_keys(tmp_path: Path) -> None:
    assert ApiKeys.load(tmp_path / "none.json").keys == ()


@pytest.mark.parametrize(
    ("key_id", "channels", "match"),
    [
        ("Shop", ["card"], "key id"),
        ("x" * 33, ["card"], "key id"),
        ("shop", ["cash"], "channels"),
        ("shop", [], "channels"),
    ],
)
def test_a_bad_key_id_or_channel_is_refused(
    tmp_path: Path, key_id: str, channels: list[str], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        add_key(tmp_path / "api-keys.json", key_id, channels)


def test_a_key_id_is_added_once(tmp_path: Path) -> None:
    path = tmp_path / "api-keys.json"
    add_key(path, "shop", ["card"])
    with pytest.raises(ConfigurationError, match="exists already"):
        add_key(path, "shop", ["card"])


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"keys": [{"id": "a"}]}',
        '{"keys": [{"id": "a", "sha256": "00", "channels": ["card"]}]}',
        '{"keys": [{"id": "a", "sha256": "' + "0" * 64 + '", "channels": ["card"]},'
        ' {"id": "a", "sha256": "' + "1" * 64 + '", "channels": ["card"]}]}',
    ],
    ids=["not-json", "missing-fields", "short-digest", "duplicate-id"],
)
def test_a_malformed_keys_file_is_a_configuration_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "api-keys.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError):
        ApiKeys.load(path)


def test_a_leftover_world_readable_temporary_file_does_not_make_the_keys_readable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "api-keys.json"
    leftover = path.with_suffix(".tmp")
    leftover.write_text("{}")
    leftover.chmod(0o644)

    add_key(path, "shop", ["card"])

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_keys_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "api-keys.json"
    first = add_key(path, "first", ["card"])
    keys = keys_file(path)
    assert keys.current().authenticate(first) is not None

    second = add_key(path, "second", ["card"])
    remove_key(path, "first")

    assert keys.current().authenticate(first) is None
    found = keys.current().authenticate(second)
    assert found is not None
    assert found.id == "second"


def test_a_keys_file_broken_later_keeps_the_last_good_keys_but_breaks_start_up(
    tmp_path: Path,
) -> None:
    path = tmp_path / "api-keys.json"
    secret = add_key(path, "shop", ["card"])
    keys = keys_file(path)

    path.write_text('{"keys": [{"id": "shop"}]}')

    assert keys.current().authenticate(secret) is not None
    with pytest.raises(ConfigurationError, match="cannot read API keys"):
        keys_file(path)


def test_no_keys_file_is_no_keys_until_one_is_written(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "api-keys.json"
    keys = keys_file(path)
    assert keys.current().keys == ()

    secret = add_key(path, "shop", ["card"])

    assert keys.current().authenticate(secret) is not None
