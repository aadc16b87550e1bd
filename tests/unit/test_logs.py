"""Log lines: JSON with the payment and message they are about, card numbers masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from common.logcontext import bind_payment, log_context
from paymq import logs


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("paymq.test-logs")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    log.handlers.clear()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_json_line_has_time_level_logger_message_and_both_ids(
    logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    logger.addHandler(logs.handler("json", stream))

    logger.info("worker for %s started", "card")

    [line] = lines(stream)
    assert set(line) == {"time", "level", "logger", "message", "payment_id", "message_id"}
    assert (line["level"], line["logger"]) == ("INFO", "paymq.test-logs")
    assert line["message"] == "worker for card started"
    assert (line["payment_id"], line["message_id"]) == (None, None)
    assert line["time"].endswith("Z")


def test_lines_inside_a_context_name_its_message_then_its_payment(
    logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    logger.addHandler(logs.handler("json", stream))

    with log_context(message_id="msg-1"):
        logger.info("checking")
        bind_payment("pay-1")
        logger.info("charging")
    logger.info("idle")

    ids = [(line["payment_id"], line["message_id"]) for line in lines(stream)]
    assert ids == [(None, "msg-1"), ("pay-1", "msg-1"), (None, None)]


def test_ids_given_as_extra_win_over_the_context(logger: logging.Logger) -> None:
    stream = io.StringIO()
    logger.addHandler(logs.handler("json", stream))

    with log_context(message_id="msg-1", payment_id="pay-1"):
        logger.info("accepted", extra={"payment_id": "pay-2", "message_id": "msg-2"})

    [line] = lines(stream)
    assert (line["payment_id"], line["message_id"]) == ("pay-2", "msg-2")


def test_card_numbers_are_masked_in_json_messages_and_tracebacks(
    logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    logger.addHandler(logs.handler("json", stream))

    logger.warning("refused card %s", "4242 4242 4242 4242")
    try:
        raise ValueError("bad card 4000000000000002")
    except ValueError:
        logger.exception("while checking")

    refused, failed = lines(stream)
    assert refused["message"] == "refused card ****4242"
    assert "ValueError: bad card ****0002" in failed["exc_info"]
    assert "4000000000000002" not in stream.getvalue()
    assert "4242 4242 4242 4242" not in stream.getvalue()


def test_auto_is_text_on_a_terminal_and_json_elsewhere(logger: logging.Logger) -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    logger.addHandler(logs.handler("auto", terminal))
    logger.addHandler(logs.handler("auto", pipe))

    logger.info("hello")

    assert "INFO    paymq.test-logs: hello" in terminal.getvalue()
    assert json.loads(pipe.getvalue())["message"] == "hello"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of auto, json, text"):
        logs.handler("xml", io.StringIO())
