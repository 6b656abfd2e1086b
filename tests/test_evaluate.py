"""Evaluation: Average@n as the mean of per-example means, the
per-sample JSONL agreeing with the summary, and bad input as one clear error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import DIE_AFTER_FIRST_BATCH

import tasks
from harness.config import Evaluation, Sampling
from harness.errors import ConfigError, DataError
from harness.evaluate import main
from harness.evaluation import evaluate_split, evaluate_task
from harness.generate import generation_settings
from harness.models import load_model, load_tokenizer
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
        "tiny",
        "math-words",
        Evaluation(limit=2, samples_dir=tmp_path, device="cpu"),
        splits=["test", "ood-steps"],
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
        (["--eval-limit", "0"], "--eval-limit must be >= 1"),
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
    assert main(["--task", "humaneval", "--problem-file", str(bad), "--eval-limit", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: task humaneval split test: {bad} line 1: missing or empty field 'test'"


KILLED_AFTER_FIRST_BATCH = (
    DIE_AFTER_FIRST_BATCH
    + """
from harness.evaluation import evaluate_task
evaluate_task("tiny", "math-words", Evaluation(limit=12, samples_dir=sys.argv[1],
              sampling=Sampling(**eval(sys.argv[2]))), splits=["test"])
"""
)


def generated_prompts(monkeypatch) -> list[int]:
    """Counts the prompts each generation batch makes (greedy and sampled paths alike)."""
    import harness.generate as generation

    made: list[int] = []
    for name in ("padded_batch", "_continuous"):
        real = getattr(generation, name)

        def counting(model, inputs, chosen, *rest, _real=real):
            made.append(len(chosen))
            return _real(model, inputs, chosen, *rest)

        monkeypatch.setattr(generation, name, counting)
    return made


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec",
    [
        {"gen_batch_size": 4, "max_new_tokens": 24},  # greedy: 3 batches of 4 prompts
        {"gen_batch_size": 1, "max_new_tokens": 24, "temperature": 1.0, "num_samples": 2, "sample_seed": 3},
    ],
    ids=["greedy", "seeded-sampling"],
)
def test_a_killed_evaluation_resumes_with_only_the_missing_batches_and_the_same_samples(
    tmp_path, monkeypatch, capsys, spec
):
    """SIGKILL right after the first batch is kept; the rerun generates the other 8 of 12 prompts and
    writes the samples file byte for byte as an uninterrupted run does, with the same scores. A torn
    line left by a kill mid-write is dropped with a note and its batch made again."""
    import subprocess
    import sys

    killed = tmp_path / "killed"
    run = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_FIRST_BATCH, str(killed), repr(spec)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == -9, run.stderr[-2000:]
    progress = killed / "test.progress.jsonl"
    lines = progress.read_text().splitlines()
    assert len(lines) == 1 + 4 and not (killed / "test.jsonl").exists()  # the header and one batch
    with progress.open("a") as file:
        file.write('{"index": 7, "id": "tor')  # as a kill in the middle of the next write leaves it
    made = generated_prompts(monkeypatch)
    sampling = Sampling(**spec)
    resumed = evaluate_task(
        "tiny", "math-words", Evaluation(limit=12, samples_dir=killed, sampling=sampling), splits=["test"]
    )
    assert sum(made) == 8
    assert "test.progress.jsonl line 6 was cut short" in capsys.readouterr().err
    made.clear()
    whole = evaluate_task(
        "tiny",
        "math-words",
        Evaluation(limit=12, samples_dir=tmp_path / "whole", sampling=sampling),
        splits=["test"],
    )
    assert sum(made) == 12
    assert (killed / "test.jsonl").read_bytes() == (tmp_path / "whole" / "test.jsonl").read_bytes()
    assert resumed == whole and not progress.exists()


@pytest.mark.slow
def test_a_changed_setting_or_bad_progress_file_refuses_to_resume_in_one_line(tmp_path):
    from harness.progress import SamplesProgress

    samples = tmp_path / "samples"
    key = {"model": "tiny"}
    # A progress file another evaluation left: its header names the settings it was made with.
    folder = samples
    folder.mkdir()
    progress = SamplesProgress(folder / "test.jsonl", key, ["test-0", "test-1"])
    progress.append([0], [["a"]])
    header = json.loads(progress.path.read_text().splitlines()[0])
    header["evaluation"] = {"model": "tiny", "sampling": {"temperature": 1.0}}
    rest = progress.path.read_text().splitlines()[1:]
    progress.path.write_text("\n".join([json.dumps(header), *rest]) + "\n")
    with pytest.raises(ConfigError) as error:
        evaluate_split(load_model("tiny"), load_tokenizer("tiny"), Fixed(), "test", Sampling(), None,
                       folder / "test.jsonl", identity=key)  # fmt: skip
    message = str(error.value)
    assert message.startswith(f"{progress.path} holds another evaluation's completions: ")
    assert "sampling.temperature 1.0 (now 0.0)" in message and "\n" not in message
    assert json.loads(progress.path.read_text().splitlines()[0]) == header  # nothing written over
    # A line in the middle that is not JSON: named, and nothing is generated or lost.
    progress.path.write_text('{"evaluation": {}}\nnot json\n{"index": 0}\n')
    with pytest.raises(DataError, match=r"test.progress.jsonl line 2 is not a JSON object; delete the file"):
        SamplesProgress(folder / "test.jsonl", {}, ["test-0"]).done()
    # An example that is not this evaluation's (the data changed under it).
    progress.path.write_text('{"evaluation": {}}\n{"index": 0, "id": "other", "completions": ["a"]}\n')
    with pytest.raises(
        DataError, match=r"line 2: example 0 \('other'\) is not one of this evaluation's examples"
    ):
        SamplesProgress(folder / "test.jsonl", {}, ["test-0"]).done()
