"""Evaluation: Average@n as the mean of per-example means, the
per-sample JSONL agreeing with the summary, and bad input as one clear error."""

from __future__ import annotations

import json
from typing import Any

import pytest

import tasks
from harness.config import Sampling
from harness.evaluate import evaluate_split, evaluate_task, main
from harness.generate import generation_settings
from harness.models import load_model
from harness.score import score_split
from harness.stats import mean_and_stderr


class Fixed(tasks.Task):
    """A real task with a fixed answer: scores 1 when the completion contains 'a', else 0."""

    name = "fixed"
    domain = "math"
    splits = (
        tasks.Split("train", "train", ""),
        tasks.Split("test", "test", ""),
        tasks.Split("void", "ood", ""),
    )
    max_new_tokens = 8

    def load(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        self.split(split)
        rows = [] if split == "void" else [{"id": f"{split}-{i}"} for i in range(3)]
        return rows[:limit]

    def messages(self, example):
        return {
            "prompt": [{"role": "user", "content": f"Say something ({example['id']})."}],
            "completion": [{"role": "assistant", "content": "a"}],
        }

    def extract(self, completion: str) -> str:
        return completion[:3]

    def score(self, example, completion: str) -> float:
        return float("a" in completion)


@pytest.fixture(scope="module")
def model():
    return load_model("tiny")


@pytest.mark.slow
def test_average_at_n_is_the_mean_of_per_example_means_and_matches_the_samples_file(
    model, tokenizer, tmp_path
):
    sampling = Sampling(temperature=1.5, num_samples=4, max_new_tokens=8, sample_seed=3)
    path = tmp_path / "samples" / "test.jsonl"
    summary = evaluate_split(model, tokenizer, Fixed(), "test", sampling, limit=None, samples_path=path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 * 4
    assert {(r["id"], r["sample"]) for r in rows} == {(f"test-{i}", k) for i in range(3) for k in range(4)}
    for row in rows:
        assert row["score"] == float("a" in row["completion"])
        assert row["extracted"] == row["completion"][:3]
        assert row["prompt"][0]["role"] == "user" and row["split"] == "test"
    per_example = [sum(r["score"] for r in rows if r["id"] == f"test-{i}") / 4 for i in range(3)]
    value, stderr = mean_and_stderr(per_example)
    # Every score is 0 or 1, so pass@1 (unbiased, over the 4 samples) is there, and equals the value.
    assert summary == {
        "role": "test",
        "value": value,
        "stderr": stderr,
        "n": 3,
        "samples_per_example": 4,
        "pass_at": {"1": pytest.approx(value)},
        "generation": generation_settings(sampling.resolved()),
    }
    assert summary["generation"]["repetition_penalty"] == 1.0 and summary["generation"]["top_k"] is None
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    assert sorted(p.name for p in path.parent.iterdir()) == ["test.jsonl"]  # the progress file is gone


@pytest.mark.slow
def test_empty_split_is_an_error_that_writes_nothing(model, tokenizer, tmp_path):
    path = tmp_path / "void.jsonl"
    sampling = Sampling(max_new_tokens=8)
    with pytest.raises(ValueError, match="split void is empty"):
        evaluate_split(model, tokenizer, Fixed(), "void", sampling, limit=None, samples_path=path)
    assert not path.exists()


def test_math_verdicts_are_counted_in_the_summary_and_each_sample_keeps_its_answer(tmp_path):
    task = tasks.get("math-words")
    examples = task.load("test", limit=4)
    gold = [example["answer"] for example in examples]
    completions = [
        [f"So it is \\boxed{{{gold[0]}}}."],  # correct
        [f"So it is \\boxed{{{int(gold[1]) + 1}}}."],  # wrong
        ["So it is \\boxed{@@}."],  # an answer that is not math: wrong, counted, no crash
        ["I do not know."],  # no answer at all
    ]
    path = tmp_path / "test.jsonl"
    summary = score_split(task, "test", examples, ["q"] * 4, completions, path)
    assert summary["value"] == 0.25
    assert summary["verdicts"] == {"correct": 1, "no-answer": 1, "unparsed": 1, "wrong": 1}
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["verdict"] for r in rows] == ["correct", "wrong", "unparsed", "no-answer"]
    assert [r["extracted"] for r in rows] == [gold[0], str(int(gold[1]) + 1), "@@", None]


def test_unknown_split_fails_before_loading_a_model():
    with pytest.raises(ValueError, match="has no split 'tset'; its splits are: train, test"):
        evaluate_task("no/such-model-is-loaded", "math-words", splits=["tset"])


@pytest.mark.slow
def test_evaluate_task_writes_one_samples_file_per_split(tmp_path):
    summary = evaluate_task(
        "tiny", "math-words", splits=["test", "ood-steps"], limit=2, samples_dir=tmp_path, device="cpu"
    )
    assert sorted(summary) == ["ood-steps", "test"]
    assert summary["ood-steps"]["role"] == "ood" and summary["test"]["n"] == 2
    for split in summary:
        rows = [json.loads(line) for line in (tmp_path / f"{split}.jsonl").read_text().splitlines()]
        assert len(rows) == 2
        assert summary[split]["value"] == pytest.approx(sum(r["score"] for r in rows) / 2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "math-word"], "did you mean 'math-words'"),
        (["--limit", "0"], "--limit must be >= 1"),
        (["--num-samples", "3"], "--num-samples 3 needs --temperature > 0: the task's protocol is greedy"),
        (["--model", "/no/such/folder"], "/no/such/folder"),
    ],
)
def test_cli_bad_input_is_one_error_line(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_cli_problem_file_errors_name_the_flag_or_the_line(tmp_path, capsys):
    assert main(["--task", "math-words", "--problem-file", str(tmp_path / "x.jsonl")]) == 1
    assert "--problem-file does not apply to task math-words" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "a", "prompt": "def f():\\n", "entry_point": "f"}\n')
    assert main(["--task", "humaneval", "--problem-file", str(bad), "--limit", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: task humaneval split test: {bad} line 1: missing or empty field 'test'"
