"""The whole comparison in one command: evaluate the base, train SFT and DFT, evaluate, record, render.

``nox -s train-math`` runs ``python -m harness.experiment --task math-words``. For every method in
``--methods`` (default ``base,sft,dft``) it trains from the same backbone with identical data, seed
and hyperparameters (only the objective differs), evaluates every split of the task, writes one JSON
record per method to ``--results-dir`` and renders the leaderboards from all records there.

Hyperparameters start from a preset (``--preset laptop`` by default: sized for the embedded tiny
model on a CPU; ``--preset paper-math``, ``paper-code`` and ``paper-vlm`` are the DFT paper's recipes); any flag given explicitly
wins over the preset. ``--nproc-per-node N`` trains under ``torchrun`` with N processes.

>>> experiment = parse_config(["--steps", "2", "--eval-limit", "4"])
>>> experiment.train.steps, experiment.config.methods, experiment.config.eval_limit
(2, 'base,sft,dft', 4)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import transformers

import tasks
from harness import cli, leaderboard, results, token_probs
from harness.data.rows import read_rows
from harness.errors import DataError
from harness.evaluate import evaluate_task
from harness.generate import Sampling
from harness.models import backbone_name, resolve
from harness.train import TrainConfig, TrainingError, latest_checkpoint, train

PRESETS: dict[str, dict[str, Any]] = {
    # The embedded ~3M-parameter model on a 2-core laptop: a few minutes per method.
    # lr 1e-3 and two epochs: at 5e-4 x 1 epoch SFT barely moves the tiny model in the time budget.
    "laptop": {
        "lr": 1e-3,
        "batch_size": 32,
        "micro_batch_size": 32,
        "epochs": 2.0,
        "max_length": 512,
        "warmup_ratio": 0.1,
        "loss_chunk_size": 1024,
    },
    # arXiv 2508.05629, math: AdamW (0.9, 0.95), wd 0.01, lr 5e-5 (2e-5 for 8B models), cosine with
    # 10% warmup, clip 1.0, global batch 256, max length 2048, one epoch.
    "paper-math": {
        "lr": 5e-5,
        "batch_size": 256,
        "micro_batch_size": 8,
        "epochs": 1.0,
        "max_length": 2048,
        "warmup_ratio": 0.1,
        "adam_beta1": 0.9,
        "adam_beta2": 0.95,
        "weight_decay": 0.01,
        "max_grad_norm": 1.0,
    },
    # arXiv 2508.05629, vision: Qwen2.5-VL-3B on WeThink, one epoch, lr 5e-5. The paper does not
    # state the batch for this recipe; 256 as for math. Images up to 1024 x 28 x 28 pixels.
    "paper-vlm": {
        "lr": 5e-5,
        "batch_size": 256,
        "micro_batch_size": 4,
        "epochs": 1.0,
        "max_length": 4096,
        "warmup_ratio": 0.1,
        "max_pixels": 1024 * 28 * 28,
    },
    # arXiv 2508.05629, code: UltraFeedback-style chat rows, one epoch, lr 5e-5, warmup 0.05, batch 16.
    "paper-code": {
        "lr": 5e-5,
        "batch_size": 16,
        "micro_batch_size": 4,
        "epochs": 1.0,
        "max_length": 2048,
        "warmup_ratio": 0.05,
    },
}
# Fields of TrainConfig the experiment sets itself, per method and run folder.
OWN_FIELDS = {"output_dir", "objective", "task", "resume"}
# TrainConfig fields that describe where, how fast or how watched a run happens, not what is trained.
NOT_HPARAMS = {
    "output_dir",
    "resume",
    "progress",
    "device",
    "save_every",
    "gradient_checkpointing",
    "eval_every",
    "curve_limit",
}


@dataclass
class ExperimentConfig:
    task: str = field(default="math-words", metadata={"help": "registered task to train and evaluate"})
    methods: str = field(default="base,sft,dft", metadata={"help": "comma-separated subset of base,sft,dft"})
    preset: str = field(
        default="laptop", metadata={"help": "hyperparameter preset", "choices": tuple(PRESETS)}
    )
    name: str | None = field(default=None, metadata={"help": "run folder name under --runs-dir"})
    runs_dir: str = field(default="runs", metadata={"help": "checkpoints, logs and samples go here"})
    results_dir: str = field(default="results", metadata={"help": "one JSON record per evaluated model"})
    leaderboard_dir: str = field(default="leaderboards", metadata={"help": "rendered markdown goes here"})
    eval_limit: int | None = field(
        default=None, metadata={"help": "evaluate the first N examples of each split"}
    )
    ood_tasks: str | None = field(
        default=None,
        metadata={
            "help": "comma-separated tasks also scored as out-of-domain splits "
            "(default: the task's own, e.g. humaneval for code-lists; '' for none)"
        },
    )
    nproc_per_node: int = field(default=1, metadata={"help": "training processes (torchrun) on this node"})
    prob_rows: int = field(
        default=token_probs.DEFAULT_ROWS,
        metadata={"help": "training rows whose target-token probabilities are histogrammed (0 = off)"},
    )
    skip_finished: bool = field(
        default=False,
        metadata={
            "help": "skip a method whose record for this exact configuration and evaluation exists; "
            "finish a half-done run from its model or last checkpoint"
        },
    )

    def __post_init__(self) -> None:
        if self.prob_rows < 0:
            raise ValueError(f"--prob-rows must be >= 0, got {self.prob_rows}")
        if self.eval_limit is not None and self.eval_limit < 1:
            raise ValueError(f"--eval-limit must be >= 1, got {self.eval_limit}: a split needs an example")
        if self.nproc_per_node < 1:
            raise ValueError(f"--nproc-per-node must be >= 1, got {self.nproc_per_node}")


@dataclass
class Experiment:
    config: ExperimentConfig
    train: TrainConfig
    sampling: Sampling


def preset_of(argv: list[str] | None) -> dict[str, Any]:
    """The ``--preset`` named in ``argv``, read by a parser without -h, so that ``--help`` can show
    the preset's values as defaults; explicit flags still win over it."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--preset", default=ExperimentConfig.preset, choices=tuple(PRESETS))
    return PRESETS[peek.parse_known_args(argv)[0].preset]


