"""No raw pika error escapes the blocking broker tools (common/amqp/admin.py and browse.py):
each failure reaches callers as a class of common/errors.py, with pika's error as its cause."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pika.exceptions
import pytest

from common.amqp.admin import BrokerAdmin
from common.amqp.browse import QueueBrowser
from common.errors import BrokerUnavailable, ConfigurationError
from common.settings import Settings
from tests.integration.helpers import close_connections, require_rabbitmqctl

pytestmark = pytest.mark.integration

#: What a test does with an admin connection whose queue is gone, or whose connection is.
AdminCall = Callable[[BrokerAdmin, str], object]

ADMIN_CALLS: dict[str, AdminCall] = {
    "get": lambda admin, queue: admin.get(queue),
    "drain": lambda admin, queue: admin.drain(queue),
    "purge": lambda admin, queue: admin.purge(queue),
    "stats": lambda admin, queue: admin.stats(queue),
    "consume": lambda admin, queue: next(admin.consume(queue, inactivity_timeout_s=0.2)),
}


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port bound but not listening: every connection to it is refused, and no other process
    can take it meanwhile."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


def _on_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return parts._replace(netloc=f"{credentials}@127.0.0.1:{port}").geturl()


def _on_host(url: str, host: str) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return parts._replace(netloc=f"{credentials}@{host}:5672").geturl()


def test_opening_an_admin_on_a_refusing_port_is_broker_unavailable_caused_by_pika(
    amqp_url: str, refusing_port: int
) -> None:
    # Given a broker address where nothing listens
    url = _on_port(amqp_url, refusing_port)
    # When an admin connection or a queue browser is opened on it
    for open_tool in (BrokerAdmin, lambda url, **kw: QueueBrowser(url, "any", **kw)):
        with pytest.raises(BrokerUnavailable, match="cannot reach RabbitMQ") as caught:
            open_tool(url, connect_timeout_s=2.0)
        # Then it is unavailable, and pika's error is kept for whoever debugs it
        assert isinstance(caught.value.__cause__, pika.exceptions.AMQPConnectionError)


def test_a_host_name_that_does_not_resolve_is_broker_unavailable_not_a_socket_error(
    amqp_url: str,
) -> None:
    # Given a broker address whose host name does not resolve (pika lets socket.gaierror out)
    url = _on_host(amqp_url, "paymq-no-such-host.invalid")
    # When an admin connection or a queue browser is opened on it
    for open_tool in (BrokerAdmin, lambda url, **kw: QueueBrowser(url, "any", **kw)):
        with pytest.raises(BrokerUnavailable, match="cannot reach RabbitMQ") as caught:
            open_tool(url, connect_timeout_s=2.0)
        # Then it is unavailable like any broker that cannot be reached
        assert isinstance(caught.value.__cause__, socket.gaierror)


@pytest.mark.parametrize("call", ADMIN_CALLS.values(), ids=ADMIN_CALLS.keys())
def test_a_queue_that_does_not_exist_is_a_configuration_error_naming_it(
    amqp_url: str, call: AdminCall
) -> None:
    # Given a queue name that nothing declared
    queue = f"test-missing-{uuid.uuid4().hex[:10]}"
    # When the admin works on it
    with (
        BrokerAdmin(amqp_url, name="paymq-test-missing") as admin,
        pytest.raises(ConfigurationError, match=f"queue {queue} does not exist") as caught,
    ):
        call(admin, queue)
    # Then connecting again would not help, and the broker's 404 is the cause
    cause = caught.value.__cause__
    assert isinstance(cause, pika.exceptions.ChannelClosedByBroker)
    assert cause.reply_code == 404


def test_browsing_a_queue_that_does_not_exist_is_a_configuration_error(amqp_url: str) -> None:
    queue = f"test-missing-{uuid.uuid4().hex[:10]}"
    with (
        QueueBrowser(amqp_url, queue) as browser,
        pytest.raises(ConfigurationError, match=f"queue {queue} does not exist"),
    ):
        browser.take(10)


@pytest.mark.parametrize("call", ADMIN_CALLS.values(), ids=ADMIN_CALLS.keys())
def test_an_admin_whose_connection_the_broker_closed_raises_broker_unavailable(
    topology: Settings, call: AdminCall
) -> None:
    require_rabbitmqctl()
    # Given an admin connection, and a queue that exists
    name = f"paymq-test-forced-{uuid.uuid4().hex[:10]}"
    queue = topology.broker.topology().dead_letter_queue
    with BrokerAdmin(topology.broker.amqp_url, name=name) as admin:
        # When the broker closes that connection (CONNECTION_FORCED, as a restart does)
        assert close_connections(name) == 1
        # Then the next call says the broker is unavailable, with the broker's close as cause
        with pytest.raises(BrokerUnavailable) as caught:
            call(admin, queue)
    assert isinstance(caught.value.__cause__, pika.exceptions.AMQPConnectionError)


def test_a_browser_whose_connection_the_broker_closed_raises_broker_unavailable(
    topology: Settings,
) -> None:
    require_rabbitmqctl()
    name = f"paymq-test-forced-{uuid.uuid4().hex[:10]}"
    queue = topology.broker.topology().dead_letter_queue
    with QueueBrowser(topology.broker.amqp_url, queue, name=name) as browser:
        assert close_connections(name) == 1
        with pytest.raises(BrokerUnavailable) as caught:
            browser.take(10)
    assert isinstance(caught.value.__cause__, pika.exceptions.AMQPConnectionError)
