"""Every relative link in the project's Markdown (README, docs/, bench/results/) names a file of the
repository, and every #anchor into a Markdown file names one of its headings (GitHub's slugs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`[^`]*`")


def markdown_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder in ("docs", "bench/results"):
        files += sorted((ROOT / folder).rglob("*.md"))
    return [f for f in files if f.is_file()]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    inside_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside_code = not inside_code
        elif not inside_code and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


def links(path: Path) -> list[str]:
    text = re.sub(r"(?s)```.*?```", "", path.read_text(encoding="utf-8"))
    text = CODE.sub("", text)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_slug_follows_github():
    assert slug(" 7. Informative directions in the tail (`position_by=auto`)") == \
        "7-informative-directions-in-the-tail-position_byauto"
    assert slug("SpecTran at svd_frozen's recipe: gate 0") == "spectran-at-svd_frozens-recipe-gate-0"


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    broken = []
    for target in links(path):
        name, _, anchor = target.partition("#")
        file = (path.parent / name).resolve() if name else path
        if not file.exists() or root not in file.parents:
            broken.append(f"{target} (no such file in the repository)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no heading '#{anchor}' in {file.name})")
    return broken


def test_a_missing_file_a_missing_heading_and_a_link_out_of_the_repository_are_caught(tmp_path):
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "b.md").write_text("# Title\n\n## 2. A `code` heading\n")
    (tmp_path / "outside.md").write_text("# Outside\n")
    page = repo / "docs" / "a.md"
    page.write_text("[ok](b.md#2-a-code-heading) [top](b.md#title) [web](https://example.org/x)\n"
                    "`[in code](nothing.md)` [gone](c.md) [bad](b.md#3-a-code-heading) [out](../../outside.md)\n")
    assert broken_links(page, repo) == ["c.md (no such file in the repository)",
                                        "b.md#3-a-code-heading (no heading '#3-a-code-heading' in b.md)",
                                        "../../outside.md (no such file in the repository)"]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path):
    broken = broken_links(path)
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)
