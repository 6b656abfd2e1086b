"""The paper's real training sets as tasks, offline: NuminaMath-CoT (math) and UltraFeedback (code),
read from local copies in their hub schema; which rows are kept, what a training row looks like, and
a bad row named by file and row. Nothing here touches the network."""

from __future__ import annotations

import pytest
from conftest import write_jsonl

import tasks
from harness.data.rows import check_row, load_split, training_rows
from harness.errors import DataError
from tasks import numina_math

NUMINA = [
    {
        "source": "synthetic_math",
        "problem": "What is the sum of the roots of $x^2 - 5x + 6 = 0$?",
        "solution": "By Vieta's formulas the sum of the roots is $5$. Thus the answer is $\\boxed{5}$.",
        "messages": [
            {"role": "user", "content": "What is the sum of the roots of $x^2 - 5x + 6 = 0$?"},
            {"role": "assistant", "content": "... $\\boxed{5}$."},
        ],
    },
    {
        "source": "cn_k12",
        "problem": "Given the set $A=\\{x\\mid x^2<4\\}$, find $A$.",
        "solution": "Solving $x^2<4$ gives $-2<x<2$, so $A = \\boxed{(-2, 2)}$.",
        "messages": [],
    },
    {
        "source": "olympiads",
        "problem": "Prove that $n^3 - n$ is divisible by 6.",
        "solution": "$n^3-n=(n-1)n(n+1)$ is a product of three consecutive integers. $\\blacksquare$",
        "messages": [],
    },
]


def test_numina_rows_train_on_the_raw_problem_and_solution(data_dir):
    write_jsonl(data_dir / "numina-math-cot.jsonl", NUMINA)
    task = tasks.get("numina-math-cot")
    examples = task.load("train")
    assert [e["answer"] for e in examples] == ["5", "(-2, 2)", ""]  # a proof has no boxed answer
    row = task.messages(examples[1])
    check_row(row, "numina row 1")
    assert row["prompt"] == [{"role": "user", "content": NUMINA[1]["problem"]}]  # as the official code
    assert row["completion"][0]["content"] == NUMINA[1]["solution"]
    # A real solution scores 1 on its own example (the grader reads the boxed interval).
    assert task.score(examples[1], NUMINA[1]["solution"]) == 1.0
    rows, source = training_rows("numina-math-cot", None, 2)
    assert len(rows) == 2 and source == "task numina-math-cot split train"
    # Evaluated on the paper's five math benchmarks, in the paper's order; nothing in-domain.
    assert task.eval_splits == [] and task.ood_tasks == (
        "math-500",
        "minerva-math",
        "olympiadbench",
        "aime24",
        "amc23",
    )


def test_numina_first_rows_and_the_seeded_sample_differ_only_in_which_rows(data_dir, monkeypatch):
    rows = [{"problem": f"p{k}", "solution": f"\\boxed{{{k}}}"} for k in range(50)]
    write_jsonl(data_dir / "numina-math-cot.jsonl", rows)
    monkeypatch.setattr(numina_math, "ROWS", 10)
    first = tasks.get("numina-math-cot").load("train")
    sample = tasks.get("numina-math-cot-random").load("train")
    assert [e["question"] for e in first] == [f"p{k}" for k in range(10)]
    questions = [e["question"] for e in sample]
    assert len(set(questions)) == 10 and questions != [e["question"] for e in first]
    picked = [int(q[1:]) for q in questions]
    assert picked == sorted(picked)  # file order
    # Seeded: the same rows every time, and the sample is not all from the start of the file.
    assert [e["question"] for e in tasks.get("numina-math-cot-random").load("train")] == questions
    assert max(picked) >= 10
    # Both read the same local copy, and the record's task name says which rows were trained.
    assert tasks.get("numina-math-cot-random").load("train", limit=3) == sample[:3]


def test_numina_without_data_says_where_it_looked(data_dir):
    with pytest.raises(DataError) as caught:
        training_rows("numina-math-cot", None, None)
    message = str(caught.value)
    assert "numina-math-cot" in message and str(data_dir) in message
    assert "AI-MO/NuminaMath-CoT" in message and "--local-dir $HARNESS_DATA/numina-math-cot" in message


