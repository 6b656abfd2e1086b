r"""Grade a multiple-choice answer: which option a model's completion chose, compared with the gold one.

Benchmarks store choices three ways (a list field: MathVision, MathVista; one string of lettered
options: WeMath; lettered lines inside the question: MathVerse) and gold answers two (a letter, or
the text of the right option: MathVista). :func:`options_in` reads the options of any of them as
``{letter: text}``; :func:`chosen_letter` finds the letter a completion chose, trying in order:

1. the last ``\boxed{}``: a letter (``B``, ``(B)``, ``B.``, ``B: 60°``) or the text of one option;
   a box that names no option is a ``wrong`` answer (nothing else is read);
2. the last "answer is (B)" / "Answer: B" / "answer is $B$" statement (WeMath's own extraction
   reads what follows "Answer"), else the last "correct option is B" / "choice B";
3. a completion that is only a letter, or whose last line starts with one (``(C) 120``);
4. the text of exactly one option ending the completion, as a whole token.

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
# "answer is (B)", "**Answer:** B", "<Answer>: B", "answer is $B$"; then "correct option is C". The
# letter in capitals ("the answer is a triangle" names no option).
_STATED = r"(?:\s+(?i:is))?[\s*>:：$]*\(?([A-H])\)?\$?(?![\w'’])"
_ANSWER_STATEMENT = re.compile(r"(?i:answer)" + _STATED)
_OPTION_STATEMENT = re.compile(r"(?i:option|choice)" + _STATED)
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
    """Text compared as an option's: no spaces, ``$``, braces or ``\\text``; a final period dropped,
    decimal points kept (1.5 is not 15)."""
    text = re.sub(r"\\text\{([^{}]*)\}", r"\1", text)
    return re.sub(r"[\s$\\{}]+", "", text).rstrip(".").lower()


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
    """The letter ``completion`` chose among ``options``, or None; see the module docstring. A box is
    the final answer: when it names no option, nothing else in the completion is read."""
    box = last_box(completion)
    if box is not None:
        return _letter_of(box, options)
    for statement in (_ANSWER_STATEMENT, _OPTION_STATEMENT):  # "answer is C, not option D": C
        found = statement.findall(completion)
        if found:
            return found[-1]
    lines = [line for line in completion.strip().splitlines() if line.strip()]
    if lines and (letter := _letter_of(lines[-1].strip().strip("*"), options)):
        return letter
    # An option's text ending the completion, as a whole token (160° does not end with the option 60°).
    tail = completion.strip().rstrip(".!$ ")
    ending = [
        letter
        for letter, text in options.items()
        if text.strip() and re.search(rf"(?<![\w.]){re.escape(text.strip())}$", tail, re.IGNORECASE)
    ]
    return ending[0] if len(ending) == 1 else None


def grade_choice(gold: str, completion: str, options: dict[str, str]) -> MathGrade:
    """Grade ``completion`` against the gold option (its letter, or its text as MathVista stores it)."""
    gold_letter = _letter_of(gold.strip(), options) or gold.strip()
    letter = chosen_letter(completion, options)
    if letter is None:
        box = last_box(completion)  # a boxed answer that is no option is wrong, not missing
        return MathGrade(0.0, "no-answer", None) if box is None else MathGrade(0.0, "wrong", box)
    return MathGrade(
        1.0 if letter == gold_letter else 0.0, "correct" if letter == gold_letter else "wrong", letter
    )
