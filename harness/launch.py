"""Training launched or reused: one method's training in this process or under ``torchrun`` on
this node's GPUs, a finished training of the same configuration (in the environment installed now)
reused or continued from its last checkpoint, and the command that trains it on several nodes.

>>> from harness.config import TrainConfig
>>> print(multinode_command(TrainConfig(output_dir="runs/x/sft"), 2, 8).split(" -m ")[0])
torchrun --nnodes=2 --nproc-per-node=8 --rdzv-backend=c10d --rdzv-endpoint="$MASTER_ADDR:29500" --rdzv-id=sft
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness import environment
from harness.checkpoint import latest_checkpoint
from harness.config import TrainConfig, to_flags
from harness.data.rows import training_digest
from harness.errors import TrainingError
from harness.files import read_json
from harness.plan import hparams_of
from harness.trainer import train


def train_or_reuse(config: TrainConfig, nproc: int, reuse: bool, nnodes: int = 1) -> dict[str, Any]:
    """Train, or with ``reuse`` reuse a finished training of the same configuration in the run
    folder, or continue it from its last checkpoint; only when that folder was trained with the
    packages installed now (its ``environment.json``, written by the trainer), so a record never
    describes an environment its model was not trained in. Without ``reuse`` (``--redo``), or after
    an upgrade, the folder's old training is cleared and the method trains from scratch. On several
    nodes (``nnodes`` > 1) training is launched on every node by hand (:func:`multinode_command`) and
    its folder is never cleared from here: a finished one is reused (``--redo`` then replaces only the
    record), anything else stops with the command to run."""
    run_dir = Path(config.output_dir)
    name = f"{config.objective} seed {config.seed}"
    trained_in = read_json(run_dir / environment.FILE)
    world = nnodes * nproc
    has_training = (run_dir / "train_summary.json").exists() or latest_checkpoint(run_dir) is not None
    if nnodes > 1:
        if has_training and trained_in != environment.current(config.device):
            raise TrainingError(
                f"[{name}] {run_dir} was trained in another environment (packages or numerics); remove it, then train on "
                f"every node: {multinode_command(config, nnodes, nproc)}"
            )
        summary = _finished(run_dir, config, world)
        if summary is None:
            resume = latest_checkpoint(run_dir) is not None
            raise TrainingError(
                f"[{name}] not trained yet: run on each of the {nnodes} nodes (a file system they share), "
                f"then this command again: {multinode_command(config, nnodes, nproc, resume)}"
            )
        print(f"[{name}] reusing the finished training in {run_dir}", file=sys.stderr)
        return summary
    if run_dir.exists() and (not reuse or trained_in != environment.current(config.device)):
        why = "--redo" if not reuse else "it was trained in another environment (packages or numerics)"
        if has_training:
            print(f"[{name}] clearing the earlier training in {run_dir}: {why}", file=sys.stderr)
        shutil.rmtree(run_dir)
    summary = _finished(run_dir, config, world)
    if summary is not None:
        print(f"[{name}] reusing the finished training in {run_dir}", file=sys.stderr)
        return summary
    if latest_checkpoint(run_dir) is not None:
        print(f"[{name}] continuing from {latest_checkpoint(run_dir)}", file=sys.stderr)
        config = replace(config, resume=True)
    if nproc == 1:
        return train(config)
    flags = to_flags(config)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={nproc}",
        "-m",
        "harness.train",
        *flags,
    ]
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise TrainingError(
            f"torchrun training of {config.objective} failed with exit code {completed.returncode}"
        )
    summary = _finished(run_dir, config, world)
    if summary is None:  # the processes resolved the flags to another configuration: never recorded
        raise TrainingError(f"[{name}] the torchrun training in {run_dir} is not the configuration planned")
    return summary


def _finished(run_dir: Path, config: TrainConfig, world: int) -> dict[str, Any] | None:
    """The summary of a finished training of exactly ``config`` on ``world`` ranks in ``run_dir``."""
    try:
        summary = json.loads((run_dir / "train_summary.json").read_text())
        done = hparams_of(TrainConfig(**summary["config"]), summary["world_size"])
    except (OSError, ValueError, TypeError, KeyError):  # none, cut short, or written by another version
        return None
    if summary.get("train_data_sha256") != training_digest(config.task, config.train_data):
        return None  # trained on rows whose file has changed since: not this configuration's training
    model = run_dir / "model"  # where the trainer puts it: the summary's path is as its run spelled it
    return (
        summary | {"model_dir": str(model)} if done == hparams_of(config, world) and model.is_dir() else None
    )


def multinode_command(config: TrainConfig, nnodes: int, nproc: int, resume: bool = False) -> str:
    """The shell command that trains ``config`` on ``nnodes`` nodes of ``nproc`` processes: the same
    on every node, meeting at ``$MASTER_ADDR`` (torchrun's c10d rendezvous; ``resume`` continues
    from the folder's last checkpoint).

    >>> print(multinode_command(TrainConfig(output_dir="runs/x/sft"), 2, 8).split(" -m ")[0])
    torchrun --nnodes=2 --nproc-per-node=8 --rdzv-backend=c10d --rdzv-endpoint="$MASTER_ADDR:29500" --rdzv-id=sft
    """
    launcher = [f"--nnodes={nnodes}", f"--nproc-per-node={nproc}", "--rdzv-backend=c10d"]
    rendezvous = f"--rdzv-id={Path(config.output_dir).name}"
    flags = to_flags(replace(config, resume=resume))
    return " ".join(
        [
            "torchrun",
            *launcher,
            '--rdzv-endpoint="$MASTER_ADDR:29500"',  # left for the shell of each node to expand
            shlex.quote(rendezvous),
            "-m harness.train",
            shlex.join(flags),
        ]
    )
