"""``python -m harness.token_probs``: the histogram of ``p(target token)`` of any checkpoint on its
task's training rows (or ``--train-data``), printed as JSON (the measurement is
:mod:`harness.probabilities`). Its flags are read and checked before torch loads.

::

    python -m harness.token_probs --model runs/x/sft-1234abcd/model --task math-words

>>> main(["--rows", "x"])  # one line on stderr: error: argument --rows: --rows takes whole numbers ...
1
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace

from harness.config import (
    PROB_BINS,
    PROB_ROWS,
    Parser,
    TrainConfig,
    add_arguments,
    at_least,
    check_fields,
    setting,
    training_setting,
)
from harness.errors import command


@dataclass
class TokenProbsConfig:
    """``python -m harness.token_probs``: the histogram of p(target) of any checkpoint."""

    model: str | None = training_setting("model")
    task: str = training_setting("task")
    train_data: str | None = training_setting("train_data")
    prompt_template: str = training_setting("prompt_template")
    rows: int = setting(PROB_ROWS, "training rows read", check=at_least(1))
    bins: int = setting(PROB_BINS, "bins over [0, 1]", check=at_least(1))
    max_length: int = training_setting("max_length")
    device: str | None = training_setting("device")

    def __post_init__(self) -> None:
        check_fields(self)


def parser(description: str = "") -> Parser:
    parser = Parser(prog="python -m harness.token_probs", description=description)
    add_arguments(parser, TokenProbsConfig)
    return parser


def parse_token_probs(
    argv: list[str] | None = None, description: str = ""
) -> tuple[TokenProbsConfig, TrainConfig]:
    """``python -m harness.token_probs``'s command line, resolved: its settings, and the training
    configuration whose rows it reads (task or file, length, device)."""
    args = parser(description).parse_args(sys.argv[1:] if argv is None else argv)
    config = TokenProbsConfig(**vars(args))
    # import cost: the task registry and the resolve step (torch), once the flags parse
    from harness.resolve import check_inputs, check_task, resolve_train

    check_task(config.task)
    train = TrainConfig(
        model=config.model,
        task=config.task,
        train_data=config.train_data,
        prompt_template=config.prompt_template,
        max_length=config.max_length,
        device=config.device,
    )
    train = resolve_train(replace(train, batch_size=1, micro_batch_size=1))
    check_inputs(train, [])
    return replace(config, model=train.model), train


@command
def main(argv: list[str] | None = None) -> int:
    config, train = parse_token_probs(argv, description=__doc__.split("\n")[0])
    from harness.probabilities import token_probability_histogram  # import cost: torch, the model

    result = token_probability_histogram(config.model, train, rows=config.rows, bins=config.bins)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
