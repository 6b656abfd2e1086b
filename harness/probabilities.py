"""How sure a model is of its training targets: the histogram of ``p(target token)`` (paper, Figure 2).

The paper's analysis: after SFT the probabilities of the training tokens rise across the board;
after DFT they polarize (most rise towards 1, a group of tokens is pushed towards 0). This module
measures that for any checkpoint on the first ``rows`` training rows of a run, with the same
tokenization and completion-only labels as training (:mod:`harness.data`), so the base, SFT and DFT
histograms of one configuration count exactly the same tokens.

The result is plain data kept in the run record (``token_probs``): bin edges over [0, 1], a count
of target tokens per bin, the number of tokens and rows, and the mean probability. For any other
checkpoint: ``python -m harness.token_probs --model runs/x/sft-1234abcd/model --task math-words``
prints it as JSON (``--train-data FILE`` for your own rows; the command is :mod:`harness.token_probs`).

>>> from harness.config import TrainConfig
>>> histogram = token_probability_histogram("tiny", TrainConfig(task="math-words"), rows=4, bins=10)
>>> len(histogram["counts"]), histogram["edges"][:3], sum(histogram["counts"]) == histogram["tokens"]
(10, [0.0, 0.1, 0.2], True)
"""

from __future__ import annotations

from typing import Any

import torch

import tasks
from harness.config import IGNORE_INDEX, PROB_BINS, PROB_ROWS, TrainConfig
from harness.data.encode import collate, encode_all
from harness.data.rows import histogram_rows
from harness.data.text import render
from harness.errors import ConfigError, DataError
from harness.models import device_and_dtype, has_plain_lm_head, load_model, load_tokenizer_and_processor


@torch.inference_mode()
def target_probabilities(model, batch: dict[str, torch.Tensor], chunk_size: int = 1024) -> torch.Tensor:
    """The probability the model gives each labelled token of ``batch`` (labels aligned with
    ``input_ids``, as :func:`harness.data.encode.collate` makes them), flattened in row order.

    The LM head runs on ``chunk_size`` positions at a time and only where a label is: a 7B model's
    full logits for a batch of 2048-token rows would not fit in memory."""
    batch = dict(batch)
    labels = batch.pop("labels")
    targets = labels[:, 1:]
    where = targets != IGNORE_INDEX
    wanted = targets[where]
    inputs = {**batch, "use_cache": False}
    if has_plain_lm_head(model):
        hidden = model.base_model(**inputs).last_hidden_state[:, :-1][where]
        weight = model.get_output_embeddings().weight
        pieces = []
        for start in range(0, hidden.shape[0], chunk_size):
            logits = hidden[start : start + chunk_size].float() @ weight.float().T
            pieces.append(_probability_of(logits, wanted[start : start + chunk_size]))
        return torch.cat(pieces) if pieces else torch.zeros(0)
    logits = model(**inputs).logits[:, :-1][where].float()
    return _probability_of(logits, wanted)


def _probability_of(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits, dim=-1).gather(1, targets[:, None]).squeeze(1).exp().cpu()


def histogram_of(probabilities: torch.Tensor, bins: int = PROB_BINS) -> dict[str, Any]:
    """Counts of ``probabilities`` in ``bins`` equal bins over [0, 1]; 1.0 falls in the last bin.

    >>> histogram_of(torch.tensor([0.0, 0.49, 0.5, 1.0]), bins=2)["counts"]
    [2, 2]
    """
    if bins < 1:
        raise ConfigError(f"bins must be >= 1, got {bins}")
    broken = int((~torch.isfinite(probabilities)).sum())
    if broken:  # NaN logits: a diverged or corrupted checkpoint, not a probability to bin
        raise DataError(
            f"{broken} of {probabilities.numel()} target probabilities are not finite (NaN logits)"
        )
    index = (probabilities.clamp(0.0, 1.0) * bins).floor().long().clamp(max=bins - 1)
    counts = torch.bincount(index, minlength=bins).tolist()
    return {
        "edges": [round(i / bins, 6) for i in range(bins + 1)],
        "counts": counts,
        "tokens": int(probabilities.numel()),
        "mean": float(probabilities.mean()) if probabilities.numel() else 0.0,
    }


