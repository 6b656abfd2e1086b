"""A run's model scored as its record keeps it: every evaluation split of its task, then each OOD
task, whose splits become the run's own OOD splits (``<task>`` or ``<task>/<split>``), each score
labelled with how it was decoded.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import tasks
from harness.evaluation import evaluate_task
from harness.plan import decoding_label
from harness.resolve import Experiment, ood_task_names


def score_model(experiment: Experiment, model: str, samples_dir: Path) -> dict[str, dict[str, Any]]:
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
