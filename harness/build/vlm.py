"""Build the embedded tiny VLM: a Qwen2.5-VL-architecture model around the embedded text base.

``nox -s build-base`` runs this after the text base (``python -m harness.build.vlm``); it
regenerates ``harness/assets/tiny-qwen2-vl`` deterministically (same thread count, same bytes):

1. the text base's tokenizer plus Qwen's vision tokens (``<|vision_start|>``, ``<|vision_end|>``,
   ``<|image_pad|>``, ``<|video_pad|>``) and a ChatML template that writes an image part as
   ``<|vision_start|><|image_pad|><|vision_end|>``; a Qwen2.5-VL processor (patch 14, 2 x 2 merge,
   56 x 56 to 112 x 112 pixels);
2. a Qwen2.5-VL config whose language model is the text base (its weights copied; the four new
   token embeddings start at the mean embedding) and whose vision tower (2 blocks, width 64) starts
   from the seed;
3. pretraining with the harness's own trainer (SFT, every weight) on pictures of the visual-math
   kind in every colour, 1-8 shapes per colour, grid layout only: a caption of the counts or one
   colour's count, never the task's questions or solutions;
4. ``base_report.json``: greedy accuracy on visual-math before and after pretraining.

>>> from harness.build.vlm import VLMConfig
>>> VLMConfig().vision_depth
2
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)

from harness.build.base import deterministic, task_accuracy
from harness.config import TrainConfig
from harness.config import parse as parse_flags
from harness.data.images import VISION_TOKENS
from harness.files import replace_folder
from harness.models import EMBEDDED
from harness.trainer import train
from tasks import visual_math

VL_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
PRETRAIN_COLOURS = tuple(visual_math.RGB)


@dataclass
class VLMConfig:
    out: str = str(EMBEDDED["tiny-vl"])
    text_base: str = str(EMBEDDED["tiny"])
    seed: int = 0
    vision_depth: int = 2
    vision_hidden: int = 64
    vision_heads: int = 4
    vision_intermediate: int = 128
    min_pixels: int = 56 * 56
    max_pixels: int = 112 * 112
    vision_steps: int = 400
    vision_lr: float = 3e-3
    pictures: int = 6000
    steps: int = 700
    batch: int = 32
    lr: float = 2e-3
    threads: int = 2
    report: bool = True


def make_processor(config: VLMConfig, text_base: str) -> Qwen2_5_VLProcessor:
    tokenizer = AutoTokenizer.from_pretrained(text_base)
    tokenizer.add_tokens(list(VISION_TOKENS), special_tokens=True)
    tokenizer.chat_template = VL_CHAT_TEMPLATE
    pixels = dict(min_pixels=config.min_pixels, max_pixels=config.max_pixels)
    shape = dict(patch_size=14, merge_size=2, temporal_patch_size=2)
    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels, **shape),
        video_processor=Qwen2VLVideoProcessor(**pixels, **shape),
        tokenizer=tokenizer,
        chat_template=VL_CHAT_TEMPLATE,
    )


def make_model(config: VLMConfig, processor, text_base: str) -> Qwen2_5_VLForConditionalGeneration:
    """The VLM with the text base as its language model and a fresh vision tower."""
    text = AutoModelForCausalLM.from_pretrained(text_base, dtype=torch.float32)
    t = text.config
    tokenizer = processor.tokenizer
    head_dim = t.hidden_size // t.num_attention_heads
    # Qwen splits each head's rotary frequencies among time, height and width: 1/4, 3/8, 3/8.
    section = [head_dim // 8, head_dim * 3 // 16, head_dim * 3 // 16]
    ids = dict(zip(("start", "end", "image", "video"), tokenizer.convert_tokens_to_ids(list(VISION_TOKENS))))
    model_config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=t.hidden_size,
            intermediate_size=t.intermediate_size,
            num_hidden_layers=t.num_hidden_layers,
            num_attention_heads=t.num_attention_heads,
            num_key_value_heads=t.num_key_value_heads,
            max_position_embeddings=t.max_position_embeddings,
            rms_norm_eps=t.rms_norm_eps,
            tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section},
            bos_token_id=None,
            eos_token_id=t.eos_token_id,
            pad_token_id=t.pad_token_id,
        ),
        vision_config=dict(
            depth=config.vision_depth,
            hidden_size=config.vision_hidden,
            intermediate_size=config.vision_intermediate,
            num_heads=config.vision_heads,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            out_hidden_size=t.hidden_size,
            window_size=112,
            fullatt_block_indexes=[config.vision_depth - 1],
        ),
        image_token_id=ids["image"],
        video_token_id=ids["video"],
        vision_start_token_id=ids["start"],
        vision_end_token_id=ids["end"],
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=t.eos_token_id,
        pad_token_id=t.pad_token_id,
    )
    torch.manual_seed(config.seed)
    model = Qwen2_5_VLForConditionalGeneration(model_config)
    language = model.model.language_model.state_dict()
    for name, weight in text.model.state_dict().items():
        if name == "embed_tokens.weight":
            grown = weight.mean(0, keepdim=True).repeat(len(tokenizer) - weight.shape[0], 1)
            weight = torch.cat([weight, grown])
        language[name].copy_(weight)
    model.tie_weights()
    model.generation_config.eos_token_id = t.eos_token_id
    model.generation_config.pad_token_id = t.pad_token_id
    return model


def block_targets(scene: dict) -> torch.Tensor:
    """For each merged vision token (a 2 x 2 block of cells, in raster order) and each colour, how
    many of its four cells hold a shape of that colour: (16, colours), values 0-4."""
    side = visual_math.GRID // 2
    targets = torch.zeros(side * side, len(PRETRAIN_COLOURS), dtype=torch.long)
    for thing in scene["objects"]:
        x, y = thing["cell"]
        targets[(y // 2) * side + x // 2, PRETRAIN_COLOURS.index(thing["colour"])] += 1
    return targets


def pretrain_vision(model, processor, config: VLMConfig) -> dict[str, float]:
    """Stage 1: teach the vision tower to see, densely. A linear probe on each merged token predicts
    how many shapes of each colour its 2 x 2 cells hold; tower, merger and probe train together
    (the probe is then thrown away). Returns the probe's accuracy on held-out pictures."""
    visual = model.model.visual
    colours = len(PRETRAIN_COLOURS)
    probe = torch.nn.Linear(visual.merger.mlp[-1].out_features, colours * 5)
    params = [*visual.parameters(), *probe.parameters()]
    optimizer = torch.optim.AdamW(params, lr=config.vision_lr, weight_decay=0.01)
    rng = random.Random(config.seed + 202)

    def batch(size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scenes = [visual_math.make_scene(rng, PRETRAIN_COLOURS, (1, 8), "grid") for _ in range(size)]
        inputs = processor.image_processor(images=[visual_math.draw(s) for s in scenes], return_tensors="pt")
        return inputs["pixel_values"], inputs["image_grid_thw"], torch.cat([block_targets(s) for s in scenes])

    def logits(pixels, grid) -> torch.Tensor:
        return probe(visual(pixels, grid_thw=grid).pooler_output).view(-1, colours, 5)

    model.train()
    for _ in range(config.vision_steps):
        pixels, grid, targets = batch(config.batch)
        loss = torch.nn.functional.cross_entropy(logits(pixels, grid).transpose(1, 2), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        pixels, grid, targets = batch(200)
        predicted = logits(pixels, grid).argmax(-1)
    occupied = targets > 0
    return {
        "block_colour_count_accuracy": round((predicted == targets).float().mean().item(), 4),
        "occupied_block_accuracy": round((predicted[occupied] == targets[occupied]).float().mean().item(), 4),
    }


def pretraining_rows(config: VLMConfig, folder: Path) -> list[dict]:
    """Captions and single-colour counts of fresh scenes, pictures written as PNG files in ``folder``."""
    rng = random.Random(config.seed + 101)
    rows = []
    for i in range(config.pictures):
        scene = visual_math.make_scene(rng, PRETRAIN_COLOURS, (1, 8), "grid")
        path = folder / f"{i}.png"
        visual_math.draw(scene).save(path)
        if rng.random() < 0.5:
            question, answer = "What is in the picture?", visual_math.caption(scene)
        else:  # mostly a colour the picture holds; one time in five any colour (a 0 is an answer too)
            present = sorted({thing["colour"] for thing in scene["objects"]})
            colour = rng.choice(present if rng.random() < 0.8 else PRETRAIN_COLOURS)
            count = sum(thing["colour"] == colour for thing in scene["objects"])
            question, answer = f"Count the {colour} shapes.", f"There are {count} {colour} shapes."
        rows.append(
            {
                "prompt": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image", "image": path.name},
                            {"type": "text", "text": question},
                        ],
                    }
                ],
                "completion": [{"role": "assistant", "content": answer}],
            }
        )
    return rows


