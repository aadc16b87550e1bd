"""The trusted directory as a running process sees it: read again when it changes, each read said
in the log and shown as a metric, so a rotation counts without a restart and can be confirmed."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from common.errors import MessageRejected, UnknownKey
from common.keygen import generate_key, init_keys, set_status
from common.keyring import TRUSTED_DIR, KeyRole, KeyStatus
from common.models import PaymentStatus
from common.signing import Signer
from common.subscriber import ResultVerifier
from common.topology import Topology
from common.trustedkeys import TrustedKeyGauge, trusted_keyring
from tests.unit.conftest import NOW_MS, to_inbound
from workers.results import Outcome, Subject, result_for, sign_result


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    keys_dir = tmp_path / "keys"
    init_keys(keys_dir, producer_key_id="producer-1", worker_key_id="worker-1", sealing_key_id="s")
    return keys_dir


def test_a_key_added_to_the_directory_is_trusted_at_the_next_look(keys: Path) -> None:
    keyrings = trusted_keyring(keys, check_every_s=0.0)
    with pytest.raises(UnknownKey):
        keyrings.current().get("producer-2")
    generate_key(keys, key_id="producer-2", role=KeyRole.PRODUCER, channels=("card",))
    assert keyrings.current().get("producer-2").status is KeyStatus.ACTIVE


def test_each_read_names_every_key_with_its_role_and_status_at_info(
    keys: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="paymq.keys")
    keyrings = trusted_keyring(keys, check_every_s=0.0)
    set_status(keys, "producer-1", KeyStatus.RETIRING)
    keyrings.current()
    said = [r.getMessage() for r in caplog.records if r.name == "paymq.keys"]
    assert said == [
        f"trusted keys in {keys / TRUSTED_DIR}: gateway-1 gateway active, producer-1 producer "
        "active, s sealing active, worker-1 worker active",
        f"trusted keys in {keys / TRUSTED_DIR}: gateway-1 gateway active, producer-1 producer "
        "retiring, s sealing active, worker-1 worker active",
    ]


def test_the_gauge_shows_what_the_process_trusts_now(keys: Path) -> None:
    keyrings = trusted_keyring(keys, check_every_s=0.0)
    registry = CollectorRegistry()
    registry.register(TrustedKeyGauge(keyrings.current))
    labels = {"key_id": "producer-1", "role": "producer"}
    assert registry.get_sample_value("paymq_trusted_key", {**labels, "status": "active"}) == 1
    # A scrape is a look at the directory: it reads a change by itself
    set_status(keys, "producer-1", KeyStatus.RETIRED)
    assert registry.get_sample_value("paymq_trusted_key", {**labels, "status": "active"}) is None
    assert registry.get_sample_value("paymq_trusted_key", {**labels, "status": "retired"}) == 1


def test_a_subscriber_on_the_directory_trusts_a_new_worker_key_once_its_entry_is_copied_in(
    keys: Path, tmp_path: Path
) -> None:
    # Given a subscriber verifying with its keyring directory, and a worker key made elsewhere
    verifier = ResultVerifier(trusted_keyring(keys, check_every_s=0.0))
    elsewhere = tmp_path / "worker-host"
    generate_key(elsewhere, key_id="worker-2", role=KeyRole.WORKER, channels=("card",))
    topology = Topology(prefix="paymq")
    subject = Subject(event_key="message:m-1:0", request_message_id="m-1")
    refused = Outcome(PaymentStatus.REJECTED, 0, error=MessageRejected("bad", code="malformed"))
    result = result_for("card", subject, refused, NOW_MS)
    event = to_inbound(sign_result(result, Signer.load(elsewhere, "worker-2"), topology))
    with pytest.raises(UnknownKey):
        verifier.verify(event)
    # When the new key's trusted entry is copied into the subscriber's keyring
    shutil.copy(elsewhere / TRUSTED_DIR / "worker-2.json", keys / TRUSTED_DIR)
    # Then its events verify, without a new verifier
    assert verifier.verify(event).event_id == result.event_id
