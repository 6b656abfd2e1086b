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
>>> batch = collate_text([encoded, encoded], max_length=64, pad_id=tokenizer.pad_token_id)
>>> batch["input_ids"].shape[0]   # both sequences share one packed row
1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from harness.config import IGNORE_INDEX
from harness.errors import DataError
from harness.models import stop_token_ids

OverlongPolicy = Literal["truncate", "drop", "error"]  # harness.config.OVERLONG_POLICIES


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
    stop_ids = stop_token_ids(tokenizer) if stop_ids is None else stop_ids
    if isinstance(row["prompt"], str):
        # Plain text: the prompt with the tokenizer's own special tokens (a Llama base model's BOS),
        # as generation gives it, and the completion ended by end-of-sequence, as TRL ends it.
        prompt_ids = tokenizer(row["prompt"], add_special_tokens=True)["input_ids"]
        completion_ids = tokenizer(row["completion"], add_special_tokens=False)["input_ids"]
        if tokenizer.eos_token_id is None:
            raise DataError("a plain-text row needs the tokenizer's end-of-sequence token; it has none")
        completion_ids = completion_ids + [tokenizer.eos_token_id]
    else:
        prompt_text, completion_text = render(tokenizer, row)
        # Prompt and completion are tokenized apart, so the prompt's tokens are exactly those that
        # generation will see after add_generation_prompt.
        prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        completion_ids = tokenizer(completion_text, add_special_tokens=False)["input_ids"]
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


def collate_text(
    examples: list[Encoded], max_length: int, pad_id: int, packing: bool = True, sequences: bool = False
) -> dict[str, torch.Tensor]:
    """Tensors for one micro-batch. Packed: ``input_ids``, ``labels``, ``position_ids`` (no attention
    mask; padding at a row's end is a segment of its own). Unpacked: one example per row, right
    padded, with an ``attention_mask``. ``sequences``: also ``sequence_ids``, each position's
    example (its index in ``examples``; -1 on padding)."""
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
    sequence_ids = torch.full((len(groups), width), -1, dtype=torch.long)
    for r, group in enumerate(groups):
        at = 0
        for i in group:
            n = len(examples[i].input_ids)
            input_ids[r, at : at + n] = torch.tensor(examples[i].input_ids)
            labels[r, at : at + n] = torch.tensor(examples[i].labels)
            # A sequence's first label is the target of the position before it, another sequence's
            # (or padding): never trained, even where a row has no prompt to mask it.
            labels[r, at] = IGNORE_INDEX
            position_ids[r, at : at + n] = torch.arange(n)
            attention_mask[r, at : at + n] = 1
            sequence_ids[r, at : at + n] = i
            at += n
        position_ids[r, at:] = torch.arange(width - at)
    batch = {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}
    if not packing:
        batch["attention_mask"] = attention_mask
    if sequences:
        batch["sequence_ids"] = sequence_ids
    return batch
