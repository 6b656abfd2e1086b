"""Checkpoints of a training run, and resuming from them.

``checkpoint-N/`` is an ordinary Hugging Face model folder (weights, config, tokenizer or a VLM's
processor) plus ``trainer_state.pt``: the optimizer, the scheduler, every random state, the step
and the configuration the run was trained with. Under ``--sharding fsdp`` the weights and the
optimizer are instead shards in ``checkpoint-N/sharded/`` (:mod:`harness.sharding`), which resume on
any number of ranks. The data order is a function of the seed and the
step, so it needs no saving. Folders are written beside their place and swapped in
(:func:`harness.files.atomic_folder`): a crash never leaves half a checkpoint.

``--resume`` continues from the newest checkpoint only if every hyperparameter (the fields whose
role is ``hparam`` or ``objective`` in :mod:`harness.config`) is what the checkpoint was trained
with; otherwise it refuses, naming each changed one. Run settings (device, progress bar, checkpoint
interval, training-time evaluation) may change.

>>> check_resumable({"lr": 1e-3, "seed": 0}, {"lr": 2e-3, "seed": 0}, "runs/x/checkpoint-4")
Traceback (most recent call last):
...
harness.errors.ConfigError: --resume: runs/x/checkpoint-4 was trained with other hyperparameters: --lr 0.001 (now 0.002); only run settings may change
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.config import HPARAM_KEYS, LATER_DEFAULTS, TrainConfig, flag
from harness.data.rows import training_digest
from harness.errors import ConfigError
from harness.files import atomic_folder

STATE_FILE = "trainer_state.pt"
SHARDED_FOLDER = "sharded"  # a sharded checkpoint's torch.distributed.checkpoint files (harness.sharding)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest ``checkpoint-N`` folder of a run that holds its trainer state, or None."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if (p / STATE_FILE).exists()]
    return max(found, key=lambda p: int(p.name.split("-")[1]), default=None)


def check_resumable(trained: dict[str, Any], now: dict[str, Any], checkpoint: str | Path) -> None:
    """Raise :class:`ConfigError` unless ``now`` has every hyperparameter that ``trained`` (the
    checkpoint's configuration) had."""
    # A checkpoint written before a setting existed was made at that setting's LATER_DEFAULTS value.
    trained, now = LATER_DEFAULTS | trained, LATER_DEFAULTS | now
    changed = [key for key in HPARAM_KEYS if trained.get(key) != now.get(key)]
    if changed:
        what = ", ".join(f"{flag(key)} {trained.get(key)} (now {now.get(key)})" for key in changed)
        raise ConfigError(
            f"--resume: {checkpoint} was trained with other hyperparameters: {what}; only run settings may change"
        )


def data_digest(config: TrainConfig) -> str | None:
    """What ``config``'s training rows are read from (:func:`harness.data.rows.training_digest`)."""
    return training_digest(config.task, config.train_data)


def load_state(config: TrainConfig) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint of ``config.output_dir`` and its trainer state, checked against ``config``."""
    checkpoint = latest_checkpoint(config.output_dir)
    if checkpoint is None:
        raise ConfigError(f"--resume: no checkpoint-*/{STATE_FILE} in {config.output_dir}")
    state = torch.load(checkpoint / STATE_FILE, weights_only=False)
    check_resumable(state["config"], asdict(config), checkpoint)
    now = data_digest(config)
    if "train_data_sha256" in state and state["train_data_sha256"] != now:  # older checkpoints: unknown
        raise ConfigError(
            f"--resume: {checkpoint} was trained on other rows: --train-data {config.train_data or config.task} "
            f"has changed since (sha256 {state['train_data_sha256']} -> {now}); train it from the start"
        )
    if state.get("sharded") and not (checkpoint / SHARDED_FOLDER / ".metadata").exists():
        raise ConfigError(
            f"--resume: {checkpoint} is a sharded checkpoint without its shards "
            f"({SHARDED_FOLDER}/.metadata is missing); resume from an earlier checkpoint or start again"
        )
    return checkpoint, state


def save_model(folder: Path, model, saver) -> Path:
    """``model`` and its tokenizer (or a VLM's processor, which it needs to load) as a model folder."""
    return atomic_folder(
        folder, lambda staging: (model.save_pretrained(staging), saver.save_pretrained(staging))
    )


def save_checkpoint(
    output_dir: Path, step: int, model, saver, optimizer, scheduler, config: TrainConfig
) -> Path:
    """``checkpoint-<step>/``: the model folder and the trainer state to resume from."""

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        saver.save_pretrained(folder)  # the tokenizer, or a VLM's processor
        state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
            "config": asdict(config),
            "train_data_sha256": data_digest(config),
        }
        torch.save(state, folder / STATE_FILE)

    return atomic_folder(output_dir / f"checkpoint-{step}", write)


def finish_sharded_checkpoint(
    folder: Path, step: int, model_config, saver, scheduler, config: TrainConfig
) -> None:
    """Complete ``checkpoint-<step>/`` after every rank wrote its shards of the model and optimizer into
    it (:func:`harness.sharding.save_sharded`): the model's config, the tokenizer (or processor) and,
    last, the trainer state, whose presence makes the folder a checkpoint (a crash before it leaves
    none)."""
    model_config.save_pretrained(folder)
    saver.save_pretrained(folder)
    state = {
        "step": step,
        "sharded": True,  # the weights and optimizer are in sharded/, not in this file
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "config": asdict(config),
        "train_data_sha256": data_digest(config),
    }
    staging = folder / (STATE_FILE + ".partial")
    torch.save(state, staging)
    staging.replace(folder / STATE_FILE)


def restore(state: dict[str, Any], optimizer, scheduler) -> int:
    """Put the optimizer (unless the checkpoint is sharded: :func:`harness.sharding.load_sharded` did),
    scheduler and random states back; returns the step to continue from."""
    if not state.get("sharded"):
        optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return state["step"]


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def truncate_log(log_path: Path, keep_steps: int) -> None:
    """On resume, drop log lines past the checkpoint so every step appears exactly once."""
    if not log_path.exists():
        return
    lines = [
        line for line in log_path.read_text().splitlines() if line and json.loads(line)["step"] <= keep_steps
    ]
    log_path.write_text("".join(line + "\n" for line in lines))
