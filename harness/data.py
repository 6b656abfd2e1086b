"""From conversational rows to training tensors: validation, chat rendering, masks and packing.

A row is ``{"prompt": [messages], "completion": [messages]}`` (the conversational
prompt/completion format of TRL and the Hub). It is rendered with the backbone's own chat
template; only the completion is trained, up to and including the end-of-turn token (e.g.
``<|im_end|>``). The prompt, padding and whatever the template writes after the end-of-turn (a
newline in ChatML) get the label ``-100``.

Micro-batches are packed: sequences share rows of ``max_length`` tokens, each with its own
``position_ids`` starting at 0, so attention and loss never cross a sequence boundary and no compute
is spent on padding (transformers builds the block-diagonal mask from the position ids).

>>> from harness.models import load_tokenizer
>>> tokenizer = load_tokenizer("tiny")
>>> row = {"prompt": [{"role": "user", "content": "What is 2 plus 3?"}],
...        "completion": [{"role": "assistant", "content": "2 + 3 = 5."}]}
>>> encoded = encode(tokenizer, row, max_length=64)
>>> tokenizer.decode([t for t in encoded.labels if t != -100])
'2 + 3 = 5.<|im_end|>'
>>> batch = collate([encoded, encoded], max_length=64, pad_id=tokenizer.pad_token_id)
>>> batch["input_ids"].shape[0]   # both sequences share one packed row
1
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from harness.losses import IGNORE_INDEX
from harness.models import stop_token_ids
from harness.vision import (
    ImageError,
    VisionEncoded,
    collate_with_images,
    encode_with_images,
    has_images,
)

OverlongPolicy = Literal["truncate", "drop", "error"]
OVERLONG_POLICIES = ("truncate", "drop", "error")


class DataError(ValueError):
    """A dataset problem, with a one-line message naming the source and the row."""


def check_row(row: Any, where: str) -> None:
    """Raise ``DataError`` unless ``row`` is a valid conversational prompt/completion row."""
    if not isinstance(row, dict):
        raise DataError(
            f"{where}: expected an object with 'prompt' and 'completion', got {type(row).__name__}"
        )
    for field in ("prompt", "completion"):
        if field not in row:
            raise DataError(f"{where}: missing field {field!r}")
        messages = row[field]
        if not isinstance(messages, list):
            raise DataError(f"{where}: {field!r} must be a list of messages, got {type(messages).__name__}")
        if not messages:
            raise DataError(f"{where}: {field!r} is empty")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise DataError(f"{where}: {field}[{i}] must be a message with a string 'role'")
            if not isinstance(message.get("content"), (str, list)):
                raise DataError(f"{where}: {field}[{i}]['content'] must be a string or a list of parts")
    if not any(_text(m["content"]).strip() for m in row["completion"]):
        raise DataError(f"{where}: 'completion' has no text, so there is nothing to train")


def _text(content: str | list) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


class Rows(list):
    """Rows read from a file, with where each came from (``file line 7``) for error messages."""

    def __init__(self, rows: list[dict[str, Any]], locations: list[str], base_dir: Path | None = None):
        super().__init__(rows)
        self.locations = locations
        self.base_dir = base_dir  # relative image paths are relative to the file's folder

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Rows(list.__getitem__(self, index), self.locations[index], self.base_dir)
        return list.__getitem__(self, index)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is not part of row 1
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None


def read_rows(path: str | Path) -> Rows:
    """Read and validate rows from a ``.jsonl`` or ``.json`` file, or a ``.parquet`` / ``.arrow``
    file (read with ``datasets``). Errors name the file and the line or row. CSV is not accepted:
    it cannot hold lists of messages."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows, locations = [], []
        # Split on "\n" only: str.splitlines() would also split on U+2028 or U+0085, which JSON
        # allows unescaped inside strings.
        for line_no, line in enumerate(_read_text(path).split("\n"), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise DataError(f"{path} line {line_no}: not valid JSON ({error.msg})") from None
            locations.append(f"{path} line {line_no}")
    elif suffix == ".json":
        try:
            rows = json.loads(_read_text(path))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of rows")
        locations = [f"{path} row {i}" for i in range(len(rows))]
    elif suffix in (".parquet", ".arrow"):
        import datasets

        rows = list(datasets.load_dataset(suffix[1:], data_files=str(path), split="train"))
        locations = [f"{path} row {i}" for i in range(len(rows))]
    else:
        hint = " (CSV cannot hold lists of messages)" if suffix == ".csv" else ""
        raise DataError(
            f"{path}: unsupported file type {suffix!r}{hint}; use .jsonl, .json, .parquet or .arrow"
        )
    for row, where in zip(rows, locations):
        check_row(row, where)
    if not rows:
        raise DataError(f"{path}: no rows")
    return Rows(rows, locations, path.resolve().parent)


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]

    @property
    def trained_tokens(self) -> int:
        return sum(t != IGNORE_INDEX for t in self.labels)


