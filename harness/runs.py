"""What the experiment, the sweep and the continuum share: one method of one configuration planned,
trained (or a finished training reused), evaluated and recorded; the replicates of a configuration;
the reference comparison; and the command that trains a method on several nodes.

A record that exists is never replaced silently: a finished one of exactly this run is reused, one
of the same configuration evaluated otherwise stops the run before any work, and ``--redo`` runs
again and replaces them, printing which scores changed.

>>> from harness.experiment import parse_experiment
>>> [(method, seeded.train.seed) for seeded, method in replicates(parse_experiment(["--seeds", "0", "1"]))]
[('base', 0), ('sft', 0), ('dft', 0), ('sft', 1), ('dft', 1)]
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import tasks
from harness import environment, identity, results, selfgen, token_probs
from harness.checkpoint import latest_checkpoint
from harness.config import HPARAM_KEYS, OBJECTIVES, Sampling, TrainConfig, objective_defaults, to_flags
from harness.errors import RecordError, TrainingError
from harness.evaluate import evaluate_task
from harness.models import backbone_name
from harness.objectives import BASE
from harness.resolve import Experiment, ood_task_names
from harness.train import train


def _evaluate(experiment: Experiment, model: str, samples_dir: Path) -> dict[str, dict[str, Any]]:
    """Scores on every evaluation split of the task, then on each OOD task: its splits become
    ``<task>`` (a one-split task such as humaneval) or ``<task>/<split>``, all with role ``ood``."""
    config = experiment.config

    def evaluate(name: str, folder: Path) -> dict[str, dict[str, Any]]:
        # lm-eval as the backend: checked in resolve (text tasks, chat template, greedy)
        return evaluate_task(model, name, replace(experiment.evaluation, samples_dir=str(folder)))

    main = tasks.get(config.task)
    # A training set scored only on its benchmarks (numina-math-cot) has nothing of its own to score.
    scores = evaluate(config.task, samples_dir) if main.eval_splits else {}
    decoding = decoding_label(experiment.sampling.resolved(main.protocol))
    for score in scores.values():
        score["decoding"] = decoding
        if main.title and len(scores) == 1:
            score["title"] = main.title
    for name in ood_task_names(config):
        other, task = evaluate(name, samples_dir / name), tasks.get(name)
        decoding = decoding_label(experiment.sampling.resolved(task.protocol))
        for split, score in other.items():
            labels = {"title": task.title} if task.title and len(other) == 1 else {}
            key = name if len(other) == 1 else f"{name}/{split}"
            scores[key] = score | {"role": "ood", "decoding": decoding, **labels}
    return scores


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
    if experiment.config.eval_backend != "harness":  # likewise: recorded only where it is not the default
        spec["backend"] = experiment.config.eval_backend
    if experiment.config.generation_backend != "hf":  # vLLM's bf16 kernels: greedy scores may differ a little
        spec["generation_backend"] = experiment.config.generation_backend
    if method == BASE:
        return spec
    return spec | {"eval_every": experiment.train.eval_every, "curve_limit": experiment.train.curve_limit}


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


def run_root(experiment: Experiment) -> Path:
    config = experiment.config
    name = config.name or f"{config.task}-{identity.backbone_slug(backbone_name(experiment.train.model))}"
    return Path(config.runs_dir) / name


def replicates(experiment: Experiment) -> list[tuple[Experiment, str]]:
    """``(experiment, method)`` of every run: the base once (it trains nothing, so has no seed),
    then every trained method for each of ``--seeds``, seed by seed."""
    methods = experiment.config.method_list
    runs = [(experiment, BASE)] if BASE in methods else []
    for seed in experiment.config.seeds:
        seeded = replace(experiment, train=replace(experiment.train, seed=seed))
        runs += [(seeded, method) for method in methods if method != BASE]
    return runs


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


def run(experiment: Experiment) -> list[Path]:
    """Run every method and seed; returns the paths of the records written (or found finished)."""
    runs = replicates(experiment)
    check_existing([plan_method(seeded, method) for seeded, method in runs], experiment.config.redo)
    selfgen.origin(experiment.train.train_data)  # a selfgen folder's selfgen.json: checked before any work
    if experiment.eval_template != experiment.train.prompt_template and any(m != BASE for _, m in runs):
        print(
            f"warning: the models are trained with the prompt template {experiment.train.prompt_template}"
            f" and evaluated with {experiment.eval_template} (as the paper did: chat template in"
            " training, qwen-boxed in evaluation); both are in every record",
            file=sys.stderr,
        )
    found = [run_method(seeded, method) for seeded, method in runs]
    return [path for path in found if path is not None]


def compare_with_reference(paths: list[Path], config) -> list[str]:
    """One line per record made: whether its scores equal those of the reference record of the same
    run in ``config.reference_dir`` (the committed results), and if not, which scores differ, each
    against the reference's seed-to-seed spread (:func:`harness.results.spread_changes`), and what
    is known to differ (:func:`harness.environment.differences`: the CPU's numerics or the
    GPU, packages), or that nothing known does, with the commits. Nothing when there is no reference
    folder or it is the results folder."""
    if not config.reference_dir or Path(config.reference_dir).resolve() == Path(config.results_dir).resolve():
        return []
    lines = []
    for path in paths:
        record = results.read_record(path)
        name = f"{record['method']}" + (
            f" seed {seed}" if (seed := identity.seed_of(record)) is not None else ""
        )
        reference = identity.record_path(record, config.reference_dir)
        slot = {key: record[key] for key in ("task", "backbone", "method", "hparams")}
        if not reference.exists():
            lines.append(f"[{name}] no reference record of this configuration in {config.reference_dir}/")
            continue
        why = results.conflict(reference, slot, record.get("evaluation", {}))
        if why:
            lines.append(f"[{name}] the reference {reference} was made differently ({why}): not compared")
            continue
        theirs_record = results.read_record(reference)  # valid: conflict() read it above
        if not results.score_changes(theirs_record, record):
            lines.append(f"[{name}] matches the reference {reference}: every score is identical")
            continue
        changes = results.spread_changes(theirs_record, record, _reference_seeds(reference))
        differs = environment.differences(theirs_record, record)
        known = f"what differs: {', '.join(differs)}" if differs else _nothing_known(theirs_record, record)
        lines.append(
            f"[{name}] differs from the reference {reference}: {'; '.join(changes)} (reference -> yours); "
            + known
        )
    return lines


def _reference_seeds(reference: Path) -> list[dict[str, Any]]:
    """The records of every seed of the reference's configuration beside it (itself included)."""
    stem = reference.stem.rsplit("-seed", 1)[0]
    found = []
    for path in sorted(reference.parent.glob(f"{stem}-seed*.json")):
        try:
            found.append(results.read_record(path))
        except RecordError:  # a malformed neighbour says nothing about the spread
            continue
    return found


