"""Shared by the code tasks: finding the program in a completion, and the base class that grades
completions by running them in the sandbox (:mod:`harness.sandbox.check`).

>>> print(extract_code("Here it is:\\n```python\\ndef f(x):\\n    return x\\n```\\nDone.", "f"))
def f(x):
    return x
<BLANKLINE>
"""

from __future__ import annotations

import math
import re
from typing import Any

from harness.sandbox.check import CallTests, CheckFunction, check_many
from harness.sandbox.process import Limits
from tasks.base import Task

FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.DOTALL | re.MULTILINE)
PYTHON_TAGS = {"", "python", "py", "python3", "py3"}


def extract_code(completion: str, entry_point: str | None = None) -> str | None:
    """The program in a model's answer, or ``None`` when there is no code.

    Fenced blocks (```python, ```py or bare ```; an unclosed fence runs to the end, as a cut-off
    generation does) are preferred: the first one that defines ``entry_point``, else the longest
    Python block. Without fences, the text from the first line that starts a definition or an import.
    """
    blocks = [body for tag, body in FENCE.findall(completion) if tag.lower() in PYTHON_TAGS and body.strip()]
    if blocks:
        defining = [
            b for b in blocks if entry_point and re.search(rf"^\s*def {re.escape(entry_point)}\b", b, re.M)
        ]
        return (defining or sorted(blocks, key=len, reverse=True))[0]
    start = re.search(r"^(def |class |import |from \w[\w.]* import |async def )", completion, re.M)
    return completion[start.start() :] if start else None


class CodeTask(Task):
    """A task graded by execution: subclasses say how to build the program from a completion
    (``program``) and which hidden checks it must pass (``checker``); grading runs every program in
    its own sandbox, many at a time."""

    timeout_s: float = 5.0  # wall clock per program, tests included
    memory_mb: int = Limits.memory_mb  # address space per program

    def program(self, example: dict[str, Any], completion: str) -> str | None:
        raise NotImplementedError

    def checker(self, example: dict[str, Any]) -> CallTests | CheckFunction:
        raise NotImplementedError

    def extract(self, completion: str) -> str:
        return extract_code(completion) or ""

    def deciding_spans(self, completion: str) -> list[tuple[int, int]]:
        """The program decides a code answer: the body of every fenced block, or the whole
        completion when it has none (prose around a program is not run)."""
        return [match.span(2) for match in FENCE.finditer(completion)] or [(0, len(completion))]

    def limits(self, example: dict[str, Any]) -> Limits:
        """The sandbox's limits for a program of ``example``."""
        return Limits(timeout_s=self.timeout_s, cpu_s=math.ceil(self.timeout_s), memory_mb=self.memory_mb)

    def grade(self, pairs: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
        jobs = [(self.program(example, completion), self.checker(example)) for example, completion in pairs]
        limits = [self.limits(example) for example, _ in pairs]
        verdicts: list = [None] * len(jobs)
        for shared in dict.fromkeys(limits):  # one parallel batch per distinct limit, in first-seen order
            chosen = [i for i, each in enumerate(limits) if each == shared]
            for i, verdict in zip(chosen, check_many([jobs[i] for i in chosen], limits=shared)):
                verdicts[i] = verdict
        return [
            {"score": float(v.passed), "verdict": v.verdict, "stderr": v.stderr, "program": program}
            for (program, _), v in zip(jobs, verdicts)
        ]

    def score(self, example: dict[str, Any], completion: str) -> float:
        return self.grade([(example, completion)])[0]["score"]
