"""Letter and number extraction on real-looking outputs of vision-language models, one comment each."""

import pytest

from tasks.choice_grading import extract_choice, score_choice_or_number

OPTIONS = ["30°", "45°", "60°", "90°"]

CHOICES = [
    # (completion, expected letter)
    ("The angle ABC is half of the arc, so \\boxed{C}", "C"),  # boxed letter
    ("Hence the answer is \\boxed{\\text{B}}.", "B"),  # boxed \text{}
    ("\\boxed{(D)}", "D"),  # boxed with brackets
    ("Answer: (C)", "C"),  # "Answer:" and brackets
    ("answer: b", "B"),  # lower-case letter after "answer:"
    ("The correct option is D.", "D"),  # "option is"
    ("So the correct choice is (A) because the triangle is isosceles.", "A"),  # "choice is (A)"
    ("B", "B"),  # a bare letter
    ("(A) 30°", "A"),  # starts with a bracketed letter
    ("C. 60°", "C"),  # starts with "C."
    ("D) 90 degrees", "D"),  # starts with "D)"
    ("The angle measures 45°.", "B"),  # only the option text
    ("First I thought (A), but after checking, the answer is (B).", "B"),  # the last stated answer
    ("I think (C) is right; the others are too small.", "C"),  # the only bracketed letter
    ("A right angle", None),  # "A" is an article here, and no option text matches
    ("The answer is E.", None),  # E is not one of four options
    ("It is either 30° or 45°.", None),  # two option texts: no guess
    ("", None),  # nothing
]


@pytest.mark.parametrize("completion, expected", CHOICES)
def test_extract_choice(completion, expected):
    assert extract_choice(completion, OPTIONS) == expected


def test_a_count_of_options_works_without_their_texts():
    assert extract_choice("The answer is (E).", 5) == "E"
    assert extract_choice("The answer is (E).", 4) is None


def test_an_impossible_number_of_options_is_an_error():
    with pytest.raises(ValueError, match="1 to 26 options"):
        extract_choice("A", 0)


SCORES = [
    # (gold, completion, options, expected score)
    ("C", "Answer: C", OPTIONS, 1.0),  # letter question, right letter
    ("C", "Answer: B", OPTIONS, 0.0),  # letter question, wrong letter
    ("C", "The angle is 60°.", OPTIONS, 1.0),  # right option named by its text
    ("12", "The area is 3 * 4 = 12, so \\boxed{12}.", None, 1.0),  # free-form number, boxed
    ("0.5", "\\boxed{\\frac{1}{2}}", None, 1.0),  # the same number written as a fraction
    ("12", "The area is \\boxed{13}.", None, 0.0),  # wrong number
    ("\\sqrt{2}", "so x = \\boxed{\\sqrt 2}", None, 1.0),  # symbolic answer
]


@pytest.mark.parametrize("gold, completion, options, expected", SCORES)
def test_score_choice_or_number(gold, completion, options, expected):
    assert score_choice_or_number(gold, completion, options) == expected
