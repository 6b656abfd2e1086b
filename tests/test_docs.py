"""The README is a front door and docs/ holds the rest: every relative link and anchor resolves.

For README.md and every docs/*.md page: each relative markdown link ``[text](target)`` (not http(s):
or mailto:) names a file or folder that exists, relative to the page, and each ``#anchor`` (on the
same page or another markdown page) is the GitHub slug of one of that page's headings. The README
stays short, and it lists every nox session.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks and HTML comments."""
    lines, fenced = [], False
    for line in HTML_COMMENT.sub("", text).splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lowercased, punctuation but '-' and '_'
    dropped, each space a '-'."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's slug, a repeated one with -1, -2, ... as GitHub numbers them."""
    seen: Counter[str] = Counter()
    found = set()
    for line in prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        found.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every relative link outside code."""
    found = []
    text = page.read_text(encoding="utf-8")
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        for match in LINK.finditer(INLINE_CODE.sub("", HTML_COMMENT.sub("", line))):
            target = match.group(2)
            if not target or re.match(r"^(https?:|mailto:)", target, re.I):
                continue
            found.append((number, target))
    return found


def broken_links(page: Path) -> list[str]:
    problems = []
    for number, target in links(page):
        path, _, anchor = target.partition("#")
        where = f"{page.relative_to(ROOT)}:{number}: ({target})"
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            problems.append(f"{where} {path} does not exist")
            continue
        if anchor and linked.is_file() and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{where} no heading of {linked.relative_to(ROOT)} has the anchor #{anchor}")
    return problems


def test_github_slugs():
    assert slug("Noisy demonstrations: `--train-noise`") == "noisy-demonstrations---train-noise"
    assert (
        slug("The paper's recipes: one per row of its tables")
        == "the-papers-recipes-one-per-row-of-its-tables"
    )
    assert (
        slug("A real pretrained model on a laptop: SmolLM2-135M")
        == "a-real-pretrained-model-on-a-laptop-smollm2-135m"
    )
    assert slug("Sweeps: `python -m harness.ablate`") == "sweeps-python--m-harnessablate"
    assert slug("The learning rate × batch size ablation") == "the-learning-rate--batch-size-ablation"
    assert slug("`harness/losses.py` and [the loss](x.md)") == "harnesslossespy-and-the-loss"


def test_duplicate_headings_are_numbered(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Notes\n\n## Notes\n\n```\n# Notes\n```\n\n## Other\n\n### Notes\n", encoding="utf-8")
    assert anchors(page) == {"notes", "notes-1", "notes-2", "other"}


def test_a_broken_link_or_anchor_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## Right here\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "# Front\n\n[ok](docs/a.md#right-here) [ok](#front) [web](https://x.org/#y) `[code](nowhere.md)`\n"
        "[gone](docs/b.md) [bad anchor](docs/a.md#left-there) [bad here](#back)\n"
        "```\n[in code](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    assert [problem.split(": (")[1].split(")")[0] for problem in broken_links(page)] == [
        "docs/b.md",
        "docs/a.md#left-there",
        "#back",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page):
    assert not broken_links(page), "\n".join(broken_links(page))


@pytest.mark.parametrize("page", PAGES[1:], ids=lambda page: str(page.relative_to(ROOT)))
def test_every_docs_page_has_a_title_and_is_linked_from_the_readme(page):
    assert page.read_text(encoding="utf-8").startswith("# "), f"{page.name} does not start with a '# Title'"
    linked = {(ROOT / target.partition("#")[0]).resolve() for _, target in links(ROOT / "README.md")}
    assert page.resolve() in linked, f"README.md does not link docs/{page.name}"


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 260, f"README.md has {len(lines)} lines: move detail into docs/"


def test_the_readme_lists_every_nox_session():
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    sessions = []
    for decorator, definition in re.findall(
        r"^(@nox\.session\(?[^\n]*)\n(?:@[^\n]*\n)*def (\w+)", noxfile, re.M
    ):
        named = re.search(r"name\s*=\s*[\"']([^\"']+)[\"']", decorator)
        sessions.append(named.group(1) if named else definition)
    assert len(sessions) >= 10
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in sessions if not re.search(rf"nox -s {re.escape(name)}(?![\w-])", readme)]
    assert not missing, f"README.md does not list these nox sessions: {missing}"


def test_the_readme_headline_is_the_generated_one():
    # The README copies the headline of leaderboards/README.md (generated from the records) for the
    # embedded backbones: each of its cells must be there, number for number, under the same column.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    generated = (ROOT / "leaderboards" / "README.md").read_text(encoding="utf-8")
    ours = next(line for line in readme.splitlines() if line.startswith("| task | base in-domain |"))
    ours_columns = [cell.strip() for cell in ours.strip("|").split("|")]
    rows = [line for line in readme.splitlines() if re.match(r"^\| `[\w-]+`", line)]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in rows if line.count("|") == 8]
    assert len(rows) == 3, rows
    header = next(line for line in generated.splitlines() if line.startswith("| domain | task |"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    same = {"p̄ all": "p̄ all", "p̄ deciding": "p̄ deciding", "seeds": "seeds",
            "DFT − SFT in-domain": "DFT − SFT in-domain", "DFT − SFT OOD mean": "DFT − SFT OOD"}  # fmt: skip
    for cells in rows:
        task = re.match(r"`([\w-]+)`", cells[0]).group(1)
        backbone = "embedded/tiny-qwen2-vl" if task == "visual-math" else "embedded/tiny-qwen2"
        line = next(line for line in generated.splitlines() if f"`{task}` | `{backbone}`" in line)
        theirs = dict(zip(columns, (cell.strip() for cell in line.strip("|").split("|"))))
        for ours_name, their_name in same.items():
            assert cells[ours_columns.index(ours_name)] == theirs[their_name], (task, ours_name)
        # The base's score without its standard error.
        assert theirs["base in-domain"].startswith(cells[ours_columns.index("base in-domain")] + " ±"), task
