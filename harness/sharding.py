"""How a training run spreads its model over the ranks of ``torchrun``: ``--sharding ddp`` or ``fsdp``.

- ``ddp`` (the default): every rank holds the whole model, its gradients and AdamW's state;
  DistributedDataParallel averages the gradients. Right whenever the model fits one device.
- ``fsdp``: FSDP2 (:func:`torch.distributed.fsdp.fully_shard`). Each decoder layer (and each block of
  a vision tower: the model's own ``_no_split_modules``) is one unit, the rest (embeddings, final
  norm, LM head, and the loss) is the root unit. Parameters, gradients and optimizer state live
  sharded, 1/world on each rank; a unit's parameters are gathered just before its forward and
  backward and freed after. On CUDA the gathered parameters are bf16 and gradients are reduced in
  fp32 (the master weights stay fp32): full fine-tuning of a 7B model needs ~112 GB for fp32 weights,
  gradients and AdamW's two moments, which 8 GPUs share as ~14 GB each.

The loss is computed inside the sharded root (the fused LM-head loss reads the gathered head), and
FSDP averages gradients over the ranks as DDP does, so the trainer's whole-step normalization holds
unchanged: a 2-rank gloo run on CPU gives the single-process update (``tests/test_sharding.py``).

A sharded checkpoint is a ``torch.distributed.checkpoint`` folder (``sharded/``, written by every
rank, a file each) of the model and optimizer; loading it re-shards onto whatever ranks load it, so a
run saved on 8 ranks resumes on 4, or on one process. The final ``model/`` is consolidated on rank 0
into an ordinary model folder.

>>> choose("fsdp", world=1)   # one process: nothing to shard, the plain module trains
'none'
>>> choose("fsdp", world=8)
'fsdp'
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.nn.parallel import DistributedDataParallel

from harness.checkpoint import SHARDED_FOLDER
from harness.errors import ConfigError


def choose(sharding: str, world: int) -> str:
    """What actually wraps the model: ``none`` on one process, else the ``--sharding`` asked for."""
    return "none" if world == 1 else sharding


def wrap(module: torch.nn.Module, model, how: str, device: torch.device, vision: bool) -> torch.nn.Module:
    """``module`` (the backbone and its loss) ready for a ``how`` run (:func:`choose`); returns what the
    trainer calls. ``model`` is the backbone inside it, whose layer classes are the FSDP units."""
    if how == "none":
        return module
    if how == "ddp":
        return DistributedDataParallel(
            module,
            device_ids=[device] if device.type == "cuda" else None,
            find_unused_parameters=vision,  # a micro-batch without images leaves the vision tower idle
        )
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    policy = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if device.type == "cuda"
        else MixedPrecisionPolicy()  # CPU: fp32 throughout, as the single-process run
    )
    units = layer_classes(model)
    for sub in model.modules():
        if type(sub).__name__ in units:
            fully_shard(sub, mesh=mesh, mp_policy=policy)
    fully_shard(module, mesh=mesh, mp_policy=policy)
    return module


def layer_classes(model) -> set[str]:
    """Class names of the repeated blocks FSDP shards one by one: the model's ``_no_split_modules``
    (Hugging Face's own list: decoder layers, vision blocks)."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    found = {type(sub).__name__ for sub in model.modules()} & names
    if not found:
        raise ConfigError(
            f"--sharding fsdp: {type(model).__name__} names no repeated layers (_no_split_modules) to shard"
        )
    return found


def clip_grad_norm(parameters: list[torch.Tensor], max_norm: float) -> float:
    """The global gradient norm (over every rank's shards under FSDP), clipping to ``max_norm`` if > 0."""
    norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm if max_norm > 0 else float("inf"))
    if hasattr(norm, "full_tensor"):  # a DTensor: the norm of the sharded gradients
        norm = norm.full_tensor()
    return norm.item()


def save_sharded(folder: Path, module: torch.nn.Module, optimizer) -> None:
    """The model's and optimizer's shards into ``folder/sharded`` (every rank writes its own)."""
    model_state, optimizer_state = get_state_dict(module, optimizer)
    dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=str(folder / SHARDED_FOLDER))


def load_sharded(folder: Path, module: torch.nn.Module, optimizer) -> None:
    """Fill ``module`` and ``optimizer`` (sharded or not, on any number of ranks) from ``folder/sharded``."""
    model_state, optimizer_state = get_state_dict(module, optimizer)
    state = {"model": model_state, "optimizer": optimizer_state}
    with warnings.catch_warnings():  # one process loading shards is intended here, not a mistake
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.load(state, checkpoint_id=str(folder / SHARDED_FOLDER), no_dist=not dist.is_initialized())
    set_state_dict(module, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])


def full_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's weights gathered on rank 0, on the CPU (every rank must call it; the others
    get an empty dict)."""
    return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


# --- the process group of a torchrun run -----------------------------------------------------------


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device, timeout: timedelta | None = None) -> Distributed:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", timeout=timeout)
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
