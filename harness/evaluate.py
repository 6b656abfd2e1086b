"""Evaluate a model on a task's splits: generate, score, and summarize with standard errors.

Each example gets ``n`` completions; its score is their mean (``n = 16`` with temperature 1.0 is the
paper's Average@16), and a split's value is the mean over examples with the standard error of that
mean. Where every score is 0 or 1 (code, math), the summary adds unbiased pass@k for k in 1 and 10
where ``n`` allows, and for execution-graded tasks the count of each verdict. Every completion is
kept in ``<samples_dir>/<split>.jsonl`` (prompt, completion, extracted answer or program, score, and
for code the verdict and the tail of stderr).

``python -m harness.evaluate --model runs/x/model --task math-words --limit 50`` prints the table.

>>> summary = evaluate_task("tiny", "math-words", splits=["test"], limit=4)
>>> sorted(summary["test"])
['n', 'pass_at', 'role', 'samples_per_example', 'stderr', 'value', 'verdicts']
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

import tasks
from harness.config import Sampling
from harness.config.resolve import parse_evaluate
from harness.data.images import has_images, printable
from harness.data.rows import load_split
from harness.errors import DataError, HarnessError
from harness.files import atomic_write_jsonl
from harness.generate import generate
from harness.models import device_and_dtype, load_model, load_tokenizer_and_processor
from harness.models import resolve as resolve_model
from harness.stats import mean_and_stderr, pass_at_k
from harness.vllm_engine import Engine
from tasks.prompts import CHAT, check_applies, with_template

PASS_AT = (1, 10)


def evaluate_split(
    model,
    tokenizer,
    task: tasks.Task,
    split: str,
    sampling: Sampling,
    limit: int | None,
    samples_path: Path | None,
    processor=None,
    template: str = CHAT,
) -> dict[str, Any]:
    examples = load_split(task, split, limit)
    if not examples:
        raise DataError(f"task {task.name} split {split} is empty; nothing to evaluate")
    conversations = [with_template(task, e, template)["prompt"] for e in examples]
    if processor is None and any(has_images({"prompt": c}) for c in conversations if not isinstance(c, str)):
        raise DataError(f"task {task.name} has images; the backbone is text-only (no vision tower)")
    if isinstance(model, Engine):
        completions = model.generate(tokenizer, conversations, sampling, processor)
    else:
        completions = generate(model, tokenizer, conversations, sampling, processor)
    return score_split(
        task, split, examples, [printable(c) for c in conversations], completions, samples_path
    )


def score_split(
    task: tasks.Task,
    split: str,
    examples: list[dict[str, Any]],
    prompts: list[Any],
    completions: list[list[str]],
    samples_path: Path | None,
) -> dict[str, Any]:
    """Grade ``completions`` (``n`` per example) and summarize them; see the module docstring."""
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
    if samples_path is not None:
        atomic_write_jsonl(samples_path, rows)
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
    return summary


def evaluate_task(
    model: str,
    task_name: str | tasks.Task,
    *,
    splits: list[str] | None = None,
    limit: int | None = None,
    sampling: Sampling | None = None,
    samples_dir: str | Path | None = None,
    device: str | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    template: str = CHAT,
    generation_backend: str = "hf",
    tensor_parallel_size: int = 1,
) -> dict[str, dict[str, Any]]:
    """Scores per split (``{split: {role, value, stderr, n, samples_per_example}}``) of ``model`` (a
    name for ``--model`` or a checkpoint folder) on the task's evaluation splits, its questions put
    to the model with the prompt ``template`` (:mod:`tasks.prompts`), generated by Hugging Face
    ``generate`` or (``generation_backend="vllm"``) by vLLM on ``tensor_parallel_size`` GPUs."""
    task = tasks.get(task_name) if isinstance(task_name, str) else task_name
    for split in splits or task.eval_splits:
        task.split(split)  # an unknown split fails before the model is loaded
    try:
        check_applies(task, template)
    except ValueError as error:
        raise DataError(str(error)) from None
    tokenizer, processor = load_tokenizer_and_processor(model, min_pixels, max_pixels)
    if generation_backend == "vllm":
        with Engine(resolve_model(model), tensor_parallel_size, 0, min_pixels, max_pixels) as engine:
            return evaluate_loaded(
                engine, tokenizer, task, splits, limit, sampling, samples_dir, processor, template
            )
    chosen, amp_dtype = device_and_dtype(device)
    loaded = load_model(model, dtype=amp_dtype, device=chosen)
    summary = evaluate_loaded(
        loaded, tokenizer, task, splits, limit, sampling, samples_dir, processor, template
    )
    del loaded
    if chosen.type == "cuda":
        torch.cuda.empty_cache()
    return summary


def evaluate_loaded(
    model,
    tokenizer,
    task: tasks.Task,
    splits: list[str] | None = None,
    limit: int | None = None,
    sampling: Sampling | None = None,
    samples_dir: str | Path | None = None,
    processor=None,
    template: str = CHAT,
) -> dict[str, dict[str, Any]]:
    """:func:`evaluate_task` for a model already in memory (training-time evaluation uses it).
    Sets the tokenizer to pad on the left, as generation needs."""
    splits = splits or task.eval_splits
    for split in splits:
        task.split(split)  # an unknown split fails before any generation
    # Unset sampling fields take the task's own protocol (the paper's Average@16 for its math).
    sampling = (sampling or Sampling()).resolved(task.protocol, budget=task.max_new_tokens)
    tokenizer.padding_side = "left"
    summary = {}
    for split in splits:
        path = Path(samples_dir) / f"{split}.jsonl" if samples_dir is not None else None
        summary[split] = evaluate_split(
            model, tokenizer, task, split, sampling, limit, path, processor, template
        )
    return summary


def main(argv: list[str] | None = None) -> int:
    try:
        config, sampling = parse_evaluate(argv, description=__doc__.split("\n\n")[0])
        options = {} if config.problem_file is None else {"problem_file": config.problem_file}
        task = tasks.get(config.task, **options)
        if options:
            load_split(task, "test", 1)  # reads and checks the whole file before a model is loaded
        summary = evaluate_task(
            config.model,
            task,
            limit=config.limit,
            sampling=sampling,
            samples_dir=config.samples_dir,
            device=config.device,
            min_pixels=config.min_pixels,
            max_pixels=config.max_pixels,
            template=config.prompt_template,
            generation_backend=config.generation_backend,
            tensor_parallel_size=config.tensor_parallel_size,
        )
    except HarnessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for split, score in summary.items():
        print(
            f"{split:16s} {score['role']:5s} {100 * score['value']:5.1f} ± {100 * score['stderr']:.1f}  (n={score['n']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
