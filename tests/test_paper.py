"""The paper beside yours: a recipe-shaped run on the tiny model is recognized as the recipe's row, its
page shows the paper's numbers beside the measured ones with the difference, and a setting away from
the row's is named."""

from __future__ import annotations

import json

import pytest

from harness import experiment, leaderboard, recipes
from harness.report import paper

FLAGS = {"preset": "laptop", "model": "tiny", "task": "math-words", "steps": 2, "train_limit": 32}
EVALUATION = {"eval_limit": 3, "max_new_tokens": 24}


def test_recipe_rows_without_a_matching_backbone_leave_pages_alone():
    rows = {"sft": [{"method": "sft", "hparams": {"model": "tiny"}, "evaluation": {}}]}
    assert paper.matching_row("math-words", "embedded/tiny-qwen2", rows) is None
    assert paper.paper_lines("math-words", "embedded/tiny-qwen2", rows, {}) == []


@pytest.mark.slow
def test_a_recipe_shaped_run_shows_the_papers_numbers_beside_its_own(tmp_path, monkeypatch):
    results, pages = tmp_path / "results", tmp_path / "leaderboards"
    argv = [f"--{k.replace('_', '-')}={v}" for k, v in (FLAGS | EVALUATION).items()]
    argv += [
        "--runs-dir",
        str(tmp_path / "runs"),
        "--results-dir",
        str(results),
        "--leaderboard-dir",
        str(pages),
    ]
    assert experiment.main([*argv, "--no-progress"]) == 0
    records = {r["method"]: r for r in (json.loads(p.read_text()) for p in results.rglob("*.json"))}
    # A recipe of exactly this configuration, with "paper" numbers: the page puts them beside the run's.
    columns = ("test", "ood-names", "OOD mean")
    reported = {"sft": (10.0, 20.0, 5.0), "dft": (30.0, 40.0, 15.0)}
    greedy = {"temperature": 0.0, "num_samples": 1, "max_new_tokens": 24}
    row = recipes.Recipe("tiny-row", "Table T (test)", FLAGS | EVALUATION, columns, reported, decoding=greedy)
    monkeypatch.setitem(recipes.RECIPES, row.name, row)
    leaderboard.write(results, pages)
    page = (pages / "math.md").read_text()
    assert (
        "**The paper beside these runs**: recipe `tiny-row` (Table T (test) of arXiv 2508.05629v3); the same configuration as the paper's row."
        in page
    )
    for method, label in (("sft", "SFT"), ("dft", "DFT")):
        measured = records[method]["scores"]["test"]["value"] * 100
        assert (
            f"| {label}, paper | {reported[method][0]:.2f} | {reported[method][1]:.2f} | {reported[method][2]:.2f} |"
            in page
        )
        line = next(x for x in page.splitlines() if x.startswith(f"| {label}, measured |"))
        assert line.split(" | ")[1] == f"{measured:.2f}"
        difference = next(x for x in page.splitlines() if x.startswith(f"| {label}, measured − paper |"))
        assert difference.split(" | ")[1] == f"{measured - reported[method][0]:+.2f}"
    # The same row at another learning rate, on all examples, sampled: the page names each difference.
    sampled = {"temperature": 1.0, "num_samples": 16, "max_new_tokens": 24}
    other = recipes.Recipe(
        "tiny-row", "Table T (test)", FLAGS | {"lr": 5e-5}, columns, reported, decoding=sampled
    )
    monkeypatch.setitem(recipes.RECIPES, row.name, other)
    leaderboard.write(results, pages)
    page = (pages / "math.md").read_text()
    assert (
        "a configuration that differs from the paper's row in lr 0.001 (the paper's 5e-05), evaluation limit 3 "
        "(the paper's unset), temperature 0 (the paper's 1), num_samples 1 (the paper's 16)." in page
    )
