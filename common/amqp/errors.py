"""pika's exceptions, translated to paymq's taxonomy (common/errors.py) in this one place.

    pika.exceptions.AMQPError, or a socket error pika lets through (OSError: a host name
    that does not resolve, a reset)
    ├── UnroutableError                          -> Unroutable
    ├── NackError                                -> PublishFailed
    ├── ShortStringTooLong                       -> MalformedMessage (cannot go on the wire)
    ├── ChannelClosedByBroker 404 NOT_FOUND,     -> ConfigurationError: the queue does not
    │   when the call names a queue                 exist, and connecting again will not help
    ├── ChannelClosedByBroker 406 PRECONDITION_  -> ConfigurationError: the topology exists
    │   FAILED, while declaring                     with other arguments
    ├── ChannelClosedByBroker 403 ACCESS_        -> ConfigurationError: the user may not
    │   REFUSED, while declaring                    declare it (configure permission)
    └── anything else: a connection refused,     -> BrokerUnavailable: connect again later
        lost, closed or timed out, a channel
        closed, a garbled frame

Every translated error keeps pika's as its cause (`raise ... from exc`), for whoever debugs
it. pika's `ChannelError` and `ReentrancyError` are not AMQPErrors and stay unmapped on
purpose: they mean paymq used pika wrongly, a bug to see, not a broker state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pika.exceptions

from common.amqp.nodes import unreachable
from common.errors import (
    BrokerUnavailable,
    ConfigurationError,
    MalformedMessage,
    PaymqError,
    PublishFailed,
    Unroutable,
)

#: What pika raises (or lets through from the socket) when talking to the broker fails.
PIKA_ERRORS = (pika.exceptions.AMQPError, OSError)
#: AMQP reply code of an operation on a queue that does not exist.
NOT_FOUND = 404
#: AMQP reply code of a declare whose type or arguments differ from what exists.
PRECONDITION_FAILED = 406
#: AMQP reply code of an operation the user's permissions do not allow.
ACCESS_REFUSED = 403


@contextlib.contextmanager
def broker_errors(
    *, queue: str | None = None, declaring: bool = False, connecting_to: str | None = None
) -> Iterator[None]:
    """Translate what pika raises in the block (see `translated`), keeping it as the cause."""
    try:
        yield
    except PIKA_ERRORS as exc:
        raise translated(
            exc, queue=queue, declaring=declaring, connecting_to=connecting_to
        ) from exc


def translated(
    exc: BaseException,
    *,
    queue: str | None = None,
    declaring: bool = False,
    connecting_to: str | None = None,
) -> PaymqError | ConfigurationError:
    """The taxonomy's error for a pika (or socket) error, most specific first.

    `queue`: the call works on this queue, so its absence is a ConfigurationError.
    `declaring`: the call declares topology, so different arguments are a ConfigurationError.
    `connecting_to`: the call opens a connection to this address (named in the message).
    """
    specific = _specific(exc, queue=queue, declaring=declaring)
    if specific is not None:
        return specific
    if connecting_to is not None:
        return BrokerUnavailable(unreachable(connecting_to, describe(exc)))
    return BrokerUnavailable(f"connection to RabbitMQ lost: {describe(exc)}")


def describe(exc: BaseException) -> str:
    """A connection error in words: pika nests the socket's error in its own (AMQPConnectionError
    holding an AMQPConnectorSocketConnectError holding a ConnectionRefusedError); say the
    innermost one, as the operating system or the broker put it."""
    inner = exc
    while True:
        nested = getattr(inner, "exception", None)  # pika's connector errors keep it here
        if not isinstance(nested, BaseException):
            nested = next((a for a in inner.args if isinstance(a, BaseException)), None)
        if nested is None:
            break
        inner = nested
    if isinstance(
        inner, pika.exceptions.ProbableAuthenticationError | pika.exceptions.AuthenticationError
    ):
        return f"the broker refused the user or password ({type(inner).__name__})"
    if isinstance(inner, pika.exceptions.ProbableAccessDeniedError):
        return f"the broker refused access (vhost or permissions): {inner}"
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror.lower()
    text = str(inner)
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


def _specific(
    exc: BaseException, *, queue: str | None, declaring: bool
) -> PaymqError | ConfigurationError | None:
    """What the broker said about this message or this call, beyond "not available now"."""
    if isinstance(exc, pika.exceptions.UnroutableError):
        routing_key = exc.messages[0].method.routing_key if exc.messages else "?"
        return Unroutable(f"no queue bound for {routing_key!r}")
    if isinstance(exc, pika.exceptions.NackError):
        return PublishFailed("the broker refused the message (nack)")
    if isinstance(exc, pika.exceptions.ShortStringTooLong):
        return MalformedMessage(f"a property or header is too long for AMQP: {exc!r}")
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker):
        return _channel_refusal(exc, queue=queue, declaring=declaring)
    return None


def _channel_refusal(
    exc: pika.exceptions.ChannelClosedByBroker, *, queue: str | None, declaring: bool
) -> ConfigurationError | None:
    """A channel the broker closed for what this call asked: a configuration to change, when
    connecting again would be refused the same way."""
    if exc.reply_code == NOT_FOUND and queue is not None:
        return _missing_queue(queue)
    if exc.reply_code == PRECONDITION_FAILED and declaring:
        return _declared_differently(exc.reply_text)
    if exc.reply_code == ACCESS_REFUSED and declaring:
        return _may_not_declare(exc.reply_text)
    return None


def _missing_queue(queue: str) -> ConfigurationError:
    return ConfigurationError(
        f"queue {queue} does not exist: is the topology prefix right, and has a worker "
        "(or `paymq topology declare`) declared it?"
    )


def _declared_differently(reply_text: str) -> ConfigurationError:
    """A queue or exchange that exists with other arguments (e.g. a work queue declared with
    an earlier delivery limit) is a configuration error that says what to do, not a
    traceback: RabbitMQ cannot change a queue's arguments in place."""
    return ConfigurationError(
        f"the broker keeps this topology with other arguments: {reply_text}. "
        "A queue's arguments cannot change in place: let the workers that declared it "
        "drain it, delete it (`rabbitmqctl delete_queue NAME`), then start again; or keep "
        "the arguments it has (x-delivery-limit: PAYMQ_DELIVERY_LIMIT; "
        "x-quorum-initial-group-size: PAYMQ_QUORUM_REPLICAS, whose members change in place "
        "with `rabbitmq-queues grow` and `shrink`). See docs/protocol.md, Topology."
    )


def _may_not_declare(reply_text: str) -> ConfigurationError:
    """A broker user without the configure permission (one user per role: only the admin
    declares) is a configuration to change, not a broker to wait for."""
    return ConfigurationError(
        f"the broker refused to let this user declare the topology: {reply_text}. Declare it "
        "as the admin user (`paymq topology declare`) and set PAYMQ_DECLARE_TOPOLOGY=false "
        "for this process, or give its user the configure permission (docs/docker.md, Broker "
        "users)."
    )
