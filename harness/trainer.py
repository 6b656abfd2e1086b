"""One training loop for every objective and backbone: SFT or DFT is a flag (the command that runs it
is ``python -m harness.train``, :mod:`harness.train`).

Paper defaults (arXiv 2508.05629): AdamW betas (0.9, 0.95), weight decay 0.01, cosine schedule with
10% warmup, grad clip 1.0, completion-only loss. ``--batch-size`` is the number of examples per
optimizer step across all ranks and micro-batches; each rank runs micro-batches of at most
``--micro-batch-size`` examples (the largest that divides its share), packed into rows of
``--max-length`` tokens. The loss of a step is normalized by the trained tokens of the whole step,
so how the batch is split does not change the update. On CUDA: bf16 autocast and gradient
checkpointing; on CPU: fp32. Under ``torchrun`` it runs DistributedDataParallel (nccl on GPU, gloo
on CPU), or with ``--sharding fsdp`` FSDP2 (:mod:`harness.sharding`). A vision-language backbone
(Qwen2-VL, Qwen2.5-VL) trains in the same loop: rows go through its processor (:mod:`harness.data.images`), batches are padded rather than packed, and every weight,
vision tower included, is trained.

A run reads top to bottom: :func:`setup` (data, model, optimizer, resume), :func:`optimizer_step`
for each step, :func:`finish` (the model folder and the summary); checkpoints and resuming are
:mod:`harness.checkpoint`. Writes to ``--output-dir``: ``log.jsonl`` (one line per step),
TensorBoard events in ``tb/``, ``checkpoint-N/`` and the final model in ``model/``.

>>> from harness.config import TrainConfig
>>> from harness.trainer import train
>>> summary = train(TrainConfig(output_dir="/tmp/harness-doc", steps=2, batch_size=4,
...                             micro_batch_size=2, train_limit=8, lr=1e-3, progress=False))
>>> summary["steps"]
2
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm
from transformers import get_cosine_schedule_with_warmup

import tasks
from harness import checkpoint, environment, lora, objectives, sharding
from harness.config import TrainConfig
from harness.data.encode import collate, encode_all, step_indices, step_schedule
from harness.data.noise import with_noise
from harness.data.rows import training_rows
from harness.errors import ConfigError, TrainingError
from harness.evaluation import evaluate_loaded
from harness.files import atomic_write_text
from harness.forward import CausalLMWithLoss, training_module
from harness.fused_loss import trained_positions_of
from harness.losses import LossStats, Objective
from harness.models import device_and_dtype, load_model, load_tokenizer_and_processor
from harness.resolve import resolve_train
from harness.sharding import Distributed, init_distributed


@dataclass
class Run:
    """Everything a training run holds between its steps (made by :func:`setup`)."""

    config: TrainConfig
    device: torch.device
    amp_dtype: torch.dtype
    ddp: Distributed
    tokenizer: Any
    processor: Any  # a VLM's processor, else None
    rows: int
    examples: list
    overlong: Counter
    output_dir: Path
    total_steps: int
    accumulation: int
    model: Any
    module: CausalLMWithLoss
    wrapped: torch.nn.Module  # the module, or DDP around it (FSDP2 shards the module in place)
    optimizer: torch.optim.Optimizer
    scheduler: Any
    start_step: int = 0
    last_saved: Path | None = None
    writer: Any = None  # a TensorBoard SummaryWriter, main rank only
    adapted: Any = None  # with --lora-rank: the peft model around ``model`` (saved, merged at the end)
    how: str = "none"  # none (one process), ddp or fsdp: harness.sharding.choose
    noisy_rows: int = 0  # rows given a wrong final answer (--train-noise)
    data_digest: str | None = None  # what the rows were read from (a file's hash), None if generated
    trained_tokens: int = 0
    train_seconds: float = 0.0
    started: float = field(default_factory=time.time)

    @property
    def log_path(self) -> Path:
        return self.output_dir / "log.jsonl"

    @property
    def eval_path(self) -> Path:
        return self.output_dir / "eval.jsonl"

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.device.type == "cuda")


def setup(config: TrainConfig) -> Run:
    """Resolve the configuration, encode the data, load (or resume) the model and its optimizer.
    Every data problem is raised before the output folder is made."""
    started = time.time()
    device, amp_dtype = device_and_dtype(config.device)
    # The other ranks wait at a barrier while the main rank evaluates (--eval-every); a 7B model's
    # evaluation can outlast the default 10-minute collective timeout.
    ddp = init_distributed(device, timedelta(hours=3) if config.eval_every else None)
    config = resolve_train(config, ddp.world)
    how = sharding.choose(config.sharding, ddp.world)
    if ddp.world > 1 and device.type == "cuda":
        device = torch.device("cuda", ddp.local_rank)
        torch.cuda.set_device(device)
    objective = Objective.of(config)
    # A refused resume (no checkpoint, a changed hyperparameter) stops before anything is read or made.
    resumed_from, state = checkpoint.load_state(config) if config.resume else (None, None)
    # A sharded checkpoint holds no model folder: the backbone loads as at the start, then the shards.
    sharded_resume = state is not None and state.get("sharded", False)
    if state is not None and how == "fsdp" and not sharded_resume:
        raise ConfigError(
            f"--resume: {resumed_from} is a whole-model (--sharding ddp) checkpoint; resume it with "
            "--sharding ddp (a later --save-every checkpoint can then be resumed sharded)"
        )
    tokenizer, processor = load_tokenizer_and_processor(config.model, config.min_pixels, config.max_pixels)
    vision = processor is not None
    pairs = objective.row.data == objectives.PAIRS
    rows, source = training_rows(
        config.task,
        config.train_data,
        config.train_limit,
        config.prompt_template,
        config.train_offset,
        pairs=pairs,
        style=config.train_style,
    )
    rows, corrupted = with_noise(rows, config.train_noise, config.seed, source)
    examples, counts = encode_all(
        tokenizer, rows, config.max_length, config.overlong, source, processor, pairs=pairs
    )
    if how == "fsdp" and vision and any(not e.image_grid_thw.shape[0] for e in examples):
        # A rank whose micro-batch has no image would skip the vision tower's gathers that the others
        # wait in: FSDP would hang where DDP (find_unused_parameters) copes.
        without = sum(not e.image_grid_thw.shape[0] for e in examples)
        raise ConfigError(
            f"--sharding fsdp: {without} of {len(examples)} training rows of {source} have no image; "
            "a vision backbone trains sharded only on rows that all have one (use --sharding ddp)"
        )
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)  # only once the data is known to be good
    if ddp.main:  # what trained this folder: a training is reused only by the same environment
        atomic_write_text(
            output_dir / environment.FILE, json.dumps(environment.current(config.device), indent=2)
        )
    total_steps, accumulation = step_schedule(config, len(examples), ddp.world)
    if ddp.main and counts:
        print(f"overlong rows ({config.overlong} policy): {dict(counts)} of {len(rows)}", file=sys.stderr)

    torch.manual_seed(config.seed)
    model, adapted, module = training_module(config, objective, how, device, resumed_from, sharded_resume)
    wrapped = sharding.wrap(module, model, how, device, vision)
    optimizer, scheduler = _optimizer_and_schedule(model, config, device, total_steps)  # of the shards
    if sharded_resume:
        sharding.load_sharded(resumed_from, module, optimizer)
    start_step = checkpoint.restore(state, optimizer, scheduler) if state is not None else 0

    run = Run(
        config=config,
        device=device,
        amp_dtype=amp_dtype,
        ddp=ddp,
        tokenizer=tokenizer,
        processor=processor,
        rows=len(rows),
        examples=examples,
        overlong=counts,
        output_dir=output_dir,
        total_steps=total_steps,
        accumulation=accumulation,
        model=model,
        module=module,
        wrapped=wrapped,
        optimizer=optimizer,
        scheduler=scheduler,
        start_step=start_step,
        last_saved=resumed_from,
        started=started,
        adapted=adapted,
        how=how,
        noisy_rows=len(corrupted),
        data_digest=checkpoint.data_digest(config),
    )
    if ddp.main:
        checkpoint.truncate_log(run.log_path, start_step)
        # Evaluations up to the checkpoint's step happened before it was saved; a fresh run redoes step 0.
        checkpoint.truncate_log(run.eval_path, start_step if start_step else -1)
        from torch.utils.tensorboard import SummaryWriter  # import cost: tensorboard, only when training

        run.writer = SummaryWriter(str(output_dir / "tb"), purge_step=start_step + 1)
    return run


def _optimizer_and_schedule(model, config: TrainConfig, device: torch.device, total_steps: int):
    """AdamW without weight decay on biases and norms (as HF Trainer), and the cosine schedule; only
    the parameters that train (with LoRA: the adapters)."""
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.ndim >= 2]
    no_decay = [p for p in trained if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(config.adam_beta1, config.adam_beta2),
        # One fused kernel for the whole update on a GPU; the CPU keeps its single-tensor loop (the
        # pinned references were trained with it, and its bits are what they record).
        fused=device.type == "cuda",
    )
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, math.ceil(config.warmup_ratio * total_steps), total_steps
    )
    return optimizer, scheduler


def optimizer_step(run: Run, step: int) -> dict[str, Any]:
    """Forward and backward over the micro-batches of ``step`` on this rank, clip, update; returns
    the step's log line (loss, plain NLL, mean target probability, grad norm, lr, tokens)."""
    config, ddp, examples = run.config, run.ddp, run.examples
    step_started = time.time()
    objective = run.module.objective
    if objective.row.reference == objectives.OLD_POLICY and (
        step % objective.psft_minibatches == 0 or step == run.start_step
    ):
        # A PSFT batch starts: the old policy is the model as it is now (a resumed run takes it afresh).
        run.module.reference.load_state_dict(run.model.state_dict())
    indices = step_indices(step, len(examples), config.batch_size, config.seed)
    # Every rank knows the whole step, so the normalizer needs no communication: its trained tokens,
    # or for an objective on preference pairs (DPO, a mean over pairs) its pairs.
    if objective.row.data == objectives.PAIRS:
        step_tokens = len(indices)
    else:
        step_tokens = sum(examples[i].trained_tokens for i in indices)
    per_rank = len(indices) // ddp.world
    mine = indices[ddp.rank * per_rank : (ddp.rank + 1) * per_rank]
    stats: list[LossStats] = []
    loss_sum = torch.zeros((), device=run.device)
    for micro in range(run.accumulation):
        chunk = [
            examples[i] for i in mine[micro * config.micro_batch_size : (micro + 1) * config.micro_batch_size]
        ]
        batch = collate(
            chunk, config.max_length, run.tokenizer.pad_token_id, config.packing, objective.row.per_sequence
        )
        # Found where the labels were made, so the loss never asks the device which tokens train.
        batch["trained_positions"] = trained_positions_of(batch["labels"])
        batch = {k: _to_device(v, run.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        sync = micro == run.accumulation - 1 or ddp.world == 1
        # FSDP reduce-scatters every micro-batch's gradients (holding whole ones would undo the sharding).
        context = run.wrapped.no_sync() if (run.how == "ddp" and not sync) else contextlib.nullcontext()
        with context, run.autocast():
            # DDP and FSDP average gradients over ranks, hence tokens / world: the sum over ranks is exact.
            loss = run.wrapped(**batch, num_trained_tokens=step_tokens / ddp.world, stats=stats)
        loss.backward()
        loss_sum += loss.detach() / ddp.world
    # The step's scalars come to the host together, once: the only wait on the device per step.
    fields = [
        torch.as_tensor(v, device=run.device).float()
        for s in stats
        for v in (s.nll_sum, s.prob_sum, s.tokens)
    ]
    loss_value, *sums = torch.stack([loss_sum.float(), *fields]).tolist()
    totals = torch.tensor(
        [loss_value, sum(sums[0::3]), sum(sums[1::3]), sum(int(tokens) for tokens in sums[2::3])],
        dtype=torch.float64,
        device=run.device,
    )
    if ddp.world > 1:
        dist.all_reduce(totals)
    step_loss = totals[0].item()
    if not math.isfinite(step_loss):
        where = f"last good checkpoint: {run.last_saved}" if run.last_saved else "no checkpoint was saved"
        raise TrainingError(
            f"loss is {step_loss} at step {step + 1} (objective {config.objective}); stopped, {where}"
        )
    grad_norm = sharding.clip_grad_norm(
        [p for p in run.model.parameters() if p.grad is not None], config.max_grad_norm
    )
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if run.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.time() - step_started
    run.train_seconds += seconds
    run.trained_tokens += int(totals[3].item())
    last = step + 1 == run.total_steps
    return {
        "step": step + 1,
        "loss": step_loss,
        "nll": totals[1].item() / max(1, totals[3].item()),
        "mean_token_prob": totals[2].item() / max(1, totals[3].item()),
        "grad_norm": grad_norm,
        "lr": run.optimizer.param_groups[0]["lr"] if last else run.scheduler.get_last_lr()[0],
        "trained_tokens": int(totals[3].item()),
        "trained_tokens_per_s": totals[3].item() / seconds,
    }


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch tensor on ``device``; to a GPU from pinned memory without waiting (a copy from pageable
    memory would make the host wait for the device's queue)."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def log_step(run: Run, record: dict[str, Any]) -> None:
    """One line in ``log.jsonl`` and the step's scalars in TensorBoard (main rank)."""
    with run.log_path.open("a") as log:
        log.write(json.dumps(record) + "\n")
    for key in ("loss", "nll", "mean_token_prob", "grad_norm", "lr", "trained_tokens_per_s"):
        run.writer.add_scalar(f"train/{key}", record[key], record["step"])


def evaluate_now(run: Run, step: int) -> None:
    """Greedy scores on every evaluation split of the task at ``step`` (main rank; the others wait),
    one line per split in ``eval.jsonl`` and in TensorBoard. The random state is put back
    afterwards, so a run with ``--eval-every`` trains exactly as one without."""
    if run.ddp.main:
        model, config = run.model, run.config
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        was_caching = model.config.use_cache
        model.eval()
        model.config.use_cache = True
        try:
            with torch.random.fork_rng(devices=devices), run.autocast():
                scores = evaluate_loaded(
                    model,
                    run.tokenizer,
                    tasks.get(config.task),
                    limit=config.curve_limit,
                    processor=run.processor,
                    template=config.prompt_template,  # the curve asks as training does
                )
        finally:
            model.config.use_cache = was_caching
            model.train()
        with run.eval_path.open("a") as log:
            for split, score in scores.items():
                line = {
                    "step": step,
                    "split": split,
                    **{k: score[k] for k in ("role", "value", "stderr", "n")},
                }
                log.write(json.dumps(line) + "\n")
                run.writer.add_scalar(f"eval/{split}", score["value"], step)
    if run.ddp.world > 1:
        dist.barrier()


def save_checkpoint(run: Run, step: int) -> None:
    if run.how == "fsdp":  # every rank writes its shards, then rank 0 completes the folder
        folder = run.output_dir / f"checkpoint-{step}"
        if run.ddp.main:
            shutil.rmtree(folder, ignore_errors=True)  # an earlier attempt's leftovers
        dist.barrier()
        sharding.save_sharded(folder, run.module, run.optimizer)
        dist.barrier()
        if run.ddp.main:
            checkpoint.finish_sharded_checkpoint(
                folder, step, run.model.config, run.processor or run.tokenizer, run.scheduler, run.config
            )
    elif run.ddp.main:
        checkpoint.save_checkpoint(
            run.output_dir,
            step,
            run.adapted or run.model,  # with LoRA: the adapters only
            run.processor or run.tokenizer,
            run.optimizer,
            run.scheduler,
            run.config,
        )
    if run.ddp.world > 1:
        dist.barrier()
    run.last_saved = run.output_dir / f"checkpoint-{step}"


def finish(run: Run) -> dict[str, Any]:
    """Save ``model/`` and write ``train_summary.json``; returns the summary."""
    config, ddp = run.config, run.ddp
    final = run.output_dir / "model"
    gathered = sharding.full_state_dict(run.module) if run.how == "fsdp" else None  # every rank helps
    if ddp.main:
        # With LoRA, the adapters merged into the backbone: an ordinary model folder.
        if gathered is not None:
            model = _consolidated(config, gathered)
        else:
            model = lora.merged(run.adapted) if run.adapted is not None else run.model
        checkpoint.save_model(final, model, run.processor or run.tokenizer)
        run.writer.close()
    summary = {
        "model_dir": str(final),
        "steps": run.total_steps,
        "resumed_from_step": run.start_step,
        "examples": len(run.examples),
        "rows": run.rows,
        "noisy_rows": run.noisy_rows,
        "overlong": {"policy": config.overlong, **dict(run.overlong)},
        "trained_tokens_per_s": run.trained_tokens / run.train_seconds if run.train_seconds else None,
        "wall_time_s": time.time() - run.started,
        "world_size": ddp.world,
        "micro_batch_size": config.micro_batch_size,
        "gradient_accumulation": run.accumulation,
        "device": str(run.device),
        "fused_loss": run.module.fused,
        "sharding": run.how,
        "packed": config.packing and run.processor is None,
        "config": asdict(config),
        "train_data_sha256": run.data_digest,
    }
    if ddp.main and config.eval_every:
        summary["curve"] = [json.loads(line) for line in run.eval_path.read_text().splitlines() if line]
    if ddp.main:
        atomic_write_text(run.output_dir / "train_summary.json", json.dumps(summary, indent=2) + "\n")
    if ddp.world > 1:
        dist.barrier()
    return summary


def _consolidated(config: TrainConfig, weights: dict[str, torch.Tensor]):
    """A whole CPU copy of an FSDP-trained model (LoRA merged) from its gathered ``weights``, the
    state of :class:`CausalLMWithLoss` (so each name starts with ``model.``)."""
    model = load_model(config.model)
    adapted = lora.with_lora(model, config.lora_rank, config.lora_alpha) if config.lora_rank else None
    model.load_state_dict({name.removeprefix("model."): value for name, value in weights.items()})
    return lora.merged(adapted) if adapted is not None else model


def train(config: TrainConfig) -> dict[str, Any]:
    """Train one model; returns a summary (also written to ``train_summary.json``)."""
    run = setup(config)
    config = run.config
    if config.eval_every and run.start_step == 0:
        evaluate_now(run, 0)
    bar = tqdm(
        range(run.start_step, run.total_steps),
        desc=config.objective,
        initial=run.start_step,
        total=run.total_steps,
        disable=not (config.progress and run.ddp.main),
        # Redirected to a file or a CI log, every refresh is a new line: refresh rarely there.
        mininterval=2 if sys.stderr.isatty() else 30,
    )
    run.model.train()
    for step in bar:
        record = optimizer_step(run, step)
        if run.ddp.main:
            log_step(run, record)
            postfix = {
                "loss": f"{record['loss']:.4f}",
                "nll": f"{record['nll']:.3f}",
                "p": f"{record['mean_token_prob']:.3f}",
            }
            bar.set_postfix(postfix, refresh=False)  # redraw on the bar's own interval, not every step
        done = step + 1
        if config.eval_every and (done % config.eval_every == 0 or done == run.total_steps):
            evaluate_now(run, done)
        if config.save_every and done % config.save_every == 0 and done < run.total_steps:
            save_checkpoint(run, done)
    return finish(run)
