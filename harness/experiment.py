"""The whole comparison in one command: evaluate the base, train SFT and DFT, evaluate, record, render.

``nox -s train-math`` runs ``python -m harness.experiment --task math-words``. For every method in
``--methods`` (default ``base,sft,dft``) and every seed in ``--seeds`` (default ``0``) it trains from
the same backbone with identical data, seed and hyperparameters (only the objective differs),
evaluates every split of the task, writes one JSON record per method and seed to ``--results-dir``
(default ``runs/results``) and renders the leaderboards from all records there (default
``runs/leaderboards``). Each record made is then compared with the committed reference record of
its configuration in ``--reference-dir`` (``results/``): the same scores, or which differ and which
package versions differ with them.

A record that exists is never replaced silently: a finished one of exactly this run is reused, one
of the same configuration evaluated otherwise stops the run before any work, and ``--redo`` runs
again and replaces them, printing which scores changed.

Hyperparameters start from a preset (``--preset laptop`` by default: sized for the embedded tiny
model on a CPU; ``laptop-pretrained`` for ``--model smollm2-135m``; ``paper-math``, ``paper-code``
and ``paper-vlm`` are the DFT paper's training recipes) or from a recipe (``--recipe NAME``: one row
of the paper's tables, backbone, data and evaluation included; :mod:`harness.recipes`); any flag
given explicitly wins over both. ``--nproc-per-node N`` trains under ``torchrun`` with N processes;
``--nnodes N`` on N nodes, each running the ``torchrun`` command that ``--dry-run`` prints
(:func:`describe`), which also shows the resolved configuration and runs nothing.

>>> experiment = parse_experiment(["--steps", "2", "--eval-limit", "4"])
>>> experiment.train.steps, experiment.config.methods, experiment.config.eval_limit
(2, ['base', 'sft', 'dft'], 4)
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from harness import recipes
from harness.config import Parser, experiment_parser, preset_of
from harness.errors import ConfigError, command
from harness.objectives import BASE

if TYPE_CHECKING:
    from harness.resolve import Experiment

EXAMPLE_NODES, EXAMPLE_GPUS = 2, 8  # what --dry-run shows where the command line does not say


def parser(preset: dict[str, Any], description: str = "") -> Parser:
    """The experiment's command line: every experiment and training flag, defaults from ``preset``."""
    return experiment_parser(preset, Parser(prog="python -m harness.experiment", description=description))