def render(tokenizer, row: dict[str, Any]) -> tuple[str, str]:
    """The prompt text (ending with the assistant header) and the completion text, as the model's
    chat template writes them."""
    prompt_text = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    return prompt_text, render_completion(tokenizer, row["prompt"], row["completion"], prompt_text)


def render_completion(template_owner, prompt: list, completion: list, prompt_text: str) -> str:
    """What the chat template of ``template_owner`` (a tokenizer or a processor) writes for the
    completion after ``prompt_text``."""
    full_text = template_owner.apply_chat_template(prompt + completion, tokenize=False)
    if not full_text.startswith(prompt_text):
        raise DataError("the chat template renders the prompt differently when a completion follows it")
    return full_text[len(prompt_text) :]


def encode(
    tokenizer,
    row: dict[str, Any],
    max_length: int,
    overlong: OverlongPolicy = "truncate",
    stop_ids: list[int] | None = None,
) -> Encoded | None:
    """Tokenize one row with completion-only labels. Returns ``None`` when the overlong policy drops
    it (the caller counts); raises ``DataError`` under the ``error`` policy."""
    prompt_text, completion_text = render(tokenizer, row)
    # Prompt and completion are tokenized apart, so the prompt's tokens are exactly those that
    # generation will see after add_generation_prompt.
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion_text, add_special_tokens=False)["input_ids"]
    stop_ids = stop_token_ids(tokenizer) if stop_ids is None else stop_ids
    kept = completion_only(prompt_ids, completion_ids, max_length, overlong, stop_ids)
    return None if kept is None else Encoded(*kept)


def completion_only(
    prompt_ids: list[int], completion_ids: list[int], max_length: int, overlong: str, stop_ids: list[int]
) -> tuple[list[int], list[int]] | None:
    """``(input_ids, labels)``: the completion kept up to its end-of-turn token, the prompt labelled
    ``-100``, fitted to ``max_length`` by the overlong policy (``None``: dropped)."""
    end = max((i for i, t in enumerate(completion_ids) if t in stop_ids), default=len(completion_ids) - 1)
    completion_ids = completion_ids[: end + 1]  # template scaffolding after end-of-turn: not trained
    if len(prompt_ids) + len(completion_ids) > max_length:
        if overlong == "error":
            raise DataError(
                f"{len(prompt_ids) + len(completion_ids)} tokens exceed --max-length {max_length} "
                "(use --overlong truncate or drop)"
            )
        if overlong == "drop" or len(prompt_ids) >= max_length:
            return None
        completion_ids = completion_ids[: max_length - len(prompt_ids)]
    return prompt_ids + completion_ids, [IGNORE_INDEX] * len(prompt_ids) + completion_ids


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
            if processor is not None:
                encoded = encode_with_images(processor, row, max_length, overlong, stop_ids, base_dir)
            elif has_images(row):
                raise DataError("the row has images but the backbone is text-only (no vision tower)")
            else:
                encoded = encode(tokenizer, row, max_length, overlong, stop_ids)
        except (DataError, ImageError) as error:
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


def pack(lengths: list[int], max_length: int) -> list[list[int]]:
    """First-fit decreasing: indices of sequences grouped into rows of at most ``max_length``."""
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        for r, free in enumerate(room):
            if lengths[index] <= free:
                rows[r].append(index)
                room[r] -= lengths[index]
                break
        else:
            rows.append([index])
            room.append(max_length - lengths[index])
    return rows


def collate(
    examples: list[Encoded | VisionEncoded], max_length: int, pad_id: int, packing: bool = True
) -> dict[str, torch.Tensor]:
    """Tensors for one micro-batch. Packed: ``input_ids``, ``labels``, ``position_ids`` (no attention
    mask; padding at a row's end is a segment of its own). Unpacked: one example per row, right
    padded, with an ``attention_mask``. Examples encoded with images are never packed
    (:func:`harness.vision.collate_with_images`)."""
    if isinstance(examples[0], VisionEncoded):
        return collate_with_images(examples, pad_id)
    groups = (
        pack([len(e.input_ids) for e in examples], max_length)
        if packing
        else [[i] for i in range(len(examples))]
    )
    width = max(sum(len(examples[i].input_ids) for i in group) for group in groups)
    input_ids = torch.full((len(groups), width), pad_id, dtype=torch.long)
    labels = torch.full((len(groups), width), IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.zeros((len(groups), width), dtype=torch.long)
    attention_mask = torch.zeros((len(groups), width), dtype=torch.long)
    for r, group in enumerate(groups):
        at = 0
        for i in group:
            n = len(examples[i].input_ids)
            input_ids[r, at : at + n] = torch.tensor(examples[i].input_ids)
            labels[r, at : at + n] = torch.tensor(examples[i].labels)
            position_ids[r, at : at + n] = torch.arange(n)
            attention_mask[r, at : at + n] = 1
            at += n
        position_ids[r, at:] = torch.arange(width - at)
    batch = {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}
    if not packing:
        batch["attention_mask"] = attention_mask
    return batch
