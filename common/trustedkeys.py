"""The keyring as a running process sees it: the trusted directory, read again when it changes.

Every process that verifies signatures (workers for requests and retry states; the webhooks
process, `paymq results tail` and other subscribers for result events) takes its keys from
here, so a key added, phased out or retired counts without a restart. The directory is looked
at before a verification, or a metrics scrape, at most once every `KEYRING_CHECK_EVERY_S`: a
change counts for every verification that starts later than that after it.

So that an operator can confirm a rotation's first step before switching a signer
(docs/protocol.md#rotation), each read is said in the log at INFO, naming every key with its
role and status, and `paymq_trusted_key{key_id,role,status}` shows the keys a process trusts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from common.keyring import TRUSTED_DIR, Keyring
from common.privatefiles import Reloading

logger = logging.getLogger("paymq.keys")

#: How often a running process looks whether its trusted keys changed.
KEYRING_CHECK_EVERY_S = 1.0


def trusted_keyring(
    keys_dir: Path, *, check_every_s: float = KEYRING_CHECK_EVERY_S
) -> Reloading[Keyring]:
    """`keys_dir/trusted` as it is now. A keyring broken at start-up raises ConfigurationError;
    one broken later keeps the last good keys and logs an error."""
    return Reloading(keys_dir / TRUSTED_DIR, _load_and_say, check_every_s=check_every_s)


def _load_and_say(directory: Path) -> Keyring:
    keyring = Keyring.load(directory)
    logger.info("trusted keys in %s: %s", directory, describe(keyring))
    return keyring


def describe(keyring: Keyring) -> str:
    """`gateway-2 gateway active, producer-1 producer retiring, ...`, by key id."""
    keys = sorted(keyring.trusted_keys(), key=lambda key: key.key_id)
    return ", ".join(f"{key.key_id} {key.role.value} {key.status.value}" for key in keys) or "none"


class TrustedKeyGauge(Collector):
    """paymq_trusted_key{key_id,role,status}: 1 for each key the process trusts now. Key ids are
    the keyring's, a handful: only keys the directory holds ever become a label."""

    def __init__(self, keyrings: Callable[[], Keyring]) -> None:
        self._keyrings = keyrings

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            "paymq_trusted_key",
            "Keys this process verifies signatures with now, by id, role and status (active, "
            "retiring, retired): read from the trusted directory at most once a second.",
            labels=["key_id", "role", "status"],
        )
        for key in self._keyrings().trusted_keys():
            gauge.add_metric([key.key_id, key.role.value, key.status.value], 1)
        yield gauge
