"""The rooms and which may use which: the product never imports the tools, and the core packages
import nothing above them. Read from the sources' import statements, so a new import that breaks
the layering fails here instead of in a production image that lacks the tools."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Each top-level package and the project packages it may import. Third-party and standard
#: library imports are not checked.
ALLOWED: dict[str, set[str]] = {
    "common": set(),
    "sandbox": set(),
    "store": {"common"},
    "workers": {"common", "store"},
    "webhooks": {"common", "store"},
    "producer": {"common", "store"},
    "paymq": {"common", "store", "producer", "workers", "webhooks", "sandbox"},
    "paymq_tools": {"common", "store", "producer", "workers", "webhooks", "sandbox", "paymq"},
}
SOURCES = {name: REPO_ROOT / name for name in ALLOWED} | {
    "paymq_tools": REPO_ROOT / "tools" / "paymq_tools"
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return {module.split(".")[0] for module in modules}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_rooms_below_it(package: str) -> None:
    offending = {
        f"{path.relative_to(REPO_ROOT)} imports {used}"
        for path in SOURCES[package].rglob("*.py")
        for used in imported_packages(path) & (set(ALLOWED) - {package} - ALLOWED[package])
    }

    assert not offending, sorted(offending)


def test_the_wheel_is_built_from_the_product_packages_only() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = {name.split(".")[0] for name in pyproject["tool"]["setuptools"]["packages"]}

    assert "paymq_tools" not in shipped
    assert shipped >= {"common", "store", "producer", "workers", "webhooks", "sandbox", "paymq"}


def test_every_package_of_the_product_is_listed_for_the_wheel() -> None:
    """The wheel's packages are listed one by one: a new subpackage left off the list would be
    missing from the production image while every test, run from the sources, passes."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    shipped_roots = {name for name in listed if "." not in name}
    found = {
        ".".join(init.parent.relative_to(REPO_ROOT).parts)
        for root in shipped_roots
        for init in (REPO_ROOT / root).rglob("__init__.py")
    }

    assert found <= listed, sorted(found - listed)
