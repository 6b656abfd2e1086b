"""The command lines that several commands share, built from the settings alone (standard library
only, so a command reads and checks its flags before it loads torch, transformers or a task):
``harness.train``'s, and an experiment's flags, which the experiment, the sweep and the continuum
add to their own.

>>> parser = train_parser({})
>>> parser.parse_args(["--lr", "1e-3"]).lr
0.001
"""

from __future__ import annotations

import argparse
from typing import Any

from harness.config.commands import ExperimentConfig
from harness.config.flags import Parser, add_arguments
from harness.config.presets import PRESETS
from harness.config.sampling import Sampling
from harness.config.settings import PER_METHOD, REPLICATE_KEYS, SWEEP_AXES, TrainConfig


def train_parser(preset: dict[str, Any], description: str = "") -> Parser:
    """``python -m harness.train``'s flags: every training setting, defaults from ``preset``."""
    parser = Parser(prog="python -m harness.train", description=description)
    help_text = "hyperparameter preset (explicit flags win over it)"  # the experiment's, less its defaults
    parser.add_argument("--preset", default="paper-math", choices=tuple(PRESETS), help=help_text)
    add_arguments(parser, TrainConfig, defaults=preset)
    return parser


def experiment_parser(preset: dict[str, Any], parser: argparse.ArgumentParser, *, sweep: bool = False):
    """Add the flags of an experiment to ``parser``, the training flags defaulting to ``preset``'s
    values. Per-method fields are the experiment's to set, the seed too (``--seeds`` lists them); a
    ``sweep`` also sets the task, the methods and the grid's axes itself."""
    add_arguments(
        parser.add_argument_group("experiment"),
        ExperimentConfig,
        defaults=preset,
        exclude={"task", "dry_run"} if sweep else (),  # the sweep's own --task and --dry-run
    )
    owned = PER_METHOD | REPLICATE_KEYS | {"task"} | (set(SWEEP_AXES) if sweep else set())
    add_arguments(parser.add_argument_group("training"), TrainConfig, defaults=preset, exclude=owned)
    add_arguments(parser.add_argument_group("sampling"), Sampling, defaults=preset)
    return parser
