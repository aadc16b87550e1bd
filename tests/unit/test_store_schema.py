"""The store's schema revision as processes meet it: a store an older paymq left is migrated, and
a store a newer paymq migrated is refused in one sentence that says what to run, whichever
process meets it (a worker at start, `paymq db upgrade`, the CLI's lookups)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from common.errors import ConfigurationError
from store import database
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


def _before_newest() -> str:
    """The revision before this paymq's newest: the one an older paymq left its store at."""
    script = ScriptDirectory(str(Path(database.__file__).resolve().parent / "migrations"))
    newest = script.get_revision(head_revision())
    assert newest is not None
    assert isinstance(newest.down_revision, str)
    return newest.down_revision


def test_a_lookup_on_a_store_an_older_paymq_left_asks_for_an_upgrade_which_brings_it_current(
    tmp_path: Path,
) -> None:
    # Given a store migrated to the revision before this paymq's newest (as an older paymq
    # left it), whichever revision that is
    older = _before_newest()
    engine = create_store_engine(f"sqlite:///{tmp_path / 'older.db'}")
    try:
        upgrade(engine, older)
        # When a lookup checks it, it asks for `paymq db upgrade`
        with pytest.raises(
            ConfigurationError, match=rf"is at schema {older}, .* run `paymq db upgrade`"
        ):
            require_current(engine)
        # And an upgrade brings it to this paymq's newest
        assert upgrade(engine) == head_revision()
        require_current(engine)
    finally:
        engine.dispose()
