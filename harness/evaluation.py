"""Evaluate a model on a task's splits: generate, score, and summarize with standard errors.

Each example gets ``n`` completions; its score is their mean (``n = 16`` with temperature 1.0 is the
paper's Average@16), and a split's value is the mean over examples with the standard error of that
mean. Where every score is 0 or 1 (code, math), the summary adds unbiased pass@k for k in 1 and 10
where ``n`` allows, and for execution-graded tasks the count of each verdict. Every completion is
kept in ``<samples_dir>/<split>.jsonl`` (prompt, completion, extracted answer or program, score, and
for code the verdict and the tail of stderr). With a ``samples_dir``, each batch's completions are
kept as it finishes (:mod:`harness.progress`), and a rerun of a killed evaluation generates only
what it lacks. Each split's summary names every setting its completions were generated with
(``generation``, :func:`harness.generate.generation_settings`).

``python -m harness.evaluate --model runs/x/model --task math-words --eval-limit 50`` prints the table
(:mod:`harness.evaluate`, the command).

>>> summary = evaluate_task("tiny", "math-words", Evaluation(limit=4), splits=["test"])
>>> sorted(summary["test"])
['generation', 'n', 'pass_at', 'role', 'samples_per_example', 'stderr', 'value', 'verdicts']
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

import tasks
from harness.config import Evaluation, Sampling
from harness.data.images import has_images, printable
from harness.data.rows import load_split
from harness.errors import DataError
from harness.generate import generate, generation_settings
from harness.lmeval_tasks import evaluate_task_lm_eval
from harness.models import device_and_dtype, load_model, load_tokenizer_and_processor
from harness.models import resolve as resolve_model
from harness.progress import SamplesProgress
from harness.score import score_split
from harness.vllm_engine import Engine
from tasks.prompts import CHAT, check_applies, with_template


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
    identity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    sampling = sampling.resolved(task.protocol, budget=task.max_new_tokens)
    examples = load_split(task, split, limit)
    if not examples:
        raise DataError(f"task {task.name} split {split} is empty; nothing to evaluate")
    conversations = [with_template(task, e, template)["prompt"] for e in examples]
    if processor is None and any(has_images({"prompt": c}) for c in conversations if not isinstance(c, str)):
        raise DataError(f"task {task.name} has images; the backbone is text-only (no vision tower)")
    key = {**(identity or {}), "task": task.name, "split": split, "limit": limit, "template": template}
    completions, progress = generate_kept(
        model, tokenizer, conversations, [e["id"] for e in examples], sampling, processor, samples_path, key
    )
    summary = score_split(
        task, split, examples, [printable(c) for c in conversations], completions, samples_path
    )
    if progress is not None:
        progress.finish()
    return summary | {"generation": generation_settings(sampling)}


def generate_kept(
    model,
    tokenizer,
    conversations: list[Any],
    ids: list[Any],
    sampling: Sampling,
    processor=None,
    samples_path: Path | None = None,
    identity: dict[str, Any] | None = None,
) -> tuple[list[list[str]], SamplesProgress | None]:
    """The completions of ``conversations`` (examples ``ids``) by ``model`` (a Hugging Face model or
    a vLLM :class:`~harness.vllm_engine.Engine`), each batch kept beside ``samples_path`` as it
    finishes (:mod:`harness.progress`) and a rerun making only what a killed one lacked; with the
    progress, which the caller finishes once its own files are written (None: nothing kept)."""
    backend = model.generate if isinstance(model, Engine) else partial(generate, model)
    progress, done = None, {}
    if samples_path is not None:
        key = {**(identity or {}), "sampling": asdict(sampling)}
        progress = SamplesProgress(samples_path, key, ids)
        done = progress.done()
    completions = backend(
        tokenizer,
        conversations,
        sampling,
        processor,
        done=done,
        on_batch=progress.append if progress is not None else None,
    )
    return [done[i] if not made and i in done else made for i, made in enumerate(completions)], progress


def evaluate_task(
    model: str,
    task_name: str | tasks.Task,
    evaluation: Evaluation | None = None,
    *,
    splits: list[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Scores per split (``{split: {role, value, stderr, n, samples_per_example, generation}}``) of
    ``model`` (a name for ``--model`` or a checkpoint folder) on the task's evaluation splits (or
    ``splits``), evaluated as ``evaluation`` says (:class:`harness.config.Evaluation`): its questions
    put to the model with the prompt template (:mod:`tasks.prompts`), generated by Hugging Face
    ``generate`` or by vLLM; with the ``lm-eval`` evaluation backend lm-eval runs the evaluation
    (:func:`harness.lmeval_tasks.evaluate_task_lm_eval`: greedy, the chat template) and the harness grades
    its completions alike."""
    evaluation = evaluation or Evaluation()
    task = tasks.get(task_name) if isinstance(task_name, str) else task_name
    if evaluation.eval_backend == "lm-eval":
        return evaluate_task_lm_eval(
            model,
            task.name,
            limit=evaluation.limit,
            sampling=evaluation.sampling,
            samples_dir=evaluation.samples_dir,
            device=evaluation.device,
            template=evaluation.template,
        )
    for split in splits or task.eval_splits:
        task.split(split)  # an unknown split fails before the model is loaded
    try:
        check_applies(task, evaluation.template)
    except ValueError as error:
        raise DataError(str(error)) from None
    with generator(model, evaluation) as loaded:
        return evaluate_loaded(
            loaded.model,
            loaded.tokenizer,
            task,
            splits,
            evaluation.limit,
            evaluation.sampling,
            evaluation.samples_dir,
            loaded.processor,
            evaluation.template,
            loaded.identity,
        )


