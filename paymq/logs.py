"""Logging for paymq processes: one line per event, card numbers masked, pika and the Stripe
SDK kept quiet."""

from __future__ import annotations

import logging
import sys

from common.redact import PanMaskingFilter


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    handler.addFilter(PanMaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pika narrates every frame at INFO; its warnings and errors still show.
    logging.getLogger("pika").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # The Stripe SDK logs every request and answer at INFO: one pair per payment.
    logging.getLogger("stripe").setLevel(max(logging.WARNING, root.level))
