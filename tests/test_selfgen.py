"""Self-generated training data (the offline-RL setting): the rows and pairs follow the task's own
grades, the files train and resume after a kill byte for byte, and bad input is one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import DIE_AFTER_FIRST_BATCH

import tasks
from harness import offline as selfgen_module
from harness.config import Evaluation, Sampling
from harness.data.rows import read_rows
from harness.errors import ConfigError, DataError
from harness.offline import selfgen
from harness.selfgen import main

SHORT = {"max_new_tokens": 48, "gen_batch_size": 1}


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_rows_are_the_correct_samples_and_pairs_a_right_and_a_wrong_answer(tmp_path):
    meta = selfgen("tiny", "math-words", tmp_path, Evaluation(limit=8, sampling=Sampling(**SHORT)))
    task = tasks.get("math-words")
    examples = {e["id"]: e for e in task.load("train", limit=8)}
    samples, rows, pairs = (lines(tmp_path / name) for name in ("samples.jsonl", "rows.jsonl", "pairs.jsonl"))
    assert len(samples) == 8 * 4 == meta["counts"]["samples"]
    # Each sample's grade is the grader's, and the rows are exactly the samples graded 1, in order.
    for s in samples:
        assert s["score"] == task.score(examples[s["id"]], s["completion"])
    correct = [s for s in samples if s["score"] == 1.0]
    assert 0 < len(correct) < len(samples)  # the tiny model is right sometimes: both kinds are here
    assert [(r["id"], r["sample"], r["completion"][0]["content"]) for r in rows] == [
        (s["id"], s["sample"], s["completion"]) for s in correct
    ]
    assert all(r["prompt"] == task.messages(examples[r["id"]])["prompt"] for r in rows)
    # One pair per question answered both ways: its first right and first wrong answer.
    both = [i for i in examples if {s["score"] for s in samples if s["id"] == i} == {0.0, 1.0}]
    assert [p["id"] for p in pairs] == both and len(both) == meta["counts"]["pairs"]
    for pair in pairs:
        answers = [s for s in samples if s["id"] == pair["id"]]
        right = next(s for s in answers if s["score"] == 1.0)
        wrong = next(s for s in answers if s["score"] == 0.0)
        assert pair["chosen"] == [{"role": "assistant", "content": right["completion"]}]
        assert pair["rejected"] == [{"role": "assistant", "content": wrong["completion"]}]
    assert meta["counts"] == {
        "questions": 8,
        "samples": 32,
        "correct": len(correct),
        "questions_solved": len({s["id"] for s in correct}),
        "pairs": len(both),
    }
    assert meta["accuracy"]["value"] == pytest.approx(len(correct) / 32)
    assert (
        meta["selfgen"]["sampling"]["temperature"] == 1.0 and meta["selfgen"]["sampling"]["sample_seed"] == 0
    )
    assert json.loads((tmp_path / "selfgen.json").read_text()) == meta
    assert len(read_rows(tmp_path / "rows.jsonl")) == len(correct)  # a training file as it is
    assert not (tmp_path / "samples.progress.jsonl").exists()


@pytest.mark.slow
def test_a_finished_folder_is_found_and_another_setting_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    selfgen("tiny", "math-words", tmp_path, Evaluation(limit=4, sampling=Sampling(max_new_tokens=48)))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def no_generation(*args, **kwargs):
        raise AssertionError("a finished folder generated again")

    monkeypatch.setattr(selfgen_module, "generate_kept", no_generation)
    again = selfgen("tiny", "math-words", tmp_path, Evaluation(limit=4, sampling=Sampling(max_new_tokens=48)))
    assert again == json.loads(before["selfgen.json"])
    assert "is this selfgen, finished already" in capsys.readouterr().err
    with pytest.raises(ConfigError) as error:
        selfgen(
            "tiny",
            "math-words",
            tmp_path,
            Evaluation(limit=4, sampling=Sampling(max_new_tokens=48, sample_seed=1)),
        )
    assert "holds another selfgen's data: sampling.sample_seed 0 (now 1)" in str(error.value)
    assert "\n" not in str(error.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing replaced


KILLED_AFTER_FIRST_BATCH = (
    DIE_AFTER_FIRST_BATCH
    + """
