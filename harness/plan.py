"""Planning a run: what one method of an experiment trains (its configuration, the hyperparameters
its record keeps, how its scores are made), where its folder and record go, the replicates of a
configuration, and what state a planned run is in. Nothing here trains or evaluates.

>>> from harness.experiment import parse_experiment
>>> [(method, seeded.train.seed) for seeded, method in replicates(parse_experiment(["--seeds", "0", "1"]))]
[('base', 0), ('sft', 0), ('dft', 0), ('sft', 1), ('dft', 1)]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import tasks
from harness import identity, results
from harness.checkpoint import latest_checkpoint
from harness.config import HPARAM_KEYS, OBJECTIVES, Sampling, TrainConfig, objective_defaults
from harness.data.rows import training_digest
from harness.errors import RecordError
from harness.files import read_json
from harness.models import backbone_name
from harness.objectives import BASE
from harness.resolve import Experiment, ood_task_names


def decoding_label(sampling: Sampling) -> str:
    if sampling.greedy:
        return "greedy"
    return f"temperature={sampling.temperature}, top_p={sampling.top_p}"


def sampling_of(experiment: Experiment) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """How the task is sampled (the flags given, the rest from its protocol), and each OOD task that
    its own protocol samples otherwise. The generation budget stays unset where the flags leave it:
    it is the task's own, part of the task."""

    def resolved(name: str) -> dict[str, Any]:
        return asdict(experiment.sampling.resolved(tasks.get(name).protocol))

    main = resolved(experiment.config.task)
    others = {name: resolved(name) for name in ood_task_names(experiment.config)}
    return main, {name: spec for name, spec in others.items() if spec != main}


def method_config(experiment: Experiment, method: str, run_dir: Path) -> TrainConfig:
    """The training configuration of ``method``: only the objective fields differ between methods
    (a parameter that ``method`` does not read is at its default: ``--q`` is q-family's alone)."""
    objective = method if method in OBJECTIVES else experiment.train.objective  # the base trains nothing
    config = replace(experiment.train, objective=objective, output_dir=str(run_dir))
    return replace(config, **objective_defaults(objective))


def hparams_of(config: TrainConfig, world_size: int, _seen: frozenset[str] = frozenset()) -> dict[str, Any]:
    """What a record keeps of a training configuration: every hyperparameter (its role in
    :mod:`harness.config`), and the number of ranks. The starting model is named by what it is
    (:func:`model_identity`), not by the folder it sits in."""
    values = asdict(config)
    hparams = {key: values[key] for key in HPARAM_KEYS} | {"world_size": world_size}
    data = training_digest(config.task, config.train_data)  # an edited file is another configuration
    hparams |= {"train_data_sha256": data} if data is not None else {}
    return hparams | {"model": model_identity(config.model, _seen)}


def model_identity(model: str | None, _seen: frozenset[str] = frozenset()) -> str | None:
    """``model`` as a record's ``hparams.model`` names it: as given (``tiny``, a hub id, a folder),
    except a model trained by the harness (a run's ``model`` folder beside its ``train_summary.json``,
    such as a continuum warm-up), which is named by its own start and training, recursively:
    ``tiny + sft on 64 rows (4fea2465, seed 0)``, or ``tiny + sft for 48 steps on 1500 rows (...)``
    when its length was set in steps. So the same trained start has one name whatever
    the runs folder is called or where the command runs from, and another training is another name.

    >>> model_identity("tiny"), model_identity("runs/not-trained-yet/model")
    ('tiny', 'runs/not-trained-yet/model')
    """
    if model is None:
        return None
    folder = Path(model).expanduser()
    summary = read_json(folder.parent / "train_summary.json") if folder.name == "model" else None
    here = str(folder.resolve())
    if here in _seen:  # a loop of run folders, each retrained from the other since: named by its path
        return model
    try:
        trained = TrainConfig(**summary["config"])
        hparams = hparams_of(trained, summary["world_size"], _seen | {here})
        rows = summary["rows"]
    except (TypeError, KeyError, ValueError):  # not a run's folder, not trained yet, or another version's
        return model
    # What it was trained on, as its summary kept it (its file may have been edited since).
    hparams.pop("train_data_sha256", None)
    if summary.get("train_data_sha256") is not None:
        hparams["train_data_sha256"] = summary["train_data_sha256"]
    name = identity.variant(trained.objective, hparams)
    length = f" for {trained.steps} steps" if trained.steps else ""  # a warm-up made to a target's length
    return f"{hparams['model']} + {name}{length} on {rows} rows ({identity.config_id(hparams)}, seed {trained.seed})"


