"""The committed pages say what the committed records say: every generated page is the render of
``results/`` as it stands, and the facts that drifted between pages once are checked by name
(record counts, which sessions the performance page says match their references, the methods each
table names)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness import leaderboard
from harness.bench.performance import references_changed_since
from harness.results import load_records

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "leaderboards"


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    records = load_records(ROOT / "results")
    others = sorted({p.name for pattern in leaderboard.OTHER_PAGES for p in PAGES.glob(pattern)})
    return {name: page.text for name, page in leaderboard.pages_of(records, others=others).items()}


def test_every_committed_page_is_the_render_of_the_committed_records(rendered):
    # A record added or removed without re-rendering (python -m harness.leaderboard) fails here.
    committed = {
        p.name: p.read_text(encoding="utf-8")
        for p in PAGES.glob("*.md")
        if not any(p.match(pattern) for pattern in leaderboard.OTHER_PAGES)
    }
    assert sorted(committed) == sorted(rendered)
    stale = [name for name in committed if committed[name] != rendered[name]]
    assert not stale, f"re-render these with python -m harness.leaderboard: {stale}"


def test_the_index_counts_the_records_and_links_every_page(rendered):
    records = load_records(ROOT / "results")
    assert f"from {len(records)} records in `results/`" in rendered["README.md"]
    for name in rendered:
        if name != "README.md":
            assert f"]({name})" in rendered["README.md"], name


def test_the_offline_settings_baseline_is_rft_on_every_page(rendered):
    # SFT on the backbone's own graded answers is rejection-sampling fine-tuning: never "SFT" there.
    for name, text in rendered.items():
        for block in text.split("\n## ")[1:]:
            if "offline setting" in block.splitlines()[0]:
                assert "| RFT |" in block and "| SFT |" not in block and "− SFT" not in block, name


def test_the_performance_page_says_when_its_end_to_end_is_older_than_the_references():
    bench = json.loads((PAGES / "performance.json").read_text())
    page = (PAGES / "performance.md").read_text()
    if "end-to-end" not in bench:
        pytest.skip("the committed bench has no end-to-end section")
    older = references_changed_since(bench["end-to-end"]["commit"]) is not None
    assert ("changed after this measurement" in page) == older
    # Its table's counts are what the JSON says, session by session.
    for session, run in bench["end-to-end"]["runs"].items():
        assert re.search(rf"\| `nox -s {session}` \| [^|]+ \| {run['matched']} \| {run['differed']} \|", page)
