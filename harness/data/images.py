"""Images for vision-language backbones (Qwen2-VL / Qwen2.5-VL): loading, encoding, batching.

A row with images is the usual conversational row whose user content is a list of parts, images as
``{"type": "image", "image": <path, file:// URL, data: URL or PIL image>}`` (TRL's alternative, bare
``{"type": "image"}`` parts filled in order from a row-level ``"images"`` list, is accepted too).
Images go through ``qwen-vl-utils`` (``fetch_image``): resized so each side is a multiple of
patch x merge size and the pixel count lies in ``[min_pixels, max_pixels]``, as Qwen's own
pipelines do; then the backbone's processor turns them into ``pixel_values`` and expands each
``<|image_pad|>`` placeholder into one token per merged patch.

Only the completion is trained: the prompt (image placeholders and vision tokens with it) and the
padding get the label ``-100``, and a vision token never gets a label even where a template puts one
after the prompt. Batches are not packed (the model derives its 3-D rotary positions from one
sequence per row): rows are right-padded with an attention mask, and the images of all rows are
concatenated in row order, whatever their sizes.

>>> from harness.models import load_processor
>>> processor = load_processor("tiny-vl")
>>> from PIL import Image
>>> row = {"prompt": [{"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (56, 56))},
...                                                {"type": "text", "text": "What colour?"}]}],
...        "completion": [{"role": "assistant", "content": "black"}]}
>>> encoded = encode_with_images(processor, row, max_length=128)
>>> encoded.image_grid_thw.tolist()   # one image, 4 x 4 patches of 14 pixels (2 x 2 tokens)
[[1, 4, 4]]
>>> processor.tokenizer.decode([t for t in encoded.labels if t != -100])
'black<|im_end|>'
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from harness.config import IGNORE_INDEX
from harness.data.text import completion_only, render_completion
from harness.errors import DataError
from harness.models import stop_token_ids

VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")


class ImageError(DataError):
    """An image that cannot be used; the caller adds which row it belongs to."""


def image_parts(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The image parts of a row's prompt, in order (completions may not hold images; a plain-text
    prompt has none)."""
    if isinstance(row["prompt"], str):
        return []
    return [
        part
        for message in row["prompt"]
        if isinstance(message["content"], list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "image"
    ]


def has_images(row: dict[str, Any]) -> bool:
    return bool(image_parts(row)) or bool(row.get("images"))


def check_images(row: dict[str, Any]) -> None:
    """Raise ``ImageError`` when placeholders and images do not match: literal vision tokens in the
    text, images in the completion, or image parts that disagree with a row-level ``images`` list."""
    for field in ("prompt", "completion"):
        for message in row[field]:
            content = message["content"]
            parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
            for part in parts:
                text = part.get("text", "") if isinstance(part, dict) else ""
                for token in VISION_TOKENS:
                    if token in text:
                        raise ImageError(
                            f"{field} text holds the placeholder {token}; give images as "
                            '{"type": "image"} parts, which the chat template turns into placeholders'
                        )
                if field == "completion" and isinstance(part, dict) and part.get("type") == "image":
                    raise ImageError("an image in the completion; only prompts may hold images")
    parts = image_parts(row)
    listed = row.get("images")
    if listed is not None:
        if not isinstance(listed, list):
            raise ImageError(f"'images' must be a list, got {type(listed).__name__}")
        bare = [part for part in parts if "image" not in part]
        if len(bare) != len(parts) or len(parts) != len(listed):
            raise ImageError(
                f"{len(parts)} image placeholder(s) in the prompt but {len(listed)} image(s) in 'images'"
            )
    elif any("image" not in part for part in parts):
        raise ImageError("an image part without an 'image' and no 'images' list to fill it from")


def load_image(source: Any, processor, base_dir: Path | None = None) -> Image.Image:
    """One image, opened, converted to RGB and resized by ``qwen-vl-utils`` into the pixel range of
    ``processor`` (see :func:`harness.models.load_processor`)."""
    from qwen_vl_utils import fetch_image

    if not isinstance(source, (str, Image.Image)):
        raise ImageError(
            f"an image must be a path, a file:// or data: URL, or a picture, not {type(source).__name__}"
        )
    if isinstance(source, str) and not source.startswith(("data:", "file://", "http://", "https://")):
        path = Path(source).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path  # relative to the data file, not to where the command runs
        if not path.is_file():
            raise ImageError(f"image {source}: no such file")
        source = str(path)
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        raise ImageError(f"image {source}: URLs are not fetched; download it and give the path")
    size = processor.image_processor.size
    element = {"image": source, "min_pixels": size["shortest_edge"], "max_pixels": size["longest_edge"]}
    try:
        return fetch_image(element, image_patch_size=processor.image_processor.patch_size)
    except Image.DecompressionBombError as error:
        raise ImageError(f"image {_short(source)}: too large to open safely ({error})") from None
    except (OSError, SyntaxError) as error:  # PIL's UnidentifiedImageError is an OSError
        raise ImageError(f"image {_short(source)}: not a readable image ({error})") from None
    except ValueError as error:  # qwen-vl-utils: an aspect ratio above 200
        raise ImageError(f"image {_short(source)}: {error}") from None


def _short(source: Any) -> str:
    text = source if isinstance(source, str) else type(source).__name__
    return text if len(text) < 80 else text[:60] + "..."


def image_sources(row: dict[str, Any]) -> list[Any]:
    """What each image part of the row points at (a path, a URL string or a PIL image), in order."""
    listed = iter(row.get("images") or [])
    return [part["image"] if "image" in part else next(listed) for part in image_parts(row)]


def resolved_conversation(
    row: dict[str, Any], processor, base_dir: Path | None = None
) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """The prompt with every image part holding its loaded image, and the images in order."""
    check_images(row)
    sources = iter(image_sources(row))
    prompt = copy.deepcopy(row["prompt"])
    images = []
    for message in prompt:
        if not isinstance(message["content"], list):
            continue
        for part in message["content"]:
            if isinstance(part, dict) and part.get("type") == "image":
                part["image"] = load_image(next(sources), processor, base_dir)
                images.append(part["image"])
    return prompt, images


def pixel_values(processor, sources: list[Any], base_dir: Path | None = None) -> torch.Tensor:
    """The image tensor of ``sources`` as the processor makes it: (patches, 3 x 2 x 14 x 14)."""
    images = [load_image(source, processor, base_dir) for source in sources]
    return processor.image_processor(images=images, return_tensors="pt")["pixel_values"]


@dataclass
class VisionEncoded:
    """One row with images: token ids with expanded placeholders, labels, and how to get its pixels.

    The pixels are made again each time a batch needs them (``load_pixels()``), not kept: a
    real image at Qwen2.5-VL's default budget is ~19 MB of float32 patches, so a dataset's worth
    would not fit in memory; only its sources (paths, or the task's in-memory pictures) are kept."""

    input_ids: list[int]
    labels: list[int]
    mm_token_type_ids: list[int]  # 1 where a token is an image placeholder (the model's 3-D positions)
    image_grid_thw: torch.Tensor  # (images, 3): patches in time, height and width per image
    load_pixels: Callable[[], torch.Tensor]  # -> (patches, channels x temporal x patch x patch)

    @property
    def trained_tokens(self) -> int:
        return sum(t != IGNORE_INDEX for t in self.labels)


def encode_with_images(
    processor,
    row: dict[str, Any],
    max_length: int,
    overlong: str = "truncate",
    stop_ids: list[int] | None = None,
    base_dir: Path | None = None,
) -> VisionEncoded | None:
    """Tokenize one row with images; completion-only labels. ``None`` when the overlong policy drops
    it. Raises ``ImageError`` for a bad image or a prompt that cannot fit."""
    tokenizer = processor.tokenizer
    prompt, images = resolved_conversation(row, processor, base_dir)
    prompt_text = processor.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    completion_text = render_completion(processor, prompt, row["completion"], prompt_text)
    inputs = processor(text=[prompt_text], images=images or None, return_tensors="pt")
    prompt_ids = inputs["input_ids"][0].tolist()
    completion_ids = tokenizer(completion_text, add_special_tokens=False)["input_ids"]
    if len(prompt_ids) >= max_length:
        # Image tokens cannot be cut: say how many the images took.
        image_tokens = sum(t == processor.image_token_id for t in prompt_ids)
        raise ImageError(
            f"the prompt takes {len(prompt_ids)} tokens ({image_tokens} for its images) of --max-length "
            f"{max_length}; lower --max-pixels or raise --max-length"
        )
    stop_ids = stop_token_ids(tokenizer) if stop_ids is None else stop_ids
    kept = completion_only(prompt_ids, completion_ids, max_length, overlong, stop_ids)
    if kept is None:
        return None
    input_ids, labels = kept
    vision_ids = set(tokenizer.convert_tokens_to_ids(list(VISION_TOKENS)))
    labels = [IGNORE_INDEX if t in vision_ids else t for t in labels]
    return VisionEncoded(
        input_ids=input_ids,
        labels=labels,
        mm_token_type_ids=[int(t == processor.image_token_id) for t in input_ids],
        image_grid_thw=inputs.get("image_grid_thw", torch.zeros(0, 3, dtype=torch.long)),
        load_pixels=partial(pixel_values, processor, image_sources(row), base_dir),
    )


def collate_with_images(
    examples: list[VisionEncoded], pad_id: int, sequences: bool = False
) -> dict[str, torch.Tensor]:
    """One micro-batch: right-padded rows with an attention mask, every image of every row stacked
    in row order (images of different sizes are rows of one ``pixel_values`` tensor). ``sequences``:
    also ``sequence_ids``, each position's example (-1 on padding)."""
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    mm_token_type_ids = torch.zeros((len(examples), width), dtype=torch.long)
    for r, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[r, :n] = torch.tensor(example.input_ids)
        labels[r, :n] = torch.tensor(example.labels)
        attention_mask[r, :n] = 1
        mm_token_type_ids[r, :n] = torch.tensor(example.mm_token_type_ids)
    batch = {
        "input_ids": input_ids,
        "labels": labels,
        "attention_mask": attention_mask,
        "mm_token_type_ids": mm_token_type_ids,
    }
    if sequences:
        rows = torch.arange(len(examples)).unsqueeze(1).expand(-1, width)
        batch["sequence_ids"] = torch.where(attention_mask.bool(), rows, -1)
    with_images = [e for e in examples if e.image_grid_thw.shape[0]]
    if with_images:
        batch["pixel_values"] = torch.cat([e.load_pixels() for e in with_images])
        batch["image_grid_thw"] = torch.cat([e.image_grid_thw for e in with_images])
    return batch


def printable(conversation: list[dict[str, Any]] | str) -> list[dict[str, Any]] | str:
    """``conversation`` as JSON-ready data: an in-memory image becomes ``"<image WxH>"``."""
    if isinstance(conversation, str):
        return conversation
    out = []
    for message in conversation:
        content = message["content"]
        if isinstance(content, list):
            content = [
                {**part, "image": f"<image {part['image'].width}x{part['image'].height}>"}
                if isinstance(part, dict) and isinstance(part.get("image"), Image.Image)
                else part
                for part in content
            ]
        out.append({**message, "content": content})
    return out
