"""Every row of a run to model inputs: :func:`encode_all` picks text or image encoding per backbone,
:func:`collate` makes one micro-batch's tensors (packed text rows, or padded rows with images).

>>> from harness.models import load_tokenizer
>>> tokenizer = load_tokenizer("tiny")
>>> rows = [{"prompt": [{"role": "user", "content": "2 plus 3?"}],
...          "completion": [{"role": "assistant", "content": "5"}]}] * 3
>>> examples, counts = encode_all(tokenizer, rows, max_length=64, overlong="truncate", source="doc")
>>> len(examples), dict(counts), collate(examples, 64, tokenizer.pad_token_id)["input_ids"].shape[0]
(3, {}, 1)
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch

from harness.config import OVERLONG_POLICIES, TrainConfig
from harness.data.images import VisionEncoded, collate_with_images, encode_with_images, has_images
from harness.data.rows import Rows, check_pair, check_row
from harness.data.text import Encoded, OverlongPolicy, collate_text, encode
from harness.errors import ConfigError, DataError
from harness.models import stop_token_ids

SIDES = ("chosen", "rejected")  # a pair's answers, in the order its sequences take


@dataclass
class EncodedPair:
    """A preference pair encoded: its prompt with the chosen answer, and with the rejected one."""

    chosen: Encoded | VisionEncoded
    rejected: Encoded | VisionEncoded

    @property
    def trained_tokens(self) -> int:
        return self.chosen.trained_tokens + self.rejected.trained_tokens


def encode_all(
    tokenizer,
    rows: list[dict[str, Any]],
    max_length: int,
    overlong: OverlongPolicy,
    source: str,
    processor=None,
    pairs: bool = False,
) -> tuple[list[Encoded | VisionEncoded | EncodedPair], Counter]:
    """Encode every row (``pairs``: every preference pair, an :class:`EncodedPair`, dropped whole
    when the overlong policy drops a side); returns the kept examples and counts of what the
    overlong policy did. Errors name ``source`` and the row, or the file line when ``rows`` came
    from ``read_rows``. With a vision-language ``processor`` every row goes through it (images or
    not); without one, a row with images is an error."""
    if overlong not in OVERLONG_POLICIES:
        raise DataError(f"--overlong {overlong!r}: valid policies are {', '.join(OVERLONG_POLICIES)}")
    stop_ids = stop_token_ids(tokenizer)
    kept, counts = [], Counter()
    locations = rows.locations if isinstance(rows, Rows) else [f"{source} row {i}" for i in range(len(rows))]
    base_dir = rows.base_dir if isinstance(rows, Rows) else None
    for row, where in zip(rows, locations):
        (check_pair if pairs else check_row)(row, where)
        answers = [{"prompt": row["prompt"], "completion": row[side]} for side in SIDES] if pairs else [row]
        encoded = [
            _encode_row(tokenizer, answer, max_length, overlong, stop_ids, where, processor, base_dir)
            for answer in answers
        ]
        if any(e is None for e in encoded):
            counts["dropped_overlong"] += 1
            continue
        if any(e.labels[-1] not in stop_ids for e in encoded):
            counts["truncated_overlong"] += 1
        kept.append(EncodedPair(*encoded) if pairs else encoded[0])
    if not kept:
        raise DataError(f"{source}: no trainable rows left (of {len(rows)}; {dict(counts)})")
    return kept, counts


def _encode_row(tokenizer, row, max_length, overlong, stop_ids, where, processor, base_dir):
    try:
        if processor is not None and isinstance(row["prompt"], str):
            raise DataError(
                "a plain-text row (a raw prompt template) needs a text backbone; this one has a "
                "vision processor (use --prompt-template chat)"
            )
        if processor is not None:
            return encode_with_images(processor, row, max_length, overlong, stop_ids, base_dir)
        if has_images(row):
            raise DataError("the row has images but the backbone is text-only (no vision tower)")
        return encode(tokenizer, row, max_length, overlong, stop_ids)
    except DataError as error:  # an ImageError too
        raise DataError(f"{where}: {error}") from None


def collate(
    examples: list[Encoded | VisionEncoded | EncodedPair],
    max_length: int,
    pad_id: int,
    packing: bool = True,
    sequences: bool = False,
) -> dict[str, Any]:
    """Tensors for one micro-batch: :func:`harness.data.text.collate_text` for text rows,
    :func:`harness.data.images.collate_with_images` for rows encoded with images (never packed).
    Pairs are two sequences each, pair k's chosen answer sequence 2k and its rejected one 2k + 1.
    ``sequences``: also each position's sequence (``sequence_ids``) and their count
    (``num_sequences``), what a per-sequence objective's loss reads."""
    if isinstance(examples[0], EncodedPair):
        examples = [side for pair in examples for side in (pair.chosen, pair.rejected)]
    if isinstance(examples[0], VisionEncoded):
        batch = collate_with_images(examples, pad_id, sequences)
    else:
        batch = collate_text(examples, max_length, pad_id, packing, sequences)
    if sequences:
        batch["num_sequences"] = len(examples)
    return batch


# --- which rows each optimizer step trains on ------------------------------------------------------


def step_schedule(config: TrainConfig, n_examples: int, world: int) -> tuple[int, int]:
    """(total optimizer steps, gradient-accumulation micro-batches per step) of a resolved config."""
    per_step = config.micro_batch_size * world
    if config.batch_size % per_step:  # resolve_train derives a micro-batch that divides
        raise ConfigError(
            f"--batch-size {config.batch_size} is not a multiple of --micro-batch-size {config.micro_batch_size} "
            f"x {world} rank(s)"
        )
    if n_examples < config.batch_size:
        raise ConfigError(f"--batch-size {config.batch_size} exceeds the {n_examples} training examples")
    steps_per_epoch = n_examples // config.batch_size  # the last partial batch is dropped
    steps = config.steps if config.steps is not None else max(1, math.floor(config.epochs * steps_per_epoch))
    return steps, config.batch_size // per_step


def step_indices(step: int, n_examples: int, batch_size: int, seed: int) -> list[int]:
    """Example indices of optimizer step ``step``: a fresh seeded permutation every epoch."""
    steps_per_epoch = n_examples // batch_size
    epoch, offset = divmod(step, steps_per_epoch)
    order = torch.randperm(n_examples, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[offset * batch_size : (offset + 1) * batch_size].tolist()