def token_probability_histogram(
    model: str,
    config: TrainConfig,
    *,
    rows: int = PROB_ROWS,
    bins: int = PROB_BINS,
    micro_batch_size: int = 8,
) -> dict[str, Any]:
    """The histogram for ``model`` (a name or a checkpoint folder) on the first ``rows`` training rows
    of ``config`` (its task or ``train_data``, ``max_length``,
    ``overlong`` policy and image sizes)."""
    if rows < 1:
        raise ConfigError(f"rows must be >= 1, got {rows}")
    device, amp_dtype = device_and_dtype(config.device)
    tokenizer, processor = load_tokenizer_and_processor(model, config.min_pixels, config.max_pixels)
    all_rows, source = histogram_rows(  # the rows as written: --train-noise's wrong answers are not read
        config.task,
        config.train_data,
        config.train_limit,
        config.prompt_template,
        config.train_offset,
        config.train_style,
    )
    chosen = all_rows[:rows]
    examples, _ = encode_all(tokenizer, chosen, config.max_length, config.overlong, source, processor)
    # Rows the overlong policy dropped are not measured: the mask needs the rows that were kept.
    deciding = None
    if processor is None and config.overlong != "drop":
        deciding = deciding_mask(tokenizer, tasks.get(config.task), chosen, examples)
    loaded = load_model(model, dtype=amp_dtype, device=device).eval()
    pieces = []
    for start in range(0, len(examples), micro_batch_size):
        batch = collate(
            examples[start : start + micro_batch_size], config.max_length, tokenizer.pad_token_id, False
        )
        batch = {key: value.to(device) for key, value in batch.items()}
        with torch.autocast(device.type, dtype=amp_dtype, enabled=device.type == "cuda"):
            pieces.append(target_probabilities(loaded, batch))
    del loaded
    probabilities = torch.cat(pieces)
    result = {
        **histogram_of(probabilities, bins),
        "rows": len(examples),
        "source": f"{source}, first {len(chosen)} rows",
    }
    if deciding is not None and deciding.numel() == probabilities.numel() and deciding.any():
        result["deciding"] = histogram_of(probabilities[deciding], bins)
    return result


def deciding_mask(tokenizer, task, rows: list[dict[str, Any]], examples: list) -> torch.Tensor | None:
    """For each trained token of ``examples`` (the encoded ``rows``, in order), whether it is one of
    the tokens that decide the grade: it overlaps a span of ``task.deciding_spans`` of its row's
    completion. None where that cannot be said: the task names no such spans, or the tokenizer
    gives no character offsets (not a fast tokenizer).

    >>> from harness.models import load_tokenizer
    >>> from harness.data.encode import encode_all
    >>> from harness.data.rows import training_rows
    >>> tokenizer, task = load_tokenizer("tiny"), tasks.get("math-words")
    >>> rows, source = training_rows("math-words", None, 1)
    >>> examples, _ = encode_all(tokenizer, rows, 512, "truncate", source)
    >>> mask = deciding_mask(tokenizer, task, rows, examples)
    >>> trained = [t for t in examples[0].labels if t != -100]
    >>> tokenizer.decode([t for t, d in zip(trained, mask.tolist()) if d])
    '3232'
    """
    if not getattr(tokenizer, "is_fast", False) or task.deciding_spans("") is None:
        return None
    masks = []
    for row, example in zip(rows, examples):
        if isinstance(row["prompt"], str):  # plain text: the completion as it is, then end-of-sequence
            text, content = row["completion"], row["completion"]
        else:
            _, text = render(tokenizer, row)
            content = row["completion"][-1]["content"]
            if not isinstance(content, str):
                return None
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        at = text.find(content)
        spans = [(at + a, at + b) for a, b in task.deciding_spans(content)] if at >= 0 else []
        flags = [any(a < end and start < b for a, b in spans) for start, end in encoded["offset_mapping"]]
        trained = [t for t in example.labels if t != IGNORE_INDEX]
        if encoded["input_ids"][: len(trained)] != trained[: len(encoded["input_ids"])]:
            return None  # the training tokens are not this tokenization's: nothing is claimed
        masks.append((flags + [False] * len(trained))[: len(trained)])
    return torch.tensor([flag for mask in masks for flag in mask], dtype=torch.bool)
