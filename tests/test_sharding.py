"""Training on two gloo ranks on CPU: DDP and FSDP2 (``--sharding fsdp``) give the single-process
update, for full fine-tuning, LoRA and the vision-language backbone; a sharded checkpoint resumes
on another number of ranks; what cannot run sharded is one line before any work. Every two-rank
training here is one plan of a single ``torchrun`` launch (:func:`two_rank_runs`)."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import harness.trainer as train_module
from harness.config import TrainConfig, to_flags
from harness.errors import ConfigError
from harness.models import load_model
from harness.resolve import resolve_train
from harness.sharding import Distributed
from harness.trainer import train
from tasks.math_words import MathWords

ROOT = Path(__file__).resolve().parents[1]


def config(tmp_path: Path, name: str, **overrides) -> TrainConfig:
    # warmup 0: with one warmup step the first update would be zero and any comparison trivially true.
    base = TrainConfig(
        output_dir=str(tmp_path / name),
        steps=2,
        batch_size=8,
        micro_batch_size=4,
        train_limit=32,
        lr=2e-3,
        warmup_ratio=0.0,
        objective="dft",
        progress=False,
        device="cpu",
    )
    return replace(base, **overrides)


def torchrun(folder: Path, plans: list[TrainConfig]) -> None:
    """Two ranks (gloo on CPU, nccl on CUDA) training ``plans`` in turn in one launch
    (tests/train_in_turn.py), with the flags the experiment would give them
    (:func:`harness.config.to_flags`); a failure shows the failed plan's own lines first."""
    plans_file = folder / "plans.json"
    plans_file.write_text(json.dumps([to_flags(plan) for plan in plans]))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=2",
        str(ROOT / "tests" / "train_in_turn.py"),
        str(plans_file),
    ]
    # The checkout's harness first, as `-m harness.train` from ROOT would import it (a script's own
    # folder, tests/, is what Python puts first on its path).
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    # torchrun's banner ends stderr; the ranks' tracebacks and the failed plan's name come before it.
    failed = [line for line in completed.stderr.splitlines() if "plan " in line and " failed: " in line]
    assert completed.returncode == 0, "\n".join([*failed[:2], completed.stderr[-6000:]])


# What each two-rank test trains, besides config()'s settings.
TWO_RANK_PLANS = {
    # DDP; the main rank evaluates between steps while the other waits: no deadlock, no change.
    "ddp": {"eval_every": 1, "curve_limit": 1},
    # Gradient checkpointing on: the non-reentrant kind FSDP needs, and it must not change the update.
    "fsdp": {"sharding": "fsdp", "save_every": 1, "gradient_checkpointing": True},
    "fsdp-lora": {"sharding": "fsdp", "lora_rank": 4},
    "fsdp-vision": {"sharding": "fsdp", "task": "visual-math"},
}


@pytest.fixture(scope="module")
def two_rank_runs(tmp_path_factory) -> Path:
    """The folder of every plan of :data:`TWO_RANK_PLANS`, trained on two ranks in one launch."""
    folder = tmp_path_factory.mktemp("two-ranks")
    torchrun(folder, [config(folder, name, **overrides) for name, overrides in TWO_RANK_PLANS.items()])
    return folder


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """config() trained by one process: the update DDP and FSDP must reproduce."""
    folder = tmp_path_factory.mktemp("single")
    train(config(folder, "single"))
    return folder / "single"


def steps(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def assert_same_run(a: Path, b: Path, atol: float = 2e-3) -> None:
    """Same losses and gradient norms at every step (a mis-normalized or mis-reduced gradient is off
    by a factor) and final weights within one step's size, the learning rate: Adam divides by
    sqrt(v), so a weight whose gradient is ~1e-9 turns summation-order noise (another thread count,
    a reduce over ranks) into a visible update (2e-4 seen; tests/test_train.py explains the same).
    The model folders are loaded, so a vision backbone's saved names need not match its modules."""
    for x, y in zip(steps(a), steps(b), strict=True):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-5)
        assert x["grad_norm"] == pytest.approx(y["grad_norm"], rel=1e-5)
        assert x["trained_tokens"] == y["trained_tokens"]
    wa, wb = load_model(str(a / "model")).state_dict(), load_model(str(b / "model")).state_dict()
    assert wa.keys() == wb.keys()
    worst = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert worst <= atol, f"largest weight difference {worst}"


@pytest.mark.slow
def test_two_ddp_ranks_give_the_single_process_update_and_evaluate_once(two_rank_runs, single):
    out = two_rank_runs / "ddp"
    curve = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    splits = MathWords().eval_splits
    assert [p["step"] for p in curve] == [s for s in (0, 1, 2) for _ in splits]  # once, by rank 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert (summary["sharding"], summary["world_size"]) == ("ddp", 2)
    assert_same_run(single, out)


