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

from collections import Counter
from typing import Any

import torch

from harness.config import OVERLONG_POLICIES
from harness.data.images import VisionEncoded, collate_with_images, encode_with_images, has_images
from harness.data.rows import Rows, check_row
from harness.data.text import Encoded, OverlongPolicy, collate_text, encode
from harness.errors import DataError
from harness.models import stop_token_ids


def encode_all(
    tokenizer,
    rows: list[dict[str, Any]],
    max_length: int,
    overlong: OverlongPolicy,
    source: str,
    processor=None,
) -> tuple[list[Encoded | VisionEncoded], Counter]:
    """Encode every row; returns the kept examples and counts of what the overlong policy did.
    Errors name ``source`` and the row, or the file line when ``rows`` came from ``read_rows``.
    With a vision-language ``processor`` every row goes through it (images or not); without one, a
    row with images is an error."""
    if overlong not in OVERLONG_POLICIES:
        raise DataError(f"--overlong {overlong!r}: valid policies are {', '.join(OVERLONG_POLICIES)}")
    stop_ids = stop_token_ids(tokenizer)
    kept, counts = [], Counter()
    locations = rows.locations if isinstance(rows, Rows) else [f"{source} row {i}" for i in range(len(rows))]
    base_dir = rows.base_dir if isinstance(rows, Rows) else None
    for row, where in zip(rows, locations):
        check_row(row, where)
        try:
            if processor is not None and isinstance(row["prompt"], str):
                raise DataError(
                    "a plain-text row (a raw prompt template) needs a text backbone; this one has a "
                    "vision processor (use --prompt-template chat)"
                )
            if processor is not None:
                encoded = encode_with_images(processor, row, max_length, overlong, stop_ids, base_dir)
            elif has_images(row):
                raise DataError("the row has images but the backbone is text-only (no vision tower)")
            else:
                encoded = encode(tokenizer, row, max_length, overlong, stop_ids)
        except DataError as error:  # an ImageError too
            raise DataError(f"{where}: {error}") from None
        if encoded is None:
            counts["dropped_overlong"] += 1
            continue
        if encoded.labels[-1] not in stop_ids:
            counts["truncated_overlong"] += 1
        kept.append(encoded)
    if not kept:
        raise DataError(f"{source}: no trainable rows left (of {len(rows)}; {dict(counts)})")
    return kept, counts


def collate(
    examples: list[Encoded | VisionEncoded], max_length: int, pad_id: int, packing: bool = True
) -> dict[str, torch.Tensor]:
    """Tensors for one micro-batch: :func:`harness.data.text.collate_text` for text rows,
    :func:`harness.data.images.collate_with_images` for rows encoded with images (never packed)."""
    if isinstance(examples[0], VisionEncoded):
        return collate_with_images(examples, pad_id)
    return collate_text(examples, max_length, pad_id, packing)
