"""LoRA (Hu et al. 2021) through ``peft``: low-rank adapters on every linear layer of a backbone's
language model, trained while the backbone stays frozen (``--lora-rank``; alpha 2 x rank by
default, the DFT paper's appendix used rank 8, alpha 16).

The adapters are put into the backbone in place, so the trainer's fused LM-head loss reads the same
module as in full fine-tuning (the head itself is not adapted). A checkpoint holds the adapters in
``peft``'s own folder format (``adapter_config.json``, ``adapter_model.safetensors``) and resumes
onto a freshly loaded backbone; the final ``model/`` is the backbone with the adapters merged into
its weights: an ordinary model folder, loaded and evaluated like any other.

>>> from harness.models import load_model
>>> model = with_lora(load_model("tiny"), rank=4, alpha=8.0)
>>> trainable = sorted({name.split(".")[-3] for name, p in model.named_parameters() if p.requires_grad})
>>> trainable
['lora_A', 'lora_B']
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from harness.errors import ConfigError

# Submodules of a vision-language backbone that are not its language model (Qwen2-VL: ``visual``).
VISION_PARTS = frozenset({"visual", "vision_tower", "vision_model", "vision_encoder"})


def target_modules(model) -> list[str]:
    """Full names of the language model's linear layers: every ``nn.Linear`` but the output head and
    those of a vision tower. A ``ConfigError`` names the model class when there is none."""
    head = model.get_output_embeddings()
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        and module is not head
        and not VISION_PARTS.intersection(name.split("."))
    ]
    if not names:
        raise ConfigError(
            f"--lora-rank: {type(model).__name__} has no torch.nn.Linear layers in its language model "
            "(outside the output head and any vision tower); LoRA here adapts only those"
        )
    return names


def with_lora(model, rank: int, alpha: float) -> PeftModel:
    """``model`` with fresh adapters on :func:`target_modules` (no dropout, biases frozen): a
    ``PeftModel`` whose ``base_model.model`` is ``model`` itself, adapted in place."""
    config = LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=0.0, bias="none", target_modules=target_modules(model)
    )
    return get_peft_model(model, config)


def resumed_lora(model, checkpoint: str | Path) -> PeftModel:
    """``model`` with the trainable adapters saved in ``checkpoint``."""
    return PeftModel.from_pretrained(model, str(checkpoint), is_trainable=True)


def merged(adapted: PeftModel):
    """The backbone with the adapters merged into its weights (in place): an ordinary model."""
    return adapted.merge_and_unload()
