"""The store's schema revision as processes meet it: a store an older paymq left is migrated, and
a store a newer paymq migrated is refused in one sentence that says what to run, whichever
process meets it (a worker at start, `paymq db upgrade`, the CLI's lookups)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from common.errors import ConfigurationError
from store.database import (
    create_store_engine,
    current_revision,
    head_revision,
    require_current,
    upgrade,
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'paymq.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def _stamp(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


def test_upgrade_refuses_a_store_a_newer_paymq_migrated_and_leaves_it_as_it_is(
    engine: Engine,
) -> None:
    # Given a store at a revision this paymq has no migration for
    _stamp(engine, "9999")
    # When this paymq (a worker starting, or `paymq db upgrade`) brings it up to date
    with pytest.raises(ConfigurationError) as refused:
        upgrade(engine)
    # Then it refuses, saying why and what to run, and touches nothing
    message = str(refused.value)
    assert "is at schema 9999, which this paymq does not know" in message
    assert f"its newest is {head_revision()}" in message
    assert "run that version or a later one" in message
    assert current_revision(engine) == "9999"


def test_a_lookup_on_a_store_a_newer_paymq_migrated_does_not_ask_for_an_upgrade(
    engine: Engine,
) -> None:
    _stamp(engine, "9999")
    with pytest.raises(ConfigurationError) as refused:
        require_current(engine)
    assert "which this paymq does not know" in str(refused.value)
    assert "db upgrade" not in str(refused.value)


def test_a_lookup_on_a_store_an_older_paymq_left_asks_for_an_upgrade_which_brings_it_current(
    engine: Engine,
) -> None:
    # Given a store at the revision before this paymq's newest (as an older paymq left it)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE dead_letter_discards"))
    _stamp(engine, "0006")
    # When a lookup checks it, it asks for `paymq db upgrade`
    with pytest.raises(ConfigurationError, match=r"is at schema 0006, .* run `paymq db upgrade`"):
        require_current(engine)
    # And an upgrade brings it to this paymq's newest
    assert upgrade(engine) == head_revision()
    require_current(engine)
