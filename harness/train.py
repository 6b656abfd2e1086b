"""``python -m harness.train``: one training run from the command line, on this machine or, under
``torchrun``, on each rank (the loop itself is :mod:`harness.trainer`). The flags are every training
setting (``--preset``: ``paper-math`` by default, the paper's recipe); they are read and checked
before torch loads, so a mistyped flag costs a moment, not an import.

::

    python -m harness.train --objective dft --task math-words --steps 50 --output-dir runs/dft
    torchrun --nproc-per-node 8 -m harness.train --objective dft --sharding fsdp ...

>>> main(["--lr", "abc"])  # one line on stderr: error: argument --lr: --lr takes numbers; 'abc' is not one ...
1
"""

from __future__ import annotations

import os
import sys

from harness.config import preset_of, train_parser
from harness.errors import command


@command
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    description = __doc__.split("\n\n")[0]
    train_parser(preset_of(argv, default="paper-math", by_model=False), description).parse_args(argv)
    from harness.resolve import parse_train  # import cost: the task registry, once the flags parse

    config = parse_train(argv, description=description)
    # import cost: the trainer (torch, transformers), once the command line is known to be good
    import torch.distributed as dist

    from harness.trainer import train

    try:
        summary = train(config)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"trained {summary['steps']} steps; model in {summary['model_dir']}; "
            f"{summary['trained_tokens_per_s']:.0f} trained tokens/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
