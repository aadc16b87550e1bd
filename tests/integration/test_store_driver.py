"""store/driver.py on PostgreSQL: `prepared` and `insert_returning` are SQLAlchemy's own
execution there, and give the rows, rowcounts and RETURNING rows the claims rely on; SQLAlchemy
fills the columns with a Python default that a row leaves out (the SQLite path refuses such a
row, tests/unit/test_store_driver.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from store import driver
from store.schema import attempts, payments, transitions
from tests.stores import postgres_engine
from tests.unit.test_store_driver import (
    UPDATE_OWNED,
    WRITES,
    arriving_again,
    contents,
    move,
    payment,
    payment_id,
    token,
    typed,
    without,
)

pytestmark = pytest.mark.integration

#: The claims' INSERT on PostgreSQL (store/claims.py `_insert_if_new`).
CLAIM_INSERT = (
    postgresql.insert(payments)
    .on_conflict_do_nothing()
    .returning(payments.c.payment_id, payments.c.claim_token)
)
#: The columns with a Python default in store/schema.py, and the value SQLAlchemy gives them.
DEFAULTS = {"attempts": 0, "outcome_unknown": False, "checks": 0, "result_unpublished": False}


@pytest.fixture
def engine() -> Iterator[Engine]:
    with postgres_engine() as engine:
        yield engine


def in_processing_and_retrying(engine: Engine) -> None:
    """Payments 1 and 2 processing under their claims, payment 3 waiting in a retry tier."""
    with engine.begin() as connection:
        connection.execute(
            insert(payments),
            [payment(1), payment(2), payment(3, state="retrying", claim_token=None)],
        )


@pytest.mark.parametrize("how", ["execute", "executemany"])
def test_rows_written_through_prepared_read_back_as_written(engine: Engine, how: str) -> None:
    with engine.begin() as connection:
        for table, table_rows in WRITES:
            statement = driver.prepared(engine.dialect, insert(table))
            if how == "executemany":
                statement.executemany(connection, table_rows)
            else:
                for row in table_rows:
                    statement.execute(connection, row)
    for table, table_rows in WRITES:
        read = contents(engine, table)
        if table is not payments:
            read = [without(row, "id") for row in read]
        assert typed(read) == typed(table_rows), table.name
    assert [row["id"] for row in contents(engine, transitions)] == [1, 2, 3]
    assert [row["id"] for row in contents(engine, attempts)] == [1, 2]


def test_an_insert_counts_the_rows_it_wrote_as_on_sqlite(engine: Engine) -> None:
    statement = driver.prepared(engine.dialect, insert(payments))
    with engine.begin() as connection:
        written = (
            statement.execute(connection, payment(1)),
            statement.executemany(connection, [payment(2), payment(3)]),
        )
    assert len(contents(engine, payments)) == 3
    assert written == (1, 2)


def test_a_guarded_update_counts_the_rows_it_matched(engine: Engine) -> None:
    # Given payments 1 and 2 under their claims, payment 3 in a retry tier
    in_processing_and_retrying(engine)
    moves = [move(number, token(number), outcome_unknown=True) for number in (1, 2, 3)]
    # When the moves of all three are sent, and then sent again
    statement = driver.prepared(engine.dialect, UPDATE_OWNED)
    with engine.begin() as connection:
        counts = (
            statement.executemany(connection, moves),
            statement.executemany(connection, moves),
        )
    # Then the first matched 2 of 3 rows, the second none (they left `processing`)
    assert counts == (2, 0)
    assert [(r["state"], r["outcome_unknown"]) for r in contents(engine, payments)] == [
        ("succeeded", True),
        ("succeeded", True),
        ("retrying", False),
    ]


def test_execute_counts_the_row_it_matched_and_zero_for_a_stale_claim(engine: Engine) -> None:
    in_processing_and_retrying(engine)
    moves = [move(1, token(1)), move(2, token(2, claim=9)), move(1, token(1))]
    statement = driver.prepared(engine.dialect, UPDATE_OWNED)
    with engine.begin() as connection:
        assert [statement.execute(connection, one) for one in moves] == [1, 0, 0]
        assert statement.executemany(connection, []) == 0
    assert [r["state"] for r in contents(engine, payments)] == [
        "succeeded",
        "processing",
        "retrying",
    ]


@pytest.mark.parametrize("count", [1, 3, 128])
def test_insert_returning_gives_exactly_the_rows_it_inserted(engine: Engine, count: int) -> None:
    new = [payment(number) for number in range(1, count + 1)]
    with engine.begin() as connection:
        returned = driver.insert_returning(engine.dialect, CLAIM_INSERT).insert(connection, new)
    assert all(type(row) is tuple for row in returned)
    assert sorted(returned) == [(row["payment_id"], row["claim_token"]) for row in new]
    assert len(contents(engine, payments)) == count


def test_insert_returning_skips_a_payment_that_exists_and_returns_the_others(
    engine: Engine,
) -> None:
    # Given payment 1, inserted under its first claim
    statement = driver.insert_returning(engine.dialect, CLAIM_INSERT)
    with engine.begin() as connection:
        assert statement.insert(connection, [payment(1)]) == [(payment_id(1), token(1))]
    # When it comes again with another token, beside a new payment and one whose idempotency
    # key payment 1 holds
    again = arriving_again()
    with engine.begin() as connection:
        returned = statement.insert(connection, again)
        assert statement.insert(connection, []) == []
    # Then only the new payment is inserted and returned; payment 1 keeps its claim
    assert returned == [(payment_id(2), token(2))]
    assert [(r["payment_id"], r["claim_token"]) for r in contents(engine, payments)] == [
        (payment_id(1), token(1)),
        (payment_id(2), token(2)),
    ]


def bare(number: int) -> dict[str, Any]:
    """A payments row without the columns that have a Python default."""
    return {k: v for k, v in payment(number).items() if k not in DEFAULTS}


Write = Callable[[Engine, Connection], object]


def insert_returning_bare(engine: Engine, connection: Connection) -> object:
    statement = driver.insert_returning(engine.dialect, CLAIM_INSERT)
    return statement.insert(connection, [bare(1), bare(2)])


def execute_bare(engine: Engine, connection: Connection) -> object:
    statement = driver.prepared(engine.dialect, insert(payments))
    return [statement.execute(connection, bare(1)), statement.execute(connection, bare(2))]


def executemany_bare(engine: Engine, connection: Connection) -> object:
    return driver.prepared(engine.dialect, insert(payments)).executemany(
        connection, [bare(1), bare(2)]
    )


@pytest.mark.parametrize("write", [insert_returning_bare, execute_bare, executemany_bare])
def test_sqlalchemy_fills_the_columns_with_a_python_default_that_a_row_leaves_out(
    engine: Engine, write: Write
) -> None:
    with engine.begin() as connection:
        assert write(engine, connection)
    stored = contents(engine, payments)
    assert typed([{k: row[k] for k in DEFAULTS} for row in stored]) == typed([DEFAULTS] * 2)
    assert [row["payment_id"] for row in stored] == [payment_id(1), payment_id(2)]
