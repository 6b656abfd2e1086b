"""Registry tasks exported as lm-eval task folders: the ``lm_eval`` command runs them offline, and its
completions and scores equal the harness's own evaluation, example by example; ``--eval-backend
lm-eval`` makes the same record as the harness's backend; code grading through the export is the
task's own (its reference solutions pass, a wrong answer fails)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

import tasks
from harness import experiment
from harness import lmeval_tasks as lmeval
from harness.config import Evaluation
from harness.errors import ConfigError, DataError
from harness.evaluate import main as evaluate_main
from harness.evaluation import evaluate_task
from harness.experiment import parse_experiment
from harness.models import EMBEDDED

LIMIT = 4


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lm_eval_tasks")
    for name in ("math-words", "code-lists"):
        lmeval.export(name, out, limit=LIMIT)
    return out


def test_export_writes_one_task_per_split_with_the_backbones_stop_and_the_tasks_budget(exported):
    folder = exported / "harness-math-words"
    names = sorted(p.stem for p in folder.glob("*.yaml"))
    assert names == sorted(lmeval.task_name("math-words", s) for s in tasks.get("math-words").eval_splits)
    config = (folder / "harness-math-words-test.yaml").read_text()
    assert 'process_results": !function utils.process_results,' in config
    assert '"until": [\n      "<|im_end|>"\n    ]' in config and '"max_gen_toks": 200' in config
    rows = [json.loads(line) for line in (folder / "test.jsonl").read_text().splitlines()]
    example = tasks.get("math-words").load("test", limit=1)[0]
    assert len(rows) == LIMIT and rows[0] == {
        "id": example["id"],
        "split": "test",
        "prompt": tasks.get("math-words").messages(example)["prompt"][0]["content"],
    }


@pytest.mark.slow  # the code task's grading runs the sandbox
def test_the_exported_grading_is_the_tasks_own(exported):
    for name in ("math-words", "code-lists"):
        spec = importlib.util.spec_from_file_location(
            f"utils_{name}", exported / f"harness-{name}" / "utils.py"
        )
        utils = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(utils)
        task = tasks.get(name)
        example = task.load("test", limit=1)[0]
        right = task.messages(example)["completion"][0]["content"]
        doc = {"id": example["id"], "split": "test"}
        assert utils.process_results(doc, [right]) == {"acc": 1.0}
        assert utils.process_results(doc, ["I do not know."]) == {"acc": 0.0}


def test_tasks_lm_eval_cannot_render_are_refused_in_one_line(tmp_path):
    with pytest.raises(DataError, match="--task visual-math: its prompts are not one text message"):
        lmeval.export("visual-math", tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'math-words'"):
        lmeval.export("math-word", tmp_path)
    from harness.lmeval import main as export_main

    assert export_main(["--task", "numina-math-cot", "--out", str(tmp_path)]) == 1  # no split to export
    with pytest.raises(ConfigError, match="^--eval-limit must be >= 1, got 0$"):
        lmeval.export("math-words", tmp_path, limit=0)
    assert not (tmp_path / "harness-math-words").exists()  # refused before anything is written


@pytest.mark.slow
def test_the_lm_eval_command_scores_exported_tasks_as_the_harness_does(exported, tmp_path, monkeypatch):
    from lm_eval.__main__ import cli_evaluate  # the `lm_eval` console script, run in this process

    names = [lmeval.task_name("math-words", "test")]  # code goes through lm-eval in the backend test below
    argv = ["lm_eval", "--model", "hf", "--model_args", f"pretrained={EMBEDDED['tiny']},dtype=float32"]
    argv += [
        "--device",
        "cpu",
        "--batch_size",
        "1",
        "--include_path",
        str(exported),
        "--tasks",
        ",".join(names),
    ]
    argv += [
        "--apply_chat_template",
        "--confirm_run_unsafe_code",
        "--log_samples",
        "--output_path",
        str(tmp_path),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    cli_evaluate()
    for task_label, name in zip(["math-words"], names):
        [samples_file] = tmp_path.rglob(f"samples_{name}_*.jsonl")
        theirs = {s["doc"]["id"]: s for s in map(json.loads, samples_file.read_text().splitlines())}
        ours = evaluate_task(
            "tiny", task_label, Evaluation(limit=LIMIT, samples_dir=tmp_path / task_label), splits=["test"]
        )
        rows = [json.loads(line) for line in (tmp_path / task_label / "test.jsonl").read_text().splitlines()]
        assert len(theirs) == len(rows) == LIMIT
        for row in rows:  # example by example: the same completion, graded to the same score
            assert theirs[row["id"]]["resps"][0][0] == row["completion"], row["id"]
            assert theirs[row["id"]]["acc"] == row["score"], row["id"]
        [results_file] = tmp_path.rglob("results_*.json")
        assert json.loads(results_file.read_text())["results"][name]["acc,none"] == ours["test"]["value"]


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["--task", "visual-math"], "task visual-math: it has pictures"),
        (["--eval-template", "qwen-boxed"], "task math-words: it is asked with --eval-template qwen-boxed"),
        (["--temperature", "0.7"], "task math-words: it is scored with 1 sample(s) at temperature 0.7"),
        (["--ood-tasks", "math-500"], "task math-500: it is scored with 16 sample(s) at temperature 1.0"),
    ],
)
def test_what_the_lm_eval_backend_cannot_score_is_refused_before_any_work(argv, why):
    with pytest.raises(ConfigError, match="^" + re.escape(f"--eval-backend lm-eval cannot score {why}")):
        parse_experiment(["--eval-backend", "lm-eval", *argv])


@pytest.mark.slow
def test_the_experiment_evaluates_through_lm_eval_into_the_same_scores(tmp_path):
    argv = [
        "--methods",
        "base",
        "--task",
        "math-words",
        "--eval-limit",
        "3",
        "--ood-tasks",
        "--prob-rows",
        "0",
    ]
    argv += [
        "--runs-dir",
        str(tmp_path / "runs"),
        "--reference-dir",
        "",
        "--results-dir",
        str(tmp_path / "results"),
    ]
    argv += ["--leaderboard-dir", str(tmp_path / "boards"), "--eval-backend", "lm-eval"]
    assert experiment.main(argv) == 0
    [path] = (tmp_path / "results").rglob("base-*.json")
    record = json.loads(path.read_text())
    assert record["evaluation"]["backend"] == "lm-eval"
    ours = evaluate_task(
        "tiny", "math-words", Evaluation(limit=3)
    )  # the harness's own backend, same model and examples
    # The same scores; only ours names the settings its own generate ran with (lm-eval's are its own).
    mine = {split: {**score, "decoding": "greedy"} for split, score in ours.items()}
    assert record["scores"] == {
        split: {k: v for k, v in s.items() if k != "generation"} for split, s in mine.items()
    }
    assert (
        0 < sum(score["value"] for score in ours.values()) < len(ours)
    )  # some right, some wrong: it can tell


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "visual-math"], "--eval-backend lm-eval cannot score task visual-math: it has pictures"),
        (
            ["--eval-template", "qwen-boxed"],
            "--eval-backend lm-eval cannot score task math-words: it is asked with",
        ),
        (
            ["--task", "humaneval", "--problem-file", "x.jsonl"],
            "--problem-file applies only to --eval-backend harness",
        ),
        (["--task", "gsm9k"], "--task unknown task 'gsm9k'; did you mean 'gsm8k'?"),
    ],
)
def test_harness_evaluate_refuses_what_lm_eval_cannot_score_in_one_line(argv, message, capsys):
    assert evaluate_main(["--eval-backend", "lm-eval", *argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: " + message), err


@pytest.mark.slow
def test_harness_evaluate_through_lm_eval_scores_code_as_the_harness_does(tmp_path, capsys):
    base = ["--task", "code-lists", "--eval-limit", "3"]
    assert (
        evaluate_main([*base, "--eval-backend", "lm-eval", "--samples-dir", str(tmp_path / "lm-eval")]) == 0
    )
    through_lm_eval = capsys.readouterr().out
    assert evaluate_main([*base, "--samples-dir", str(tmp_path / "harness")]) == 0
    assert capsys.readouterr().out == through_lm_eval  # the same table
    for split in tasks.get("code-lists").eval_splits:  # example by example: program, verdict, score
        theirs, ours = (
            [
                {k: row[k] for k in ("id", "completion", "extracted", "score", "verdict")}
                for row in map(json.loads, (tmp_path / backend / f"{split}.jsonl").read_text().splitlines())
            ]
            for backend in ("lm-eval", "harness")
        )
        assert theirs == ours and len(ours) == 3