@pytest.mark.slow
def test_two_sharded_ranks_give_the_single_process_update_and_resume_on_one(two_rank_runs, single, tmp_path):
    sharded = two_rank_runs / "fsdp"
    summary = json.loads((sharded / "train_summary.json").read_text())
    assert (summary["sharding"], summary["world_size"], summary["fused_loss"]) == ("fsdp", 2, True)
    assert_same_run(single, sharded)
    trained = load_file(str(sharded / "model" / "model.safetensors"))
    base = load_model("tiny").state_dict()
    assert max((trained[k] - base[k]).abs().max().item() for k in trained) > 1e-4  # it did train

    # The checkpoint after step 1: shards from each rank, no weights file, a trainer state without
    # the optimizer (it is in the shards).
    checkpoint = sharded / "checkpoint-1"
    assert sorted(p.name for p in (checkpoint / "sharded").glob("*.distcp")) == [
        "__0_0.distcp",
        "__1_0.distcp",
    ]
    assert not (checkpoint / "model.safetensors").exists()
    assert torch.load(checkpoint / "trainer_state.pt", weights_only=False)["sharded"] is True

    # Resumed by one process (another world size): the shards are re-assembled, the run ends the same.
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    (resumed / "checkpoint-1").symlink_to(checkpoint, target_is_directory=True)
    (resumed / "log.jsonl").write_text((sharded / "log.jsonl").read_text().splitlines()[0] + "\n")
    summary = train(config(tmp_path, "resumed", resume=True))
    assert (summary["resumed_from_step"], summary["sharding"]) == (1, "none")
    assert_same_run(sharded, resumed)


@pytest.mark.slow
def test_lora_trains_sharded_as_on_one_process(two_rank_runs, tmp_path):
    train(config(tmp_path, "single", lora_rank=4))
    sharded = two_rank_runs / "fsdp-lora"
    assert_same_run(tmp_path / "single", sharded)  # the adapters, gathered and merged on rank 0
    merged = load_file(str(sharded / "model" / "model.safetensors"))
    assert not any("lora" in name for name in merged)


@pytest.mark.slow
def test_the_vision_language_backbone_trains_sharded_as_on_one_process(two_rank_runs, tmp_path):
    train(config(tmp_path, "single", task="visual-math"))
    assert_same_run(tmp_path / "single", two_rank_runs / "fsdp-vision")


def believe_two_ranks(monkeypatch) -> None:
    """The trainer believes it is one of two ranks (no process group: each test stops before one)."""
    monkeypatch.setattr(train_module, "init_distributed", lambda *_: Distributed(0, 2, 0))
    monkeypatch.setenv("WORLD_SIZE", "2")


@pytest.mark.slow
def test_a_whole_model_checkpoint_is_not_resumed_sharded(tmp_path, monkeypatch):
    train(config(tmp_path, "run", steps=2, save_every=1))
    believe_two_ranks(monkeypatch)
    with pytest.raises(ConfigError, match=r"^--resume: .*checkpoint-1 is a whole-model \(--sharding ddp\)"):
        train(config(tmp_path, "run", sharding="fsdp", resume=True))


@pytest.mark.slow
def test_images_missing_from_some_rows_is_one_line_under_fsdp(tmp_path, monkeypatch):
    from tests.conftest import write_jsonl

    rows = [
        {
            "prompt": [{"role": "user", "content": f"What is {i} + 1?"}],
            "completion": [{"role": "assistant", "content": str(i + 1)}],
        }
        for i in range(8)
    ]
    data = tmp_path / "text-only.jsonl"
    write_jsonl(data, rows)
    believe_two_ranks(monkeypatch)
    run = config(tmp_path, "vl", model="tiny-vl", train_data=str(data), sharding="fsdp")
    with pytest.raises(
        ConfigError, match=r"^--sharding fsdp: 8 of 8 training rows of .*text-only.jsonl have no image"
    ):
        train(run)
    assert not (tmp_path / "vl").exists()  # stopped before anything was made


def test_a_sharded_checkpoint_without_its_shards_is_refused_in_one_line(tmp_path):
    from dataclasses import asdict

    from harness import checkpoint

    run = config(tmp_path, "run", resume=True)
    (tmp_path / "run" / "checkpoint-3").mkdir(parents=True)  # the shards' folder lost or never written
    state = {"step": 3, "sharded": True, "config": asdict(resolve_train(run))}
    torch.save(state, tmp_path / "run" / "checkpoint-3" / checkpoint.STATE_FILE)
    with pytest.raises(
        ConfigError, match=r"^--resume: .*checkpoint-3 is a sharded checkpoint without its shards"
    ):
        train(run)


def test_training_time_evaluation_needs_the_whole_model():
    sharded = TrainConfig(batch_size=8, sharding="fsdp", eval_every=5)
    with pytest.raises(ConfigError, match=r"^--eval-every 5 needs the whole model on one rank"):
        resolve_train(sharded, world_size=2)
    assert resolve_train(sharded, world_size=1).eval_every == 5  # one process shards nothing
    assert resolve_train(replace(sharded, sharding="ddp"), world_size=2).eval_every == 5


def test_an_unknown_sharding_is_one_line():
    with pytest.raises(ConfigError, match=r"^--sharding must be one of ddp, fsdp, got 'zero3'$"):
        TrainConfig(sharding="zero3")


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_two_gpus_shard_in_bf16_close_to_one_gpu(tmp_path):
    # bf16 parameters in compute and fp32 reduction against one GPU's bf16 autocast: close, not equal.
    train(config(tmp_path, "one-gpu", device="cuda"))
    torchrun(tmp_path, [config(tmp_path, "two-gpus", sharding="fsdp", device="cuda")])
    out = tmp_path / "two-gpus"
    for x, y in zip(steps(tmp_path / "one-gpu"), steps(out), strict=True):
        assert x["loss"] == pytest.approx(y["loss"], rel=2e-2)
    # The weights: within 5e-2, as tests/test_train.py allows bf16 against fp32.
    a, b = (
        load_model(str(tmp_path / "one-gpu" / "model")).state_dict(),
        load_model(str(out / "model")).state_dict(),
    )
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 5e-2
