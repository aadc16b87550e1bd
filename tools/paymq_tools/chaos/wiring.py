"""Where a run's payment store lives, and what the workers reach it and the broker through.

    store   the run's SQLite file (the default); a throwaway database on a PostgreSQL server
            given by --postgres-url; or, for the store faults, a private PostgreSQL server
            started for the run (postgres.py), which faults may stop
    links   a link proxy (linkproxy.py) between the workers and the broker ("broker"), or
            between the workers and a private PostgreSQL ("store"), where the scenario
            breaks that link

Only the workers go through the links: the producer, the reconciler, the result collector and
the harness itself connect directly, so a fault of a link is a fault of the workers' network
alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection
from pathlib import Path

from sqlalchemy import make_url

from paymq_tools.chaos.databases import create_database, drop_database
from paymq_tools.chaos.linkproxy import LinkProxy, LinkStats
from paymq_tools.chaos.postgres import PrivatePostgres
from paymq_tools.chaos.services import store_env

#: The database of a private PostgreSQL server's run.
PRIVATE_DATABASE = "paymq"


class Wiring:
    def __init__(
        self,
        work_dir: Path,
        *,
        broker_url: str,
        broker_port: int,
        links: Collection[str] = (),
        private_postgres: bool = False,
        postgres_admin_url: str | None = None,
        keep: bool = False,
        say: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self._work_dir = work_dir
        self._broker_url = broker_url
        self._admin_url = None if private_postgres else postgres_admin_url
        self._keep = keep
        self._say = say
        self.postgres = PrivatePostgres(say=say, keep=keep) if private_postgres else None
        #: The store's URL as the processes that connect directly use it; None: SQLite.
        self.database_url: str | None = None
        if self.postgres is not None:
            self.database_url = self.postgres.url(PRIVATE_DATABASE)
        elif self._admin_url:
            self.database_url = create_database(self._admin_url)
        upstreams = {"broker": broker_port}
        if self.postgres is not None:
            upstreams["store"] = self.postgres.port
        unknown = set(links) - set(upstreams)
        if unknown:
            raise ValueError(f"no upstream for links {sorted(unknown)}: {sorted(upstreams)} only")
        self.links = {name: LinkProxy("127.0.0.1", upstreams[name], name=name) for name in links}

    @property
    def sqlite_file(self) -> Path | None:
        return None if self.database_url else self._work_dir / "paymq.db"

    @property
    def database_kind(self) -> str:
        return "sqlite" if self.database_url is None else "postgresql"

    def env(self) -> dict[str, str]:
        """The store's environment, for every process of the run."""
        return store_env(self._work_dir, self.database_url)

    def worker_env(self) -> dict[str, str]:
        """What the workers connect to instead: the links, where the scenario has them."""
        env = {}
        if "broker" in self.links:
            env["PAYMQ_AMQP_URL"] = self.links["broker"].route(self._broker_url)
        if "store" in self.links and self.database_url is not None:
            env["PAYMQ_DATABASE_URL"] = self.links["store"].route(self.database_url)
        return env

    def start(self) -> None:
        """The private PostgreSQL server with the run's database, and the link proxies."""
        if self.postgres is not None:
            self.postgres.create()
            self.postgres.start()
            create_database(self.postgres.admin_url, name=PRIVATE_DATABASE)
        for link in self.links.values():
            link.start()

    def link_stats(self) -> dict[str, LinkStats]:
        return {name: link.stats() for name, link in self.links.items()}

    def close(self) -> None:
        for link in self.links.values():
            link.close()
        if self.postgres is not None:
            self.postgres.close()
        if self._admin_url and self.database_url:
            if self._keep:
                self._say(f"kept the store's database {make_url(self.database_url)}")
            else:
                with contextlib.suppress(Exception):
                    drop_database(self._admin_url, self.database_url)
