"""The store's migrations on both databases: they build the schema store/schema.py declares,
and 0008 gives every API submission stored before it its merchant reference."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, select

from common.clock import FixedClock
from store.database import current_revision, head_revision, upgrade
from store.records import LookupBy
from store.schema import api_submissions, metadata
from store.submissions import Submissions
from tests.stores import postgres_engine, sqlite_engine

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def before_lookups(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A store at revision 0007, the one before 0008."""
    factory: AbstractContextManager[Engine] = (
        sqlite_engine(tmp_path, "0007") if request.param == "sqlite" else postgres_engine("0007")
    )
    with factory as created:
        yield created


def test_the_migrations_build_the_schema_the_code_declares(store_engine: Engine) -> None:
    # Tables, columns, nullability, indexes and constraints: a migration that forgets one, or
    # a schema.py that does, differs here.
    with store_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_an_api_submission_stored_before_0008_gets_its_merchant_reference(
    before_lookups: Engine,
) -> None:
    # Given a store at 0007 holding two API submissions, each with its signed request
    rows = [
        submission_row("shop", "k-1", "00000000-0000-4000-8000-000000000001", "order-1"),
        submission_row("shop", "k-2", "00000000-0000-4000-8000-000000000002", "order-2"),
    ]
    with before_lookups.begin() as connection:
        connection.execute(insert(api_submissions), rows)
    assert current_revision(before_lookups) == "0007"
    # When it is migrated
    upgrade(before_lookups)
    # Then each submission has the merchant reference its request holds, and is found by it
    assert current_revision(before_lookups) == head_revision()
    with before_lookups.connect() as connection:
        found = connection.execute(
            select(api_submissions.c.idempotency_key, api_submissions.c.merchant_reference)
        ).all()
    assert sorted(found) == [("k-1", "order-1"), ("k-2", "order-2")]
    page = Submissions(before_lookups, FixedClock(0)).matching(
        "shop", LookupBy.MERCHANT_REFERENCE, "order-2", limit=5
    )
    assert [s.payment_id for s in page.items] == ["00000000-0000-4000-8000-000000000002"]
    columns = {c["name"]: c for c in inspect(before_lookups).get_columns("api_submissions")}
    assert columns["merchant_reference"]["nullable"] is False


def submission_row(
    api_key_id: str, idempotency_key: str, payment_id: str, reference: str
) -> dict[str, object]:
    """A row as 0007's table holds it: no merchant_reference column yet."""
    request = {"payment_id": payment_id, "merchant_reference": reference, "channel": "card"}
    return {
        "api_key_id": api_key_id,
        "idempotency_key": idempotency_key,
        "body_sha256": "0" * 64,
        "payment_id": payment_id,
        "channel": "card",
        "exchange": "paymq.requests",
        "routing_key": "card",
        "message_id": f"m-{payment_id}",
        "message_type": "paymq.payment_request.v1",
        "headers": "{}",
        "body": json.dumps(request).encode(),
        "created_ms": 1_900_000_000_000,
    }
