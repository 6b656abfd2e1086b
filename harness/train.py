"""One training loop for every objective and backbone: SFT or DFT is a flag.

Paper defaults (arXiv 2508.05629): AdamW betas (0.9, 0.95), weight decay 0.01, cosine schedule with
10% warmup, grad clip 1.0, completion-only loss. ``--batch-size`` is the number of examples per
optimizer step across all ranks and micro-batches; each rank runs micro-batches of
``--micro-batch-size`` examples, packed into rows of ``--max-length`` tokens. The loss of a step is
normalized by the trained tokens of the whole step, so how the batch is split does not change the
update. On CUDA: bf16 autocast and gradient checkpointing; on CPU: fp32. Under ``torchrun`` it runs
DistributedDataParallel (nccl on GPU, gloo on CPU). A vision-language backbone (Qwen2-VL,
Qwen2.5-VL) trains in the same loop: rows go through its processor (:mod:`harness.data.images`), batches
are padded rather than packed, and every weight, vision tower included, is trained.

Writes to ``--output-dir``: ``log.jsonl`` (one line per step), TensorBoard events in ``tb/``,
``checkpoint-N/`` (a Hugging Face model folder plus ``trainer_state.pt``: optimizer, scheduler, RNG
and step; the data order is a function of the seed) and the final model in ``model/``.

>>> from harness.train import TrainConfig, train
>>> summary = train(TrainConfig(output_dir="/tmp/harness-doc", steps=2, batch_size=4,
...                             micro_batch_size=2, train_limit=8, lr=1e-3, progress=False))
>>> summary["steps"]
2
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm
from transformers import get_cosine_schedule_with_warmup

from harness import cli
from harness.data.encode import collate, encode_all
from harness.data.rows import training_rows
from harness.data.text import OVERLONG_POLICIES
from harness.errors import DataError, TrainingError
from harness.files import atomic_folder
from harness.losses import OBJECTIVES, LossStats, Objective, causal_lm_loss, fused_causal_lm_loss
from harness.models import (
    device_and_dtype,
    has_plain_lm_head,
    is_vision,
    load_model,
    load_processor,
    load_tokenizer,
)


@dataclass
class TrainConfig:
    output_dir: str = field(default="runs/train", metadata={"help": "where logs, checkpoints and model/ go"})
    model: str = field(
        default="tiny", metadata={"help": "'tiny' (embedded), a local model folder or a hub id"}
    )
    task: str = field(default="math-words", metadata={"help": "task whose train split is used"})
    train_data: str | None = field(
        default=None, metadata={"help": "a .jsonl/.json/.parquet file of prompt/completion rows instead"}
    )
    train_limit: int | None = field(default=None, metadata={"help": "use only the first N training rows"})
    objective: str = field(default="sft", metadata={"help": "training objective", "choices": OBJECTIVES})
    dft_min_weight: float = field(default=0.0, metadata={"help": "DFT weight floor (0 = paper)"})
    dft_alpha: float = field(default=1.0, metadata={"help": "w = alpha*p + (1-alpha); 1 = paper DFT"})
    lr: float = field(default=5e-5, metadata={"help": "peak learning rate"})
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    weight_decay: float = 0.01
    warmup_ratio: float = field(default=0.1, metadata={"help": "fraction of steps of linear warmup"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm (0 = off)"})
    batch_size: int = field(default=256, metadata={"help": "examples per optimizer step, all ranks together"})
    micro_batch_size: int = field(default=8, metadata={"help": "examples per forward pass on one rank"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the training data"})
    steps: int | None = field(default=None, metadata={"help": "optimizer steps (overrides --epochs)"})
    max_length: int = field(default=2048, metadata={"help": "maximum tokens of prompt + completion"})
    overlong: str = field(
        default="truncate",
        metadata={
            "help": "rows over --max-length: cut the completion, drop the row, or stop",
            "choices": OVERLONG_POLICIES,
        },
    )
    packing: bool = field(
        default=True, metadata={"help": "pack sequences into rows (no padding compute; text backbones only)"}
    )
    min_pixels: int | None = field(
        default=None, metadata={"help": "vision backbones: fewest pixels an image is resized to"}
    )
    max_pixels: int | None = field(
        default=None,
        metadata={"help": "vision backbones: most pixels an image keeps (default: the processor's)"},
    )
    loss_chunk_size: int = field(
        default=1024, metadata={"help": "tokens per chunk of the fused LM-head loss; 0 = plain"}
    )
    gradient_checkpointing: bool | None = field(default=None, metadata={"help": "default: on for CUDA"})
    seed: int = 0
    save_every: int = field(
        default=0, metadata={"help": "save a checkpoint every N steps (0 = only at the end)"}
    )
    resume: bool = field(
        default=False, metadata={"help": "continue from the last checkpoint in --output-dir"}
    )
    device: str | None = field(
        default=None, metadata={"help": "cpu, cuda or cuda:N (default: cuda if present)"}
    )
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})
    eval_every: int = field(
        default=0,
        metadata={
            "help": "evaluate the task's test splits (greedy) at step 0, every N steps and at the end, "
            "into eval.jsonl: accuracy-versus-step curves (0 = off)"
        },
    )
    curve_limit: int | None = field(
        default=None,
        metadata={
            "help": "--eval-every evaluates the first N examples of each split "
            "(default: all; under harness.experiment: its --eval-limit)"
        },
    )

    def __post_init__(self) -> None:
        if self.eval_every < 0:
            raise ValueError(f"--eval-every must be >= 0, got {self.eval_every}")
        if self.curve_limit is not None and self.curve_limit < 1:
            raise ValueError(f"--curve-limit must be >= 1, got {self.curve_limit}: a split needs an example")

    def objective_spec(self) -> Objective:
        return Objective(self.objective, self.dft_min_weight, self.dft_alpha)


class CausalLMWithLoss(torch.nn.Module):
    """The backbone and the objective in one module, so DDP wraps the whole loss computation."""

    def __init__(self, model, objective: Objective, chunk_size: int):
        super().__init__()
        self.model = model
        self.objective = objective
        self.fused = chunk_size > 0 and has_plain_lm_head(model)
        self.chunk_size = chunk_size

    def forward(
        self,
        input_ids,
        labels,
        position_ids=None,
        attention_mask=None,
        num_trained_tokens=None,
        stats=None,
        **images,  # pixel_values, image_grid_thw, mm_token_type_ids for vision-language backbones
    ):
        inputs = dict(
            input_ids=input_ids,
            position_ids=position_ids,
            attention_mask=attention_mask,
            use_cache=False,
            **images,
        )
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
            )
        logits = self.model(**inputs).logits
        return causal_lm_loss(
            logits, labels, self.objective, num_trained_tokens=num_trained_tokens, stats=stats
        )


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


def step_schedule(config: TrainConfig, n_examples: int, world: int) -> tuple[int, int]:
    """(total optimizer steps, gradient-accumulation micro-batches per step)."""
    per_step = config.micro_batch_size * world
    if config.batch_size % per_step:
        raise ValueError(
            f"--batch-size {config.batch_size} is not a multiple of --micro-batch-size {config.micro_batch_size} "
            f"x {world} rank(s)"
        )
    if n_examples < config.batch_size:
        raise ValueError(f"--batch-size {config.batch_size} exceeds the {n_examples} training examples")
    steps_per_epoch = n_examples // config.batch_size  # the last partial batch is dropped
    steps = config.steps if config.steps is not None else max(1, math.floor(config.epochs * steps_per_epoch))
    return steps, config.batch_size // per_step


def split_batch(batch_size: int, max_micro_batch_size: int, world: int) -> tuple[int, int]:
    """``(micro-batch size, accumulation steps)`` for a global ``batch_size`` over ``world`` ranks
    when at most ``max_micro_batch_size`` examples fit in one forward pass: the largest micro-batch
    that fits and divides each rank's share, so ``micro x accumulation x world == batch_size``.

    >>> split_batch(256, 8, 4), split_batch(48, 32, 1), split_batch(7, 4, 1)
    ((8, 8), (24, 2), (1, 7))
    """
    if batch_size < 1 or max_micro_batch_size < 1:
        raise ValueError(
            f"--batch-size and --micro-batch-size must be >= 1, got {batch_size}, {max_micro_batch_size}"
        )
    if batch_size < world:
        raise ValueError(
            f"--batch-size {batch_size} is smaller than the {world} ranks: every rank needs at least one example"
        )
    if batch_size % world:
        raise ValueError(f"--batch-size {batch_size} does not split evenly over {world} ranks")
    share = batch_size // world
    micro = max(d for d in range(1, min(share, max_micro_batch_size) + 1) if share % d == 0)
    return micro, share // micro


def step_indices(step: int, n_examples: int, batch_size: int, seed: int) -> list[int]:
    """Example indices of optimizer step ``step``: a fresh seeded permutation every epoch."""
    steps_per_epoch = n_examples // batch_size
    epoch, offset = divmod(step, steps_per_epoch)
    order = torch.randperm(n_examples, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[offset * batch_size : (offset + 1) * batch_size].tolist()


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = [p for p in output_dir.glob("checkpoint-*") if (p / "trainer_state.pt").exists()]
    return max(found, key=lambda p: int(p.name.split("-")[1]), default=None)


def evaluate_during_training(model, tokenizer, processor, config: TrainConfig, step: int, path: Path, writer):
    """Greedy scores on every evaluation split of ``config.task`` at ``step``, one line per split in
    ``path`` (``eval.jsonl``) and in TensorBoard. The random state is put back afterwards, so a run
    with ``--eval-every`` trains exactly as one without."""
    import tasks
    from harness.evaluate import evaluate_loaded  # evaluate imports models and generate, not train

    task = tasks.get(config.task)
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    was_caching = model.config.use_cache
    model.eval()
    model.config.use_cache = True
    try:
        with torch.random.fork_rng(devices=devices):
            scores = evaluate_loaded(model, tokenizer, task, limit=config.curve_limit, processor=processor)
    finally:
        model.config.use_cache = was_caching
        model.train()
    with path.open("a") as log:
        for split, score in scores.items():
            line = {"step": step, "split": split, **{k: score[k] for k in ("role", "value", "stderr", "n")}}
            log.write(json.dumps(line) + "\n")
            writer.add_scalar(f"eval/{split}", score["value"], step)
    return scores


# Settings that must match for --resume to continue the same run.
RESUME_KEYS = (
    "model",
    "task",
    "train_data",
    "train_limit",
    "objective",
    "dft_min_weight",
    "dft_alpha",
    "lr",
    "batch_size",
    "max_length",
    "min_pixels",
    "max_pixels",
    "seed",
    "weight_decay",
    "warmup_ratio",
)


def train(config: TrainConfig) -> dict[str, Any]:
    """Train one model; returns a summary (also written to ``train_summary.json``)."""
    started = time.time()
    device, amp_dtype = device_and_dtype(config.device)
    # The other ranks wait at a barrier while the main rank evaluates (--eval-every); a 7B model's
    # evaluation can outlast the default 10-minute collective timeout.
    ddp = init_distributed(device, timedelta(hours=3) if config.eval_every else None)
    if ddp.world > 1 and device.type == "cuda":
        device = torch.device("cuda", ddp.local_rank)
        torch.cuda.set_device(device)
    objective = config.objective_spec()
    vision = is_vision(config.model)
    processor = load_processor(config.model, config.min_pixels, config.max_pixels) if vision else None
    tokenizer = processor.tokenizer if vision else load_tokenizer(config.model)
    rows, source = training_rows(config.task, config.train_data, config.train_limit)
    examples, counts = encode_all(tokenizer, rows, config.max_length, config.overlong, source, processor)
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)  # only once the data is known to be good
    total_steps, accumulation = step_schedule(config, len(examples), ddp.world)
    if ddp.main and counts:
        print(f"overlong rows ({config.overlong} policy): {dict(counts)} of {len(rows)}", file=sys.stderr)

    start_step, state = 0, None
    checkpoint = latest_checkpoint(output_dir) if config.resume else None
    if config.resume and checkpoint is None:
        raise TrainingError(f"--resume: no checkpoint-*/trainer_state.pt in {output_dir}")
    if checkpoint is not None:
        state = torch.load(checkpoint / "trainer_state.pt", weights_only=False)
        changed = [k for k in RESUME_KEYS if state["config"].get(k) != getattr(config, k)]
        if changed:
            raise TrainingError(f"--resume: {checkpoint} was trained with different {', '.join(changed)}")
        start_step = state["step"]

    torch.manual_seed(config.seed)
    model = load_model(str(checkpoint) if checkpoint is not None else config.model, device=device)
    use_checkpointing = (
        config.gradient_checkpointing if config.gradient_checkpointing is not None else device.type == "cuda"
    )
    if use_checkpointing:
        model.gradient_checkpointing_enable()
    model.config.use_cache = False
    module = CausalLMWithLoss(model, objective, config.loss_chunk_size)
    wrapped = (
        DistributedDataParallel(
            module,
            device_ids=[device] if device.type == "cuda" else None,
            find_unused_parameters=vision,  # a micro-batch without images leaves the vision tower idle
        )
        if ddp.world > 1
        else module
    )

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]  # biases and norms, as HF Trainer
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(config.adam_beta1, config.adam_beta2),
        foreach=device.type == "cuda",
    )
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, math.ceil(config.warmup_ratio * total_steps), total_steps
    )
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])

    log_path = output_dir / "log.jsonl"
    eval_path = output_dir / "eval.jsonl"
    writer = None
    if ddp.main:
        from torch.utils.tensorboard import SummaryWriter

        _truncate_log(log_path, start_step)
        # Evaluations up to the checkpoint's step happened before it was saved; a fresh run redoes step 0.
        _truncate_log(eval_path, start_step if start_step else -1)
        writer = SummaryWriter(str(output_dir / "tb"), purge_step=start_step + 1)

    def evaluate_now(at_step: int) -> None:
        if ddp.main:
            with torch.autocast(device.type, dtype=amp_dtype, enabled=device.type == "cuda"):
                evaluate_during_training(model, tokenizer, processor, config, at_step, eval_path, writer)
        if ddp.world > 1:
            dist.barrier()  # the other ranks wait for the main rank's evaluation

    if config.eval_every and start_step == 0:
        evaluate_now(0)
    bar = tqdm(
        range(start_step, total_steps),
        desc=f"{config.objective}",
        initial=start_step,
        total=total_steps,
        disable=not (config.progress and ddp.main),
        # Redirected to a file or a CI log, every refresh is a new line: refresh rarely there.
        mininterval=2 if sys.stderr.isatty() else 30,
    )
    trained_tokens_seen, train_seconds = 0, 0.0
    last_saved = checkpoint
    model.train()
    for step in bar:
        step_started = time.time()
        indices = step_indices(step, len(examples), config.batch_size, config.seed)
        # Every rank knows the whole step, so the normalizer needs no communication.
        step_tokens = sum(examples[i].trained_tokens for i in indices)
        per_rank = len(indices) // ddp.world
        mine = indices[ddp.rank * per_rank : (ddp.rank + 1) * per_rank]
        stats: list[LossStats] = []
        loss_sum = torch.zeros((), device=device)
        for micro in range(accumulation):
            chunk = [
                examples[i]
                for i in mine[micro * config.micro_batch_size : (micro + 1) * config.micro_batch_size]
            ]
            batch = {
                k: v.to(device)
                for k, v in collate(chunk, config.max_length, tokenizer.pad_token_id, config.packing).items()
            }
            sync = micro == accumulation - 1 or ddp.world == 1
            context = wrapped.no_sync() if (ddp.world > 1 and not sync) else contextlib.nullcontext()
            with context, torch.autocast(device.type, dtype=amp_dtype, enabled=device.type == "cuda"):
                # DDP averages gradients over ranks, hence tokens / world: the sum over ranks is exact.
                loss = wrapped(**batch, num_trained_tokens=step_tokens / ddp.world, stats=stats)
            loss.backward()
            loss_sum += loss.detach() / ddp.world
        totals = torch.tensor(
            [
                loss_sum.item(),
                sum(s.nll_sum for s in stats),
                sum(s.prob_sum for s in stats),
                sum(s.tokens for s in stats),
            ],
            dtype=torch.float64,
            device=device,
        )
        if ddp.world > 1:
            dist.all_reduce(totals)
        step_loss = totals[0].item()
        if not math.isfinite(step_loss):
            where = f"last good checkpoint: {last_saved}" if last_saved else "no checkpoint was saved"
            raise TrainingError(
                f"loss is {step_loss} at step {step + 1} (objective {config.objective}); stopped, {where}"
            )
        grad_norm = _clip(model, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.time() - step_started
        train_seconds += seconds
        trained_tokens_seen += int(totals[3].item())
        record = {
            "step": step + 1,
            "loss": step_loss,
            "nll": totals[1].item() / max(1, totals[3].item()),
            "mean_token_prob": totals[2].item() / max(1, totals[3].item()),
            "grad_norm": grad_norm,
            "lr": scheduler.get_last_lr()[0] if step + 1 < total_steps else optimizer.param_groups[0]["lr"],
            "trained_tokens": int(totals[3].item()),
            "trained_tokens_per_s": totals[3].item() / seconds,
        }
        if ddp.main:
            with log_path.open("a") as log:
                log.write(json.dumps(record) + "\n")
            for key in ("loss", "nll", "mean_token_prob", "grad_norm", "lr", "trained_tokens_per_s"):
                writer.add_scalar(f"train/{key}", record[key], step + 1)
            postfix = {
                "loss": f"{step_loss:.4f}",
                "nll": f"{record['nll']:.3f}",
                "p": f"{record['mean_token_prob']:.3f}",
            }
            bar.set_postfix(postfix, refresh=False)  # redraw on the bar's own interval, not every step
        if config.eval_every and ((step + 1) % config.eval_every == 0 or step + 1 == total_steps):
            evaluate_now(step + 1)
        if config.save_every and (step + 1) % config.save_every == 0 and step + 1 < total_steps:
            last_saved = _save_checkpoint(
                output_dir, step + 1, model, processor or tokenizer, optimizer, scheduler, config, ddp
            )

    final = output_dir / "model"
    if ddp.main:
        saver = processor or tokenizer  # a VLM folder needs its processor to load with AutoProcessor
        atomic_folder(final, lambda d: (model.save_pretrained(d), saver.save_pretrained(d)))
        writer.close()
    summary = {
        "model_dir": str(final),
        "steps": total_steps,
        "resumed_from_step": start_step,
        "examples": len(examples),
        "rows": len(rows),
        "overlong": {"policy": config.overlong, **dict(counts)},
        "trained_tokens_per_s": trained_tokens_seen / train_seconds if train_seconds else None,
        "wall_time_s": time.time() - started,
        "world_size": ddp.world,
        "micro_batch_size": config.micro_batch_size,
        "gradient_accumulation": accumulation,
        "device": str(device),
        "fused_loss": module.fused,
        "packed": config.packing and not vision,
        "config": asdict(config),
    }
    if ddp.main and config.eval_every:
        summary["curve"] = [json.loads(line) for line in eval_path.read_text().splitlines() if line]
    if ddp.main:
        (output_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if ddp.world > 1:
        dist.barrier()
    return summary


def _clip(model, max_norm: float) -> float:
    params = [p for p in model.parameters() if p.grad is not None]
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(params, max_norm).item()
    return torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])).item()


def _truncate_log(log_path: Path, keep_steps: int) -> None:
    """On resume, drop log lines past the checkpoint so every step appears exactly once."""
    if not log_path.exists():
        return
    lines = [
        line for line in log_path.read_text().splitlines() if line and json.loads(line)["step"] <= keep_steps
    ]
    log_path.write_text("".join(line + "\n" for line in lines))


def _save_checkpoint(output_dir, step, model, saver, optimizer, scheduler, config, ddp) -> Path:
    target = output_dir / f"checkpoint-{step}"
    if ddp.main:

        def write(folder: Path) -> None:
            model.save_pretrained(folder)
            saver.save_pretrained(folder)  # the tokenizer, or a VLM's processor
            torch.save(
                {
                    "step": step,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": _rng_state(),
                    "config": asdict(config),
                },
                folder / "trainer_state.pt",
            )

        atomic_folder(target, write)
    if ddp.world > 1:
        dist.barrier()
    return target


def main(argv: list[str] | None = None) -> int:
    config = cli.parse(TrainConfig, argv, description=__doc__.split("\n\n")[0])
    try:
        summary = train(config)
    except (TrainingError, DataError, ValueError, KeyError, FileNotFoundError) as error:
        message = error.args[0] if isinstance(error, KeyError) else str(error)
        print(f"error: {message}", file=sys.stderr)
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"trained {summary['steps']} steps; model in {summary['model_dir']}; "
            f"{summary['trained_tokens_per_s']:.0f} trained tokens/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
