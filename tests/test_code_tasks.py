"""The code tasks: code-lists (splits, hidden tests, reproducibility) and HumanEval (the package's
164 problems, both prompt styles, graded by execution)."""

from __future__ import annotations

import json
import re

import pytest

import tasks
from tasks.code_lists import FAMILIES, CodeLists
from tasks.humaneval import HumanEval, HumanEvalComplete


@pytest.fixture(scope="module")
def code_lists():
    task = CodeLists()
    return {split.name: task.load(split.name) for split in task.splits}


def test_code_lists_splits_have_their_sizes_and_unique_questions(code_lists):
    assert {name: len(rows) for name, rows in code_lists.items()} == {
        "train": 2000,
        "test": 200,
        "ood-compose": 200,
        "ood-constants": 200,
    }
    assert CodeLists().eval_splits == ["test", "ood-compose", "ood-constants"]  # near first
    train_questions = {row["question"] for row in code_lists["train"]}
    for name, rows in code_lists.items():
        questions = [row["question"] for row in rows]
        assert len(set(questions)) == len(questions), name
        if name != "train":
            assert not train_questions & set(questions), name


def test_code_lists_splits_hold_the_families_they_promise(code_lists):
    names = {group: {family.name for family in families} for group, families in FAMILIES.items()}
    trained = names["seen"] | names["composed"]
    assert {row["family"] for row in code_lists["train"]} == trained
    assert {row["family"] for row in code_lists["test"]} <= trained
    assert {row["family"] for row in code_lists["ood-constants"]} <= trained
    assert {row["family"] for row in code_lists["ood-compose"]} == names["recomposed"]
    # The unseen families are the base's pretraining prior only: no split holds them.
    assert not {row["family"] for rows in code_lists.values() for row in rows} & names["unseen"]
    assert not (names["unseen"] | names["recomposed"]) & trained
    # No composition is in train under another name: the recomposed bodies are new code shapes.
    bodies = {group: {family.body for family in FAMILIES[group]} for group in FAMILIES}
    assert not bodies["recomposed"] & (bodies["seen"] | bodies["composed"])
    # Each of the 5 compositions is drawn twice as often as each of the 10 seen families: half of
    # train is two operations.
    composed = sum(row["family"] in names["composed"] for row in code_lists["train"])
    assert 0.4 < composed / 2000 < 0.6


def test_code_lists_constants_shift_only_in_ood_constants(code_lists):
    def constants(row):
        spec = row["question"].split(" that ", 1)[1]
        return [int(n) for n in re.findall(r"\d+", spec)]

    for name, rows in code_lists.items():
        found = [n for row in rows for n in constants(row)]
        low, high = (9, 20) if name == "ood-constants" else (1, 8)
        assert min(found) == low and max(found) == high, name


def test_code_lists_is_reproducible_and_limits_are_prefixes():
    first, again = CodeLists().load("ood-compose"), CodeLists().load("ood-compose", limit=7)
    assert again == first[:7]


def test_hidden_tests_agree_with_the_reference_and_distinguish_families(code_lists):
    for row in [row for name, rows in code_lists.items() if name != "train" for row in rows]:
        namespace: dict = {}
        exec(row["solution"], namespace)
        for case in row["tests"]:
            assert namespace[row["entry_point"]](*case["args"]) == case["expected"]
    # Five random inputs rarely leave a wrong operation undetected: adding vs subtracting the constant.
    # (An off-by-one bound, ``x >= k`` for ``x > k``, can pass: on test-15 no input equals k.)
    add = next(r for r in code_lists["test"] if r["family"] == "add")
    subtracts = add["solution"].replace(" + ", " - ")
    task = CodeLists()
    assert task.score(add, f"```python\n{add['solution']}```") == 1.0
    assert task.score(add, f"```python\n{subtracts}```") == 0.0


@pytest.mark.slow
def test_reference_solutions_pass_in_the_sandbox_and_a_wrong_one_fails(code_lists):
    # Every reference agrees with its hidden tests in-process (above); here the sandbox's verdicts
    # agree with that on a sample of every evaluation split (the whole of them took 37 s).
    task = CodeLists()
    rows = [row for name, rows in code_lists.items() if name != "train" for row in rows[:40]]
    answers = [task.messages(row)["completion"][0]["content"] for row in rows]
    assert [g["score"] for g in task.grade(list(zip(rows, answers)))] == [1.0] * len(rows)
    wrong = [a.replace("return ", "return None and ") for a in answers[:20]]
    assert {g["verdict"] for g in task.grade(list(zip(rows[:20], wrong)))} == {"failed"}


def test_code_lists_grades_keep_program_verdict_and_stderr(code_lists):
    row = code_lists["test"][0]
    completion = "```python\nimport sys\nprint('debug', file=sys.stderr)\n" + row["solution"] + "```"
    [grade] = CodeLists().grade([(row, completion)])
    assert grade["score"] == 1.0 and grade["verdict"] == "passed"
    assert grade["program"].startswith("import sys") and "debug" in grade["stderr"]
    [none] = CodeLists().grade([(row, "I cannot write code.")])
    assert none == {"score": 0.0, "verdict": "failed", "stderr": "", "program": None}