def parse_experiment(argv: list[str] | None = None, description: str = "") -> Experiment:
    """``python -m harness.experiment``'s command line, resolved (default preset: ``laptop``).

    >>> experiment = parse_experiment(["--steps", "2", "--eval-limit", "4"])
    >>> experiment.train.steps, experiment.train.lr, experiment.config.methods
    (2, 0.001, ['base', 'sft', 'dft'])
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    preset = preset_of(argv)
    args = vars(parser(preset, description).parse_args(argv))  # a bad flag: one line, nothing loaded
    from harness.resolve import resolve_experiment  # import cost: tasks and torch, once the flags parse

    return resolve_experiment(args, preset)


def _without(argv: list[str], *flags: str) -> list[str]:
    """``argv`` less ``--dry-run`` (or an abbreviation argparse accepted) and ``flags`` with their
    values (``--flag V`` or ``--flag=V``).

    >>> _without(["--dry", "--nnodes", "2", "--lr=1e-4", "--nproc-per-node=8"], "--nnodes", "--nproc-per-node")
    ['--lr=1e-4']
    """
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("--dry"):
            continue
        elif arg in flags:
            skip = True
        elif arg.split("=", 1)[0] not in flags:
            kept.append(arg)
    return kept


def describe(experiment: Experiment, argv: list[str]) -> str:
    """What ``--dry-run`` prints: the resolved configuration (experiment, hyperparameters, how each
    task is scored), what the paper reports for a recipe, and the commands that run it on one node
    and on several.

    >>> text = describe(parse_experiment(["--recipe", "code-qwen2.5-3b"]), ["--recipe", "code-qwen2.5-3b"])
    >>> "paper-code" in text and "torchrun --nnodes=2 --nproc-per-node=8" in text
    True
    """
    # import cost: the planning reads tasks and models, only once a run is described
    import tasks
    from harness.launch import multinode_command
    from harness.plan import decoding_label, hparams_of, plan_method, replicates
    from harness.resolve import ood_task_names, resolve_train

    config, train = experiment.config, experiment.train
    rest = _without(argv, "--nproc-per-node", "--nnodes")  # each command sets them itself
    lines = []
    if config.recipe:
        row = recipes.recipe(config.recipe)
        lines.append(
            f"recipe {row.name}: {row.table} of {recipes.SOURCE}" + (f" ({row.note})" if row.note else "")
        )
        if row.selfgen:
            lines.append(
                "step 1, the training data: the backbone answers each training question, the task's grader "
                "keeps the right answers (rows) and pairs a right with a wrong one (pairs):"
            )
            lines.append("  " + row.selfgen_command(train.model))
            lines.append(f"step 2, train on {train.train_data} and evaluate (below)")
    shown = {k: v for k, v in asdict(config).items() if k != "dry_run"}
    lines.append("experiment: " + json.dumps(shown))
    lines.append("hyperparameters: " + json.dumps(hparams_of(train, config.world_size)))
    lines.append(f"evaluation (prompt template {experiment.eval_template}):")
    scored = [config.task] if tasks.get(config.task).eval_splits else []
    for name in [*scored, *ood_task_names(config)]:
        task = tasks.get(name)
        spec = experiment.sampling.resolved(task.protocol, task.max_new_tokens)
        budget = spec.max_new_tokens
        lines.append(
            f"  {name}: {decoding_label(spec)}, {spec.num_samples} sample(s) per prompt, {budget} new tokens"
        )
    if config.recipe:
        lines.append(f"the paper reports ({' / '.join(row.columns)}):")
        for method, numbers in (row.reported | row.context).items():
            lines.append(f"  {method}: {row.formatted(numbers)}")
        if not row.reported:
            lines.append("  (not transcribed here)")
    gpus = config.nproc_per_node if config.nproc_per_node > 1 else EXAMPLE_GPUS
    nodes = config.nnodes if config.nnodes > 1 else EXAMPLE_NODES
    lines.append(f"on one node ({gpus} GPUs):")
    try:
        resolve_train(train, gpus)  # the batch splits over the GPUs
        lines.append("  python -m harness.experiment " + shlex.join([*rest, "--nproc-per-node", str(gpus)]))
    except ConfigError as error:
        lines.append(f"  not with these settings: {error}")
    lines.append(
        f"on {nodes} nodes of {gpus} GPUs (a file system they share; MASTER_ADDR set to one of them):"
    )
    several = replace(config, nproc_per_node=gpus, nnodes=nodes)
    try:
        spread = replace(experiment, config=several, train=resolve_train(train, several.world_size))
    except ConfigError as error:
        lines.append(f"  not with these settings: {error}")
        return "\n".join(lines)
    lines.append("  1. on every node, one training after the other:")
    for seeded, method in replicates(spread):
        if method != BASE:
            lines.append("     " + multinode_command(plan_method(seeded, method).train, nodes, gpus))
    flags = [*rest, "--nproc-per-node", str(gpus), "--nnodes", str(nodes)]
    lines.append("  2. then on one node (evaluates the trained models and the base, and records them):")
    lines.append("     python -m harness.experiment " + shlex.join(flags))
    return "\n".join(lines)


@command
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    experiment = parse_experiment(argv, description=__doc__.split("\n\n")[0])
    # import cost: training and evaluation, only once the command line is known to be good
    import transformers

    from harness import leaderboard
    from harness.reference import compare_with_reference
    from harness.runs import run

    transformers.utils.logging.disable_progress_bar()  # per-shard loading bars drown the real progress
    if experiment.config.dry_run:
        print(describe(experiment, argv))
        return 0
    written = run(experiment)
    paths = leaderboard.write(experiment.config.results_dir, experiment.config.leaderboard_dir)
    comparison = compare_with_reference(written, experiment.config)
    print("records: " + ", ".join(str(p) for p in written))
    print("leaderboards: " + ", ".join(str(p) for p in paths))
    if comparison:
        print("compared with the committed reference records:")
        print("\n".join(comparison))
    return 0


if __name__ == "__main__":
    sys.exit(main())
