"""Our evaluator against lm-eval's Hugging Face backend: completions per second on the embedded tiny
backbone over the first examples of every math-words evaluation split, greedy, each task's own budget,
the same batch of prompts per ``generate`` call, fp32 on the CPU, each in a fresh process. Both must
produce the same scores (lm-eval's completions are graded by the same grader, :mod:`harness.score`).

The time is the whole evaluation a user waits for: ours generates and grades (the model is loaded
before the clock starts); on lm-eval's side it loads the model, exports the tasks, builds them
(``TaskManager`` over the export only), generates through ``HFLM`` and grades.

The sampled part measures our Hugging Face path before and after continuous batching (issue 29):
Average@n style sampling (temperature 1.0, ``SAMPLES`` per prompt, a ``SAMPLED_BUDGET``-token budget)
on the first ``SAMPLED_PROMPTS`` test questions, ``SAMPLED_BATCH`` prompts' worth of sequences in
flight on both sides: ``padded`` is the former path (each batch left-padded through Hugging Face
``generate``, every slot held until the batch's longest sample ends); ``continuous`` is
:func:`harness.generate.generate` (a finished sequence's slot refilled at once). Both draw each
sample from its own seed, so they make the same completions up to the logits' arithmetic.

``python -m harness.bench.generation --impl lm-eval`` prints one measurement as JSON.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import torch

import tasks
from harness.bench import measurement_cli
from harness.config import Sampling
from harness.data.rows import load_split
from harness.evaluation import evaluate_loaded
from harness.generate import generate
from harness.lmeval_tasks import evaluate_task_lm_eval
from harness.models import device_and_dtype, load_model, load_tokenizer, stop_token_ids
from harness.score import score_split
from tasks.prompts import CHAT, with_template

TASK, LIMIT, BATCH = "math-words", 64, 64
IMPLEMENTATIONS = ("harness", "lm-eval")
SAMPLED_PROMPTS, SAMPLES, SAMPLED_BUDGET, SAMPLED_BATCH = 64, 4, 256, 8
SAMPLED_IMPLEMENTATIONS = ("padded", "continuous")


def measure_sampled(
    impl: str,
    model_name: str = "tiny",
    device: str = "cpu",
    shape: tuple[int, int, int, int] = (SAMPLED_PROMPTS, SAMPLES, SAMPLED_BUDGET, SAMPLED_BATCH),
    mean_length: int | None = None,
) -> dict[str, Any]:
    """Completions and generated tokens per second, sampled, through the ``padded`` or ``continuous``
    path (the module docstring); the model is loaded and the prompts rendered before the clock.
    ``shape``: prompts, samples per prompt, budget, prompts per batch. ``mean_length``: a random
    backbone (the GPU bench's) almost never writes a stop token, so every sample would run to the
    budget; the end-of-turn token's logit is then set so that a sample ends after ``mean_length``
    tokens on average (geometric lengths, as a trained model's vary)."""
    prompts, samples, budget, batch = shape
    chosen, dtype = device_and_dtype(device)
    model, tokenizer = load_model(model_name, dtype=dtype, device=chosen), load_tokenizer(model_name)
    tokenizer.padding_side = "left"
    if mean_length is not None:
        _stops_about_every(model, stop_token_ids(tokenizer)[0], mean_length)
    task = tasks.get(TASK)
    examples = load_split(task, "test", prompts)
    conversations = [with_template(task, e, CHAT)["prompt"] for e in examples]
    sampling = Sampling(
        temperature=1.0, num_samples=samples, max_new_tokens=budget, gen_batch_size=batch
    ).resolved()
    started = time.perf_counter()
    completions = generate(model, tokenizer, conversations, sampling, padded=impl == "padded")
    seconds = time.perf_counter() - started
    texts = [text for samples in completions for text in samples]
    return {
        "impl": impl,
        "completions": len(texts),
        "tokens": sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts),
        "seconds": seconds,
        "score": score_split(task, "test", examples, conversations, completions, None)["value"],
    }


def _stops_about_every(model, stop_id: int, mean_length: int) -> None:
    """A forward hook on the output head: the stop token's logit becomes the log-sum-exp of the row
    minus log(mean_length - 1), so it is drawn with probability 1 / mean_length at every step."""
    offset = math.log(mean_length - 1)

    def hook(_module, _inputs, logits):
        logits = logits.clone()
        logits[..., stop_id] = float("-inf")
        logits[..., stop_id] = torch.logsumexp(logits.float(), dim=-1).to(logits.dtype) - offset
        return logits

    model.get_output_embeddings().register_forward_hook(hook)


def measure(impl: str) -> dict[str, Any]:
    if impl in SAMPLED_IMPLEMENTATIONS:
        return measure_sampled(impl)
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
        "harness.bench.generation",
        __doc__.split("\n\n")[0],
        IMPLEMENTATIONS + SAMPLED_IMPLEMENTATIONS,
        measure,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
