"""Noisy demonstrations: ``--train-noise r`` gives a fraction ``r`` of the training rows a wrong final
answer, as imperfect training data does.

A row's final answer is the last ``\\boxed{...}`` of its completion (the math and visual tasks),
else its last fenced code block (the code tasks). Which rows are corrupted is drawn from the run's
``--seed``, so the methods of one seed train on the same corrupted rows and the seeds of a
configuration on different ones. A corrupted row takes the answer of another row, the next one in
a seeded order whose answer differs: a plausible answer to another question, never its own.

>>> rows = [{"prompt": "q", "completion": f"... so \\\\boxed{{{n}}}"} for n in (1, 2, 3, 4)]
>>> noisy, corrupted = with_noise(rows, 0.5, seed=0, source="rows.jsonl")
>>> len(corrupted), [final_answer(row, "") for row in noisy] != [final_answer(row, "") for row in rows]
(2, True)
>>> with_noise(rows, 0.0, seed=0, source="rows.jsonl") == (rows, [])
True
"""

from __future__ import annotations

import copy
import random
import re
from typing import Any

from harness.errors import DataError

BOXED = "\\boxed{"
CODE_BLOCK = re.compile(r"```[^\n]*\n.*?```", re.DOTALL)


def _boxed_span(text: str) -> tuple[int, int] | None:
    """Start and end of the content of the last ``\\boxed{...}`` (braces balanced), else None."""
    start = text.rfind(BOXED)
    if start < 0:
        return None
    depth, i = 1, start + len(BOXED)
    while i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return start + len(BOXED), i
        i += 1
    return None


def _answer_span(text: str) -> tuple[int, int] | None:
    boxed = _boxed_span(text)
    if boxed is not None:
        return boxed
    blocks = list(CODE_BLOCK.finditer(text))
    return (blocks[-1].start(), blocks[-1].end()) if blocks else None


def _completion_text(row: dict[str, Any]) -> tuple[Any, str]:
    """Where a row's completion text lives (the row itself, or its last message) and the text."""
    completion = row["completion"]
    if isinstance(completion, str):
        return row, completion
    message = completion[-1]
    if not isinstance(message["content"], str):
        return message, ""  # parts: no plain text to corrupt
    return message, message["content"]


def final_answer(row: dict[str, Any], where: str) -> str:
    """The final answer of ``row``; a :class:`DataError` naming ``where`` when it has none."""
    _, text = _completion_text(row)
    span = _answer_span(text)
    if span is None:
        raise DataError(
            f"--train-noise: {where} has no final answer to corrupt (a \\boxed{{...}} or a fenced code "
            "block at the end of its completion)"
        )
    return text[span[0] : span[1]]


def _with_answer(row: dict[str, Any], answer: str) -> dict[str, Any]:
    row = copy.deepcopy(row)
    holder, text = _completion_text(row)
    start, end = _answer_span(text)
    replaced = text[:start] + answer + text[end:]
    if holder is row:
        row["completion"] = replaced
    else:
        holder["content"] = replaced
    return row


def with_noise(
    rows: list[dict[str, Any]], rate: float, seed: int, source: str
) -> tuple[list[dict[str, Any]], list[int]]:
    """``rows`` with round(rate x len) of them given another row's final answer, and the indices of
    those rows. Every row must have a final answer (checked before any is changed)."""
    if rate == 0.0:
        return rows, []
    where = getattr(rows, "locations", None) or [f"{source} row {i + 1}" for i in range(len(rows))]
    answers = [final_answer(row, at) for row, at in zip(rows, where)]
    rng = random.Random(f"train-noise-{seed}")
    chosen = sorted(rng.sample(range(len(rows)), round(rate * len(rows))))
    order = list(range(len(rows)))
    rng.shuffle(order)
    position = {index: at for at, index in enumerate(order)}
    noisy = copy.copy(rows)  # a file's Rows keep their locations
    for index in chosen:
        at = position[index]
        donors = (order[(at + step) % len(order)] for step in range(1, len(order)))
        donor = next((d for d in donors if answers[d] != answers[index]), None)
        if donor is None:
            raise DataError(
                f"--train-noise: every row of {source} has the same final answer; none can be wrong"
            )
        noisy[index] = _with_answer(rows[index], answers[donor])
    return noisy, chosen