def test_humaneval_has_the_164_problems_of_the_package_and_no_train_split():
    examples = HumanEval().load("test")
    assert len(examples) == 164 and examples[-1]["id"] == "HumanEval/163"
    assert all(e["entry_point"] in e["prompt"] for e in examples)
    with pytest.raises(ValueError, match="task 'humaneval' has no train split"):
        _ = HumanEval().train_split


@pytest.mark.slow
@pytest.mark.parametrize("task", [HumanEval(), HumanEvalComplete()], ids=lambda t: t.name)
def test_every_canonical_humaneval_solution_passes_and_a_stub_fails(task):
    examples = task.load("test")
    answers = [task.messages(e)["completion"] for e in examples]
    answers = [a if isinstance(a, str) else a[0]["content"] for a in answers]
    grades = task.grade(list(zip(examples, answers)))
    assert [e["id"] for e, g in zip(examples, grades) if g["verdict"] != "passed"] == []
    stubs = task.grade(
        [
            (e, "    return None\n" if task.name.endswith("complete") else "```python\n    return None\n```")
            for e in examples[:10]
        ]
    )
    assert [g["verdict"] for g in stubs] == ["failed"] * 10


HUMANEVAL_ANSWERS = [
    # a full function in a fenced block, as instruct models write it
    ("```python\ndef add(x: int, y: int):\n    return x + y\n```", 1.0),
    # only the body, indented, in a block: the prompt's header is put in front
    ("```python\n    return x + y\n```", 1.0),
    # a helper of its own, then the function
    ("```python\ndef _plus(a, b):\n    return a + b\n\ndef add(x, y):\n    return _plus(x, y)\n```", 1.0),
    # a wrong body
    ("```python\ndef add(x, y):\n    return x - y\n```", 0.0),
    # no code at all
    ("I think you should add x and y.", 0.0),
]


@pytest.mark.parametrize(("completion", "score"), HUMANEVAL_ANSWERS)
def test_humaneval_chat_answers(completion, score):
    example = next(e for e in HumanEval().load("test") if e["entry_point"] == "add")
    assert HumanEval().score(example, completion) == score


def test_humaneval_complete_cuts_at_the_stop_sequences():
    task = HumanEvalComplete()
    example = next(e for e in task.load("test") if e["entry_point"] == "add")
    assert (
        task.score(example, "    return x + y\n\n\nif __name__ == '__main__':\n    raise SystemExit(1)\n")
        == 1.0
    )
    assert task.score(example, "    return x + y\n# trailing\nimport sys; sys.exit(3)") == 1.0
    assert task.extract("    return 1\ndef other():\n    pass") == "    return 1"
    assert task.messages(example)["prompt"] == example["prompt"]  # raw text, no chat template


def test_registry_knows_the_code_tasks():
    assert tasks.get("code-lists").ood_tasks == ("humaneval",)
    assert tasks.get("humaneval-complete").domain == "code"
    with pytest.raises(KeyError, match="did you mean 'humaneval'"):
        tasks.get("humaneva")


def write_problems(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


GOOD_ROW = {
    "task_id": "Mine/0",
    "prompt": 'def twice(x):\n    """Return 2 * x."""\n',
    "entry_point": "twice",
    "canonical_solution": "    return 2 * x\n",
    "test": "def check(candidate):\n    assert candidate(3) == 6\n",
}


def test_a_problem_file_of_ones_own_is_loaded_and_graded(tmp_path):
    task = HumanEval(problem_file=write_problems(tmp_path / "mine.jsonl", [GOOD_ROW]))
    [example] = task.load("test")
    assert task.score(example, "```python\ndef twice(x):\n    return x + x\n```") == 1.0


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{k: v for k, v in GOOD_ROW.items() if k != "test"}],
            "mine.jsonl line 1: missing or empty field 'test'",
        ),
        ([GOOD_ROW, GOOD_ROW], "mine.jsonl line 2: task_id 'Mine/0' appears twice"),
        ([GOOD_ROW | {"entry_point": "thrice"}], "line 1: the prompt does not define 'thrice'"),
        ([], "mine.jsonl: no problems in the file"),
        (["not an object"], "line 1: expected an object, got str"),
    ],
)
def test_a_bad_problem_file_is_one_error_naming_the_line(tmp_path, rows, message):
    path = write_problems(tmp_path / "mine.jsonl", rows)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=re.escape(message)):
        HumanEval(problem_file=path).load("test")
    assert path.read_bytes() == before  # nothing written to the user's file


def test_a_problem_file_that_is_not_json_or_not_there(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"task_id": "x",\n')
    with pytest.raises(ValueError, match="broken.jsonl line 1: not valid JSON"):
        HumanEval(problem_file=broken).load("test")
    with pytest.raises(ValueError, match="absent.jsonl: cannot read HumanEval problems"):
        HumanEval(problem_file=tmp_path / "absent.jsonl").load("test")
