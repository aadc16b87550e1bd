"""The private PostgreSQL server of the store faults: started on a free port, stopped as if
killed and started again with its data, removed afterwards. Skips without PostgreSQL's
binaries, except when CI is set."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from paymq_tools.chaos.databases import create_database
from paymq_tools.chaos.postgres import PrivatePostgres, postgres_installed

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]


@pytest.fixture(autouse=True)
def _needs_postgres() -> None:
    if not postgres_installed():
        if os.environ.get("CI"):
            pytest.fail("CI is set and PostgreSQL's binaries are not installed", pytrace=False)
        pytest.skip("PostgreSQL's binaries (initdb, pg_ctl) are not installed")


def test_an_immediate_stop_refuses_connections_and_a_start_brings_the_data_back() -> None:
    with PrivatePostgres() as server:
        # Given a committed row
        engine = create_engine(create_database(server.admin_url), pool_pre_ping=True)
        try:
            with engine.begin() as connection:
                connection.execute(text("CREATE TABLE kept (n int)"))
                connection.execute(text("INSERT INTO kept VALUES (7)"))
            # When the server is stopped as if killed
            server.stop()
            # Then nobody can connect
            with pytest.raises(OperationalError), engine.connect():
                pass
            # and once started again on the same port, the row is there
            server.start()
            with engine.connect() as connection:
                assert connection.execute(text("SELECT n FROM kept")).scalar() == 7
        finally:
            engine.dispose()
        directory = server.directory
    assert not directory.exists()


def test_it_listens_on_loopback_on_its_own_port_and_socket_only() -> None:
    with PrivatePostgres() as server:
        log = (server.directory / "server.log").read_text()

    listening = [line.split("LOG:  ")[1] for line in log.splitlines() if "listening on" in line]
    assert server.port != 5432
    assert listening == [
        f'listening on IPv4 address "127.0.0.1", port {server.port}',
        f'listening on Unix socket "{server.directory}/.s.PGSQL.{server.port}"',
    ]
