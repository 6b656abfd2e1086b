"""Trainer invariants on the embedded tiny model: how a batch is split never changes the update."""

import json
import math
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import math_words_pairs, write_jsonl
from safetensors.torch import load_file

import harness.forward as forward_module
from harness.config import TrainConfig
from harness.data.encode import collate, encode_all, step_schedule
from harness.data.rows import training_rows
from harness.errors import ConfigError, TrainingError
from harness.forward import CausalLMWithLoss, compile_layers
from harness.losses import Objective
from harness.models import load_model, load_tokenizer
from harness.resolve import resolve_train
from harness.trainer import train
from tasks.math_words import MathWords

pytestmark = pytest.mark.slow  # every test here loads and trains the embedded model

ROOT = Path(__file__).resolve().parents[1]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model" / "model.safetensors"))


def assert_same_weights(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= atol, f"largest weight difference {worst}"


def log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def assert_same_updates(a: Path, b: Path, lr: float) -> None:
    """Same step losses and full-step gradient norms (before clipping), and weights that agree.

    Adam divides by sqrt(v) + eps, so a parameter whose gradient is ~1e-9 (sums of many terms that
    cancel) turns float rounding noise into a visible update; the weights are therefore compared at
    one step's size (0.5 lr seen between the fused and the plain loss after two steps on the
    committed base); a mis-normalized step shows in the logged loss and gradient norm, which must
    agree to float precision.
    """
    for step, (x, y) in enumerate(zip(log(a), log(b), strict=True)):
        # Step 1 starts from the same weights: its loss agrees to float precision. Later steps start
        # from weights that already differ by that amplified noise (up to 1e-5 relative seen on the
        # loss); a normalization bug is off by a factor, far beyond either tolerance.
        # The fused chunked loss sums in another order: 3e-7 absolute seen on a loss of 0.02.
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-5 if step == 0 else 1e-4, abs=1e-6)
        assert x["grad_norm"] == pytest.approx(y["grad_norm"], rel=1e-4)
        assert x["trained_tokens"] == y["trained_tokens"]
    assert_same_weights(weights(a), weights(b), atol=lr)