def build(config: VLMConfig) -> dict:
    """Build the model folder at ``config.out``; returns the report."""
    with deterministic(config.threads):
        return _build(config)


def _build(config: VLMConfig) -> dict:

    started = time.time()
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-vlm-", dir=out.parent))
    try:
        processor = make_processor(config, config.text_base)
        model = make_model(config, processor, config.text_base)
        untrained = work / "untrained"
        model.save_pretrained(untrained)
        processor.save_pretrained(untrained)
        seeing = pretrain_vision(model, processor, config)
        print(f"vision tower pretrained: {seeing}")
        aligned = work / "vision-pretrained"
        model.save_pretrained(aligned)
        processor.save_pretrained(aligned)
        pictures = work / "pictures"
        pictures.mkdir()
        data = pictures / "pretrain.jsonl"
        data.write_text("".join(json.dumps(row) + "\n" for row in pretraining_rows(config, pictures)))
        summary = train(
            TrainConfig(
                output_dir=str(work / "run"),
                model=str(aligned),
                train_data=str(data),
                objective="sft",
                lr=config.lr,
                batch_size=config.batch,
                micro_batch_size=config.batch,
                steps=config.steps,
                max_length=128,
                seed=config.seed,
                warmup_ratio=0.05,
                progress=True,
            )
        )
        staging = Path(summary["model_dir"])
        log = [json.loads(line) for line in (work / "run" / "log.jsonl").read_text().splitlines()]
        report = {
            "config": asdict(config) | {"out": out.name, "text_base": Path(config.text_base).name},
            "parameters": sum(p.numel() for p in model.parameters()),
            "vision_parameters": sum(p.numel() for p in model.model.visual.parameters()),
            "vision_probe": seeing,
            "final_train_nll": round(sum(r["nll"] for r in log[-20:]) / len(log[-20:]), 4),
        }
        if config.report:
            report["visual_math_greedy_accuracy"] = {
                "pretrained": task_accuracy(str(staging), "visual-math", limit=100),
                "untrained": task_accuracy(str(untrained), "visual-math", limit=100),
            }
        report["build_seconds"] = round(time.time() - started, 1)
        (staging / "base_report.json").write_text(json.dumps(report, indent=2) + "\n")
        replace_folder(out, staging)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    build(parse_flags(VLMConfig, description=__doc__.split("\n\n")[0]))
