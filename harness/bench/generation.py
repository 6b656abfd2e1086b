"""Our evaluator against lm-eval's Hugging Face backend: completions per second on the embedded tiny
backbone over the first examples of every math-words evaluation split, greedy, each task's own budget,
the same batch of prompts per ``generate`` call, fp32 on the CPU, each in a fresh process. Both must
produce the same scores (lm-eval's completions are graded by the same grader, :mod:`harness.score`).

The time is the whole evaluation a user waits for: ours generates and grades (the model is loaded
before the clock starts); on lm-eval's side it loads the model, exports the tasks, builds them
(``TaskManager`` over the export only), generates through ``HFLM`` and grades.

``python -m harness.bench.generation --impl lm-eval`` prints one measurement as JSON.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import tasks
from harness.bench import measurement_cli
from harness.config import Sampling
from harness.evaluate import evaluate_loaded
from harness.lmeval import evaluate_task_lm_eval
from harness.models import load_model, load_tokenizer

TASK, LIMIT, BATCH = "math-words", 64, 64
IMPLEMENTATIONS = ("harness", "lm-eval")


def measure(impl: str) -> dict[str, Any]:
    if impl == "harness":
        model, tokenizer = load_model("tiny"), load_tokenizer("tiny")
        started = time.perf_counter()
        scores = evaluate_loaded(
            model, tokenizer, tasks.get(TASK), limit=LIMIT, sampling=Sampling(gen_batch_size=BATCH)
        )
    else:
        load_model("tiny")  # the files into the page cache, as for ours; lm-eval loads its own copy below
        started = time.perf_counter()
        scores = evaluate_task_lm_eval("tiny", TASK, limit=LIMIT, batch_size=BATCH, device="cpu")
    seconds = time.perf_counter() - started
    return {
        "impl": impl,
        "completions": sum(score["n"] * score["samples_per_example"] for score in scores.values()),
        "seconds": seconds,
        "scores": {split: score["value"] for split, score in scores.items()},
    }


def main(argv: list[str] | None = None) -> int:
    return measurement_cli(
        "harness.bench.generation", __doc__.split("\n\n")[0], IMPLEMENTATIONS, measure, argv
    )


if __name__ == "__main__":
    sys.exit(main())
