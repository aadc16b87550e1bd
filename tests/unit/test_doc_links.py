"""Every relative link in README.md and docs/*.md names a file that exists, so the published
documents can be read on their own, from a checkout or a rendered copy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")])

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)[^`]*?\1")
# [text](target) or [text](target "title"); the text may hold a code span or brackets.
_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_EXTERNAL = ("http://", "https://", "mailto:")


def link_targets(markdown: str) -> list[str]:
    """The targets of the inline links outside code blocks and code spans."""
    prose = _CODE_SPAN.sub("", _FENCE.sub("", markdown))
    return _LINK.findall(prose)


def local_path(target: str) -> str | None:
    """The file part of a relative target; None for external links and pure anchors."""
    if target.startswith(_EXTERNAL) or target.startswith("#"):
        return None
    return target.split("#", 1)[0].split("?", 1)[0]


def test_the_parser_finds_links_and_skips_code() -> None:
    markdown = (
        "See [the schema](schemas/a.json), [`b`](b.md#part), [c](https://x.example) and [d](#e).\n"
        "`[not](a-link.md)`\n```\n[nor](this.md)\n```\n"
    )
    targets = link_targets(markdown)
    assert targets == ["schemas/a.json", "b.md#part", "https://x.example", "#e"]
    assert [local_path(t) for t in targets] == ["schemas/a.json", "b.md", None, None]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_resolves_to_an_existing_file(document: Path) -> None:
    broken = [
        target
        for target in link_targets(document.read_text())
        if (path := local_path(target)) is not None and not (document.parent / path).exists()
    ]
    assert broken == [], f"{document.name} links to files that do not exist: {broken}"
