"""The reconciler as a thread: in every worker process (unless PAYMQ_WORKER_RECONCILES is
false) and in `paymq reconcile`. Its passes (workers/reconciler.py) run every
`reconcile_interval_s`, publishing the results it settles through a publisher of its own."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout

from common.amqp.publisher import ThreadedPublisher
from common.clock import MonotonicClock, SystemClock
from common.envelope import OutboundMessage
from common.errors import PublishFailed, StoreUnavailable
from common.keyring import KeyRole
from common.metrics import Metrics
from common.settings import Settings
from common.signing import Signer
from store.checks import Checks
from workers.providers.registry import build_providers
from workers.reconciler import Reconciler, Sweeps
from workers.session import session_options

logger = logging.getLogger("paymq.reconciler")


class ReconcilerThread(threading.Thread):
    """Runs reconciliation passes every `reconcile_interval_s` until stopped."""

    def __init__(
        self, settings: Settings, checks: Checks, name: str, metrics: Metrics | None = None
    ) -> None:
        super().__init__(name="paymq-reconciler", daemon=True)
        self._settings = settings
        self._checks = checks
        self._publisher = ThreadedPublisher(session_options(settings, name))
        self._stopping = threading.Event()
        self._started_ms = SystemClock().now_ms()
        # Built here, not in run(): a configuration error stops the process at start-up.
        self._metrics = metrics or Metrics()
        self._providers = build_providers(settings, MonotonicClock(), self._metrics)

    def run(self) -> None:
        settings = self._settings
        providers = self._providers
        reconciler = Reconciler(
            self._checks,
            providers,
            signer=Signer.for_role(
                settings.keys.keys_dir, settings.keys.worker_key_id, KeyRole.WORKER
            ),
            topology=settings.broker.topology(),
            publish=_confirmed(self._publisher, settings.broker.publish_timeout_s),
            clock=SystemClock(),
            schedule_s=tuple(settings.reconciler.reconcile_schedule_s),
            payer_action_timeout_s=settings.reconciler.payer_action_timeout_s,
            providers=tuple(providers.by_name),
            metrics=self._metrics,
            sweeps=Sweeps(
                settings.reconciler.republish_after_s, settings.reconciler.abandoned_claim_after_s
            ),
            quiet_since_ms=self._quiet_since_ms,
        )
        try:
            self._publisher.start()
            while not self._stopping.wait(settings.reconciler.reconcile_interval_s):
                try:
                    done = reconciler.run_once()
                except StoreUnavailable:
                    continue  # the store's health logged it once; the next pass tries again
                except Exception:  # a bad pass must not end reconciliation
                    logger.exception("reconciliation pass failed")
                    continue
                if done.checked or done.republished or done.abandoned:
                    logger.info(
                        "reconciled: %d checked, %d settled, %d later, %d republished, "
                        "%d abandoned claims in doubt",
                        done.checked,
                        done.resolved,
                        done.rescheduled,
                        done.republished,
                        done.abandoned,
                    )
        finally:
            providers.close()
            self._publisher.close()

    def stop(self) -> None:
        self._stopping.set()

    def _quiet_since_ms(self) -> int:
        """Since when this reconciler has run with its store and its broker both answering."""
        now_ms = SystemClock().now_ms()
        since = (
            self._started_ms,
            self._checks.health.answering_since_ms,
            self._publisher.connected_since_ms,
        )
        return max(now_ms if at is None else at for at in since)


def _confirmed(publisher: ThreadedPublisher, timeout_s: float) -> Callable[[OutboundMessage], None]:
    def publish(message: OutboundMessage) -> None:
        try:
            publisher.publish(message).result(timeout_s)
        except FutureTimeout as exc:
            raise PublishFailed("no confirm within the publish timeout") from exc

    return publish
