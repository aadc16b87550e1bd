"""`paymq bench` with its workers spread over stand-in hosts: every payment gets its result, and
each host runs from its own copy of only the keys a worker reads. Figures are not asserted:
speed belongs to benchmarks, not tests."""

from __future__ import annotations

import json
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from common.errors import ConfigurationError
from paymq_tools.bench.run import BenchOptions
from paymq_tools.bench.workdir import run_directory, tidy
from tests.integration.helpers import cli_env, run_cli
from tests.stores import postgres_engine

pytestmark = pytest.mark.integration

PAYMENTS = 200


@pytest.fixture
def shared_store() -> Iterator[str]:
    """The URL of a throwaway PostgreSQL database, dropped afterwards."""
    with postgres_engine() as engine:
        yield engine.url.render_as_string(hide_password=False)


TWO_HOSTS = BenchOptions(
    payments=10,
    provider_latency_ms=0,
    workers=2,
    concurrency=4,
    rate_per_s=0,
    as_json=True,
    database_url="postgresql+psycopg://postgres@127.0.0.1/paymq",
    hosts=2,
)


@pytest.mark.parametrize("database_url", [None, "sqlite:////tmp/paymq.db"])
def test_several_hosts_on_a_sqlite_store_are_refused_before_anything_starts(
    database_url: str | None,
) -> None:
    with pytest.raises(ConfigurationError, match="one host only"):
        replace(TWO_HOSTS, database_url=database_url).check()


@pytest.mark.parametrize("hosts", [0, 3])
def test_hosts_must_be_at_least_one_and_at_most_one_per_worker(hosts: int) -> None:
    with pytest.raises(ConfigurationError, match="between 1 and the number of workers"):
        replace(TWO_HOSTS, hosts=hosts).check()


def bench(amqp_url: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    """`paymq bench ... --provider-latency-ms 0 --json` run from tmp_path, its directory in
    tmp_path too (TMPDIR); its figures, once it exited 0."""
    completed = run_cli(
        "bench",
        *args,
        *("--provider-latency-ms", "0", "--json"),
        env=cli_env(PAYMQ_AMQP_URL=amqp_url, TMPDIR=str(tmp_path)),
        cwd=tmp_path,
        timeout_s=240,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return dict(json.loads(completed.stdout))


def test_bench_on_two_hosts_gets_every_result_with_each_hosts_own_copy_of_the_worker_keys(
    amqp_url: str, shared_store: str, tmp_path: Path
) -> None:
    # Given two hosts of one worker each, sharing one PostgreSQL store. The bench's directory
    # lands in tmp_path (TMPDIR), kept afterwards to be looked at (--keep), and so does the
    # command's working directory, which holds no keys: a worker that did not run from its
    # host's directory would find none and exit.

    # When the bench runs
    figures = bench(
        amqp_url,
        tmp_path,
        *("--payments", str(PAYMENTS), "--workers", "2", "--hosts", "2", "--concurrency", "8"),
        *("--keep", "--database-url", shared_store),
    )

    # Then every payment got its result, from workers on both hosts
    assert figures["results"] == figures["succeeded"] == PAYMENTS
    # with where their time went in the workers, hop by hop (values not asserted: speed)
    for hop in ("claim_ms", "provider_ms", "outcome_ms", "result_publish_ms"):
        assert set(figures[hop]) == {"mean", "p50", "p99"}, hop
        assert figures[hop]["mean"] > 0, hop
        assert figures[hop]["p50"] <= figures[hop]["p99"], hop
    shares = figures["per_host"]
    assert [(share["host"], share["workers"]) for share in shares] == [
        ("host-1", 1),
        ("host-2", 1),
    ]
    assert sum(share["payments"] for share in shares) == PAYMENTS

    # And each host held copies, not links, of only the keys a worker reads
    directories = [Path(share["directory"]) for share in shares]
    bench_keys = directories[0].parent / "keys"
    assert bench_keys.parent.parent == tmp_path
    assert len(set(directories)) == 2
    for directory in directories:
        keys = directory / "keys"
        private = sorted(path.name for path in (keys / "private").iterdir())
        trusted = sorted(path.name for path in (keys / "trusted").iterdir())
        assert private == ["card-seal-1.pem", "worker-1.pem"]
        assert trusted == sorted(path.name for path in (bench_keys / "trusted").iterdir())
        for copy in [*(keys / "private").iterdir(), *(keys / "trusted").iterdir()]:
            original = bench_keys / copy.relative_to(keys)
            assert not copy.is_symlink(), copy
            assert copy.stat().st_ino != original.stat().st_ino, copy
            assert copy.read_bytes() == original.read_bytes(), copy
        for key in (keys / "private").iterdir():
            assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_a_bench_that_succeeded_leaves_nothing_behind(amqp_url: str, tmp_path: Path) -> None:
    # Given a bench on one host and its SQLite store, its directory in tmp_path (TMPDIR)
    # When it ran every payment
    figures = bench(amqp_url, tmp_path, "--payments", "20", "--workers", "1", "--concurrency", "4")
    assert figures["succeeded"] == 20
    # Then its keys, store and logs are gone with it
    assert list(tmp_path.glob("paymq-bench-*")) == []


@pytest.mark.parametrize(
    ("succeeded", "keep", "kept"), [(True, False, False), (True, True, True), (False, False, True)]
)
def test_a_bench_directory_is_kept_only_when_asked_or_when_the_run_failed(
    tmp_path: Path, succeeded: bool, keep: bool, kept: bool
) -> None:
    work_dir = tmp_path / "paymq-bench-x"
    (work_dir / "keys").mkdir(parents=True)
    (work_dir / "worker-0.log").write_text("log")
    tidy(work_dir, succeeded=succeeded, keep=keep)
    assert work_dir.exists() is kept


def test_a_run_that_raised_keeps_its_directory_and_one_that_succeeded_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(RuntimeError), run_directory("paymq-bench-", keep=False) as raised:
        raise RuntimeError("interrupted")
    with run_directory("paymq-bench-", keep=False) as succeeded:
        succeeded.succeeded = True
    assert raised.path.exists()
    assert not succeeded.path.exists()
