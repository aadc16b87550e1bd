"""The writer's hot statements, run on SQLite's driver: compiled once by SQLAlchemy, executed on
the sqlite3 cursor of the transaction's own connection.

Why (docs/performance.md, "Cold store transactions"): below capacity each claim and each outcome
is a transaction of its own, and most of its CPU was SQLAlchemy's execution layer around two or
three statements that the driver runs in a few microseconds (the execution context, parameter
processing, the result object, the events). Here a statement is compiled once per set of
columns, by SQLAlchemy, for the engine's dialect; each run only orders the parameters, applies
the column types' own bind processors (booleans as integers, bytes as blobs) and calls the
cursor.

What stays SQLAlchemy's:
- the transaction: BEGIN IMMEDIATE (store/database.py), commit, rollback, the pool; these
  statements run on the connection of that transaction, never on one of their own;
- every statement off the hot path (a redelivered payment's row, a takeover, refusals);
- every statement on PostgreSQL, where the driver's `executemany` is a round trip per row and
  SQLAlchemy's batching is the fast path (`prepared` gives SQLAlchemy's execute there).

The driver's errors are raised as SQLAlchemy raises them (`DBAPIError.instance`, parameters
hidden), so store/outage.py and the writer treat a failed statement the same on either path.
SQLAlchemy's cursor events (`before_cursor_execute`) do not see these statements; the
statements SQLite ran are counted by its own trace hook in the tests (tests/unit/
test_store_writer.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any, Protocol

from sqlalchemy import Dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert, UpdateBase

Row = Mapping[str, Any]
_Processor = Callable[[Any], Any] | None


class Prepared(Protocol):
    """A statement run with one set of parameters or many; the rows it wrote (rowcount)."""

    def execute(self, connection: Connection, params: Row) -> int: ...

    def executemany(self, connection: Connection, rows: Sequence[Row]) -> int: ...


class InsertReturning(Protocol):
    """An INSERT of many rows in one statement; the rows its RETURNING clause gave."""

    def insert(self, connection: Connection, rows: Sequence[Row]) -> list[tuple[Any, ...]]: ...


def prepared(dialect: Dialect, statement: UpdateBase) -> Prepared:
    """`statement` on the driver on SQLite; through SQLAlchemy elsewhere."""
    if dialect.name == "sqlite":
        return _OnDriver(dialect, statement)
    return _Core(statement)


def insert_returning(dialect: Dialect, statement: Insert) -> InsertReturning:
    """`statement` (an INSERT with RETURNING) for many rows at once: on SQLite, one statement
    of as many VALUES groups as rows, on the driver; elsewhere, SQLAlchemy's batched insert."""
    if dialect.name == "sqlite":
        return _ManyValuesOnDriver(dialect, statement)
    return _CoreReturning(statement)


class _Core:
    def __init__(self, statement: UpdateBase) -> None:
        # psycopg gives no rowcount for an INSERT unless asked; the callers count rows.
        self._statement = statement.execution_options(preserve_rowcount=True)

    def execute(self, connection: Connection, params: Row) -> int:
        return connection.execute(self._statement, dict(params)).rowcount

    def executemany(self, connection: Connection, rows: Sequence[Row]) -> int:
        if not rows:
            return 0
        if not _same_columns(rows):  # one statement takes one set of columns
            return sum(self.execute(connection, row) for row in rows)
        return connection.execute(self._statement, [dict(row) for row in rows]).rowcount