def test_numina_row_without_a_solution_names_the_file_and_row(data_dir):
    write_jsonl(data_dir / "numina-math-cot.jsonl", [NUMINA[0], {"source": "x", "problem": "p"}])
    with pytest.raises(
        DataError, match=r"numina-math-cot.jsonl row 2: .*'solution'.*the row has problem, source"
    ):
        training_rows("numina-math-cot", None, None)


def rated(response, *ratings):
    aspects = ("helpfulness", "honesty", "instruction_following", "truthfulness")
    return {
        "model": "m",
        "response": response,
        "annotations": {a: {"Rating": r, "Rationale": "..."} for a, r in zip(aspects, ratings)},
        "fine-grained_score": 0.0,
        "overall_score": 0.0,
        "custom_system_prompt": "",
        "principle": "helpfulness",
        "critique": "",
    }


ULTRAFEEDBACK = [
    {
        "source": "evol_instruct",
        "instruction": "Write a Python function that returns the n-th Fibonacci number.",
        "models": ["a", "b", "c"],
        "completions": [
            rated("Use recursion: fib(n-1) + fib(n-2).", "3", "4", "4", "4"),  # mean 3.75
            rated("```python\ndef fib(n): ...\n```", "5", "4", "5", "5"),  # mean 4.75: best
            rated("I cannot help.", "1", "5", "1", "5"),
        ],
        "correct_answers": ["None"],
        "incorrect_answers": ["None"],
    },
    {
        "source": "sharegpt",
        "instruction": "Explain what a Python list comprehension is.",
        "models": ["a", "b"],
        # N/A is left out of the mean: 5.0 beats 4.5 although it has fewer ratings.
        "completions": [
            rated("A loop in brackets.", "5", "N/A", "N/A", "5"),
            rated("Long answer.", "4", "5", "4", "5"),
        ],
        "correct_answers": [],
        "incorrect_answers": [],
    },
    {"source": "flan", "instruction": "No completions here.", "models": [], "completions": []},
    {
        "source": "ultrachat",
        "instruction": "Tie between two responses.",
        "models": ["a", "b"],
        "completions": [rated("first", "4", "4", "4", "4"), rated("second", "4", "4", "4", "4")],
    },
]


def test_ultrafeedback_keeps_the_best_mean_rated_response(data_dir):
    write_jsonl(data_dir / "ultrafeedback.jsonl", ULTRAFEEDBACK)
    task = tasks.get("ultrafeedback")
    examples = task.load("train")
    assert [e["response"] for e in examples] == [
        "```python\ndef fib(n): ...\n```",
        "A loop in brackets.",
        "first",
    ]
    assert [e["id"] for e in examples] == ["ultrafeedback/0", "ultrafeedback/1", "ultrafeedback/3"]
    row = task.messages(examples[0])
    check_row(row, "ultrafeedback row 0")
    assert row["prompt"][0]["content"] == ULTRAFEEDBACK[0]["instruction"]
    assert task.load("train", limit=2) == examples[:2]  # a limit counts kept rows
    assert task.domain == "code" and task.ood_tasks == ("humaneval", "humaneval-plus")


def test_ultrafeedback_row_without_completions_is_named(data_dir):
    write_jsonl(data_dir / "ultrafeedback.jsonl", [{"source": "x", "instruction": "hi"}])
    with pytest.raises(
        DataError, match=r"ultrafeedback.jsonl row 1: ultrafeedback needs the field 'completions'"
    ):
        training_rows("ultrafeedback", None, None)


@pytest.mark.parametrize("name", ["numina-math-cot", "ultrafeedback", "math-500", "mathvista", "mbpp-plus"])
def test_an_empty_local_copy_is_one_line_naming_it(data_dir, name):
    (data_dir / f"{name}.jsonl").write_text("\n")
    task = tasks.get(name)
    with pytest.raises(DataError, match=rf"{name}.jsonl: no rows for task {name}$"):
        load_split(task, task.train_split if task.eval_splits == [] else task.eval_splits[0])
