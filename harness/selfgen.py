"""``python -m harness.selfgen``: the offline-RL setting's data from the command line, a backbone's
own graded answers to a task's training questions as RFT rows and DPO pairs (the generation itself is
:mod:`harness.offline`). Its flags are read and checked before torch loads.

::

    python -m harness.selfgen --model tiny --task math-words --train-limit 64 --output-dir runs/selfgen

>>> main(["--train-limit", "x"])  # one line on stderr: error: argument --train-limit: ... whole numbers ...
1
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from harness.config import (
    RUN,
    SELFGEN_PROTOCOL,
    Evaluation,
    Parser,
    Sampling,
    add_arguments,
    check_fields,
    config_from,
    eval_template,
    generation_backend,
    setting,
    tensor_parallel_size,
    training_setting,
)
from harness.errors import ConfigError, command


@dataclass
class SelfgenConfig:
    """``python -m harness.selfgen``: a backbone's own graded samples on a task's training questions."""

    model: str | None = training_setting("model")
    task: str = setting("math-words", "registered task whose training questions are answered and graded")
    output_dir: str = setting(
        "runs/selfgen", "where rows.jsonl, pairs.jsonl, samples.jsonl and selfgen.json go", role=RUN
    )
    train_limit: int | None = training_setting("train_limit")
    eval_template: str = eval_template("chat")
    device: str | None = training_setting("device")
    min_pixels: int | None = training_setting("min_pixels")
    max_pixels: int | None = training_setting("max_pixels")
    generation_backend: str = generation_backend()
    tensor_parallel_size: int = tensor_parallel_size()

    def __post_init__(self) -> None:
        check_fields(self)


def parser(description: str = "") -> Parser:
    parser = Parser(prog="python -m harness.selfgen", description=description)
    add_arguments(parser, SelfgenConfig)
    add_arguments(parser.add_argument_group("sampling"), Sampling)
    return parser


def parse_selfgen(argv: list[str] | None = None, description: str = "") -> tuple[SelfgenConfig, Sampling]:
    """``python -m harness.selfgen``'s command line, resolved: a registered task with training
    questions and a grader, the model (default: the task domain's embedded one), the backends, and
    the sampling with its unset fields from :data:`SELFGEN_PROTOCOL`."""
    args = vars(parser(description).parse_args(sys.argv[1:] if argv is None else argv))
    sampling, config = config_from(args, Sampling), config_from(args, SelfgenConfig)
    # import cost: the task registry and the resolve step, once the flags parse
    from harness.resolve import check_generation_backend, check_task, check_template, default_model

    task = check_task(config.task)
    check_template(config.eval_template, [config.task], "--eval-template")
    if not task.graded:
        raise ConfigError(
            f"--task {task.name} has no grader (training data only): selfgen keeps the samples a task's "
            "grader accepts"
        )
    if not any(split.role == "train" for split in task.splits):
        raise ConfigError(f"--task {task.name} has no training questions (it can only be evaluated)")
    # import cost: the backbones (torch, transformers), once the task is known
    from harness.models import device_and_dtype
    from harness.models import resolve as resolve_model

    device_and_dtype(config.device)
    if config.model is None:
        config = replace(config, model=default_model(config.task))
    resolve_model(config.model, convert=False)
    check_generation_backend(config.generation_backend, config.tensor_parallel_size)
    return config, sampling.resolved(SELFGEN_PROTOCOL, budget=task.max_new_tokens)


@command
def main(argv: list[str] | None = None) -> int:
    config, sampling = parse_selfgen(argv, description=__doc__.split("\n\n")[0])
    names = ("device", "generation_backend", "tensor_parallel_size", "min_pixels", "max_pixels")
    evaluation = Evaluation(
        limit=config.train_limit,
        template=config.eval_template,
        sampling=sampling,
        **{name: getattr(config, name) for name in names},
    )
    from harness.offline import PAIRS, ROWS, selfgen  # import cost: generation and grading

    meta = selfgen(config.model, config.task, config.output_dir, evaluation)
    counts = meta["counts"]
    print(
        f"{counts['questions']} questions, {counts['samples']} samples: {counts['correct']} correct "
        f"({100 * meta['accuracy']['value']:.1f}% ± {100 * meta['accuracy']['stderr']:.1f}) in "
        f"{counts['questions_solved']} questions -> {Path(config.output_dir) / ROWS}; "
        f"{counts['pairs']} pairs -> {Path(config.output_dir) / PAIRS}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
