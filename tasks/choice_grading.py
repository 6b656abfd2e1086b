r"""Grade a multiple-choice answer: which option a model's completion chose, compared with the gold one.

Benchmarks store choices three ways (a list field: MathVision, MathVista; one string of lettered
options: WeMath; lettered lines inside the question: MathVerse) and gold answers two (a letter, or
the text of the right option: MathVista). :func:`options_in` reads the options of any of them as
``{letter: text}``; :func:`chosen_letter` finds the letter a completion chose, trying in order:

1. the last ``\boxed{}``: a letter (``B``, ``(B)``, ``B.``, ``B: 60°``) or the text of one option;
2. the last "answer is (B)" / "Answer: B" / "correct option is B" statement (WeMath's own
   extraction reads what follows "Answer");
3. a completion that is only a letter, or whose last line starts with one (``(C) 120``);
4. the text of exactly one option at the end of the completion.

No letter is the verdict ``no-answer`` (counted as wrong, and counted in the record); a letter that
is not among the options is ``wrong``.

>>> options = options_in("Which angle?\nChoices:\nA:40°\nB:60°\nC:80°\nD:100°")
>>> options
{'A': '40°', 'B': '60°', 'C': '80°', 'D': '100°'}
>>> chosen_letter("The angles sum to 180°, so the answer is $\\boxed{B}$.", options)
'B'
>>> grade_choice("B", "Since x = 60°, Answer: (B)", options).verdict, grade_choice("A", "I am not sure.", options).verdict
('correct', 'no-answer')
"""

from __future__ import annotations

import re
import string

from tasks.math_grading import MathGrade, last_box

LETTERS = string.ascii_uppercase
# "A. text;B. text" (WeMath) / lines "A:40°", "(A) 40", "A. 40" (MathVerse, MathVista queries)
_OPTION_LINE = re.compile(r"^\s*\(?([A-H])\s*[\):.：]\s*(.*?)\s*$", re.MULTILINE)
# "answer is (B)", "**Answer:** B", "<Answer>: B", "correct option is C": the letter in capitals ("the answer is a
# triangle" names no option).
_ANSWER_STATEMENT = re.compile(r"(?i:answer|option|choice)(?:\s+(?i:is))?[\s*>:：]*\(?([A-H])\)?(?![\w'’])")
_LETTER_ONLY = re.compile(r"^\s*\(?\s*([A-H])\s*\)?\s*(?:[.:)]\s*.*)?$", re.DOTALL)


def lettered(options: list[str]) -> dict[str, str]:
    """``{letter: text}`` of a list of options, lettered A, B, C, ...

    >>> lettered(["3", "4"])
    {'A': '3', 'B': '4'}
    """
    return {LETTERS[k]: str(text).strip() for k, text in enumerate(options)}


def options_in(text: str) -> dict[str, str]:
    """The lettered options written in ``text``: one per line (``A:40°``, ``(B) 60``) or separated by
    semicolons (``A. 300;B. 400``, WeMath's ``option`` field). Empty when there are none.

    >>> options_in("A. 300, 400;B. 400, 300; E. No correct answer")
    {'A': '300, 400', 'B': '400, 300', 'E': 'No correct answer'}
    """
    found: dict[str, str] = {}
    for piece in re.split(r";\s*(?=\(?[A-H]\s*[\):.])", text):
        for letter, option in _OPTION_LINE.findall(piece):
            found.setdefault(letter, option)
    return found


def _normal(text: str) -> str:
    text = re.sub(r"\\text\{([^{}]*)\}", r"\1", text)
    return re.sub(r"[\s$\\{}.]+", "", text).lower()


def _letter_of(candidate: str, options: dict[str, str]) -> str | None:
    """The option ``candidate`` names: a letter (with its text or not), or the text of one option."""
    match = _LETTER_ONLY.match(candidate)
    if match and match.group(1) in options:
        return match.group(1)
    matching = [
        letter for letter, text in options.items() if _normal(text) and _normal(text) == _normal(candidate)
    ]
    return matching[0] if len(matching) == 1 else (match.group(1) if match else None)


def chosen_letter(completion: str, options: dict[str, str]) -> str | None:
    """The letter ``completion`` chose among ``options``, or None; see the module docstring."""
    box = last_box(completion)
    if box is not None and (letter := _letter_of(box, options)):
        return letter
    statements = _ANSWER_STATEMENT.findall(completion)
    if statements:
        return statements[-1]
    lines = [line for line in completion.strip().splitlines() if line.strip()]
    if lines and (letter := _letter_of(lines[-1].strip().strip("*"), options)):
        return letter
    tail = _normal(completion[-200:])
    ending = [letter for letter, text in options.items() if _normal(text) and tail.endswith(_normal(text))]
    return ending[0] if len(ending) == 1 else None


def grade_choice(gold: str, completion: str, options: dict[str, str]) -> MathGrade:
    """Grade ``completion`` against the gold option (its letter, or its text as MathVista stores it)."""
    gold_letter = _letter_of(gold.strip(), options) or gold.strip()
    letter = chosen_letter(completion, options)
    if letter is None:
        return MathGrade(0.0, "no-answer", None)
    return MathGrade(
        1.0 if letter == gold_letter else 0.0, "correct" if letter == gold_letter else "wrong", letter
    )
