"""A pinned training trajectory: the embedded base trained 4 steps with SFT and with DFT must give
the stored loss, grad norm and learning rate at every step.

The invariance tests (accumulation, packing, ranks) compare two runs of today's code, so a change
that moves SFT and DFT alike (the warmup, the cosine, the betas, the weight-decay grouping, the
data order, the loss normalization) passes all of them. This test compares with numbers written
down once, so it fails on any such change.

Updating the values is a decision, not a chore: only when a change of the training behaviour is
intended, run ``HARNESS_UPDATE_PINNED=1 python -m pytest tests/test_trajectory.py``, say in the
commit message why the trajectory moved, and review the diff of ``tests/pinned/trajectory.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.config import TrainConfig
from harness.trainer import train

PINNED = Path(__file__).parent / "pinned" / "trajectory.json"
# Warmup over half the steps, then the cosine: the lr moves at every step. 32 rows in batches of 8
# split into micro-batches of 4, so accumulation and the step-level normalization are both in play.
SETTINGS = dict(
    steps=4, batch_size=8, micro_batch_size=4, train_limit=32, lr=1e-3, warmup_ratio=0.5, max_length=256
)
# fp32 on the CPU is bit-identical from run to run on one machine; the tolerance leaves room for
# another CPU's summation order, and is far below what any change of the recipe moves.
RELATIVE = 1e-4


def trajectory(objective: str, folder: Path) -> list[dict[str, float]]:
    train(TrainConfig(output_dir=str(folder), objective=objective, progress=False, device="cpu", **SETTINGS))
    lines = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    return [{key: line[key] for key in ("step", "loss", "grad_norm", "lr")} for line in lines]


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["sft", "dft"])
def test_four_steps_follow_the_pinned_trajectory(objective, tmp_path):
    got = trajectory(objective, tmp_path)
    pinned = json.loads(PINNED.read_text())
    if os.environ.get("HARNESS_UPDATE_PINNED"):
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
        pinned |= {objective: got, "made_at_commit": commit.stdout.strip()}
        PINNED.write_text(json.dumps(pinned, indent=1) + "\n")
        pytest.skip("pinned trajectory rewritten")
    want = pinned[objective]
    assert [p["step"] for p in got] == [p["step"] for p in want] == [1, 2, 3, 4]
    for have, expected in zip(got, want):
        for key in ("loss", "grad_norm", "lr"):
            assert have[key] == pytest.approx(expected[key], rel=RELATIVE, abs=1e-12), (
                objective,
                have["step"],
                key,
            )


def test_the_pinned_trajectory_can_tell_sft_from_dft_and_moves_with_the_lr():
    pinned = json.loads(PINNED.read_text())
    sft, dft = pinned["sft"], pinned["dft"]
    # Same first batch, same weights: DFT's loss is SFT's weighted by p < 1, so strictly smaller.
    assert dft[0]["loss"] < sft[0]["loss"]
    # Warmup to the peak at step 2, then the cosine down to 0: the schedule is pinned too.
    assert [p["lr"] for p in sft] == pytest.approx([5e-4, 1e-3, 5e-4, 0.0])
