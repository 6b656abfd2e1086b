"""Noisy demonstrations (--train-noise): which rows, what they get, and every bad input."""

from __future__ import annotations

import json

import pytest

from harness.config import TrainConfig
from harness.data.noise import final_answer, with_noise
from harness.data.rows import training_rows
from harness.errors import ConfigError, DataError


def rows_of(task: str, limit: int = 40):
    rows, source = training_rows(task, None, limit)
    return rows, source


@pytest.mark.parametrize("task", ["math-words", "code-lists", "visual-math"])
def test_a_fraction_of_rows_gets_another_rows_answer_and_nothing_else_changes(task):
    rows, source = rows_of(task)
    answers = [final_answer(row, "") for row in rows]
    noisy, corrupted = with_noise(rows, 0.25, seed=3, source=source)
    assert len(corrupted) == 10 and len(noisy) == len(rows)
    for i, (before, after) in enumerate(zip(rows, noisy)):
        if i not in corrupted:
            assert after == before
            continue
        wrong = final_answer(after, "")
        assert wrong != answers[i] and wrong in answers  # another row's answer, never its own
        assert after["prompt"] == before["prompt"]
        # Only the answer changed: the text around it is the row's own.
        text, old = after["completion"][-1]["content"], before["completion"][-1]["content"]
        head = old[: old.rindex(answers[i])]
        assert text.startswith(head) and text.endswith(old[old.rindex(answers[i]) + len(answers[i]) :])
    assert rows[0] is not noisy[corrupted[0]]  # the task's rows are copies, never edited


def test_the_rows_come_from_the_seed_alone():
    rows, source = rows_of("math-words")
    first = with_noise(rows, 0.3, seed=0, source=source)
    assert with_noise(rows, 0.3, seed=0, source=source) == first  # every method of a seed: the same
    assert with_noise(rows, 0.3, seed=1, source=source)[1] != first[1]  # another seed: other rows
    assert with_noise(rows, 0.0, seed=0, source=source) == (rows, [])


def test_plain_text_rows_and_nested_braces():
    rows = [
        {"prompt": "Q1", "completion": "so \\boxed{\\frac{1}{2}} done"},
        {"prompt": "Q2", "completion": "so \\boxed{3}"},
    ]
    noisy, corrupted = with_noise(rows, 0.5, seed=0, source="f.jsonl")
    [i] = corrupted
    expected = {0: "so \\boxed{3} done", 1: "so \\boxed{\\frac{1}{2}}"}[i]
    assert noisy[i]["completion"] == expected


def test_bad_inputs_are_one_line_naming_the_row_or_flag():
    rows = [{"prompt": "Q", "completion": "\\boxed{1}"}, {"prompt": "Q", "completion": "no answer here"}]
    with pytest.raises(DataError, match=r"^--train-noise: f.jsonl row 2 has no final answer to corrupt"):
        with_noise(rows, 0.5, seed=0, source="f.jsonl")
    same = [{"prompt": "Q", "completion": "\\boxed{7}"}] * 3
    with pytest.raises(DataError, match="every row of f.jsonl has the same final answer"):
        with_noise(same, 0.5, seed=0, source="f.jsonl")
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ConfigError, match=r"^--train-noise must be in \[0, 1\)"):
            TrainConfig(train_noise=bad)


@pytest.mark.slow
def test_training_on_noisy_rows_records_how_many(tmp_path):
    from harness.trainer import train

    config = TrainConfig(
        output_dir=str(tmp_path / "run"),
        steps=1,
        batch_size=8,
        train_limit=32,
        train_noise=0.5,
        progress=False,
    )
    summary = train(config)
    assert summary["noisy_rows"] == 16 and summary["config"]["train_noise"] == 0.5
    assert json.loads((tmp_path / "run" / "train_summary.json").read_text())["noisy_rows"] == 16
