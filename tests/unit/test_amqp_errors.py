"""pika's exceptions translated to paymq's taxonomy at the AMQP edge (common/amqp/errors.py)."""

from __future__ import annotations

import inspect
import socket

import pika.exceptions
import pytest
from pika.adapters.blocking_connection import ReturnedMessage
from pika.adapters.utils.connection_workflow import AMQPConnectorSocketConnectError
from pika.spec import Basic, BasicProperties

from common.amqp.errors import broker_errors, describe, translated
from common.errors import (
    BrokerUnavailable,
    ConfigurationError,
    MalformedMessage,
    PaymqError,
    PublishFailed,
    Unroutable,
)


def _pika_error(cls: type[BaseException]) -> BaseException:
    """An instance of one of pika's exception classes, with the arguments it needs."""
    if issubclass(cls, pika.exceptions.ConnectionClosed | pika.exceptions.ChannelClosed):
        return cls(320, "CONNECTION_FORCED - broker forced connection closure")
    if issubclass(cls, pika.exceptions.UnroutableError | pika.exceptions.NackError):
        return cls([])
    # As pika raises them: with the arguments their __repr__ reads (up to two).
    return cls(1, 2)


PIKA_ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(pika.exceptions, inspect.isclass)
    if issubclass(cls, pika.exceptions.AMQPError)
]


@pytest.mark.parametrize("cls", PIKA_ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_pika_error_translates_to_a_class_of_the_taxonomy(cls: type[Exception]) -> None:
    # A new pika exception class fails here until it is mapped on purpose.
    assert isinstance(translated(_pika_error(cls)), PaymqError)


def test_a_lost_connection_is_broker_unavailable_and_keeps_pikas_error_as_cause() -> None:
    lost = pika.exceptions.StreamLostError("Stream connection lost: ConnectionResetError(104)")
    with (
        pytest.raises(BrokerUnavailable, match="connection to RabbitMQ lost") as caught,
        broker_errors(),
    ):
        raise lost
    assert caught.value.__cause__ is lost


@pytest.mark.parametrize(
    "error",
    [
        socket.gaierror(-2, "Name or service not known"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("timed out"),
    ],
    ids=["gaierror", "reset", "timeout"],
)
def test_a_socket_error_pika_lets_through_is_broker_unavailable(error: OSError) -> None:
    with pytest.raises(BrokerUnavailable) as caught, broker_errors():
        raise error
    assert caught.value.__cause__ is error


def test_opening_a_connection_says_which_address_could_not_be_reached_without_its_password() -> (
    None
):
    error = pika.exceptions.AMQPConnectionError("refused")
    said = translated(error, connecting_to="amqp://paymq:secret@rabbit-1:5672/%2F")
    assert isinstance(said, BrokerUnavailable)
    assert str(said).startswith("cannot reach RabbitMQ at amqp://paymq:***@rabbit-1:5672/%2F")
    assert "secret" not in str(said)


def test_a_missing_queue_is_a_configuration_error_naming_it() -> None:
    closed = pika.exceptions.ChannelClosedByBroker(404, "NOT_FOUND - no queue 'q' in vhost '/'")
    said = translated(closed, queue="paymq.card.requests")
    assert isinstance(said, ConfigurationError)
    assert "queue paymq.card.requests does not exist" in str(said)


def test_a_404_on_a_call_that_names_no_queue_is_broker_unavailable() -> None:
    closed = pika.exceptions.ChannelClosedByBroker(404, "NOT_FOUND - no exchange 'x'")
    assert isinstance(translated(closed), BrokerUnavailable)


def test_arguments_that_differ_while_declaring_are_a_configuration_error_saying_the_way_out() -> (
    None
):
    closed = pika.exceptions.ChannelClosedByBroker(
        406, "PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit'"
    )
    said = translated(closed, declaring=True)
    assert isinstance(said, ConfigurationError)
    assert "inequivalent arg 'x-delivery-limit'" in str(said)
    assert "rabbitmqctl delete_queue" in str(said)


def test_a_406_outside_declaring_is_broker_unavailable_not_a_topology_problem() -> None:
    closed = pika.exceptions.ChannelClosedByBroker(406, "PRECONDITION_FAILED - unknown tag 7")
    assert isinstance(translated(closed), BrokerUnavailable)


def test_a_user_refused_declaring_is_a_configuration_error_naming_the_way_out() -> None:
    closed = pika.exceptions.ChannelClosedByBroker(
        403, "ACCESS_REFUSED - access to exchange 'paymq.requests' in vhost 'paymq' refused"
    )
    said = translated(closed, declaring=True)
    assert isinstance(said, ConfigurationError)
    assert "access to exchange 'paymq.requests' in vhost 'paymq' refused" in str(said)
    assert "PAYMQ_DECLARE_TOPOLOGY=false" in str(said)


def test_a_403_outside_declaring_is_left_to_the_callers_reconnection() -> None:
    # A worker refused its queue keeps trying, as for any closed channel, until an operator
    # gives its user the permission.
    closed = pika.exceptions.ChannelClosedByBroker(403, "ACCESS_REFUSED - access to queue")
    assert isinstance(translated(closed), BrokerUnavailable)


def test_an_unroutable_publish_names_its_routing_key() -> None:
    returned = ReturnedMessage(
        Basic.Return(312, "NO_ROUTE", "paymq.requests", "card.nowhere"), BasicProperties(), b""
    )
    said = translated(pika.exceptions.UnroutableError([returned]))
    assert isinstance(said, Unroutable)
    assert "'card.nowhere'" in str(said)


def test_a_nacked_publish_is_publish_failed() -> None:
    assert isinstance(translated(pika.exceptions.NackError([])), PublishFailed)


def test_a_property_too_long_for_the_wire_is_a_malformed_message_not_a_retry() -> None:
    assert isinstance(translated(pika.exceptions.ShortStringTooLong("x" * 300)), MalformedMessage)


@pytest.mark.parametrize(
    "error",
    [ValueError("ours"), BrokerUnavailable("already ours"), pika.exceptions.ReentrancyError()],
    ids=["ValueError", "PaymqError", "ReentrancyError"],
)
def test_what_is_not_a_broker_failure_goes_through_untouched(error: Exception) -> None:
    with pytest.raises(type(error)) as caught, broker_errors():
        raise error
    assert caught.value is error


def test_a_refused_connection_is_said_in_words_not_as_pikas_nested_reprs() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    nested = pika.exceptions.AMQPConnectionError(AMQPConnectorSocketConnectError(refused))

    assert describe(nested) == "connection refused"
    assert "cannot reach RabbitMQ at amqp://guest:***@h/%2F: connection refused" in str(
        translated(nested, connecting_to="amqp://guest:secret@h/%2F")
    )


def test_a_host_that_does_not_resolve_is_named_as_such() -> None:
    unknown = socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    assert describe(pika.exceptions.AMQPConnectionError(unknown)) == "name or service not known"


def test_refused_credentials_say_so_without_the_password() -> None:
    refused = pika.exceptions.ProbableAuthenticationError("ConnectionClosedByBroker: (403)")
    text = str(translated(refused, connecting_to="amqp://guest:hunter2@h/%2F"))

    assert "refused the user or password" in text
    assert "hunter2" not in text
