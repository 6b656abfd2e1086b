"""HumanEval+ and MBPP+, offline, on excerpts of EvalPlus's own release files (``tests/data``: real
rows of HumanEvalPlus v0.1.10 and MbppPlus v0.2.0, Apache-2.0, each cut to its first 12 plus
inputs): the reference solutions pass, realistic wrong answers fail, and EvalPlus's comparison rules
(float tolerance, HumanEval/32's oracle, MBPP's set and ``re.Match`` answers, inputs rebuilt as tuples
and complex numbers) hold. Programs run in the real sandbox."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import tasks
from harness.data.rows import load_split
from harness.errors import DataError
from tasks.evalplus import PlusTests, mbpp_inputs

DATA = Path(__file__).parent / "data"
HUMANEVAL = DATA / "HumanEvalPlus-excerpt.jsonl"
MBPP = DATA / "MbppPlus-excerpt.jsonl"


def fenced(code: str) -> str:
    return f"Here is the solution:\n```python\n{code}\n```"


@pytest.fixture
def humaneval_plus(monkeypatch, data_dir):
    monkeypatch.setenv("HUMANEVAL_OVERRIDE_PATH", str(HUMANEVAL))  # as EvalPlus itself reads it
    task = tasks.get("humaneval-plus")
    return task, {e["id"]: e for e in task.load("test")}


@pytest.fixture
def mbpp_plus(data_dir):
    with gzip.open(data_dir / "mbpp-plus.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(MBPP.read_text(encoding="utf-8"))  # the release's own compression
    task = tasks.get("mbpp-plus")
    return task, {e["id"]: e for e in task.load("test")}


def grade(task, example, completion):
    return task.grade([(example, completion)])[0]


def test_rows_keep_every_base_and_plus_input_in_the_release_schema(humaneval_plus, mbpp_plus):
    task, examples = humaneval_plus
    assert list(examples) == ["HumanEval/0", "HumanEval/2", "HumanEval/32"]
    rows = [json.loads(line) for line in HUMANEVAL.read_text().splitlines()]
    assert [len(e["inputs"]) for e in examples.values()] == [
        len(r["base_input"]) + len(r["plus_input"]) for r in rows
    ]
    assert examples["HumanEval/32"]["atol"] == 1e-4
    prompt = task.messages(examples["HumanEval/0"])["prompt"][0]["content"]
    assert prompt.startswith(
        "Please provide a self-contained Python script that solves the following problem"
    )
    assert "def has_close_elements" in prompt
    _, mbpp = mbpp_plus
    # JSON stored Mbpp/2's tuples as lists and Mbpp/124's complex numbers as strings: rebuilt.
    assert mbpp["Mbpp/2"]["inputs"][0] == [(3, 4, 5, 6), (5, 7, 4, 10)]
    assert mbpp["Mbpp/124"]["inputs"][0] == [0.0, 1j]
    assert mbpp["Mbpp/3"]["inputs"][0] == [1]  # not in EvalPlus's list: left as it is


@pytest.mark.slow
def test_reference_solutions_pass_and_wrong_answers_fail_humaneval_plus(humaneval_plus):
    task, examples = humaneval_plus
    for example in examples.values():
        reference = task.messages(example)["completion"][0]["content"]
        assert grade(task, example, reference)["score"] == 1.0, example["id"]
    # A real near miss: "<=" instead of "<" passes HumanEval's tests on most inputs, not on all.
    near_miss = examples["HumanEval/0"]["prompt"] + (
        "    return any(abs(a - b) <= threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n"
    )
    graded = grade(task, examples["HumanEval/0"], fenced(near_miss))
    assert graded["score"] == 0.0 and graded["verdict"] == "failed"
    # Only the body, as chat models often answer: the prompt is put in front.
    body = "    return number % 1.0\n"
    assert grade(task, examples["HumanEval/2"], fenced(body))["score"] == 1.0  # within 1e-6
    assert grade(task, examples["HumanEval/2"], fenced("    return round(number % 1.0, 3)\n"))["score"] == 0.0


@pytest.mark.slow
def test_find_zero_accepts_any_root_within_tolerance(humaneval_plus):
    task, examples = humaneval_plus
    example = examples["HumanEval/32"]
    # Bisection from a wide bracket: roots by another path, not the reference's floats (and for a
    # polynomial with several roots, maybe another root).
    bisection = (
        "def find_zero(xs):\n"
        "    f = lambda x: sum(c * x**i for i, c in enumerate(xs))\n"
        "    low, high = -1000.0, 1000.0\n"
        "    for _ in range(200):\n"
        "        middle = (low + high) / 2\n"
        "        if (f(middle) > 0) == (f(low) > 0):\n"
        "            low = middle\n"
        "        else:\n"
        "            high = middle\n"
        "    return low\n"
    )
    assert grade(task, example, fenced(bisection))["score"] == 1.0
    assert grade(task, example, fenced("def find_zero(xs):\n    return 0.0\n"))["score"] == 0.0


@pytest.mark.slow
def test_mbpp_plus_rules(mbpp_plus):
    task, examples = mbpp_plus
    for example in examples.values():
        reference = task.messages(example)["completion"][0]["content"]
        assert grade(task, example, reference)["score"] == 1.0, example["id"]
    # Set-valued answers: any order; the inputs arrive as tuples, as the problem says.
    reordered = (
        "def similar_elements(a, b):\n"
        "    assert isinstance(a, tuple) and isinstance(b, tuple)\n"
        "    return tuple(sorted(set(a) & set(b), reverse=True))\n"
    )
    assert grade(task, examples["Mbpp/2"], fenced(reordered))["score"] == 1.0
    # A re.Match answer is compared by whether there is one; a bool answer as a bool.
    as_bool = "import re\ndef check_str(s):\n    return bool(re.match('[aeiouAEIOU]', s))\n"
    always = "def check_str(s):\n    return 'yes'\n"
    assert grade(task, examples["Mbpp/737"], fenced(as_bool))["score"] == 1.0
    assert grade(task, examples["Mbpp/737"], fenced(always))["score"] == 0.0
    # Complex inputs cross into the sandbox.
    phase = "import math\ndef angle_complex(a, b):\n    return math.atan2(b.imag, a)\n"
    assert grade(task, examples["Mbpp/124"], fenced(phase))["score"] == 1.0
    wrong = "def is_not_prime(n):\n    return n % 2 == 0\n"
    graded = grade(task, examples["Mbpp/3"], fenced(wrong))
    assert graded["score"] == 0.0 and "is_not_prime" in graded["program"]


def test_comparison_rules_without_the_sandbox():
    floats = PlusTests("humaneval", "f", [], atol=0)
    assert floats.matches([], 0.5 + 1e-9, 0.5, floats.atol_for(0.5))
    assert not floats.matches([], 0.5 + 1e-3, 0.5, floats.atol_for(0.5))
    assert not floats.matches([], [0.5], (0.5,), 1e-6)  # types must match under tolerance
    assert not PlusTests("humaneval", "f", [], atol=0).matches([], 1, 2, 0)
    exact = PlusTests("mbpp", "f", [], atol=0)
    assert exact.matches([], 1, 1.0, 0) and not exact.matches([], "1", 1, 0)
    assert PlusTests("mbpp", "are_equivalent", [], atol=0).matches([1, 2], "anything", True, 0)
    assert PlusTests("mbpp", "sum_div", [], atol=0).matches([7], 0, 1, 0)
    assert mbpp_inputs("Mbpp/580", [[[1, [2, 3]]]]) == [[(1, (2, 3))]]
    assert mbpp_inputs("Mbpp/115", [[[[1], []]]]) == [[[{1}, {}]]]  # EvalPlus's {} for an empty one


def test_the_hub_copy_in_the_original_format_runs_its_check_function(data_dir):
    row = {
        "task_id": "HumanEval/53",
        "prompt": 'def add(x: int, y: int):\n    """Add two numbers x and y"""\n',
        "canonical_solution": "    return x + y\n",
        "entry_point": "add",
        "test": "\n\ndef check(candidate):\n    inputs = [[0, 1], [5, 7]]\n    results = [1, 12]\n"
        "    for inp, exp in zip(inputs, results):\n        assert candidate(*inp) == exp\n",
    }
    (data_dir / "humaneval-plus.jsonl").write_text(json.dumps(row) + "\n")
    task = tasks.get("humaneval-plus")
    [example] = task.load("test")
    assert "inputs" not in example and "def check" in example["test"]
    assert type(task.checker(example)).__name__ == "CheckFunction"


def test_bad_rows_and_missing_data_are_one_line(data_dir, monkeypatch):
    with pytest.raises(
        DataError, match=r"\$HARNESS_DATA=.*evalplus/mbppplus.*--local-dir \$HARNESS_DATA/mbpp-plus"
    ):
        load_split(tasks.get("mbpp-plus"), "test")
    row = json.loads(MBPP.read_text().splitlines()[0])
    del row["entry_point"]
    (data_dir / "mbpp-plus.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"mbpp-plus.jsonl row 1: mbpp-plus needs the field 'entry_point'"):
        load_split(tasks.get("mbpp-plus"), "test")
    monkeypatch.setenv("MBPP_OVERRIDE_PATH", str(data_dir / "absent.jsonl"))
    with pytest.raises(DataError, match=r"absent.jsonl \(\$MBPP_OVERRIDE_PATH\): cannot read"):
        load_split(tasks.get("mbpp-plus"), "test")


@pytest.mark.slow
def test_the_hub_copy_of_mbpp_plus_in_mbpps_original_format(data_dir):
    """Two real rows of ``evalplus/mbppplus`` (MBPP's original fields, the tests a script): turned
    into EvalPlus's prompt and a check function, the reference passes and a wrong answer fails."""
    (data_dir / "mbpp-plus.jsonl").write_text((DATA / "MbppPlus-OriginFmt-excerpt.jsonl").read_text())
    task = tasks.get("mbpp-plus")
    first, second = task.load("test")
    assert (first["id"], first["entry_point"]) == ("Mbpp/3", "is_not_prime")
    assert (
        first["prompt"]
        == '"""\nWrite a python function to identify non-prime numbers.\nassert is_not_prime(2) == False\n"""\n'
    )
    assert second["entry_point"] == "heap_queue_largest"
    for example in (first, second):
        assert grade(task, example, task.messages(example)["completion"][0]["content"])["score"] == 1.0
    assert grade(task, first, fenced("def is_not_prime(n):\n    return n % 2 == 0\n"))["score"] == 0.0
