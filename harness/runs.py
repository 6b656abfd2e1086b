"""Recording a run: one method of one configuration trained (or a finished training reused),
scored and recorded; every method and seed of an experiment. What the experiment, the sweep and the
continuum share; the planning, the launch, the scoring and the reference comparison are rooms of
their own (:mod:`harness.plan`, :mod:`harness.launch`, :mod:`harness.scoring`, :mod:`harness.reference`).

A record that exists is never replaced silently: a finished one of exactly this run is reused, one
of the same configuration evaluated otherwise stops the run before any work, and ``--redo`` runs
again and replaces them, printing which scores changed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import tasks
from harness import offline, probabilities, results
from harness.config import TrainConfig
from harness.errors import RecordError
from harness.launch import train_or_reuse
from harness.objectives import BASE
from harness.plan import check_existing, plan_method, replicates
from harness.resolve import Experiment, ood_task_names
from harness.scoring import score_model


def run(experiment: Experiment) -> list[Path]:
    """Run every method and seed; returns the paths of the records written (or found finished)."""
    runs = replicates(experiment)
    check_existing([plan_method(seeded, method) for seeded, method in runs], experiment.config.redo)
    offline.origin(experiment.train.train_data)  # a selfgen folder's selfgen.json: checked before any work
    if experiment.eval_template != experiment.train.prompt_template and any(m != BASE for _, m in runs):
        print(
            f"warning: the models are trained with the prompt template {experiment.train.prompt_template}"
            f" and evaluated with {experiment.eval_template} (as the paper did: chat template in"
            " training, qwen-boxed in evaluation); both are in every record",
            file=sys.stderr,
        )
    found = [run_method(seeded, method) for seeded, method in runs]
    return [path for path in found if path is not None]


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
            made = offline.origin(train_config.train_data)
            if made is not None:  # the offline setting: whose answers, how sampled, how many kept
                data["selfgen"] = made
        evaluated = ", ".join([*task.eval_splits, *ood_task_names(config)])
        print(f"[{name}] evaluating {model} on {evaluated}", file=sys.stderr)
        scores = score_model(experiment, model, run_dir / "samples")
        histogram = None
        if config.prob_rows:
            histogram = probabilities.token_probability_histogram(model, train_config, rows=config.prob_rows)
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
    histogram = probabilities.token_probability_histogram(model, train_config, rows=config.prob_rows)
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
