"""The writer's hot statements on SQLite's driver (store/driver.py) behave as SQLAlchemy's own
execution of the same statements: the same rows stored, the same rowcounts and RETURNING rows,
the same errors, in the caller's transaction. Each comparison writes the same rows to two
stores, one through the driver path and one through `connection.execute`, and compares the
tables as SQLAlchemy reads them and as SQLite holds them (each value's storage class).

PostgreSQL, where `prepared` and `insert_returning` are SQLAlchemy's own path, is tested in
tests/integration/test_store_driver.py.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, bindparam, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from common.errors import StoreUnavailable
from store import driver, rows
from store.database import StoreTimeouts, create_store_engine, reading
from store.outage import unavailable_as_retryable
from store.schema import attempts, payments, transitions
from tests.stores import sqlite_engine

NOW_MS = 1_900_000_000_000
BIG = 2**62  # BigInteger columns hold milliseconds, and more
UNICODE = "commande n° 42 — Zürich, 東京 🙂"
NOT_UTF8 = b"\xff\xfe\x00\x80 not utf-8 \xc3"

#: The claims' INSERT (store/claims.py): a payment that exists is skipped, not an error.
CLAIM_INSERT = (
    sqlite.insert(payments)
    .on_conflict_do_nothing()
    .returning(payments.c.payment_id, payments.c.claim_token)
)
#: The claims' guarded UPDATE (`_UPDATE_OWNED`): only the current claim moves a payment.
UPDATE_OWNED = rows.UPDATE_IN_STATE.where(payments.c.claim_token == bindparam("b_token"))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """The store written through the driver path."""
    with sqlite_engine(tmp_path / "driver") as engine:
        yield engine


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[Engine]:
    """A second store, written through SQLAlchemy's `connection.execute`: what the driver
    path must match."""
    with sqlite_engine(tmp_path / "core") as engine:
        yield engine


def payment_id(number: int) -> str:
    return f"00000000-0000-0000-0000-{number:012d}"


def token(number: int, claim: int = 0) -> str:
    return f"{claim:08x}{number:024x}"


def payment(number: int, **changes: Any) -> dict[str, Any]:
    """A payments row that gives every column: those with a Python default too, as the claims'
    `_new_row` does (the driver path computes no default)."""
    return {
        "payment_id": payment_id(number),
        "scope": "shop",
        "idempotency_key": f"key-{number}",
        "request_hash": "a" * 64,
        "request_message_id": f"m-{number}",
        "channel": "card",
        "merchant_reference": UNICODE,
        "amount_minor": "10" * 19,  # text: amounts reach 10^38
        "currency": "USD",
        "state": "processing",
        "attempts": 0,
        "outcome_unknown": False,
        "provider": None,
        "provider_reference": None,
        "code": None,
        "claim_owner": "worker-1",
        "claim_until_ms": BIG,
        "claim_token": token(number),
        "next_check_ms": None,
        "checks": 0,
        "payment_created_ms": NOW_MS - 1_000,
        "created_ms": NOW_MS,
        "updated_ms": NOW_MS,
        "result_exchange": None,
        "result_routing_key": None,
        "result_message_id": None,
        "result_type": None,
        "result_headers": None,
        "result_body": None,
        "result_unpublished": False,
    } | changes


def settled(number: int, body: bytes, **changes: Any) -> dict[str, Any]:
    """A payment with its stored result event."""
    result = {
        "state": "succeeded",
        "provider": "fake",
        "provider_reference": f"ch_{number}",
        "claim_owner": None,
        "claim_until_ms": None,
        "claim_token": None,
        "result_exchange": "paymq.results",
        "result_routing_key": "card.succeeded",
        "result_message_id": f"r-{number}",
        "result_type": "payment.result",
        "result_headers": '{"note": "é"}',
        "result_body": body,
        "result_unpublished": True,
    }
    return payment(number, **(result | changes))


#: Rows that exercise each type: booleans both ways, bytes (empty, not UTF-8), None in
#: nullable columns, big integers, text amounts (leading zeros kept), unicode text.
PAYMENTS = [
    settled(1, NOT_UTF8, outcome_unknown=True, attempts=2**31 - 1, checks=7, next_check_ms=BIG),
    settled(2, b"", amount_minor="0010", code="ok", result_unpublished=False),
    payment(3),
]
TRANSITIONS = [
    {"payment_id": payment_id(1), "at_ms": BIG, "from_state": "received", "to_state": "processing",
     "reason": None},
    {"payment_id": payment_id(1), "at_ms": NOW_MS, "from_state": "processing",
     "to_state": "succeeded", "reason": "é" * 500},
    {"payment_id": payment_id(3), "at_ms": NOW_MS, "from_state": "received",
     "to_state": "processing", "reason": UNICODE},
]  # fmt: skip
ATTEMPTS = [
    {"payment_id": payment_id(1), "attempt": 1, "at_ms": NOW_MS, "outcome": "unknown",
     "code": None, "provider_reference": None},
    {"payment_id": payment_id(1), "attempt": 2, "at_ms": BIG, "outcome": "succeeded",
     "code": "ok", "provider_reference": UNICODE},
]  # fmt: skip
WRITES = [(payments, PAYMENTS), (transitions, TRANSITIONS), (attempts, ATTEMPTS)]


def contents(engine: Engine, table: Table) -> list[dict[str, Any]]:
    """The table as SQLAlchemy reads it (its types' result processors applied)."""
    with reading(engine) as connection:
        query = select(table).order_by(*table.primary_key.columns)
        return [dict(row) for row in connection.execute(query).mappings()]


def typed(table_rows: list[dict[str, Any]]) -> list[dict[str, tuple[str, Any]]]:
    """Each value with its type: True and 1 are equal, a boolean column's values are not."""
    return [{k: (type(v).__name__, v) for k, v in row.items()} for row in table_rows]


def stored(engine: Engine, table: Table) -> list[tuple[tuple[str, Any], ...]]:
    """The table as SQLite holds it, read by another connection with no SQLAlchemy types:
    each value with its Python type, which names its storage class (int, str, bytes, None)."""
    query = str(
        select(table).order_by(*table.primary_key.columns).compile(dialect=sqlite.dialect())
    )
    with contextlib.closing(sqlite3.connect(str(engine.url.database))) as raw:
        return [tuple((type(v).__name__, v) for v in row) for row in raw.execute(query)]


def assert_same_tables(engine: Engine, reference: Engine, *tables: Table) -> None:
    for table in tables:
        assert typed(contents(engine, table)) == typed(contents(reference, table)), table.name
        assert stored(engine, table) == stored(reference, table), table.name


def write_with_core(engine: Engine, *writes: tuple[Table, list[dict[str, Any]]]) -> None:
    with engine.begin() as connection:
        for table, table_rows in writes:
            connection.execute(insert(table), table_rows)


def without(row: dict[str, Any], column: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != column}


def move(number: int, claim_token: str, **values: Any) -> dict[str, Any]:
    """Parameters of the guarded UPDATE, as the claims' `_changes` gives them."""
    return {
        "b_payment_id": payment_id(number),
        "b_state": "processing",
        "b_token": claim_token,
        "state": "succeeded",
        "updated_ms": NOW_MS + 1,
    } | values


def in_processing_and_retrying(engine: Engine) -> None:
    """Payments 1 and 2 processing under their claims, payment 3 waiting in a retry tier."""
    write_with_core(
        engine,
        (payments, [payment(1), payment(2), payment(3, state="retrying", claim_token=None)]),
    )


# --- rows written ----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["execute", "executemany"])
def test_rows_written_on_the_driver_are_stored_as_sqlalchemy_stores_them(
    engine: Engine, reference: Engine, how: str
) -> None:
    with engine.begin() as connection:
        for table, table_rows in WRITES:
            statement = driver.prepared(engine.dialect, insert(table))
            if how == "executemany":
                written = statement.executemany(connection, table_rows)
            else:
                written = sum(statement.execute(connection, row) for row in table_rows)
            assert written == len(table_rows), table.name
    write_with_core(reference, *WRITES)

    assert_same_tables(engine, reference, payments, transitions, attempts)
    # and SQLAlchemy reads back what was written, each value of its type
    for table, table_rows in WRITES:
        read = contents(engine, table)
        if table is not payments:
            read = [without(row, "id") for row in read]
        assert typed(read) == typed(table_rows), table.name


def test_executemany_of_no_rows_writes_nothing_and_returns_zero(engine: Engine) -> None:
    statement = driver.prepared(engine.dialect, insert(transitions))
    with engine.begin() as connection:
        assert statement.executemany(connection, []) == 0
    assert contents(engine, transitions) == []


# --- rowcounts -------------------------------------------------------------------------------


def test_a_guarded_update_counts_the_rows_it_matched_as_sqlalchemy_does(
    engine: Engine, reference: Engine
) -> None:
    # Given payments 1 and 2 under their claims, payment 3 in a retry tier
    in_processing_and_retrying(engine)
    in_processing_and_retrying(reference)
    moves = [
        move(number, token(number), outcome_unknown=True, result_body=NOT_UTF8)
        for number in (1, 2, 3)
    ]
    # When the moves of all three are sent, and then sent again
    statement = driver.prepared(engine.dialect, UPDATE_OWNED)
    with engine.begin() as connection:
        on_driver = (
            statement.executemany(connection, moves),
            statement.executemany(connection, moves),
        )
    with reference.begin() as connection:
        on_core = (
            connection.execute(UPDATE_OWNED, moves).rowcount,
            connection.execute(UPDATE_OWNED, moves).rowcount,
        )
    # Then the first matched 2 of 3 rows, the second none (they left `processing`)
    assert on_driver == on_core == (2, 0)
    assert_same_tables(engine, reference, payments)


def test_execute_counts_the_row_it_matched_and_zero_for_a_stale_claim(
    engine: Engine, reference: Engine
) -> None:
    in_processing_and_retrying(engine)
    in_processing_and_retrying(reference)
    moves = [move(1, token(1)), move(2, token(2, claim=9)), move(1, token(1))]
    statement = driver.prepared(engine.dialect, UPDATE_OWNED)
    with engine.begin() as connection:
        on_driver = [statement.execute(connection, one) for one in moves]
    with reference.begin() as connection:
        on_core = [connection.execute(UPDATE_OWNED, one).rowcount for one in moves]
    assert on_driver == on_core == [1, 0, 0]
    assert_same_tables(engine, reference, payments)


def test_rows_with_different_columns_are_each_written_with_their_own_and_counted_together(
    engine: Engine, reference: Engine
) -> None:
    # Given three payments, each with a code of its own
    codes = [payment(n, code=f"before-{n}", attempts=n) for n in (1, 2, 3)]
    write_with_core(engine, (payments, codes))
    write_with_core(reference, (payments, codes))
    # When moves that set different columns are sent together (the third's claim is stale)
    moves = [
        move(1, token(1), state="retrying", attempts=5),
        move(2, token(2), code="approved", provider_reference="ch_2"),
        move(3, token(3, claim=9), code="never"),
    ]
    statement = driver.prepared(engine.dialect, UPDATE_OWNED)
    with engine.begin() as connection:
        moved = statement.executemany(connection, moves)
    with reference.begin() as connection:
        moved_on_core = sum(connection.execute(UPDATE_OWNED, one).rowcount for one in moves)
    # Then each row got its own columns only, and the count is the sum
    assert moved == moved_on_core == 2
    stored_rows = contents(engine, payments)
    assert [(r["state"], r["attempts"], r["code"]) for r in stored_rows] == [
        ("retrying", 5, "before-1"),
        ("succeeded", 2, "approved"),
        ("processing", 3, "before-3"),
    ]
    assert_same_tables(engine, reference, payments)


def test_inserted_rows_with_different_columns_leave_the_missing_ones_null(
    engine: Engine, reference: Engine
) -> None:
    write_with_core(engine, (payments, [payment(1)]))
    write_with_core(reference, (payments, [payment(1)]))
    without_reason = without(TRANSITIONS[1], "reason")
    mixed = [TRANSITIONS[0], without_reason, {**TRANSITIONS[1], "id": 10}]
    statement = driver.prepared(engine.dialect, insert(transitions))
    with engine.begin() as connection:
        assert statement.executemany(connection, mixed) == 3
    with reference.begin() as connection:
        for row in mixed:
            connection.execute(insert(transitions), row)
    assert [(r["id"], r["reason"]) for r in contents(engine, transitions)] == [
        (1, None),
        (2, None),
        (10, "é" * 500),
    ]
    assert_same_tables(engine, reference, transitions)


# --- INSERT ... RETURNING --------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 3, 128])
def test_insert_returning_gives_exactly_the_rows_it_inserted(
    engine: Engine, reference: Engine, count: int
) -> None:
    new = [payment(number) for number in range(1, count + 1)]
    with engine.begin() as connection:
        returned = driver.insert_returning(engine.dialect, CLAIM_INSERT).insert(connection, new)
    with reference.begin() as connection:
        returned_on_core = [tuple(row) for row in connection.execute(CLAIM_INSERT, new)]
    assert len(returned) == count
    assert all(type(row) is tuple for row in returned)
    assert sorted(returned) == sorted(returned_on_core)
    assert sorted(returned) == [(row["payment_id"], row["claim_token"]) for row in new]
    assert_same_tables(engine, reference, payments)


def arriving_again() -> list[dict[str, Any]]:
    """Payment 1 again under another claim, beside a new payment 2 and a payment 3 that
    brings the idempotency key payment 1 holds."""
    return [
        payment(1, claim_token=token(1, claim=2)),
        payment(2),
        payment(3, idempotency_key="key-1"),
    ]


def test_insert_returning_skips_a_payment_that_exists_and_returns_the_others(
    engine: Engine, reference: Engine
) -> None:
    # Given payment 1, inserted under its first claim
    statement = driver.insert_returning(engine.dialect, CLAIM_INSERT)
    with engine.begin() as connection:
        assert statement.insert(connection, [payment(1)]) == [(payment_id(1), token(1))]
    write_with_core(reference, (payments, [payment(1)]))
    # When it comes again with another token, beside a new payment and one whose idempotency
    # key payment 1 holds
    again = arriving_again()
    with engine.begin() as connection:
        returned = statement.insert(connection, again)
    with reference.begin() as connection:
        returned_on_core = [tuple(row) for row in connection.execute(CLAIM_INSERT, again)]
    # Then only the new payment is inserted and returned; payment 1 keeps its claim
    assert returned == returned_on_core == [(payment_id(2), token(2))]
    assert [(r["payment_id"], r["claim_token"]) for r in contents(engine, payments)] == [
        (payment_id(1), token(1)),
        (payment_id(2), token(2)),
    ]
    assert_same_tables(engine, reference, payments)


def test_insert_returning_of_no_rows_returns_nothing_and_writes_nothing(engine: Engine) -> None:
    with engine.begin() as connection:
        assert driver.insert_returning(engine.dialect, CLAIM_INSERT).insert(connection, []) == []
    assert contents(engine, payments) == []


def test_insert_returning_refuses_rows_that_give_different_columns(engine: Engine) -> None:
    mixed = [payment(1), without(payment(2), "provider")]
    statement = driver.insert_returning(engine.dialect, CLAIM_INSERT)
    with pytest.raises(ValueError, match="same columns"), engine.begin() as connection:
        statement.insert(connection, mixed)
    assert contents(engine, payments) == []


def test_insert_returning_gives_values_of_the_types_sqlalchemy_gives(
    engine: Engine, reference: Engine
) -> None:
    statement = (
        sqlite.insert(payments)
        .on_conflict_do_nothing()
        .returning(payments.c.outcome_unknown, payments.c.result_body, payments.c.attempts)
    )
    row = settled(1, NOT_UTF8, outcome_unknown=True)
    with engine.begin() as connection:
        [returned] = driver.insert_returning(engine.dialect, statement).insert(connection, [row])
    with reference.begin() as connection:
        [on_core] = [tuple(r) for r in connection.execute(statement, [row])]
    assert on_core == (True, NOT_UTF8, 0)
    assert [type(v) for v in returned] == [type(v) for v in on_core]


# --- defaults are never guessed --------------------------------------------------------------


Call = Callable[[Engine, Connection], object]


def insert_returning_one_without_attempts(engine: Engine, connection: Connection) -> object:
    statement = driver.insert_returning(engine.dialect, CLAIM_INSERT)
    return statement.insert(connection, [without(payment(1), "attempts")])


def insert_returning_two_without_attempts(engine: Engine, connection: Connection) -> object:
    statement = driver.insert_returning(engine.dialect, CLAIM_INSERT)
    return statement.insert(connection, [without(payment(n), "attempts") for n in (1, 2)])


def execute_without_checks(engine: Engine, connection: Connection) -> object:
    statement = driver.prepared(engine.dialect, insert(payments))
    return statement.execute(connection, without(payment(1), "checks"))


def executemany_without_result_unpublished(engine: Engine, connection: Connection) -> object:
    statement = driver.prepared(engine.dialect, insert(payments))
    rows_without = [without(payment(n), "result_unpublished") for n in (1, 2)]
    return statement.executemany(connection, rows_without)


@pytest.mark.parametrize(
    ("call", "column"),
    [
        (insert_returning_one_without_attempts, "attempts"),
        (insert_returning_two_without_attempts, "attempts"),
        (execute_without_checks, "checks"),
        (executemany_without_result_unpublished, "result_unpublished"),
    ],
)
def test_a_row_without_a_column_that_has_a_python_default_is_refused_not_defaulted(
    engine: Engine, call: Call, column: str
) -> None:
    with pytest.raises(ValueError, match=column), engine.begin() as connection:
        call(engine, connection)
    assert contents(engine, payments) == []


def test_an_update_without_a_parameter_of_its_guard_is_refused_and_updates_nothing(
    engine: Engine,
) -> None:
    in_processing_and_retrying(engine)
    before = contents(engine, payments)
    statement = driver.prepared(engine.dialect, rows.UPDATE_IN_STATE)
    unguarded = {"b_payment_id": payment_id(1), "state": "failed", "updated_ms": NOW_MS + 1}
    with pytest.raises(ValueError, match="b_state"), engine.begin() as connection:
        statement.execute(connection, unguarded)
    assert contents(engine, payments) == before


# --- errors ----------------------------------------------------------------------------------

UNKNOWN_PAYMENT = "no-such-payment-7c1e"


def orphan_transition(number: int = 1) -> dict[str, Any]:
    return {**TRANSITIONS[0], "payment_id": f"{UNKNOWN_PAYMENT}-{number}"}


def execute_orphan(engine: Engine, connection: Connection) -> object:
    statement = driver.prepared(engine.dialect, insert(transitions))
    return statement.execute(connection, orphan_transition())


def executemany_orphans(engine: Engine, connection: Connection) -> object:
    statement = driver.prepared(engine.dialect, insert(transitions))
    return statement.executemany(connection, [orphan_transition(1), orphan_transition(2)])


def insert_returning_orphans(engine: Engine, connection: Connection) -> object:
    statement = insert(transitions).returning(transitions.c.id)
    returning = driver.insert_returning(engine.dialect, statement)
    return returning.insert(connection, [orphan_transition(1), orphan_transition(2)])


@pytest.mark.parametrize("call", [execute_orphan, executemany_orphans, insert_returning_orphans])
def test_a_row_the_database_refuses_raises_sqlalchemys_integrity_error_without_its_values(
    engine: Engine, reference: Engine, call: Call
) -> None:
    with pytest.raises(IntegrityError) as on_driver, engine.begin() as connection:
        call(engine, connection)
    with pytest.raises(IntegrityError) as on_core, reference.begin() as connection:
        connection.execute(insert(transitions), orphan_transition())

    assert type(on_driver.value.orig) is sqlite3.IntegrityError
    assert str(on_driver.value.orig) == str(on_core.value.orig) == "FOREIGN KEY constraint failed"
    assert on_driver.value.statement is not None
    assert on_driver.value.statement.startswith("INSERT INTO transitions")
    assert UNKNOWN_PAYMENT not in str(on_driver.value)  # parameters hidden
    assert UNKNOWN_PAYMENT in str(on_core.value)  # where SQLAlchemy would show them
    assert contents(engine, transitions) == []


def write_while_another_process_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "locked" / "paymq.db"
    with sqlite_engine(path.parent):
        pass  # migrated
    engine = create_store_engine(f"sqlite:///{path}", timeouts=StoreTimeouts(timeout_s=0.2))
    try:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            # A write transaction takes the lock at its BEGIN (store/database.py), so it fails
            # there; a deferred one (a read's) meets the lock at its first write: the statement.
            with reading(engine) as connection, connection.begin():
                driver.prepared(engine.dialect, insert(payments)).execute(connection, payment(1))
    finally:
        engine.dispose()


missing = Table("missing", MetaData(), Column("id", Integer, primary_key=True))


def write_to_a_table_never_created(tmp_path: Path) -> None:
    with sqlite_engine(tmp_path / "missing") as engine, engine.begin() as connection:
        driver.prepared(engine.dialect, insert(missing)).execute(connection, {"id": 1})


@pytest.mark.parametrize(
    ("write", "statement", "reason"),
    [
        (write_while_another_process_holds_the_lock, "INSERT INTO payments", "database is locked"),
        (write_to_a_table_never_created, "INSERT INTO missing", "no such table: missing"),
    ],
)
def test_a_statement_the_database_cannot_run_becomes_store_unavailable(
    tmp_path: Path, write: Callable[[Path], None], statement: str, reason: str
) -> None:
    with (
        pytest.raises(StoreUnavailable, match="OperationalError") as raised,
        unavailable_as_retryable(),
    ):
        write(tmp_path)
    cause = raised.value.__cause__
    assert isinstance(cause, OperationalError)
    assert (cause.statement or "").startswith(statement)  # the driver's statement failed
    assert type(cause.orig) is sqlite3.OperationalError
    assert str(cause.orig) == reason


# --- the caller's transaction ----------------------------------------------------------------


class Written(Exception):
    """Raised once the driver's writes are made: the transaction rolls back."""


def write_everything_then_fail(engine: Engine, connection: Connection) -> None:
    new = [payment(1), payment(2)]
    assert driver.insert_returning(engine.dialect, CLAIM_INSERT).insert(connection, new)
    assert driver.prepared(engine.dialect, insert(transitions)).executemany(
        connection, [TRANSITIONS[0]]
    )
    assert driver.prepared(engine.dialect, UPDATE_OWNED).execute(connection, move(2, token(2)))
    # SQLAlchemy's own statements in the transaction see the driver's rows
    query = select(payments.c.payment_id, payments.c.state).order_by(payments.c.payment_id)
    assert connection.execute(query).all() == [
        (payment_id(1), "processing"),
        (payment_id(2), "succeeded"),
    ]
    raise Written


def test_a_rolled_back_transaction_keeps_nothing_the_driver_wrote(engine: Engine) -> None:
    with pytest.raises(Written), engine.begin() as connection:
        write_everything_then_fail(engine, connection)
    assert contents(engine, payments) == []
    assert contents(engine, transitions) == []


def test_a_statement_on_a_connection_not_yet_in_a_transaction_is_rolled_back_with_it(
    engine: Engine, reference: Engine
) -> None:
    with engine.connect() as connection:
        driver.prepared(engine.dialect, insert(payments)).execute(connection, payment(1))
        connection.rollback()
    with reference.connect() as connection:
        connection.execute(insert(payments), payment(1))
        connection.rollback()
    assert contents(reference, payments) == []
    assert contents(engine, payments) == []