def evaluation_of(experiment: Experiment, method: str) -> dict[str, Any]:
    """How a method's scores are made; with the hyperparameters, what makes a record reusable."""
    sampling, ood_sampling = sampling_of(experiment)
    spec = {
        "limit": experiment.config.eval_limit,
        "prompt_template": experiment.eval_template,
        "sampling": sampling,
        "ood_tasks": ood_task_names(experiment.config),
        "prob_rows": experiment.config.prob_rows,
    }
    if ood_sampling:  # only where a benchmark's protocol differs: older records stay identical
        spec["ood_sampling"] = ood_sampling
    # What the evaluated tasks read from local files ($HARNESS_DATA copies), only where one does: an
    # edited copy is another evaluation, never a finished record reused.
    names = [experiment.config.task, *ood_task_names(experiment.config)]
    data = {name: found for name in names if (found := tasks.get(name).data_digest()) is not None}
    if data:
        spec["data"] = data
    if experiment.config.eval_backend != "harness":  # likewise: recorded only where it is not the default
        spec["backend"] = experiment.config.eval_backend
    if experiment.config.generation_backend != "hf":  # vLLM's bf16 kernels: greedy scores may differ a little
        spec["generation_backend"] = experiment.config.generation_backend
    if method == BASE:
        return spec
    return spec | {"eval_every": experiment.train.eval_every, "curve_limit": experiment.train.curve_limit}


def run_root(experiment: Experiment) -> Path:
    config = experiment.config
    name = config.name or f"{config.task}-{identity.backbone_slug(backbone_name(experiment.train.model))}"
    return Path(config.runs_dir) / name


def replicates(experiment: Experiment) -> list[tuple[Experiment, str]]:
    """``(experiment, method)`` of every run: the base once (it trains nothing, so has no seed),
    then every trained method for each of ``--seeds``, seed by seed."""
    methods = experiment.config.methods
    runs = [(experiment, BASE)] if BASE in methods else []
    for seed in experiment.config.seeds:
        seeded = replace(experiment, train=replace(experiment.train, seed=seed))
        runs += [(seeded, method) for method in methods if method != BASE]
    return runs


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
    hparams = {} if method == BASE else hparams_of(train_config, config.world_size)
    slot = {"task": config.task, "backbone": backbone, "method": method, "hparams": hparams}
    target = identity.record_path(slot, config.results_dir)
    if method != BASE:  # one folder per configuration: the runs of a sweep do not share checkpoints
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
    if planned.method != BASE and (
        (run_dir / "train_summary.json").exists() or latest_checkpoint(run_dir) is not None
    ):
        return "partial"
    return "todo"


def check_existing(planned: list[MethodRun], redo: bool) -> None:
    """Stop before any work when a record of one of the planned runs exists but is not of exactly
    that run (another evaluation, or malformed) and ``--redo`` was not given: it is never replaced
    silently."""
    if redo:
        return
    clashes = [(p.record, why) for p in planned if (why := results.conflict(p.record, p.slot, p.evaluation))]
    if clashes:
        path, why = clashes[0]
        more = f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else ""
        raise RecordError(
            f"{path} holds a record of this configuration that differs: {why}{more}; --redo replaces"
            " it (printing which scores changed), or give another --results-dir"
        )
