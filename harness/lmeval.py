"""``python -m harness.lmeval``: a registered task's evaluation splits exported as lm-eval task
folders, for ``lm_eval --include_path`` (the export and the lm-eval backend are
:mod:`harness.lmeval_tasks`). Its flags are read and checked before torch loads.

::

    python -m harness.lmeval --task math-words --out lm_eval_tasks

>>> main(["--task", "math-words", "--out", "x", "--eval-limit", "x"])  # one line: error: argument ...
1
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from harness.config import Parser, add_arguments, eval_limit, makeable_folder, training_setting
from harness.errors import ConfigError, command


def parser():
    """The command line: the task, the folder, and the model and limit as every command declares them
    (the model's end-of-turn tokens stop generation)."""
    made = Parser(prog="python -m harness.lmeval", description=__doc__.split("\n\n")[0])
    made.add_argument("--task", required=True, help="registered task whose evaluation splits are exported")
    made.add_argument("--out", required=True, help="folder to give lm_eval --include_path")
    add_arguments(made, ExportConfig)
    return made


@dataclass
class ExportConfig:
    """The settings ``harness.lmeval``'s export shares with the other commands (declared there)."""

    model: str | None = training_setting("model")  # its end-of-turn tokens are the stop strings
    eval_limit: int | None = eval_limit()


@command
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    problem = makeable_folder(args.out)
    if problem:
        raise ConfigError(f"--out {problem}")
    from harness.lmeval_tasks import export  # import cost: the task registry and the tokenizer

    written = export(args.task, args.out, args.model, args.eval_limit)
    print("lm-eval tasks: " + ", ".join(p.stem for p in written) + f" (lm_eval --include_path {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
