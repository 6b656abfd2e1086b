"""The paper beside yours: a recipe-shaped run on the tiny model is recognized as the recipe's row, its
page shows the paper's numbers beside the measured ones with the difference, and a setting away from
the row's is named."""

from __future__ import annotations

import json

import pytest

from harness import experiment, leaderboard, recipes
from harness.report import paper
from harness.stats import Estimate

FLAGS = {"preset": "laptop", "model": "tiny", "task": "math-words", "steps": 2, "train_limit": 32}
EVALUATION = {"eval_limit": 3, "max_new_tokens": 24}


def test_recipe_rows_without_a_matching_backbone_leave_pages_alone():
    rows = {"sft": [{"method": "sft", "hparams": {"model": "tiny"}, "evaluation": {}}]}
    assert paper.matching_row("math-words", "embedded/tiny-qwen2", rows) is None
    assert paper.paper_lines("math-words", "embedded/tiny-qwen2", rows, {}) == []


def paper_run(row: recipes.Recipe, method: str, **data) -> dict:
    """A record made exactly as ``row`` says (hyperparameters, evaluation, decoding), scored 50% on
    each of the row's benchmarks."""
    hparams = {k: v for k, v in paper.expected_hparams(row).items() if k in paper.COMPARED}
    generation = dict(row.paper_decoding)
    scores = {
        name: {"role": "ood", "value": 0.5, "stderr": 0.01, "title": name, "generation": generation}
        for name in row.columns
        if name != "Avg."
    }
    template = row.values.get("eval_template", "chat")
    evaluation = {"limit": None, "prompt_template": template}
    return {"method": method, "hparams": {**hparams, "model": row.model}, "evaluation": evaluation,
            "data": data, "scores": scores}  # fmt: skip


def test_an_offline_run_is_set_beside_an_offline_row_only_and_its_data_is_compared():
    online, offline = recipes.RECIPES["math-qwen2.5-math-1.5b"], recipes.RECIPES["offline-qwen2.5-math-1.5b"]
    backbone, task = online.model, online.values["task"]
    assert paper.matching_row(task, backbone, {"dft": [paper_run(online, "dft")]}) == (online, [])
    made = {"model": offline.model, "task": "numina-math-cot", "limit": None, "template": "qwen-boxed"}
    made |= {"num_samples": 4, "temperature": 1.0}
    record = paper_run(offline, "dft", selfgen=made)
    record["hparams"]["train_data"] = recipes.OFFLINE_DATA
    assert paper.matching_row(task, backbone, {"dft": [record]}) == (offline, [])
    # Another folder of other answers at the same path: named, never "the same configuration".
    record["data"]["selfgen"] = made | {"model": "tiny", "limit": 64}
    _, differ = paper.matching_row(task, backbone, {"dft": [record]})
    assert differ == [
        'self-generated data\'s model "tiny" (the paper\'s "Qwen/Qwen2.5-Math-1.5B")',
        "self-generated data's limit 64 (the paper's unset)",
    ]
    # An online run on the offline recipe's folder path is still an online run: the online row.
    plain = paper_run(online, "dft")
    assert paper.matching_row(task, backbone, {"dft": [plain]})[0] is online


def test_a_benchmark_the_runs_did_not_score_is_named_and_no_average_is_compared():
    row = recipes.RECIPES["math-qwen2.5-math-1.5b"]
    record = paper_run(row, "dft")
    del record["scores"]["AIME24"]
    measured = {"dft": {c: (None if c == "AIME24" else Estimate(0.5, 0.01, 1, 0.0)) for c in row.columns}}
    lines = paper.paper_lines(row.values["task"], row.model, {"dft": [record]}, measured)
    assert "differs from the paper's row in benchmarks: not scored on AIME24." in lines[1]
    assert lines[-2].split(" | ")[-1] == "– |"  # Avg. not measured
    assert lines[-1].split(" | ")[-1] == "– |"


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
    assert experiment.main([*argv, "--methods", "sft", "--no-progress"]) == 0  # one method: enough here
    records = {r["method"]: r for r in (json.loads(p.read_text()) for p in results.rglob("*.json"))}
    # A recipe of exactly this configuration, with "paper" numbers: the page puts them beside the run's.
    columns = ("test", "ood-names", "OOD mean")
    reported = {"sft": (10.0, 20.0, 5.0), "dft": (30.0, 40.0, 15.0)}  # no DFT run: no DFT rows
    greedy = {"temperature": 0.0, "num_samples": 1, "max_new_tokens": 24}
    row = recipes.Recipe("tiny-row", "Table T (test)", FLAGS | EVALUATION, columns, reported, decoding=greedy)
    monkeypatch.setitem(recipes.RECIPES, row.name, row)
    leaderboard.write(results, pages)
    page = (pages / "math.md").read_text()
    assert (
        "**The paper beside these runs**: recipe `tiny-row` (Table T (test) of arXiv 2508.05629v3); the same configuration as the paper's row."
        in page
    )
    assert "| DFT, paper |" not in page
    for method, label in (("sft", "SFT"),):
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