def _nothing_known(reference: dict[str, Any], yours: dict[str, Any]) -> str:
    """The line's end when the packages and the numerics agree: the code is what is left to say."""
    key = environment.of_record(yours)["numerics"]
    theirs, ours = reference["provenance"], yours["provenance"]
    code = (
        f"the code differs (commit {str(theirs.get('commit'))[:7]} -> {str(ours.get('commit'))[:7]})"
        if theirs.get("commit") != ours.get("commit")
        else "the same commit"
    )
    if ours.get("dirty") or theirs.get("dirty"):
        code += ", with uncommitted changes"
    return f"nothing known differs (same packages, numerics {key}); {code}"


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


def run_method(experiment: Experiment, method: str) -> Path | None:
    """Train (unless ``base``), evaluate and record one method; returns the record's path, or None
    when another process holds this exact run (two sweeps sharing a results folder). A finished
    record of exactly this run is reused unless ``--redo``; one that differs is replaced only with
    ``--redo`` (which prints the scores that changed)."""
    config, task = experiment.config, tasks.get(experiment.config.task)
    planned = plan_method(experiment, method)
    train_config, slot, target, run_dir = planned.train, planned.slot, planned.record, planned.run_dir
    backbone, hparams, evaluation = slot["backbone"], slot["hparams"], planned.evaluation
    name = method if method == BASE else f"{method} seed {train_config.seed}"
    with results.record_lock(target) as held:
        if not held:
            print(f"[{name}] {target} is being made by another process; skipped", file=sys.stderr)
            return None
        if not config.redo and results.finished(target, slot, evaluation):
            print(f"[{name}] finished before, reused: {target}", file=sys.stderr)
            if method == BASE and config.prob_rows:
                _add_deciding_strength(target, experiment.train.model, train_config, config)
            return target
        check_existing([planned], config.redo)  # it may have appeared since the run started
        previous = None
        if config.redo and target.exists():
            try:
                previous = results.read_record(target)
            except RecordError:  # a malformed file: nothing to compare with
                print(f"[{name}] --redo replaces the malformed {target}", file=sys.stderr)
        started = time.time()
        data: dict[str, Any] = {}
        model, curve = experiment.train.model, None
        if method != BASE:
            summary = train_or_reuse(train_config, config.nproc_per_node, not config.redo, config.nnodes)
            model, curve = summary["model_dir"], summary.get("curve")
            data = {
                "train_rows": summary["rows"],
                "train_examples": summary["examples"],
                **({"noisy_rows": summary["noisy_rows"]} if summary.get("noisy_rows") else {}),
                **{k: v for k, v in summary["overlong"].items() if k != "policy"},
                "trained_tokens_per_s": round(summary["trained_tokens_per_s"] or 0.0, 1),
                "gradient_accumulation": summary["gradient_accumulation"],
            }
            made = selfgen.origin(train_config.train_data)
            if made is not None:  # the offline setting: whose answers, how sampled, how many kept
                data["selfgen"] = made
        evaluated = ", ".join([*task.eval_splits, *ood_task_names(config)])
        print(f"[{name}] evaluating {model} on {evaluated}", file=sys.stderr)
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
            device=experiment.train.device,
            evaluation=evaluation,
            curve=curve,
            token_probs=histogram,
        )
        path = results.write_record(record, config.results_dir)
    line = ", ".join(f"{split} {100 * s['value']:.1f}" for split, s in scores.items())
    print(f"[{name}] {line}; record: {path}", file=sys.stderr)
    if previous is not None:
        changes = results.score_changes(previous, record)
        print(
            f"[{name}] --redo replaced {path}: "
            + ("; ".join(changes) if changes else "every score is unchanged"),
            file=sys.stderr,
        )
    return path