class _CoreReturning:
    def __init__(self, statement: Insert) -> None:
        self._statement = statement

    def insert(self, connection: Connection, rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        if not rows:
            return []
        ran = connection.execute(self._statement, [dict(row) for row in rows])
        return [tuple(row) for row in ran]


class _Compiled:
    """One compiled form: its SQL; for each positional parameter, the key of the row that
    gives it and the bind processor of its column's type; and the result processors of the
    columns it returns (SQLite's booleans come back as integers)."""

    __slots__ = ("_binds", "_results", "sql")

    def __init__(
        self, sql: str, binds: list[tuple[str, _Processor]], results: list[_Processor]
    ) -> None:
        self.sql = sql
        self._binds = binds
        self._results = results if any(results) else []

    @property
    def parameters(self) -> int:
        return len(self._binds)

    def args(self, row: Row) -> tuple[Any, ...]:
        return tuple(
            row[key] if process is None else process(row[key]) for key, process in self._binds
        )

    def returned(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        if not self._results:
            return rows
        return [
            tuple(
                value if process is None else process(value)
                for value, process in zip(row, self._results, strict=True)
            )
            for row in rows
        ]


def _compile(dialect: Dialect, statement: UpdateBase, column_keys: list[str]) -> _Compiled:
    """The statement for rows of these keys; refused if it needs any value they do not give."""
    compiled = statement.compile(dialect=dialect, column_keys=column_keys)
    if compiled.prefetch:
        # Python-side defaults would be computed by SQLAlchemy's execution context, which
        # this path skips: every column must come with the row.
        missing = sorted({column.key for column in compiled.prefetch})
        raise ValueError(f"columns with defaults must be given on the driver path: {missing}")
    names = compiled.positiontup
    if names is None:
        raise ValueError(f"{dialect.name}: the driver path needs a positional paramstyle")
    binds: list[tuple[str, _Processor]] = []
    for name in names:
        if name not in column_keys:  # a value SQLAlchemy would fill in (a default): not here
            raise ValueError(f"the rows do not give the statement's parameter {name!r}")
        process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        binds.append((name, process))
    results: list[_Processor] = [
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in statement.exported_columns
    ]
    return _Compiled(str(compiled), binds, results)


class _DriverErrors:
    """Runs driver calls, raising the driver's errors as SQLAlchemy would."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._error: type[Exception] = dialect.loaded_dbapi.Error

    def raised(self, sql: str, exc: Exception) -> BaseException:
        return DBAPIError.instance(
            sql, None, exc, self._error, hide_parameters=True, dialect=self._dialect
        )

    @staticmethod
    def cursor(connection: Connection) -> Any:
        """A cursor on the connection's driver connection, inside its transaction: begun here
        when it is not yet (as SQLAlchemy's own execute would), so the caller's rollback
        undoes these statements too."""
        if not connection.in_transaction():
            connection.begin()
        return connection.connection.driver_connection.cursor()  # type: ignore[union-attr]


class _OnDriver(_DriverErrors):
    def __init__(self, dialect: Dialect, statement: UpdateBase) -> None:
        super().__init__(dialect)
        self._statement = statement
        self._forms: dict[tuple[str, ...], _Compiled] = {}

    def _form(self, row: Row) -> _Compiled:
        keys = tuple(sorted(row))
        form = self._forms.get(keys)
        if form is None:
            form = self._forms[keys] = _compile(self._dialect, self._statement, list(keys))
        return form

    def execute(self, connection: Connection, params: Row) -> int:
        form = self._form(params)
        cursor = self.cursor(connection)
        try:
            cursor.execute(form.sql, form.args(params))
            return int(cursor.rowcount)
        except self._error as exc:
            raise self.raised(form.sql, exc) from exc
        finally:
            cursor.close()

    def executemany(self, connection: Connection, rows: Sequence[Row]) -> int:
        if not rows:
            return 0
        if not _same_columns(rows):  # one compiled form for all
            return sum(self.execute(connection, row) for row in rows)
        form = self._form(rows[0])
        cursor = self.cursor(connection)
        try:
            cursor.executemany(form.sql, [form.args(row) for row in rows])
            return int(cursor.rowcount)
        except self._error as exc:
            raise self.raised(form.sql, exc) from exc
        finally:
            cursor.close()


class _ManyValuesOnDriver(_DriverErrors):
    """One compiled form per set of columns, for one row; the statement for n rows repeats its
    VALUES group n times (as SQLAlchemy's own "insertmanyvalues" does), so a batch of a new
    size costs a string, not a compilation (26 ms for 128 rows, in the writer's transaction)."""

    def __init__(self, dialect: Dialect, statement: Insert) -> None:
        super().__init__(dialect)
        self._statement = statement
        self._forms: dict[tuple[str, ...], _OneRow] = {}

    def _form(self, keys: tuple[str, ...]) -> _OneRow:
        form = self._forms.get(keys)
        if form is None:
            form = self._forms[keys] = _OneRow(_compile(self._dialect, self._statement, list(keys)))
        return form

    def insert(self, connection: Connection, rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        if not rows:
            return []
        if not _same_columns(rows):
            raise ValueError("rows inserted together must give the same columns")
        keys = tuple(sorted(rows[0]))
        form = self._form(keys)
        sql = form.sql(len(rows))
        cursor = self.cursor(connection)
        try:
            cursor.execute(sql, tuple(chain.from_iterable(form.one.args(row) for row in rows)))
            return form.one.returned([tuple(row) for row in cursor.fetchall()])
        except self._error as exc:
            raise self.raised(sql, exc) from exc
        finally:
            cursor.close()


class _OneRow:
    """A one-row INSERT's compiled form, and its SQL for n rows: the VALUES group n times."""

    def __init__(self, one: _Compiled) -> None:
        self.one = one
        self._group = "(" + ", ".join("?" * one.parameters) + ")"
        self._head, found, tail = one.sql.partition(f"VALUES {self._group}")
        if not found or self._group in tail:
            raise ValueError(f"one VALUES group {self._group} expected, once: {one.sql}")
        self._tail = tail
        self._by_count: dict[int, str] = {}

    def sql(self, count: int) -> str:
        sql = self._by_count.get(count)
        if sql is None:
            groups = ", ".join([self._group] * count)
            sql = self._by_count[count] = f"{self._head}VALUES {groups}{self._tail}"
        return sql


def _same_columns(rows: Sequence[Row]) -> bool:
    keys = rows[0].keys()
    return all(row.keys() == keys for row in rows)