@dataclass
class Generator:
    """A model loaded to generate: a Hugging Face model or a vLLM engine, its tokenizer and processor,
    and what names it for resuming (:func:`model_key`, backend, device, dtype)."""

    model: Any
    tokenizer: Any
    processor: Any
    identity: dict[str, Any]


@contextmanager
def generator(model: str, evaluation: Evaluation | None = None) -> Iterator[Generator]:
    """``model`` (a name for ``--model`` or a folder) loaded to generate as ``evaluation`` says (its
    device, generation backend, tensor-parallel size and image sizes); its memory given back when
    the block ends.

    >>> with generator("tiny") as loaded:
    ...     loaded.identity["backend"], loaded.identity["device"]
    ('hf', 'cpu')
    """
    evaluation = evaluation or Evaluation()
    device, generation_backend = evaluation.device, evaluation.generation_backend
    tensor_parallel_size = evaluation.tensor_parallel_size
    min_pixels, max_pixels = evaluation.min_pixels, evaluation.max_pixels
    tokenizer, processor = load_tokenizer_and_processor(model, min_pixels, max_pixels)
    identity = model_key(model) | {"backend": generation_backend, "pixels": [min_pixels, max_pixels]}
    if generation_backend == "vllm":
        with Engine(resolve_model(model), tensor_parallel_size, 0, min_pixels, max_pixels) as engine:
            identity |= {"device": engine.device, "tensor_parallel_size": tensor_parallel_size}
            yield Generator(engine, tokenizer, processor, identity)
        return
    chosen, amp_dtype = device_and_dtype(device)
    loaded = Generator(load_model(model, dtype=amp_dtype, device=chosen), tokenizer, processor, identity)
    identity |= {"device": str(chosen), "dtype": str(amp_dtype).removeprefix("torch.")}
    try:
        yield loaded
    finally:
        del loaded.model
        if chosen.type == "cuda":
            torch.cuda.empty_cache()


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
    identity: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """:func:`evaluate_task` for a model already in memory (training-time evaluation uses it).
    Sets the tokenizer to pad on the left, as generation needs. ``identity`` names the model and
    backend for resuming a killed evaluation (:mod:`harness.progress`); by default the model's own
    ``name_or_path``; the task's own data files, when it reads any (``task.data_digest()``), name
    its examples, so an edited copy never resumes another copy's completions."""
    if identity is None:
        identity = {"model": getattr(getattr(model, "config", None), "_name_or_path", type(model).__name__)}
    if (data := task.data_digest()) is not None:
        identity = identity | {"data": data}
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
            model, tokenizer, task, split, sampling, limit, path, processor, template, identity
        )
    return summary


def model_key(model: str) -> dict[str, Any]:
    """What names a model for resuming its evaluation: ``--model`` as given and, for a folder, each
    file's size and modification time (a retrained folder is another model; reading 15 GB of
    weights to hash them would cost more than the resume saves).

    >>> model_key("tiny")["model"], len(model_key("tiny")["files"]) > 0
    ('tiny', True)
    """
    folder = Path(resolve_model(model))
    if not folder.is_dir():
        return {"model": model}
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {
        "model": model,
        "files": {str(p.relative_to(folder)): [p.stat().st_size, p.stat().st_mtime_ns] for p in files},
    }