def _add_deciding_strength(path: Path, model: str, train_config: TrainConfig, config) -> None:
    """A start's strength on the tokens that decide the grade, added to its base record made before
    it was measured: the histogram is measured again and, where it is the recorded one (the same
    tokens and mean: the same model, rows and numerics), its ``deciding`` part is kept; no score is
    touched. Nothing where the record has it, or where the task names no deciding tokens."""
    record = results.read_record(path)
    recorded = record.get("token_probs")
    if not isinstance(recorded, dict) or "deciding" in recorded:
        return
    histogram = token_probs.token_probability_histogram(model, train_config, rows=config.prob_rows)
    if "deciding" not in histogram:
        return
    if (histogram["tokens"], histogram["counts"]) != (recorded.get("tokens"), recorded.get("counts")) or abs(
        histogram["mean"] - recorded.get("mean", -1)
    ) > 1e-6:
        print(
            f"[base] {path}: its token histogram is not the one measured now (another model or numerics); "
            "the deciding-token strength is left out",
            file=sys.stderr,
        )
        return
    record["token_probs"] = recorded | {"deciding": histogram["deciding"]}
    results.write_record(record, config.results_dir)
    print(
        f"[base] {path}: the deciding-token strength added (p̄ {histogram['deciding']['mean']:.3f} over "
        f"{histogram['deciding']['tokens']} tokens); its scores are untouched",
        file=sys.stderr,
    )


def read_json(path: Path) -> Any:
    """The JSON at ``path``, or None when it is missing or unreadable (a half-written file)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
