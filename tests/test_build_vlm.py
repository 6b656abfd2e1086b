"""The embedded tiny VLM: rebuilt deterministically around the text base, and its tower can see."""

import hashlib
import json

import pytest

from harness.build.vlm import VLMConfig, block_targets, build
from harness.models import EMBEDDED, load_model, load_processor, load_tokenizer
from tasks.visual_math import VisualMath


def digest(folder) -> dict[str, str]:
    names = ("model.safetensors", "tokenizer.json", "config.json", "processor_config.json")
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names}


@pytest.mark.slow
def test_build_is_deterministic(tmp_path):
    small = dict(vision_steps=3, pictures=16, steps=2, batch=4, report=False)
    first = build(VLMConfig(out=str(tmp_path / "a"), **small))
    second = build(VLMConfig(out=str(tmp_path / "b"), **small))
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert first["vision_probe"] == second["vision_probe"]
    assert not list(tmp_path.glob(".build-*"))  # the staging folder was swapped in, not left behind


def test_block_targets_count_each_colour_per_merged_token():
    example = VisualMath().load("test", limit=1)[0]
    targets = block_targets(example)
    assert targets.shape == (16, 7)
    assert targets.sum().item() == len(example["objects"]) and targets.max().item() <= 4


@pytest.mark.slow
def test_committed_vlm_wraps_the_text_base_and_can_see():
    report = json.loads((EMBEDDED["tiny-vl"] / "base_report.json").read_text())
    assert report["vision_probe"]["occupied_block_accuracy"] > 0.9  # a blind tower scores ~0
    model = load_model("tiny-vl")
    assert model.config.model_type == "qwen2_5_vl"
    assert 1e6 < sum(p.numel() for p in model.parameters()) < 2e7  # "a few million parameters"
    text, vision = load_tokenizer("tiny"), load_processor("tiny-vl").tokenizer
    assert len(vision) == len(text) + 4  # the text base's vocabulary, plus Qwen's vision tokens
    sample = "I count 3 red shapes. 3 + 4 = 7. The answer is \\boxed{7}."
    assert vision(sample)["input_ids"] == text(sample)["input_ids"]
