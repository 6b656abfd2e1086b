"""The settings of the commands built on the training settings: the experiment (and the sweep and
the continuum on top of it), evaluation, self-generated data, token probabilities and the
leaderboard. A setting two commands share is one declaration (:func:`eval_limit`,
:func:`eval_template`, :func:`results_dir`, :func:`leaderboard_dir`, :func:`dry_run`, ``training_setting``), so
it has one flag and one help in all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.config.checks import RUN, at_least, check_fields, field_names, makeable_folder, setting
from harness.config.presets import PRESETS
from harness.config.sampling import eval_backend, generation_backend, tensor_parallel_size
from harness.config.settings import METHODS, PROB_ROWS, PROMPT_TEMPLATES
from harness.errors import ConfigError
from harness.objectives import BASE, BASELINE, SUBJECT


def eval_limit() -> Any:
    """How many examples of each split are evaluated: one declaration for every command."""
    return setting(None, "evaluate the first N examples of each split", check=at_least(1))


def eval_template(default: str | None, default_note: str = "") -> Any:
    """How questions are rendered when a model answers them (evaluation, self-generated data): one
    declaration for every command; ``default_note`` says where an unset value comes from."""
    return setting(
        default,
        "how a task's questions become prompt text when the model answers them: the backbone's chat "
        "template, or a raw template of the paper's math evaluation" + default_note,
        role=RUN,
        choices=PROMPT_TEMPLATES,
    )


def results_dir(default: str, note: str = "") -> Any:
    """The folder of run records: one declaration for the commands that write or read them."""
    return setting(
        default,
        "the folder of JSON run records, one per evaluated model" + note,
        role=RUN,
        check=makeable_folder,
    )


def leaderboard_dir(default: str, what: str = " (the markdown pages and plots/)") -> Any:
    """The folder of generated pages: one declaration for the commands that write them; ``what``
    says which pages the command writes there."""
    return setting(
        default, "the folder of the generated leaderboard pages" + what, role=RUN, check=makeable_folder
    )


def dry_run(what: str) -> Any:
    """Print instead of run: one declaration for the commands that plan runs; ``what`` says what the
    command's plan shows."""
    return setting(False, f"print the plan and stop ({what})")


@dataclass
class ExperimentConfig:
    """``python -m harness.experiment``: base, SFT and DFT of one configuration, evaluated and recorded."""

    task: str = setting("math-words", "registered task to train and evaluate", per_cell=True)
    methods: list[str] = setting(
        [BASE, BASELINE, SUBJECT],
        "the methods, space-separated: base (the untouched backbone, evaluated only) and objectives",
        choices=METHODS,
        per_cell=True,
    )
    preset: str = setting(
        "laptop",
        "hyperparameter preset (explicit flags win over it; default: the recipe's, else the packaged "
        "model's, else laptop)",
        choices=tuple(PRESETS),
    )
    recipe: str | None = setting(
        None,
        "a row of the DFT paper's tables: its backbone, data, hyperparameters and evaluation as "
        "defaults (explicit flags win); python -m harness.recipes lists them",
    )
    name: str | None = setting(None, "run folder name under --runs-dir")
    seeds: list[int] | None = setting(
        None,
        "train every method once per seed (each seed its own record; the pages average them with "
        "the seed-to-seed variance) (default: the preset's seed, 0)",
        check=at_least(0),
    )
    runs_dir: str = setting("runs", "checkpoints, logs and samples go here", check=makeable_folder)
    results_dir: str = results_dir(
        "runs/results",
        " (the committed reference records are in results/: give --results-dir results to add to them)",
    )
    leaderboard_dir: str = leaderboard_dir("runs/leaderboards")
    reference_dir: str = setting(
        "results",
        "committed reference records: each record made is compared with the one of its "
        "configuration there ('' = no comparison)",
    )
    eval_limit: int | None = eval_limit()
    eval_template: str | None = eval_template(
        None,
        " (default: --prompt-template, the training one; the paper trained with the chat template "
        "and evaluated with qwen-boxed and the like)",
    )
    eval_backend: str = eval_backend()
    generation_backend: str = generation_backend()
    tensor_parallel_size: int = tensor_parallel_size()
    ood_tasks: list[str] | None = setting(
        None,
        "tasks also scored as out-of-domain splits, space-separated (default: the task's own, e.g. "
        "humaneval for code-lists; the flag with no task: none)",
        may_be_empty=True,
    )
    nproc_per_node: int = setting(1, "training processes (torchrun) on this node", check=at_least(1))
    nnodes: int = setting(
        1,
        "nodes the training runs on: with more than one, each method is first trained by the torchrun "
        "command that --dry-run prints, run on every node, and this command then evaluates and records "
        "(the run folder on a file system all nodes share)",
        check=at_least(1),
    )
    prob_rows: int = setting(
        PROB_ROWS,
        "training rows whose target-token probabilities are histogrammed (0 = off)",
        check=at_least(0),
    )
    redo: bool = setting(
        False,
        "run again and replace the records that exist for these configurations (printing which "
        "scores changed); without it a finished record is reused, one evaluated differently is an "
        "error, and a half-done training continues from its model or last checkpoint",
    )

    dry_run: bool = dry_run(
        "the resolved configuration and the commands that run it on one node and on several"
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.seeds is not None:
            repeated = sorted({seed for seed in self.seeds if self.seeds.count(seed) > 1})
            if repeated:
                raise ConfigError(
                    f"--seeds {' '.join(map(str, self.seeds))}: seed {repeated[0]} is given twice"
                )
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ConfigError(f"--methods: unknown {', '.join(unknown)}; valid: {', '.join(METHODS)}")
        if not self.methods:
            raise ConfigError("--methods: give at least one method")

    @property
    def world_size(self) -> int:
        """Training processes, all nodes together."""
        return self.nnodes * self.nproc_per_node


PER_CELL = frozenset(field_names(ExperimentConfig, per_cell=True))
