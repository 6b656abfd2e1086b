"""Train several configurations in turn in one ``torchrun`` launch: ``PYTHONPATH=<checkout> torchrun
... tests/train_in_turn.py PLANS.json`` (the path makes the checkout's ``harness`` the one imported,
as with ``-m harness.train``), where the file holds a list of flag lists
(:func:`harness.config.to_flags`), each trained as ``python -m harness.train`` would train it, in one
process group. The tests of training on several ranks use it because a launch costs each rank the
import of torch and transformers (~6 s on 2 cores), more than the tiny trainings themselves. A plan
that fails is named by its ``--output-dir`` on the last line."""

import json
import sys

import torch.distributed as dist

from harness.resolve import parse_train
from harness.trainer import train

if __name__ == "__main__":
    try:
        for flags in json.loads(open(sys.argv[1]).read()):
            try:
                train(parse_train(flags))
            except BaseException as error:
                where = flags[flags.index("--output-dir") + 1]
                raise SystemExit(f"plan {where} failed: {type(error).__name__}: {error}") from error
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
