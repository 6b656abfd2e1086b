r"""NuminaMath-CoT (AI-MO/NuminaMath-CoT, 859,494 competition and textbook problems with chain-of-thought
solutions ending in ``\boxed{}``): the DFT paper's math training data, evaluated on the paper's five
math benchmarks (:mod:`tasks.math_benchmarks`) as out-of-domain tasks, as the paper's Table 1 does.

The paper trained on 100,000 rows. Its text says a random sample; its official code took the first
100,000 rows of the train split. Both are registered, so which one a record used is its task name:

* ``numina-math-cot``: the first 100,000 rows, in file order (the official code).
* ``numina-math-cot-random``: 100,000 rows drawn uniformly without replacement with a fixed seed
  (``random.Random(0)``), kept in file order.

A training row is the ``problem`` alone as the user's message, answered by the ``solution``, as the
official code trains (its ``numina_cot.py`` writes an instruction into the prompt, but its trainer
reads the raw problem and solution). The benchmarks then ask with the paper's evaluation prompt
(``--eval-template``; the official evaluation uses ``qwen-boxed``), so training and evaluation
prompts differ, as in the paper.

>>> import os, json, tempfile
>>> folder = tempfile.mkdtemp()
>>> with open(os.path.join(folder, "numina-math-cot.jsonl"), "w") as f:
...     for k in range(3):
...         _ = f.write(json.dumps({"source": "synthetic_math", "problem": f"What is {k} + 1?",
...                                 "solution": f"{k} + 1 = {k + 1}, so $\\boxed{{{k + 1}}}$."}) + "\n")
>>> os.environ["HARNESS_DATA"] = folder
>>> task = NuminaMathCoT()
>>> [e["answer"] for e in task.load("train")]
['1', '2', '3']
>>> print(task.messages(task.load("train", limit=1)[0])["completion"][0]["content"])
0 + 1 = 1, so $\boxed{1}$.
>>> del os.environ["HARNESS_DATA"]
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from tasks.base import Split, Task
from tasks.math_benchmarks import PAPER_MATH_BENCHMARKS, MathBenchmark
from tasks.math_grading import MathAnswerTask, last_box
from tasks.sources import Source, field, load_rows

ROWS = 100_000  # the paper's training set size
SAMPLE_SEED = 0


def first_rows(total: int) -> list[int]:
    """The official code's choice: the first :data:`ROWS` rows."""
    return list(range(min(ROWS, total)))


def seeded_sample(total: int) -> list[int]:
    """The paper's words: a uniform sample of :data:`ROWS` rows (seed :data:`SAMPLE_SEED`), in file
    order; all rows when there are fewer.

    >>> seeded_sample(5) == [0, 1, 2, 3, 4], len(set(seeded_sample(10 * ROWS))) == ROWS
    (True, True)
    """
    if total <= ROWS:
        return list(range(total))
    return sorted(random.Random(SAMPLE_SEED).sample(range(total), ROWS))


class NuminaMathCoT(MathAnswerTask, Task):
    """The first 100,000 rows of NuminaMath-CoT; see the module docstring."""

    name = "numina-math-cot"
    domain = "math"
    source: ClassVar[Source] = Source("AI-MO/NuminaMath-CoT", split="train")
    splits = (Split("train", "train", "the first 100,000 rows of NuminaMath-CoT's train split"),)
    ood_tasks = PAPER_MATH_BENCHMARKS
    max_new_tokens = 4096
    protocol = MathBenchmark.protocol  # it is scored by its benchmarks, with theirs
    select = staticmethod(first_rows)

    def load(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        self.split(split)
        rows, where = load_rows("numina-math-cot", self.source, select=self.select)
        examples = []
        for number, row in enumerate(rows[:limit], start=1):
            problem = str(field(row, ("problem",), self.name, where, number)).strip()
            solution = str(field(row, ("solution",), self.name, where, number)).strip()
            examples.append(
                {
                    "id": f"{self.name}/{number - 1}",
                    "question": problem,
                    "solution": solution,
                    "answer": last_box(solution) or "",  # a few solutions state no boxed answer
                }
            )
        return examples

    def messages(self, example: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return {
            "prompt": [{"role": "user", "content": example["question"]}],
            "completion": [{"role": "assistant", "content": example["solution"]}],
        }


class NuminaMathCoTRandom(NuminaMathCoT):
    """100,000 rows of NuminaMath-CoT drawn with a fixed seed; see the module docstring."""

    name = "numina-math-cot-random"
    splits = (Split("train", "train", "100,000 rows of NuminaMath-CoT's train split, drawn with seed 0"),)
    select = staticmethod(seeded_sample)