def base_config(tmp_path: Path, name: str, **overrides) -> TrainConfig:
    # warmup 0: with one warmup step the first update would be zero and every invariant trivially true.
    config = TrainConfig(
        output_dir=str(tmp_path / name),
        steps=2,
        batch_size=8,
        micro_batch_size=8,
        train_limit=32,
        lr=2e-3,
        warmup_ratio=0.0,
        objective="dft",
        progress=False,
    )
    return replace(config, **overrides)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Batch 8 x accumulation 1 on one process: the update every split must reproduce."""
    tmp = tmp_path_factory.mktemp("reference")
    summary = train(base_config(tmp, "ref"))
    return tmp / "ref", summary


def test_training_changes_weights_and_logs_every_step(reference):
    run_dir, summary = reference
    base = load_model("tiny").state_dict()
    trained = weights(run_dir)
    assert max((trained[k] - base[k]).abs().max().item() for k in trained) > 1e-4
    lines = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    for line in lines:
        assert 0 < line["mean_token_prob"] < 1 and line["nll"] > 0 and line["grad_norm"] > 0
        assert line["trained_tokens"] > 0 and line["trained_tokens_per_s"] > 0
        assert line["loss"] < line["nll"]  # DFT weights every token by p < 1
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert summary["fused_loss"] is True  # the tiny Qwen2 head allows the fused path


def test_accumulation_invariance(reference, tmp_path):
    run_dir, _ = reference
    train(base_config(tmp_path, "acc", micro_batch_size=1))  # batch 1 x accumulation 8
    assert_same_updates(run_dir, tmp_path / "acc", lr=2e-3)


def test_fused_and_plain_loss_train_the_same(reference, tmp_path):
    run_dir, _ = reference
    summary = train(base_config(tmp_path, "plain", loss_chunk_size=0))
    assert summary["fused_loss"] is False
    assert_same_updates(run_dir, tmp_path / "plain", lr=2e-3)


def test_unpacked_padding_trains_the_same(reference, tmp_path):
    run_dir, _ = reference
    train(base_config(tmp_path, "unpacked", packing=False))
    assert_same_updates(run_dir, tmp_path / "unpacked", lr=2e-3)


def test_packed_batch_equals_separate_sequences():
    tokenizer = load_tokenizer("tiny")
    rows, source = training_rows("math-words", None, 6)
    examples, _ = encode_all(tokenizer, rows, 1024, "truncate", source)
    total = sum(e.trained_tokens for e in examples)
    module = CausalLMWithLoss(load_model("tiny"), Objective("dft"), chunk_size=64)

    def loss_and_grads(batches):
        module.zero_grad()
        loss = sum(module(**b, num_trained_tokens=total) for b in batches)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in module.parameters()]

    packed = collate(examples, 1024, tokenizer.pad_token_id, packing=True)
    assert packed["input_ids"].shape[0] == 1  # all six share one row: the test exercises packing
    alone = [collate([e], 1024, tokenizer.pad_token_id, packing=True) for e in examples]
    loss_packed, grads_packed = loss_and_grads([packed])
    loss_alone, grads_alone = loss_and_grads(alone)
    assert torch.allclose(loss_packed, loss_alone, atol=1e-6)
    for a, b in zip(grads_packed, grads_alone):
        assert torch.allclose(a, b, atol=1e-6)


def test_resume_after_interruption_reaches_the_same_weights(tmp_path):
    config = base_config(tmp_path, "full", steps=4, save_every=2, warmup_ratio=0.25)
    train(config)
    # The interrupted run: only what existed after step 2 survives (checkpoint-2 and the log so far).
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(tmp_path / "full" / "checkpoint-2", interrupted / "checkpoint-2")
    lines = (tmp_path / "full" / "log.jsonl").read_text().splitlines()
    (interrupted / "log.jsonl").write_text("\n".join(lines[:3]) + "\n")  # a partial step-3 line too
    summary = train(replace(config, output_dir=str(interrupted), resume=True))
    assert summary["resumed_from_step"] == 2
    assert_same_weights(weights(tmp_path / "full"), weights(interrupted), atol=0.0)
    assert [json.loads(x)["step"] for x in (interrupted / "log.jsonl").read_text().splitlines()] == [
        1,
        2,
        3,
        4,
    ]


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
    """A 2-step run with a checkpoint after step 1, to resume from."""
    config = base_config(tmp_path_factory.mktemp("resume"), "run", steps=2, save_every=1)
    train(config)
    return config


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"lr": 1e-4}, "--lr 0.002 (now 0.0001)"),
        ({"steps": 3}, "--steps 2 (now 3)"),
        ({"epochs": 2.0}, "--epochs 1.0 (now 2.0)"),
        ({"adam_beta1": 0.8}, "--adam-beta1 0.9 (now 0.8)"),
        ({"adam_beta2": 0.999}, "--adam-beta2 0.95 (now 0.999)"),
        ({"max_grad_norm": 0.5}, "--max-grad-norm 1.0 (now 0.5)"),
        ({"overlong": "drop"}, "--overlong truncate (now drop)"),
        ({"packing": False}, "--packing True (now False)"),
        ({"loss_chunk_size": 0}, "--loss-chunk-size 1024 (now 0)"),
        ({"micro_batch_size": 2}, "--micro-batch-size 8 (now 2)"),
        ({"objective": "sft"}, "--objective dft (now sft)"),
        ({"lr": 1e-4, "seed": 1}, "--lr 0.002 (now 0.0001), --seed 0 (now 1)"),
    ],
)
def test_resume_refuses_any_changed_hyperparameter_naming_it(checkpointed, change, named):
    with pytest.raises(ConfigError, match=re.escape(named) + ".*only run settings may change"):
        train(replace(checkpointed, resume=True, **change))


def test_resume_takes_changed_run_settings_and_needs_a_checkpoint(checkpointed, tmp_path):
    # Run settings (progress bar, checkpoint interval, device) may differ: it resumes and finishes.
    summary = train(replace(checkpointed, resume=True, progress=True, save_every=0, device="cpu"))
    assert summary["resumed_from_step"] == 1 and summary["steps"] == 2
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(replace(checkpointed, output_dir=str(tmp_path / "empty"), resume=True))
    assert not (tmp_path / "empty").exists()  # a refused resume makes nothing


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = forward_module.fused_causal_lm_loss

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] >= 3 else loss  # micro-batch 3 = step 3

    monkeypatch.setattr(forward_module, "fused_causal_lm_loss", poisoned)
    config = base_config(tmp_path, "nan", steps=4, save_every=1)
    with pytest.raises(TrainingError, match=r"loss is nan at step 3 .*checkpoint-2"):
        train(config)
    assert (tmp_path / "nan" / "checkpoint-2" / "model.safetensors").exists()
    assert not (tmp_path / "nan" / "model").exists()


def test_micro_batch_size_is_the_most_that_fits_and_the_split_is_derived(reference, tmp_path):
    # One meaning everywhere: batch 8 with at most 3 per pass is 2 x accumulation 4, the same update.
    run_dir, _ = reference
    summary = train(base_config(tmp_path, "at-most-3", micro_batch_size=3))
    assert (summary["micro_batch_size"], summary["gradient_accumulation"], summary["world_size"]) == (2, 4, 1)
    assert summary["config"]["micro_batch_size"] == 2  # what ran is what is recorded
    assert_same_updates(run_dir, tmp_path / "at-most-3", lr=2e-3)


@pytest.mark.gpu
def test_bf16_training_on_cuda(tmp_path):
    summary = train(base_config(tmp_path, "cuda", device="cuda", steps=3))
    assert summary["device"].startswith("cuda") and summary["fused_loss"] is True
    lines = [json.loads(line) for line in (tmp_path / "cuda" / "log.jsonl").read_text().splitlines()]
    assert all(0 < line["loss"] < 10 and line["grad_norm"] > 0 for line in lines)
    # bf16 autocast: close to, but not bit-equal with, the fp32 CPU update.
    cpu = train(base_config(tmp_path, "cpu", device="cpu", steps=3))
    assert cpu["device"] == "cpu"
    assert_same_weights(weights(tmp_path / "cpu"), weights(tmp_path / "cuda"), atol=5e-2)


def test_eval_every_writes_a_curve_and_leaves_training_untouched(tmp_path, reference):
    run_dir, _ = reference
    summary = train(base_config(tmp_path, "curve", eval_every=1, curve_limit=2))
    lines = [json.loads(line) for line in (tmp_path / "curve" / "eval.jsonl").read_text().splitlines()]
    splits = MathWords().eval_splits
    assert [(p["step"], p["split"]) for p in lines] == [(s, split) for s in (0, 1, 2) for split in splits]
    assert all(p["n"] == 2 and 0.0 <= p["value"] <= 1.0 for p in lines) and summary["curve"] == lines
    # Evaluating in between changes nothing the training does: same losses, same weights, bit for bit.
    assert [x["loss"] for x in log(tmp_path / "curve")] == [x["loss"] for x in log(run_dir)]
    reference_weights, curve_weights = weights(run_dir), weights(tmp_path / "curve")
    assert all(torch.equal(reference_weights[k], curve_weights[k]) for k in reference_weights)


def test_more_ranks_than_examples_is_one_line_before_any_work():
    # A batch is at least one example per rank (resolve refuses a smaller one, naming the ranks), and
    # at most the training examples: so four ranks over three examples stop here, naming both.
    config = resolve_train(TrainConfig(batch_size=4, micro_batch_size=1), world_size=4)
    with pytest.raises(ConfigError, match=r"^--batch-size 4 exceeds the 3 training examples$"):
        step_schedule(config, 3, 4)
    with pytest.raises(ConfigError, match="--batch-size 2 is smaller than the 4 ranks"):
        resolve_train(TrainConfig(batch_size=2, micro_batch_size=1), world_size=4)


@pytest.mark.parametrize("objective", ["q-family", "profit", "chord-phi", "gft", "eaft"])
def test_the_newer_objectives_train_and_log_their_own_loss(tmp_path, objective):
    train(base_config(tmp_path, objective, objective=objective, steps=1))
    [line] = log(tmp_path / objective)
    # Each weight is at most 1 (chord-phi at most 1/4) and (1 - p^q) / q <= -log p: the objective's
    # loss stays under the plain NLL.
    assert 0 < line["loss"] <= line["nll"] and line["grad_norm"] > 0
    assert (
        json.loads((tmp_path / objective / "train_summary.json").read_text())["config"]["objective"]
        == objective
    )


@pytest.mark.parametrize("lora_rank", [0, 4])
def test_asft_starts_as_dft_and_then_pays_for_leaving_its_start(tmp_path, lora_rank):
    # At the first step the model is its own starting point: the KL term and its gradient are 0, so
    # ASFT's loss and gradient norm are DFT's. After one update they are not: the anchor pulls. Under
    # LoRA the starting model is the backbone with its adapters off, not a second copy.
    name = f"rank{lora_rank}"
    dft = train(base_config(tmp_path, f"dft-{name}", lora_rank=lora_rank))
    asft = train(
        base_config(tmp_path, f"asft-{name}", objective="asft", asft_lambda=0.5, lora_rank=lora_rank)
    )
    first_dft, second_dft = log(tmp_path / f"dft-{name}")
    first, second = log(tmp_path / f"asft-{name}")
    assert first["loss"] == pytest.approx(first_dft["loss"], rel=1e-6)
    assert first["grad_norm"] == pytest.approx(first_dft["grad_norm"], rel=1e-5)
    assert second["loss"] > second_dft["loss"] * (1 + 1e-4)  # the same first update, then a KL > 0
    assert asft["fused_loss"] and dft["fused_loss"]
    saved = load_file(str(tmp_path / f"asft-{name}" / "model" / "model.safetensors"))
    assert saved.keys() == load_file(str(tmp_path / f"dft-{name}" / "model" / "model.safetensors")).keys()


def test_asft_and_eaft_train_the_vision_language_backbone(tmp_path):
    for objective in ("asft", "eaft"):
        config = base_config(tmp_path, objective, objective=objective, task="visual-math", steps=1)
        train(replace(config, micro_batch_size=4))
        [line] = log(tmp_path / objective)
        assert line["loss"] > 0 and line["grad_norm"] > 0


def test_psft_takes_sft_steps_at_each_batch_start_and_clipped_ones_between(tmp_path):
    # psft_minibatches 2: steps 1 and 3 start a PSFT batch, where the old policy is the model itself
    # (r = 1 exactly: loss 0, SFT's gradient); step 2 reads the policy of step 1's start (r != 1).
    sft = train(base_config(tmp_path, "sft", objective="sft", steps=3))
    psft = train(base_config(tmp_path, "psft", objective="psft", psft_minibatches=2, steps=3))
    sft_steps, psft_steps = log(tmp_path / "sft"), log(tmp_path / "psft")
    assert [line["loss"] for line in psft_steps][0::2] == [0.0, 0.0]
    assert psft_steps[1]["loss"] != 0.0
    assert psft_steps[0]["grad_norm"] == pytest.approx(sft_steps[0]["grad_norm"], rel=1e-5)
    assert psft["fused_loss"] and sft["fused_loss"]


@pytest.mark.slow
def test_compile_trains_the_same_updates_to_round_off(tmp_path, reference):
    # --compile fuses each decoder layer's kernels: the last bits move (as on another device), the
    # updates do not. A backbone without decoder layers is refused in one line.
    run_dir, _ = reference
    train(base_config(tmp_path, "compiled", compile=True))
    assert_same_updates(run_dir, tmp_path / "compiled", lr=2e-3)
    with pytest.raises(ConfigError, match=r"^--compile: Linear has no list of decoder layers to compile$"):
        compile_layers(torch.nn.Linear(2, 2))


def pairs_file(tmp_path: Path, n: int = 16) -> Path:
    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, math_words_pairs(n))
    return path


@pytest.fixture(scope="module")
def dpo_reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dpo")
    config = base_config(tmp, "ref", objective="dpo", train_data=str(pairs_file(tmp)), train_limit=None)
    train(config)
    return tmp / "ref", config


def test_dpo_starts_at_ln_2_and_a_pair_is_the_unit_however_the_batch_splits(dpo_reference, tmp_path):
    # Step 1: the model is its starting point, every margin 0, the loss ln 2 whatever the pairs. The
    # loss is a mean over the step's pairs: accumulation, the plain loss and unpacked rows all take
    # the same update.
    run_dir, config = dpo_reference
    first, second = log(run_dir)
    assert first["loss"] == pytest.approx(math.log(2), rel=1e-6) and second["loss"] != first["loss"]
    for name, change in {
        "accumulated": {"micro_batch_size": 2},  # 2 pairs x 4 micro-batches
        "plain": {"loss_chunk_size": 0},
        "unpacked": {"packing": False},
    }.items():
        train(replace(config, output_dir=str(tmp_path / name), **change))
        assert_same_updates(run_dir, tmp_path / name, lr=2e-3)


@pytest.mark.parametrize("lora_rank", [4])  # full fine-tuning: the ln 2 test above takes real steps
def test_dpo_lowers_its_loss_on_the_pairs_it_trains_on(tmp_path, lora_rank):
    # One batch of all 8 pairs twice, a small step: the second step's loss is below ln 2 (at 2e-3
    # Adam's first step overshoots: 1.5 seen). Under LoRA the starting model is the backbone with its
    # adapters off, as for ASFT.
    data = str(pairs_file(tmp_path, n=8))
    config = base_config(
        tmp_path, "dpo", objective="dpo", train_data=data, train_limit=None, lora_rank=lora_rank, lr=1e-4
    )
    train(config)
    first, second = log(tmp_path / "dpo")
    assert first["loss"] == pytest.approx(math.log(2), rel=1e-6) and second["loss"] < math.log(2) - 1e-3


def test_iw_sft_starts_as_sft_and_then_weighs_sequences(tmp_path):
    # At the first step every sequence's log ratio to the start is 0: weight 1, SFT's loss and
    # gradient. After one update the weights move away from 1.
    train(base_config(tmp_path, "sft", objective="sft"))
    train(base_config(tmp_path, "iw", objective="iw-sft"))
    (sft_first, _), (first, second) = log(tmp_path / "sft"), log(tmp_path / "iw")
    assert first["loss"] == pytest.approx(sft_first["loss"], rel=1e-6)
    assert first["grad_norm"] == pytest.approx(sft_first["grad_norm"], rel=1e-5)
    assert second["loss"] != pytest.approx(second["nll"], rel=1e-4)  # weighted: no longer the plain NLL


def test_dpo_without_pairs_or_with_noise_is_one_line_before_any_work(tmp_path):
    with pytest.raises(
        ConfigError, match=r"^--objective dpo trains on preference pairs \(prompt, chosen, rejected\)"
    ):
        resolve_train(TrainConfig(objective="dpo", output_dir=str(tmp_path / "x")))
    with pytest.raises(ConfigError, match=r"^--train-noise 0.2 with --objective dpo"):
        resolve_train(TrainConfig(objective="dpo", train_data="p.jsonl", train_noise=0.2))
    assert not (tmp_path / "x").exists()
