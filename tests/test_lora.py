"""LoRA (--lora-rank) on the embedded backbones: only the adapters train, the merged model folder
gives the adapted model's logits, resuming reaches the same weights, and the setting is recorded."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harness import lora
from harness.config import TrainConfig
from harness.errors import ConfigError
from harness.experiment import parse_experiment
from harness.identity import config_id
from harness.models import load_model
from harness.plan import plan_method
from harness.resolve import resolve_train
from harness.trainer import finish, optimizer_step, setup, train


def config(tmp_path: Path, name: str, **overrides) -> TrainConfig:
    base = TrainConfig(
        output_dir=str(tmp_path / name), steps=2, batch_size=8, micro_batch_size=8, train_limit=32,
        lr=5e-3, warmup_ratio=0.0, objective="dft", progress=False, lora_rank=4,
    )  # fmt: skip
    return replace(base, **overrides)


def test_alpha_defaults_to_twice_the_rank_and_needs_a_rank():
    assert resolve_train(TrainConfig(lora_rank=8)).lora_alpha == 16.0  # the paper's rank 8, alpha 16
    assert resolve_train(TrainConfig(lora_rank=8, lora_alpha=32.0)).lora_alpha == 32.0
    assert resolve_train(TrainConfig()).lora_alpha is None
    with pytest.raises(ConfigError, match="--lora-alpha 16.0 needs --lora-rank > 0"):
        resolve_train(TrainConfig(lora_alpha=16.0))
    # Recorded as a hyperparameter: another configuration; full fine-tuning keeps its old identity.
    full = plan_method(parse_experiment([]), "sft").slot["hparams"]
    adapted = plan_method(parse_experiment(["--lora-rank", "8"]), "sft").slot["hparams"]
    assert (adapted["lora_rank"], adapted["lora_alpha"]) == (8, 16.0)
    assert config_id(full) != config_id(adapted)
    assert config_id({k: v for k, v in full.items() if not k.startswith("lora")}) == config_id(full)


def test_adapters_go_on_the_language_models_linear_layers_only():
    text = lora.target_modules(load_model("tiny"))
    assert text and all(name.split(".")[-1].endswith("proj") for name in text)
    assert "lm_head" not in text
    vision = lora.target_modules(load_model("tiny-vl"))
    assert vision and not any("visual" in name.split(".") for name in vision)
    assert any(
        "visual" in name
        for name, m in load_model("tiny-vl").named_modules()
        if isinstance(m, torch.nn.Linear)
    )

    class NoLinear(torch.nn.Module):
        def get_output_embeddings(self):
            return None

    with pytest.raises(ConfigError, match="--lora-rank: NoLinear has no torch.nn.Linear layers"):
        lora.target_modules(NoLinear())


@pytest.mark.slow
def test_only_the_adapters_train_and_the_merged_folder_gives_the_adapted_logits(tmp_path):
    run = setup(config(tmp_path, "lora"))
    assert run.module.fused  # the chunked LM-head loss reads the adapted backbone as before
    before = {name: p.detach().clone() for name, p in run.model.named_parameters()}
    for step in range(run.total_steps):
        optimizer_step(run, step)
    changed = {name for name, p in run.model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(".lora_B." in name or ".lora_A." in name for name in changed)
    assert any(".lora_B." in name for name in changed)  # B starts at zero: it must have moved
    inputs = torch.tensor([[1, 5, 9, 13, 17, 21, 25, 29]])
    with torch.no_grad():
        adapted = run.model(input_ids=inputs).logits
    finish(run)
    merged = load_model(str(tmp_path / "lora" / "model"))  # an ordinary model folder
    assert not any(
        "lora" in name for name in load_file(str(tmp_path / "lora" / "model" / "model.safetensors"))
    )
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=inputs).logits, adapted, atol=1e-5)
    untouched = load_model("tiny")
    with torch.no_grad():
        assert not torch.allclose(untouched(input_ids=inputs).logits, adapted, atol=1e-4)


@pytest.mark.slow
def test_resume_reaches_the_same_weights(tmp_path):
    full = config(tmp_path, "full", steps=4, save_every=2)
    train(full)
    assert (tmp_path / "full" / "checkpoint-2" / "adapter_model.safetensors").exists()  # adapters only
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(tmp_path / "full" / "checkpoint-2", interrupted / "checkpoint-2")
    summary = train(replace(full, output_dir=str(interrupted), resume=True))
    assert summary["resumed_from_step"] == 2
    a = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    b = load_file(str(interrupted / "model" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match="--lora-rank 4 \\(now 8\\)"):
        train(replace(full, output_dir=str(interrupted), resume=True, lora_rank=8))


@pytest.mark.slow
def test_lora_on_the_vision_backbone_trains(tmp_path):
    summary = train(
        config(
            tmp_path,
            "vl",
            task="visual-math",
            model="tiny-vl",
            batch_size=4,
            micro_batch_size=4,
            train_limit=8,
        )
    )
    assert (Path(summary["model_dir"]) / "model.safetensors").exists()


def test_a_hub_id_that_cannot_be_reached_says_how_to_point_at_a_local_copy(monkeypatch):
    import huggingface_hub

    from harness.errors import HarnessError
    from harness.models import load_tokenizer

    # As a machine without network, without its retries (read when huggingface_hub is imported).
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HarnessError) as caught:
        load_tokenizer("some-org/some-model-not-in-any-cache")
    message = str(caught.value)
    assert message.startswith("--model some-org/some-model-not-in-any-cache: could not load it")
    assert message.endswith(
        "huggingface-cli download some-org/some-model-not-in-any-cache --local-dir DIR, then --model DIR"
    )
    assert "\n" not in message
