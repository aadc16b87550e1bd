"""docs/asyncapi.yaml: generated from the topology and the models, committed, current, and valid
under AsyncAPI 3.0.0's own JSON Schema (npm @asyncapi/specs, installed by make install)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT7

from common.topology import Topology
from paymq_tools.asyncapi import asyncapi_document, asyncapi_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / "docs" / "asyncapi.yaml"
SPEC = REPO_ROOT / "node_modules" / "@asyncapi" / "specs" / "schemas" / "3.0.0.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    if not SPEC.exists():
        if os.environ.get("CI"):
            pytest.fail("CI is set and @asyncapi/specs is not installed (make install: npm ci)")
        pytest.skip("@asyncapi/specs is not installed: make install (npm ci)")
    spec = json.loads(SPEC.read_text())
    # The bundled schema refers to its definitions by their $id.
    definitions = [
        (sub["$id"], DRAFT7.create_resource(sub))
        for sub in spec["definitions"].values()
        if isinstance(sub, dict) and "$id" in sub
    ]
    return jsonschema.Draft7Validator(spec, registry=Registry().with_resources(definitions))


def problems(validator: jsonschema.Draft7Validator, document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.path))}: {error.message[:200]}"
        for error in validator.iter_errors(document)
    ]


def test_the_committed_document_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == asyncapi_yaml(), "run: paymq contract"


def test_the_document_is_valid_asyncapi_3(validator: jsonschema.Draft7Validator) -> None:
    document = yaml.safe_load(COMMITTED.read_text())
    assert document["asyncapi"] == "3.0.0"
    assert problems(validator, document) == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("info"),
        lambda d: d["channels"]["requests"]["bindings"]["amqp"]["exchange"].update(type="x"),
        lambda d: d["operations"]["receiveResult"].update(action="consume"),
    ],
    ids=["no-info", "unknown-exchange-type", "unknown-action"],
)
def test_the_validator_refuses_a_broken_document(
    validator: jsonschema.Draft7Validator, breakage: Any
) -> None:
    document = copy.deepcopy(asyncapi_document())
    breakage(document)
    assert problems(validator, document) != []


def test_every_exchange_and_queue_of_the_topology_is_described() -> None:
    topology = Topology()
    document = asyncapi_document(topology)
    addresses = {channel["address"] for channel in document["channels"].values()}
    queues = {queue.name for queue in topology.queues()}
    assert queues <= addresses
    assert {topology.requests_exchange, topology.results_exchange} <= addresses
    for operation in document["operations"].values():
        target = operation["channel"]["$ref"].removeprefix("#/channels/")
        assert target in document["channels"]


def test_messages_carry_the_models_schemas() -> None:
    document = asyncapi_document()
    schemas = document["components"]["schemas"]
    assert {"PaymentRequest", "PaymentResult", "Money", "DigitalCurrencyDetails"} <= set(schemas)
    request = document["components"]["messages"]["PaymentRequest"]
    assert request["payload"] == {"$ref": "#/components/schemas/PaymentRequest"}
    assert "paymq-signature" in request["headers"]["required"]
