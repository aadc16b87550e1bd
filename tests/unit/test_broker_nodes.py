"""A broker address: one URL or a cluster's nodes, checked, ordered per process, redacted."""

from __future__ import annotations

import random

import pytest

from common.amqp.nodes import InvalidBrokerAddress, NodeRotation, check_address, redact, unreachable

THREE = "amqp://u:p1@a:5672/%2F,amqp://u:p2@b:5672/%2F,amqp://u:p3@c:5672/%2F"


def test_a_single_url_is_an_address_of_one_node():
    assert check_address("amqp://guest:guest@127.0.0.1:5672/%2F") == (
        "amqp://guest:guest@127.0.0.1:5672/%2F"
    )
    assert len(NodeRotation("amqp://h/")) == 1


def test_blanks_around_the_urls_of_a_list_are_dropped():
    assert check_address(" amqp://a/ , amqps://b:5671/v ") == "amqp://a/,amqps://b:5671/v"


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("", "the address is empty"),
        ("amqp://a/,", "address 2 of 2 is empty"),
        ("amqp://a/,,amqp://b/", "address 2 of 3 is empty"),
        ("amqp://a/;amqp://b/", "one path segment"),
        ("rabbitmq://a/", "not 'rabbitmq'"),
        ("amqp://a/,http://u:secret@b/", "address 2 of 2 (http://u:***@b/)"),
        ("amqp:///%2F", "no host"),
        ("amqp://u:secret@a:99999/", "Port out of range"),
        ("amqp://a:0/", "port 0"),
        ("amqp://a/x/y", "one path segment"),
        ("amqp://a/?heartbeat=often", "Invalid heartbeat value"),
        ("amqp://a/?colour=red", "Unknown URL parameter"),
        ("amqp://a/,amqp://a/", "listed twice"),
    ],
)
def test_a_bad_url_is_named_with_its_place_and_without_its_password(address: str, said: str):
    with pytest.raises(InvalidBrokerAddress) as raised:
        check_address(address)
    assert said in str(raised.value)
    assert "secret" not in str(raised.value)


def test_each_process_takes_the_nodes_in_an_order_of_its_own_and_goes_round():
    orders = {NodeRotation(THREE, random.Random(seed)).urls for seed in range(40)}
    assert len(orders) > 1  # shuffled: connections spread over the cluster
    rotation = NodeRotation(THREE, random.Random(1))
    first = rotation.current
    visited = [rotation.advance(), rotation.advance(), rotation.advance()]
    assert sorted(visited) == sorted(THREE.split(","))
    assert visited[-1] == first
    assert rotation.urls[0] == rotation.current


def test_every_password_of_a_list_is_masked():
    assert (
        redact(THREE) == "amqp://u:***@a:5672/%2F,amqp://u:***@b:5672/%2F,amqp://u:***@c:5672/%2F"
    )
    assert unreachable(THREE, "refused").startswith("cannot reach any of the 3 RabbitMQ nodes")
    assert (
        unreachable("amqp://u:p@a/", "refused")
        == "cannot reach RabbitMQ at amqp://u:***@a/: refused"
    )
