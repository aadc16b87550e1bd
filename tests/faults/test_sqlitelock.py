"""The other process of the sqlite-lock scenario: it holds a SQLite file's write lock, and
lets go. No broker; a file in a temporary directory."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from paymq_tools.chaos.sqlitelock import HOLDING, hold_write_lock, write_locked

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "paymq.db"
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE payments (id TEXT)")
    connection.close()
    return path


def test_the_holder_blocks_writers_while_it_holds_and_frees_them_after(store: Path) -> None:
    said: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def hold(_seconds: float) -> None:
        holding.set()
        release.wait(10)

    holder = threading.Thread(
        target=hold_write_lock, args=(store, 45.0), kwargs={"say": said.append, "sleep": hold}
    )
    holder.start()
    assert holding.wait(10)

    assert write_locked(store)
    assert said[0].startswith(HOLDING)
    reader = sqlite3.connect(store)
    assert reader.execute("SELECT count(*) FROM payments").fetchone() == (0,)  # WAL: readers go on
    reader.close()

    release.set()
    holder.join(10)
    assert not write_locked(store)
    assert said[-1] == "released"


def test_the_holder_never_creates_a_missing_store(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hold_write_lock(tmp_path / "absent.db", 1.0, sleep=lambda _s: None)
    assert not (tmp_path / "absent.db").exists()