def take_fields(args: dict[str, Any], cls: type, skip=frozenset()) -> dict[str, Any]:
    """Pop the parsed values of ``cls``'s fields (but ``skip``) out of ``args``."""
    return {f.name: args.pop(f.name) for f in fields(cls) if f.name not in skip}


def parse_config(argv: list[str] | None = None) -> Experiment:
    preset = preset_of(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_arguments(parser, ExperimentConfig)
    cli.add_arguments(parser, TrainConfig, defaults=preset, exclude=OWN_FIELDS)
    cli.add_arguments(parser, Sampling)
    args = vars(parser.parse_args(argv))
    config = ExperimentConfig(**take_fields(args, ExperimentConfig))
    sampling = Sampling(**take_fields(args, Sampling))
    train_config = TrainConfig(**take_fields(args, TrainConfig, OWN_FIELDS), task=config.task)
    if train_config.curve_limit is None:  # training-time evaluation sees what the final one sees
        train_config = replace(train_config, curve_limit=config.eval_limit)
    methods = config.methods.split(",")
    unknown = [m for m in methods if m not in results.METHODS]
    if unknown or not methods:
        raise ValueError(f"--methods: unknown {', '.join(unknown)}; valid: {', '.join(results.METHODS)}")
    for name in ood_tasks(config):
        tasks.get(name)  # a typo fails here, with "did you mean", before anything is trained
    check_inputs(train_config)
    return Experiment(config, train_config, sampling)


def check_inputs(config: TrainConfig) -> None:
    """Fail before anything runs on a ``--model`` that is not there or a ``--train-data`` file that is
    missing or has a malformed row (the error names the file line): every method needs both, the base
    included (its token-probability histogram reads the training rows)."""
    resolve(config.model)
    if config.train_data:
        read_rows(config.train_data)


def ood_tasks(config: ExperimentConfig) -> list[str]:
    """The other tasks scored as out-of-domain splits of ``config.task``."""
    if config.ood_tasks is None:
        return list(tasks.get(config.task).ood_tasks)
    return [name.strip() for name in config.ood_tasks.split(",") if name.strip()]


def _evaluate(experiment: Experiment, model: str, samples_dir: Path) -> dict[str, dict[str, Any]]:
    """Scores on every evaluation split of the task, then on each OOD task: its splits become
    ``<task>`` (a one-split task such as humaneval) or ``<task>/<split>``, all with role ``ood``."""
    config = experiment.config
    evaluate = lambda name, folder: evaluate_task(  # noqa: E731
        model,
        name,
        limit=config.eval_limit,
        sampling=experiment.sampling,
        samples_dir=folder,
        device=experiment.train.device,
        min_pixels=experiment.train.min_pixels,  # images are seen as in training
        max_pixels=experiment.train.max_pixels,
    )
    scores = evaluate(config.task, samples_dir)
    for name in ood_tasks(config):
        other = evaluate(name, samples_dir / name)
        for split, score in other.items():
            scores[name if len(other) == 1 else f"{name}/{split}"] = score | {"role": "ood"}
    for score in scores.values():
        score["decoding"] = _decoding(experiment.sampling)
    return scores


def _decoding(sampling: Sampling) -> str:
    if sampling.greedy:
        return "greedy"
    return f"temperature={sampling.temperature}, top_p={sampling.top_p}"


def method_config(experiment: Experiment, method: str, run_dir: Path) -> TrainConfig:
    """The training configuration of ``method``: only the objective fields differ between methods."""
    config = replace(experiment.train, objective=method, output_dir=str(run_dir))
    return config if method == "dft" else replace(config, dft_min_weight=0.0, dft_alpha=1.0)


def hparams_of(config: TrainConfig, world_size: int) -> dict[str, Any]:
    """What a record keeps of a training configuration: everything that changes the trained model."""
    return {k: v for k, v in asdict(config).items() if k not in NOT_HPARAMS} | {"world_size": world_size}


def evaluation_of(experiment: Experiment, method: str) -> dict[str, Any]:
    """How a method's scores are made; with the hyperparameters, what makes a record reusable."""
    spec = {
        "limit": experiment.config.eval_limit,
        "sampling": asdict(experiment.sampling),
        "ood_tasks": ood_tasks(experiment.config),
        "prob_rows": experiment.config.prob_rows,
    }
    if method == "base":
        return spec
    return spec | {"eval_every": experiment.train.eval_every, "curve_limit": experiment.train.curve_limit}


def _train(config: TrainConfig, nproc: int, skip_finished: bool) -> dict[str, Any]:
    """Train, or with ``skip_finished`` reuse a finished training of the same configuration in the run
    folder, or continue it from its last checkpoint."""
    run_dir = Path(config.output_dir)
    if skip_finished:
        summary_path = run_dir / "train_summary.json"
        if summary_path.exists():
            try:
                summary = json.loads(summary_path.read_text())
                done = hparams_of(TrainConfig(**summary["config"]), summary["world_size"])
            except (ValueError, TypeError, KeyError):  # cut short, or written by another version
                summary, done = {}, None
            if done == hparams_of(config, nproc) and Path(summary["model_dir"]).is_dir():
                print(f"[{config.objective}] reusing the finished training in {run_dir}", file=sys.stderr)
                return summary
        if latest_checkpoint(run_dir) is not None:
            print(f"[{config.objective}] continuing from {latest_checkpoint(run_dir)}", file=sys.stderr)
            config = replace(config, resume=True)
    if nproc == 1:
        return train(config)
    flags = []
    for f in fields(TrainConfig):
        value = getattr(config, f.name)
        if value is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        flags += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
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
    return json.loads((run_dir / "train_summary.json").read_text())


def run_root(experiment: Experiment) -> Path:
    config = experiment.config
    name = config.name or f"{config.task}-{results.backbone_slug(backbone_name(experiment.train.model))}"
    return Path(config.runs_dir) / name


def run(experiment: Experiment) -> list[Path]:
    """Run every method; returns the paths of the records written (or found finished)."""
    found = [run_method(experiment, method) for method in experiment.config.methods.split(",")]
    return [path for path in found if path is not None]


@dataclass
class MethodRun:
    """Where one method's run of an experiment goes, and what identifies its record."""

    method: str
    train: TrainConfig  # output_dir is the run folder
    slot: dict[str, Any]  # task, backbone, method, hparams: with ``evaluation``, the record's identity
    evaluation: dict[str, Any]
    record: Path

    @property
    def run_dir(self) -> Path:
        return Path(self.train.output_dir)


def plan_method(experiment: Experiment, method: str) -> MethodRun:
    config = experiment.config
    backbone = backbone_name(experiment.train.model)
    train_config = method_config(experiment, method, run_root(experiment) / method)
    hparams = {} if method == "base" else hparams_of(train_config, config.nproc_per_node)
    slot = {"task": config.task, "backbone": backbone, "method": method, "hparams": hparams}
    target = results.record_path(slot, config.results_dir)
    if method != "base":  # one folder per configuration: the runs of a sweep do not share checkpoints
        train_config = replace(train_config, output_dir=str(run_root(experiment) / target.stem))
    return MethodRun(method, train_config, slot, evaluation_of(experiment, method), target)


def status(planned: MethodRun) -> str:
    """``done`` (its record exists, same configuration and evaluation), ``running`` (another process
    holds it), ``partial`` (a run folder with a checkpoint or a finished training but no record) or
    ``todo``."""
    if results.finished(planned.record, planned.slot, planned.evaluation):
        return "done"
    if results.is_locked(planned.record):
        return "running"
    run_dir = planned.run_dir
    if planned.method != "base" and (
        (run_dir / "train_summary.json").exists() or latest_checkpoint(run_dir) is not None
    ):
        return "partial"
    return "todo"


def run_method(experiment: Experiment, method: str) -> Path | None:
    """Train (unless ``base``), evaluate and record one method; returns the record's path, or None
    when another process holds this exact run (two sweeps sharing a results folder)."""
    config, task = experiment.config, tasks.get(experiment.config.task)
    planned = plan_method(experiment, method)
    train_config, slot, target, run_dir = planned.train, planned.slot, planned.record, planned.run_dir
    backbone, hparams, evaluation = slot["backbone"], slot["hparams"], planned.evaluation
    with results.record_lock(target) as held:
        if not held:
            print(f"[{method}] {target} is being made by another process; skipped", file=sys.stderr)
            return None
        if config.skip_finished and results.finished(target, slot, evaluation):
            print(f"[{method}] finished before: {target}", file=sys.stderr)
            return target
        started = time.time()
        data: dict[str, Any] = {}
        model, curve = experiment.train.model, None
        if method != "base":
            summary = _train(train_config, config.nproc_per_node, config.skip_finished)
            model, curve = summary["model_dir"], summary.get("curve")
            data = {
                "train_rows": summary["rows"],
                "train_examples": summary["examples"],
                **{k: v for k, v in summary["overlong"].items() if k != "policy"},
                "trained_tokens_per_s": round(summary["trained_tokens_per_s"] or 0.0, 1),
                "gradient_accumulation": summary["gradient_accumulation"],
            }
        evaluated = ", ".join([*task.eval_splits, *ood_tasks(config)])
        print(f"[{method}] evaluating {model} on {evaluated}", file=sys.stderr)
        scores = _evaluate(experiment, model, run_dir / "samples")
        histogram = None
        if config.prob_rows:
            histogram = token_probs.token_probability_histogram(model, train_config, rows=config.prob_rows)
        record = results.make_record(
            task=task.name,
            domain=task.domain,
            backbone=backbone,
            method=method,
            hparams=hparams,
            data=data,
            scores=scores,
            wall_time_s=time.time() - started,
            run_dir=str(run_dir),
            evaluation=evaluation,
            curve=curve,
            token_probs=histogram,
        )
        path = results.write_record(record, config.results_dir)
    line = ", ".join(f"{split} {100 * s['value']:.1f}" for split, s in scores.items())
    print(f"[{method}] {line}; record: {path}", file=sys.stderr)
    return path


def main(argv: list[str] | None = None) -> int:
    transformers.utils.logging.disable_progress_bar()  # per-shard loading bars drown the real progress
    try:
        experiment = parse_config(argv)
        written = run(experiment)
        paths = leaderboard.write(experiment.config.results_dir, experiment.config.leaderboard_dir)
    except (TrainingError, DataError, ValueError, KeyError, FileNotFoundError) as error:
        print(f"error: {error.args[0] if isinstance(error, KeyError) else error}", file=sys.stderr)
        return 1
    print("records: " + ", ".join(str(p) for p in written))
    print("leaderboards: " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
