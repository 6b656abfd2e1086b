"""``python -m harness.evaluate``: a model on one task's evaluation splits, from the command line;
prints each split's score (the evaluation itself is :mod:`harness.evaluation`). Its flags are read
and checked before torch loads.

::

    python -m harness.evaluate --model runs/x/model --task math-words --eval-limit 50

>>> main(["--eval-template", "nope"])  # one line on stderr: error: argument --eval-template: invalid choice ...
1
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

from harness.config import (
    Evaluation,
    Parser,
    Sampling,
    add_arguments,
    check_fields,
    config_from,
    eval_backend,
    eval_limit,
    eval_template,
    generation_backend,
    makeable_folder,
    setting,
    tensor_parallel_size,
    training_setting,
)
from harness.errors import ConfigError, command


@dataclass
class EvalConfig:
    """``python -m harness.evaluate``: one model on one task's evaluation splits."""

    model: str | None = training_setting("model")
    task: str = setting("math-words", "registered task name")
    eval_limit: int | None = eval_limit()
    samples_dir: str | None = setting(None, "write per-sample JSONL here", check=makeable_folder)
    eval_template: str = eval_template("chat")
    problem_file: str | None = setting(
        None, "humaneval tasks: a HumanEval-format JSONL(.gz) file instead of the package's"
    )
    device: str | None = training_setting("device")
    min_pixels: int | None = training_setting("min_pixels")
    max_pixels: int | None = training_setting("max_pixels")
    eval_backend: str = eval_backend()
    generation_backend: str = generation_backend()
    tensor_parallel_size: int = tensor_parallel_size()

    def __post_init__(self) -> None:
        check_fields(self)

    def evaluation(self, sampling: Sampling) -> Evaluation:
        """How this command evaluates its model, sampling as ``sampling`` says."""
        names = (
            "device",
            "min_pixels",
            "max_pixels",
            "generation_backend",
            "tensor_parallel_size",
            "eval_backend",
        )
        return Evaluation(
            limit=self.eval_limit,
            template=self.eval_template,
            sampling=sampling,
            samples_dir=self.samples_dir,
            **{name: getattr(self, name) for name in names},
        )


def parser(description: str = "") -> Parser:
    parser = Parser(prog="python -m harness.evaluate", description=description)
    add_arguments(parser, EvalConfig)
    add_arguments(parser.add_argument_group("sampling"), Sampling)
    return parser


def parse_evaluate(argv: list[str] | None = None, description: str = "") -> tuple[EvalConfig, Sampling]:
    """``python -m harness.evaluate``'s command line, resolved: the task (and ``--problem-file``)
    and the model are checked, and the model defaults to the task domain's embedded one."""
    args = vars(parser(description).parse_args(sys.argv[1:] if argv is None else argv))
    sampling, config = config_from(args, Sampling), config_from(args, EvalConfig)
    # import cost: the task registry and the resolve step, once the flags parse
    from harness.resolve import check_backends, check_lm_eval, check_task, check_template, default_model

    options = {} if config.problem_file is None else {"problem_file": config.problem_file}
    check_template(config.eval_template, [config.task], "--eval-template")
    task = check_task(config.task, **options)
    # import cost: the backbones (torch, transformers), once the task is known
    from harness.models import device_and_dtype
    from harness.models import resolve as resolve_model

    device_and_dtype(config.device)
    if config.model is None:
        config = replace(config, model=default_model(config.task))
    resolve_model(config.model, convert=False)
    spec = sampling.resolved(task.protocol, budget=task.max_new_tokens)
    check_backends(config.eval_backend, config.generation_backend, config.tensor_parallel_size)
    if config.eval_backend == "lm-eval":
        if options:
            raise ConfigError(
                "--problem-file applies only to --eval-backend harness (lm-eval exports the task's own)"
            )
        check_lm_eval(task, spec, config.eval_template)
    return config, sampling


@command
def main(argv: list[str] | None = None) -> int:
    config, sampling = parse_evaluate(argv, description=__doc__.split("\n\n")[0])
    # import cost: the evaluation (generation, grading), once the command line is known to be good
    import tasks
    from harness.data.rows import load_split
    from harness.evaluation import evaluate_task

    options = {} if config.problem_file is None else {"problem_file": config.problem_file}
    task = tasks.get(config.task, **options)
    if options:
        load_split(task, "test", 1)  # reads and checks the whole file before a model is loaded
    summary = evaluate_task(config.model, task, config.evaluation(sampling))
    for split, score in summary.items():
        print(
            f"{split:16s} {score['role']:5s} {100 * score['value']:5.1f} ± {100 * score['stderr']:.1f}  (n={score['n']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
