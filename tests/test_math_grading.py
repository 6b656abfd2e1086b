"""Table tests of the math grader on the kinds of completions real models write."""

from __future__ import annotations

import threading
import time

import pytest

from tasks.math_grading import answers_match, extract_answer, score_math

# (gold, completion, expected score)
CASES = [
    # the plain, correct boxed answer
    ("9", "Mia starts with 7 apples.\n7 + 5 - 3 = 9.\nThe answer is \\boxed{9}.", 1.0),
    # the last box wins over an earlier (intermediate) box
    ("9", "First \\boxed{12}, then 12 - 3 = 9, so \\boxed{9}.", 1.0),
    # ... and an earlier correct box does not rescue a wrong final one
    ("9", "\\boxed{9}? No: the answer is \\boxed{12}.", 0.0),
    # nested braces inside the box
    ("0.5", "Half of it: \\boxed{\\frac{1}{2}}", 1.0),
    # a thousands separator inside the box
    ("1000", "So the total is \\boxed{1,000}.", 1.0),
    # LaTeX thin space as thousands separator (Math-Verify alone reads it as 1*0)
    ("1000", "So the total is \\boxed{1\\,000}.", 1.0),
    # box inside inline math, followed by a period
    ("6", "Therefore $\\boxed{6}$.", 1.0),
    # \fbox instead of \boxed
    ("6", "\\fbox{6}", 1.0),
    # \boxed followed by a bare token
    ("6", "The answer is $\\boxed 6$.", 1.0),
    # units inside the box
    ("12", "\\boxed{12 \\text{ apples}}", 1.0),
    # no box, but a sentence stating the answer
    ("6", "She has 6 apples left. The answer is 6.", 1.0),
    # no box, "Answer:" line
    ("6", "3 + 3 = 6\nAnswer: 6", 1.0),
    # no box, "The final answer is: X"
    ("5", "The final answer is: 5", 1.0),
    # no box and no statement: the trailing "= X" is the answer
    ("12", "7 + 5 = 12", 1.0),
    # no box: the last number of the text
    ("4", "She ends with 4", 1.0),
    # no answer at all
    ("6", "I do not know how to solve this.", 0.0),
    # a wrong answer
    ("6", "The answer is \\boxed{7}.", 0.0),
    # negative vs positive
    ("6", "The answer is \\boxed{-6}.", 0.0),
    # positive vs negative
    ("-6", "The answer is \\boxed{6}.", 0.0),
    # a negative gold, answered right
    ("-6", "The answer is \\boxed{-6}.", 1.0),
    # 6.0 equals 6
    ("6", "\\boxed{6.0}", 1.0),
    # 0.5 equals 1/2 the other way round
    ("\\frac{1}{2}", "\\boxed{0.5}", 1.0),
    # an equation with the answer on its right-hand side
    ("6", "\\boxed{x = 6}", 1.0),
    # a near miss in the decimals
    ("6", "\\boxed{6.01}", 0.0),
    # several values where one is asked
    ("6", "\\boxed{6, 7}", 0.0),
    # an unclosed box (cut at max_new_tokens) must not crash; its content is graded
    ("6", "So the answer is \\boxed{6", 1.0),
    # an unclosed box holding garbage
    ("6", "\\boxed{\\frac{1}{", 0.0),
    # an empty box, and nothing else
    ("6", "\\boxed{}", 0.0),
    # an empty completion
    ("6", "", 0.0),
    # an answer in words is not parsed
    ("6", "The answer is six.", 0.0),
]


@pytest.mark.parametrize(("gold", "completion", "expected"), CASES)
def test_score_math(gold: str, completion: str, expected: float) -> None:
    assert score_math(gold, completion) == expected


@pytest.mark.parametrize(
    "completion",
    [
        "garbage \\frac{ x^{ " * 20_000 + "9" * 5_000,  # a runaway generation with a huge number
        "\\boxed{" * 20_000,  # thousands of unclosed boxes
        "The answer is " * 20_000,  # a repeated phrase without an answer
        "\\boxed{" + "a+b^{c}" * 2_000 + "}",  # a long box of algebra
    ],
)
def test_long_garbage_neither_crashes_nor_hangs(completion: str) -> None:
    start = time.monotonic()
    assert score_math("6", completion) == 0.0
    assert time.monotonic() - start < 5


# (completion, extracted answer)
EXTRACTIONS = [
    ("\\boxed{3} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # last box, nested braces kept
    ("$\\boxed{6}$.", "6"),  # no dollars, no period
    ("\\boxed{1,000}", "1,000"),  # separators are left to the comparison
    ("\\boxed 7$", "7"),  # bare token, stops at the dollar
    ("\\boxed{6", "6"),  # unclosed: the rest of the text
    ("\\boxed{6} and \\boxed{}", "6"),  # an empty last box is skipped
    ("The answer is 6.5 apples. Next question.", "6.5 apples"),  # a decimal point is no sentence end
    ("The answer is \\(6\\).", "6"),  # inline math delimiters
    ("Answer: $12$", "12"),  # answer line
    ("x = 6", "6"),  # trailing equation
    ("It was -3 degrees, then 4", "4"),  # last number
    ("It was -3 degrees", "-3"),  # a negative number
    ("12-5", "5"),  # a minus after a digit is subtraction, not a sign
    ("no numbers here", None),
    ("", None),
    ("\\boxed{}", None),
    ("I think the answer is", None),
]


@pytest.mark.parametrize(("completion", "expected"), EXTRACTIONS)
def test_extract_answer(completion: str, expected: str | None) -> None:
    assert extract_answer(completion) == expected


@pytest.mark.parametrize(
    ("gold", "predicted", "expected"),
    [
        ("1000", "1,000", True),
        ("1,000", "1000", True),
        ("0.5", "\\frac{1}{2}", True),
        ("6", "6.0", True),
        ("6", "x=6", True),
        ("6", "7", False),
        ("-6", "6", False),
        ("6", None, False),
        ("6", "", False),
        ("\\text{blue}", "\\text{blue}", True),  # unparseable but equal strings
        ("6", "x" * 10_000, False),  # over MAX_ANSWER_CHARS: no sympy at all
    ],
)
def test_answers_match(gold: str, predicted: str | None, expected: bool) -> None:
    assert answers_match(gold, predicted) is expected


def test_grading_works_outside_the_main_thread() -> None:
    # Math-Verify's signal-based timeout raises off the main thread; thread pools must still grade.
    results = []
    thread = threading.Thread(target=lambda: results.append(score_math("9", "\\boxed{9}")))
    thread.start()
    thread.join()
    assert results == [1.0]
