"""The training forward: the backbone and its objective in one module, so DDP or FSDP2 wraps the
whole loss computation, with the frozen reference model an objective reads kept beside it.

>>> from harness.losses import Objective
>>> from harness.models import load_model
>>> module = CausalLMWithLoss(load_model("tiny"), Objective("dft"), chunk_size=64)
>>> module.fused, module.reference is None
(True, True)
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import torch

from harness import lora, objectives
from harness.config import TrainConfig
from harness.errors import ConfigError
from harness.fused_loss import fused_causal_lm_loss
from harness.losses import Objective, causal_lm_loss
from harness.models import has_plain_lm_head, load_model


class CausalLMWithLoss(torch.nn.Module):
    """The backbone and the objective in one module, so DDP or FSDP wraps the whole loss computation.

    An objective that reads a second model's outputs on the same inputs (ASFT: the starting model;
    PSFT: the old policy) gets it as ``reference``, a frozen copy, or for ASFT under LoRA the
    backbone itself with its adapters switched off (``adapters.disable_adapter()``: no second copy).
    The copy is kept out of the module tree, so it is never trained, wrapped, sharded nor saved."""

    def __init__(self, model, objective: Objective, chunk_size: int, reference=None, adapters=None):
        super().__init__()
        self.model = model
        self.objective = objective
        self.fused = chunk_size > 0 and has_plain_lm_head(model)
        self.chunk_size = chunk_size
        self._reference = (reference,)  # a tuple: not a submodule
        self.adapters = (adapters,)

    @property
    def reference(self):
        """The other model the objective reads (ASFT's start, PSFT's old policy), else None."""
        return self._reference[0]

    @torch.no_grad()
    def _reference_outputs(self, inputs: dict):
        """The starting model's last hidden states and head (fused), else its logits."""
        reference, adapters = self._reference[0], self.adapters[0]
        if reference is None:  # LoRA: the backbone with its adapters off is the starting model
            reference = self.model
        with adapters.disable_adapter() if reference is self.model else contextlib.nullcontext():
            if self.fused:
                hidden = reference.base_model(**inputs).last_hidden_state
                return hidden, reference.get_output_embeddings().weight
            return reference(**inputs).logits

    def forward(
        self,
        input_ids,
        labels,
        position_ids=None,
        attention_mask=None,
        num_trained_tokens=None,
        stats=None,
        trained_positions=None,
        sequence_ids=None,
        num_sequences=None,
        **images,  # pixel_values, image_grid_thw, mm_token_type_ids for vision-language backbones
    ):
        inputs = dict(
            input_ids=input_ids,
            position_ids=position_ids,
            attention_mask=attention_mask,
            use_cache=False,
            **images,
        )
        reference = self._reference_outputs(inputs) if self.objective.needs_reference else None
        if self.fused:
            # The base model (a decoder, or a VLM's vision tower + decoder) gives the hidden states.
            hidden = self.model.base_model(**inputs).last_hidden_state
            weight = self.model.get_output_embeddings().weight
            return fused_causal_lm_loss(
                hidden,
                weight,
                labels,
                self.objective,
                self.chunk_size,
                num_trained_tokens=num_trained_tokens,
                stats=stats,
                reference=reference,
                trained_positions=trained_positions,
                sequence_ids=sequence_ids,
                num_sequences=num_sequences,
            )
        logits = self.model(**inputs).logits
        return causal_lm_loss(
            logits,
            labels,
            self.objective,
            num_trained_tokens=num_trained_tokens,
            stats=stats,
            reference_logits=reference,
            sequence_ids=sequence_ids,
            num_sequences=num_sequences,
        )


def compile_layers(model) -> None:
    """``torch.compile`` each repeated block of the backbone in place (regional compilation: the
    blocks share one graph, so a 28-layer model compiles once, not 28 times, and the fused loss and
    the optimizer stay eager). Refused in one line for a backbone without such blocks."""
    blocks = [
        module
        for module in model.modules()
        if isinstance(module, torch.nn.ModuleList)
        and len(module) > 1
        and module[0].__class__.__name__.endswith("Layer")
    ]
    if not blocks:
        raise ConfigError(f"--compile: {type(model).__name__} has no list of decoder layers to compile")
    for block_list in blocks:
        for block in block_list:
            block.compile()


def training_module(
    config: TrainConfig,
    objective: Objective,
    how: str,
    device: torch.device,
    resumed_from: Path | None = None,
    sharded_resume: bool = False,
):
    """The model a run trains, as ``(model, adapted, module)``: the backbone (or a whole-model
    checkpoint's weights), its LoRA adapters (``adapted``, the peft model, else None), gradient
    checkpointing and compilation as configured, and the :class:`CausalLMWithLoss` around it with the
    reference the objective reads. Under FSDP (``how == "fsdp"``) everything stays on the CPU for the
    shards to move; a sharded checkpoint's weights are loaded later, into the shards."""
    adapted = None
    load_device = torch.device("cpu") if how == "fsdp" else device
    whole_checkpoint = resumed_from is not None and not sharded_resume
    if config.lora_rank:
        # The backbone as it was, frozen; adapters fresh, or the checkpoint's (a LoRA checkpoint holds
        # only them). The adapted module is the backbone itself: the fused loss reads it unchanged.
        model = load_model(config.model, device=load_device)
        adapted = (
            lora.resumed_lora(model, resumed_from)
            if whole_checkpoint
            else lora.with_lora(model, config.lora_rank, config.lora_alpha)
        )
    else:
        model = load_model(str(resumed_from) if whole_checkpoint else config.model, device=load_device)
    use_checkpointing = (
        config.gradient_checkpointing if config.gradient_checkpointing is not None else device.type == "cuda"
    )
    if use_checkpointing:
        # FSDP2's gather hooks need non-reentrant checkpointing; DDP keeps transformers' default.
        model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False} if how == "fsdp" else None
        )
        if adapted is not None:  # frozen embeddings: checkpointed blocks need inputs that want grads
            model.enable_input_require_grads()
    model.config.use_cache = False
    if config.compile:
        compile_layers(model)
    reference = None
    # ASFT's frozen starting model (as it starts, whatever checkpoint resumes); PSFT's old policy, a
    # copy refreshed at each PSFT batch (harness.train.optimizer_step).
    if objective.row.reference == objectives.START and adapted is None:
        reference = load_model(config.model, device=load_device).eval().requires_grad_(False)
    elif objective.row.reference == objectives.OLD_POLICY:
        reference = copy.deepcopy(model).eval().requires_grad_(False)
    module = CausalLMWithLoss(model, objective, config.loss_chunk_size, reference, adapted)
    return model, adapted, module
