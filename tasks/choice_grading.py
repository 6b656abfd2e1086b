r"""Grading the answers hub vision-math benchmarks ask for: a letter among options, or a number.

MathVerse, MathVision and WeMath mix multiple-choice questions (options A-E) with free-form numeric
ones. Models answer in many shapes: ``\boxed{B}``, ``Answer: (C)``, ``The correct option is D.``, a
bare ``B``, or the text of the option itself. :func:`extract_choice` tries, in order:

1. the last ``\boxed{...}`` holding a valid letter (``\boxed{\text{B}}`` and ``\boxed{(B)}`` too);
2. the last "answer/option/choice is|: X" phrase (``X`` a valid letter, with or without brackets);
3. a reply that starts with the letter: ``B``, ``(B)``, ``B.``, ``B)``, ``B:`` (not ``A right...``);
4. the text of exactly one option, when the reply names one and no other;
5. the last bracketed letter ``(X)`` in the reply.

>>> extract_choice("The angle is 60, so the answer is (C).", ["30", "45", "60", "90"])
'C'
>>> extract_choice("60 degrees", ["30", "45", "60 degrees", "90"])
'C'
>>> score_choice_or_number("C", "Answer: C", ["30", "45", "60", "90"])
1.0
>>> score_choice_or_number("12", "so the area is \\boxed{12}")
1.0
"""

from __future__ import annotations

import re
import string

from tasks.math_grading import score_math

LETTERS = string.ascii_uppercase


def _valid(options: list[str] | int) -> str:
    count = options if isinstance(options, int) else len(options)
    if not 1 <= count <= len(LETTERS):
        raise ValueError(f"a multiple-choice question needs 1 to 26 options, got {count}")
    return LETTERS[:count]


def extract_choice(completion: str, options: list[str] | int) -> str | None:
    """The option letter ``completion`` chose (``options``: their texts, or how many), else None."""
    valid = _valid(options)
    letter = f"[{valid}]"
    boxed = re.findall(rf"\\boxed\{{\s*(?:\\text\{{\s*)?\(?({letter})\)?\s*\}}?\s*\}}", completion)
    if boxed:
        return boxed[-1]
    stated = re.findall(
        rf"(?:answer|option|choice)(?:\s+is)?\s*(?:[:：]|is)?\s*(?:option\s+)?[\(\[]?({letter})[\)\]]?(?![A-Za-z])",
        completion,
        flags=re.IGNORECASE,
    )
    stated = [s.upper() for s in stated if s.upper() in valid]
    if stated:
        return stated[-1]
    # "A" followed by a space is too often the article ("A right angle") to count as a choice.
    first = re.match(rf"\s*(?:[\(\[]({letter})[\)\]]|({letter})(?:[\)\.:,]|\s*$))", completion)
    if first:
        return first.group(1) or first.group(2)
    if not isinstance(options, int):
        named = [
            LETTERS[i]
            for i, option in enumerate(options)
            if option.strip()
            and re.search(rf"(?<!\w){re.escape(option.strip())}(?!\w)", completion, re.IGNORECASE)
        ]
        if len(named) == 1:
            return named[0]
    bracketed = re.findall(rf"\(({letter})\)", completion)
    return bracketed[-1] if bracketed else None


def score_choice_or_number(gold: str, completion: str, options: list[str] | int | None = None) -> float:
    """1.0 when ``completion`` answers ``gold``: a letter when the question has ``options`` and
    ``gold`` is one of their letters, else a math answer (``\\boxed{}`` or text, via math-verify)."""
    if options and gold.strip().upper() in _valid(options) and len(gold.strip()) == 1:
        return 1.0 if extract_choice(completion, options) == gold.strip().upper() else 0.0
    return score_math(gold, completion)