from harness.offline import selfgen
selfgen("tiny", "math-words", sys.argv[1], Evaluation(limit=8, sampling=Sampling(**eval(sys.argv[2]))))
"""
)


@pytest.mark.slow
def test_a_killed_selfgen_resumes_and_writes_the_same_rows_and_pairs(tmp_path):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    run = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_FIRST_BATCH, str(killed), repr(SHORT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == -9, run.stderr[-2000:]
    kept = (killed / "samples.progress.jsonl").read_text().splitlines()
    assert len(kept) == 1 + 4 and not (killed / "rows.jsonl").exists()  # the header and one batch
    resumed = selfgen("tiny", "math-words", killed, Evaluation(limit=8, sampling=Sampling(**SHORT)))
    uninterrupted = selfgen("tiny", "math-words", whole, Evaluation(limit=8, sampling=Sampling(**SHORT)))
    for name in ("rows.jsonl", "pairs.jsonl", "samples.jsonl"):
        assert (killed / name).read_bytes() == (whole / name).read_bytes(), name
    assert resumed["counts"] == uninterrupted["counts"] and resumed["selfgen"] == uninterrupted["selfgen"]


@pytest.mark.slow
def test_no_correct_sample_is_one_line_and_writes_no_training_data(tmp_path):
    # One new token cannot hold a boxed answer: every sample is wrong.
    with pytest.raises(DataError) as error:
        selfgen("tiny", "math-words", tmp_path, Evaluation(limit=2, sampling=Sampling(max_new_tokens=1)))
    assert str(error.value) == (
        f"{tmp_path}: none of the 8 samples of 2 questions was graded correct, so there is nothing to "
        f"train on (see {tmp_path / 'samples.jsonl'})"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.jsonl", "samples.progress.jsonl"]


@pytest.mark.slow
def test_image_prompts_are_stored_beside_the_rows_and_train_from_there(tmp_path, monkeypatch):
    from harness.data.images import load_image
    from harness.models import load_tokenizer_and_processor

    # The tiny VLM is never right in 4 tokens: grade alternately so both files have rows.
    verdicts = iter([1.0, 0.0] * 8)
    monkeypatch.setattr(
        type(tasks.get("visual-math")),
        "grade",
        lambda self, pairs: [{"score": next(verdicts)} for _ in pairs],
    )
    meta = selfgen(
        "tiny-vl", "visual-math", tmp_path, Evaluation(limit=2, sampling=Sampling(max_new_tokens=4))
    )
    assert meta["counts"] == {"questions": 2, "samples": 8, "correct": 4, "questions_solved": 2, "pairs": 2}
    rows = read_rows(tmp_path / "rows.jsonl")
    [image] = [part["image"] for part in rows[0]["prompt"][0]["content"] if part["type"] == "image"]
    assert image.startswith("images/") and (tmp_path / image).is_file()
    _, processor = load_tokenizer_and_processor("tiny-vl")
    original = tasks.get("visual-math").load("train", limit=1)[0]
    loaded = load_image(image, processor, rows.base_dir)
    assert loaded.size == tasks.get("visual-math").image(original).size


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "ultrafeedback"], "--task ultrafeedback has no grader (training data only)"),
        (["--task", "humaneval"], "--task humaneval has no training questions (it can only be evaluated)"),
        (["--task", "math-word"], "did you mean 'math-words'"),
        (["--num-samples", "4", "--temperature", "0"], "--num-samples > 1 needs --temperature > 0"),
        (["--model", "/no/such/folder"], "/no/such/folder"),
        (["--tensor-parallel-size", "2"], "--tensor-parallel-size"),
        (["--output-dir", "/proc/no-such-folder"], "--output-dir cannot be made: /proc/no-such-folder ("),
    ],
)
def test_cli_bad_input_is_one_error_line_before_any_model_loads(argv, message, capsys, tmp_path):
    assert main(["--output-dir", str(tmp_path / "out"), *argv]) == 1  # a later --output-dir wins
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_an_experiment_on_a_selfgen_folder_is_the_offline_setting(tmp_path):
    # RFT (sft) reads the folder's rows, DPO its pairs; each record says whose answers they are, and
    # the page names the data.
    from harness import experiment

    data = tmp_path / "selfgen"
    meta = selfgen("tiny", "math-words", data, Evaluation(limit=8, sampling=Sampling(**SHORT)))
    where = ["--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")]
    where += ["--leaderboard-dir", str(tmp_path / "pages")]
    argv = ["--train-data", str(data), "--methods", "sft", "dpo", "--steps", "1", "--batch-size", "2"]
    argv += ["--eval-limit", "2", "--max-new-tokens", "16", "--prob-rows", "2", "--no-progress"]
    assert experiment.main([*argv, *where]) == 0
    records = {
        r["method"]: r
        for r in map(lambda p: json.loads(p.read_text()), (tmp_path / "results").rglob("*.json"))
    }
    counts = meta["counts"]
    assert records["sft"]["data"]["train_examples"] == counts["correct"]
    assert records["dpo"]["data"]["train_examples"] == counts["pairs"]
    for record in records.values():
        assert record["data"]["selfgen"] == {
            "model": "tiny",
            "task": "math-words",
            "split": "train",
            "limit": 8,
            "template": "chat",
            "num_samples": 4,
            "temperature": 1.0,
            "sample_seed": 0,
            **counts,
        }
    page = (tmp_path / "pages" / "math.md").read_text()
    assert (
        f"(self-generated: tiny's 4 answers at temperature 1.0 to 8 `math-words` training questions, {counts['correct']} graded correct, {counts['pairs']} right/wrong pairs)"
        in page
    )
    assert "| DPO | 1 |" in page.replace("**", "")
    assert " · offline setting (trained on the backbone's own graded answers)\n" in page


def test_an_empty_answer_is_no_row_and_no_side_of_a_pair():
    # A model that stops at once writes "": graded wrong, it would be a rejected side that DPO's reader
    # refuses ("'rejected' has no text"); it is neither a row nor a side.
    from harness.offline import _pairs

    prompt = [{"role": "user", "content": "q"}]
    samples = [
        {"id": "a", "sample": 0, "completion": "", "score": 0.0},
        {"id": "a", "sample": 1, "completion": "  \n", "score": 0.0},
        {"id": "a", "sample": 2, "completion": "right", "score": 1.0},
        {"id": "a", "sample": 3, "completion": "wrong", "score": 0.0},
        {"id": "b", "sample": 0, "completion": "", "score": 0.0},
        {"id": "b", "sample": 1, "completion": "right", "score": 1.0},
    ]
    pairs = _pairs([{"id": "a"}, {"id": "b"}], [prompt, prompt], samples)
    assert [(p["id"], p["samples"]) for p in pairs] == [("a", [2, 3])]


@pytest.mark.slow
def test_a_finished_folder_missing_a_file_or_with_a_bad_selfgen_json_is_one_line(tmp_path):
    from harness.offline import origin

    selfgen("tiny", "math-words", tmp_path, Evaluation(limit=4, sampling=Sampling(max_new_tokens=48)))
    (tmp_path / "pairs.jsonl").unlink()
    with pytest.raises(
        DataError, match=r"pairs.jsonl: missing from a finished selfgen folder; delete the folder"
    ):
        selfgen("tiny", "math-words", tmp_path, Evaluation(limit=4, sampling=Sampling(max_new_tokens=48)))
    (tmp_path / "selfgen.json").write_text('{"selfgen": {}}')
    with pytest.raises(
        DataError, match=r"selfgen.json is not a selfgen.json \(python -m harness.selfgen writes it\)$"
    ):
        origin(str(tmp_path))
