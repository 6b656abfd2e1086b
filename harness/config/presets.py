"""Hyperparameter presets (only what differs from :class:`TrainConfig`'s defaults, the paper's math
recipe), the preset a packaged model gets, and reading which preset and recipe a command line asks for.
"""

from __future__ import annotations

import argparse
from typing import Any

from harness.errors import ConfigError
from harness.recipes import recipe

# Hyperparameter presets: only what differs from TrainConfig's defaults (the paper's math recipe).
PRESETS: dict[str, dict[str, Any]] = {
    # The embedded ~3M-parameter model on a 2-core laptop: a few minutes per method.
    # lr 1e-3 and two epochs: at 5e-4 x 1 epoch SFT barely moves the tiny model in the time budget.
    "laptop": {"lr": 1e-3, "batch_size": 32, "micro_batch_size": 32, "epochs": 2.0, "max_length": 512},
    # arXiv 2508.05629, math: exactly TrainConfig's defaults (2e-5 instead of 5e-5 for 8B models).
    "paper-math": {},
    # arXiv 2508.05629, vision: Qwen2.5-VL-3B on WeThink, one epoch, lr 5e-5. The paper does not
    # state the batch for this recipe; 256 as for math. Images up to 1024 x 28 x 28 pixels.
    "paper-vlm": {"micro_batch_size": 4, "max_length": 4096, "max_pixels": 1024 * 28 * 28},
    # arXiv 2508.05629, code: UltraFeedback-style chat rows, one epoch, lr 5e-5, warmup 0.05, batch 16.
    "paper-code": {"batch_size": 16, "micro_batch_size": 4, "warmup_ratio": 0.05},
    # A ~135M pretrained chat model (--model smollm2-135m) on a 2-core laptop: the paper's lr of 5e-5
    # (the tiny model's 1e-3 wrecks a pretrained one: DFT's NLL jumped to 4.9 within 4 steps), one
    # epoch over the first 96 rows in batches of 8. A step of SmolLM2-135M took 12 s on 2 cores (36
    # trained tokens/s), so 12 steps per method; give --train-limit for more.
    "laptop-pretrained": {"batch_size": 8, "max_length": 512, "train_limit": 96},
}


# The preset a packaged model gets when neither --preset nor a recipe names one.
MODEL_PRESETS = {"smollm2-135m": "laptop-pretrained"}


def preset_of(argv: list[str] | None, default: str = "laptop", by_model: bool = True) -> dict[str, Any]:
    """The defaults that ``argv`` asks for, read by a parser without -h (so that ``--help`` shows them):
    the preset's values, then the recipe's (``--recipe``). The preset is ``--preset``, else the
    recipe's, else the packaged model's (:data:`MODEL_PRESETS`; not with ``by_model=False``, as
    ``harness.train`` reads it: under torchrun it gets every value as a flag, and a preset filling
    what was left unset there would train something other than what was planned), else ``default``;
    explicit flags still win over all of it. A recipe's values include ``preset`` (the name)."""
    peek = argparse.ArgumentParser(add_help=False)
    for name in ("--preset", "--recipe", "--model"):
        peek.add_argument(name)
    given = peek.parse_known_args(argv)[0]
    chosen = recipe(given.recipe).values if given.recipe else {}
    model = given.model or chosen.get("model")
    name = (
        given.preset or chosen.get("preset") or (MODEL_PRESETS.get(model, default) if by_model else default)
    )
    if name not in PRESETS:
        raise ConfigError(f"--preset {name!r}: valid presets are {', '.join(PRESETS)}")
    return {**PRESETS[name], **chosen, "preset": name}
