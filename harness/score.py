"""Grading a split's completions into the summary every record holds: per-example means (Average@n),
the mean over examples with its standard error, unbiased pass@k where every score is 0 or 1, the
count of each verdict for execution-graded tasks, and one samples row per completion.

Every generation path ends here (Hugging Face ``generate``, vLLM, lm-eval), so a score means the
same thing whichever made the completions.

>>> import tasks
>>> task = tasks.get("math-words")
>>> [example] = task.load("test", limit=1)
>>> right = example["solution"]  # the reference solution, ending "The answer is \\boxed{17}."
>>> summary = score_split(task, "test", [example], ["q"], [[right, "no idea"]], None)
>>> summary["value"], summary["pass_at"]
(0.5, {'1': 0.5})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tasks
from harness.errors import DataError
from harness.files import atomic_write_jsonl
from harness.stats import mean_and_stderr, pass_at_k

PASS_AT = (1, 10)


def score_split(
    task: tasks.Task,
    split: str,
    examples: list[dict[str, Any]],
    prompts: list[Any],
    completions: list[list[str]],
    samples_path: Path | None,
) -> dict[str, Any]:
    """Grade ``completions`` (``n`` per example) and summarize them; see the module docstring."""
    rows, summary = grade_samples(task, split, examples, prompts, completions)
    if samples_path is not None:
        atomic_write_jsonl(samples_path, rows)
    return summary


def grade_samples(
    task: tasks.Task,
    split: str,
    examples: list[dict[str, Any]],
    prompts: list[Any],
    completions: list[list[str]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """:func:`score_split`'s samples rows (one per completion, with its ``score``) and summary,
    nothing written."""
    pairs = [(example, text) for example, samples in zip(examples, completions) for text in samples]
    try:
        grades = iter(task.grade(pairs))
    except ValueError as error:  # the task's data cannot grade (a reference solution that fails)
        raise DataError(f"task {task.name} split {split}: {error}") from None
    per_example, passed, rows = [], [], []
    verdicts: dict[str, int] = {}
    for example, prompt, samples in zip(examples, prompts, completions):
        graded = [next(grades) for _ in samples]
        scores = [g["score"] for g in graded]
        per_example.append(sum(scores) / len(scores))
        passed.append(sum(s == 1.0 for s in scores) if all(s in (0.0, 1.0) for s in scores) else None)
        for k, (text, grade) in enumerate(zip(samples, graded)):
            if "verdict" in grade:
                verdicts[grade["verdict"]] = verdicts.get(grade["verdict"], 0) + 1
            # What was graded: the program run, the answer compared, or the task's extraction.
            graded_part = next((grade[key] for key in ("program", "answer") if key in grade), text)
            extracted = task.extract(text) if graded_part is text else graded_part
            details = {key: grade[key] for key in ("verdict", "stderr") if key in grade}
            rows.append(
                {
                    "id": example["id"],
                    "split": split,
                    "sample": k,
                    "prompt": prompt,
                    "completion": text,
                    "extracted": extracted,
                    "score": grade["score"],
                    **details,
                }
            )
    value, stderr = mean_and_stderr(per_example)
    summary = {
        "role": task.split(split).role,
        "value": value,
        "stderr": stderr,
        "n": len(examples),
        "samples_per_example": len(completions[0]),
    }
    n = len(completions[0])
    if all(c is not None for c in passed) and all(len(s) == n for s in completions):
        summary["pass_at"] = {
            str(k): sum(pass_at_k(n, c, k) for c in passed) / len(passed) for k in PASS_AT if k <= n
        }
    if verdicts:
        summary["verdicts"] = dict(sorted(verdicts.items()))
    return rows, summary
