"""Every setting of the harness in one place, one concern per module: how a setting is declared and
checked (:mod:`~harness.config.checks`), the training settings and what their roles say
(:mod:`~harness.config.settings`), generation (:mod:`~harness.config.sampling`), the commands' own
settings (:mod:`~harness.config.commands`), the presets (:mod:`~harness.config.presets`) and the
flag builder (:mod:`~harness.config.flags`); this package's namespace holds them all.
:mod:`harness.resolve` is the one resolve step that every entry point runs before any data or
model loads.

Each field is declared once, with its default, its help text, the check its value must pass and its
**role**, and everything else is derived from those declarations:

- ``hparam``: changes the trained model. Kept in a record's ``hparams``, hashed into its config id,
  and checked on ``--resume`` (any change is refused, naming the field).
- ``objective``: an ``hparam`` that chooses the loss (``objective`` and the DFT variants). The SFT
  and DFT runs of one configuration differ only in these, so they are left out of the config id
  (that is how the leaderboard pairs them).
- ``run``: where, how fast or how watched a run happens (output folder, device, progress bar,
  checkpoints, training-time evaluation). May differ on resume; never in a record's ``hparams``.

More marks: ``axis`` (a sweep's grid axis: ``--lr``, ``--batch-size``), ``replicate`` (what varies
between replicates of one configuration: ``--seed``; left out of the config id, so the seeds of one
configuration share it and are averaged; the experiment and the sweep take a list, ``--seeds``),
``split`` (how the global batch is split: ``--micro-batch-size``), ``per_method`` (set by the experiment for each method:
``--output-dir``, ``--objective``, ``--resume``) and ``per_cell`` (set by the sweep for each cell:
the experiment's ``--task`` and ``--methods``).

Resolving a command line (:mod:`harness.resolve`): the preset's values (``--preset``) -> the
flags given -> the domain's defaults (``--task visual-math`` alone picks the embedded VLM,
``tiny-vl``) -> validation (every value, the batch split over the ranks, the task and OOD task
names, the model folder) -> the derived batch split. ``--micro-batch-size`` is the most examples
that fit in one forward pass on one rank; the micro-batch used is the largest that fits and divides
each rank's share of ``--batch-size``, with gradient accumulation making up the rest
(:func:`split_batch`). This module imports only the standard library: records and leaderboards read
it, and rendering a page must not load torch.

>>> split_batch(48, 32, 1)
(24, 2)
>>> TrainConfig(lr=-1.0)
Traceback (most recent call last):
...
harness.errors.ConfigError: --lr must be a positive number, got -1.0
>>> "lr" in HPARAM_KEYS, "objective" in OBJECTIVE_KEYS, "device" in HPARAM_KEYS
(True, True, False)
"""

from __future__ import annotations

from harness.config.checks import (
    HPARAM,
    OBJECTIVE,
    RUN,
    at_least,
    below_one,
    check_fields,
    field_names,
    flag,
    fraction,
    makeable_folder,
    non_negative,
    one_of,
    open_fraction,
    positive,
    setting,
)
from harness.config.commands import (
    PER_CELL,
    ExperimentConfig,
    dry_run,
    eval_limit,
    eval_template,
    leaderboard_dir,
    results_dir,
)
from harness.config.flags import (
    Parser,
    add_arguments,
    config_from,
    parse,
    to_flags,
)
from harness.config.parsers import experiment_parser, train_parser
from harness.config.presets import (
    MODEL_PRESETS,
    PRESETS,
    preset_of,
)
from harness.config.sampling import (
    SELFGEN_PROTOCOL,
    Evaluation,
    Sampling,
    eval_backend,
    generation_backend,
    tensor_parallel_size,
)
from harness.config.settings import (
    AXIS_NOTE,
    BATCH_SPLIT_KEYS,
    DOMAIN_MODELS,
    EVAL_BACKENDS,
    GENERATION_BACKENDS,
    HPARAM_KEYS,
    IGNORE_INDEX,
    LATER_DEFAULTS,
    LATER_EVALUATION_DEFAULTS,
    METHODS,
    OBJECTIVE_KEYS,
    OBJECTIVE_PARAMS,
    OBJECTIVES,
    OVERLONG_POLICIES,
    PER_METHOD,
    PROB_BINS,
    PROB_ROWS,
    PROMPT_TEMPLATES,
    REPLICATE_KEYS,
    SHARDING,
    SWEEP_AXES,
    ObjectiveParam,
    TrainConfig,
    axis,
    check_objective_params,
    objective_defaults,
    split_batch,
    training_setting,
)
from harness.errors import ConfigError

__all__ = [
    "AXIS_NOTE",
    "BATCH_SPLIT_KEYS",
    "ConfigError",
    "DOMAIN_MODELS",
    "EVAL_BACKENDS",
    "ExperimentConfig",
    "GENERATION_BACKENDS",
    "HPARAM",
    "HPARAM_KEYS",
    "IGNORE_INDEX",
    "LATER_DEFAULTS",
    "LATER_EVALUATION_DEFAULTS",
    "METHODS",
    "MODEL_PRESETS",
    "OBJECTIVE",
    "OBJECTIVES",
    "OBJECTIVE_KEYS",
    "OBJECTIVE_PARAMS",
    "OVERLONG_POLICIES",
    "ObjectiveParam",
    "PER_CELL",
    "PER_METHOD",
    "PRESETS",
    "PROB_BINS",
    "PROB_ROWS",
    "PROMPT_TEMPLATES",
    "Parser",
    "REPLICATE_KEYS",
    "RUN",
    "SHARDING",
    "SWEEP_AXES",
    "Evaluation",
    "SELFGEN_PROTOCOL",
    "Sampling",
    "TrainConfig",
    "add_arguments",
    "experiment_parser",
    "train_parser",
    "at_least",
    "axis",
    "below_one",
    "check_fields",
    "check_objective_params",
    "config_from",
    "dry_run",
    "eval_backend",
    "eval_limit",
    "eval_template",
    "field_names",
    "flag",
    "fraction",
    "generation_backend",
    "leaderboard_dir",
    "makeable_folder",
    "non_negative",
    "objective_defaults",
    "one_of",
    "open_fraction",
    "parse",
    "positive",
    "preset_of",
    "results_dir",
    "setting",
    "split_batch",
    "tensor_parallel_size",
    "to_flags",
    "training_setting",
]
