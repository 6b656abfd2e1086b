"""The GPU benchmarks (``python -m harness.bench --device cuda``): the loss, the trainer and generation
against the peers a GPU user would pick instead, each measurement in a fresh process, bf16 autocast
over fp32 master tensors (what a bf16 Trainer does).

- loss: one forward and backward of the LM head and the DFT loss, two thirds of the tokens trained,
  at Qwen2.5-0.5B's and Qwen2.5-7B's heads and 8,192 and 32,768 tokens: ours, TRL's chunked
  log-prob (Triton), Liger's fused linear cross-entropy with ``use_token_scaling`` (DFT's weight),
  Apple's ``cut-cross-entropy`` (per-token losses, weighted by ``exp(-CE)``) and plain
  cross-entropy over full logits; median of 3 after a warm-up, peak extra memory from the CUDA
  allocator;
- trainer: trained tokens per second and model-FLOPs utilization (``6 x parameters x trained
  tokens/s`` over the GPU's dense bf16 peak: trained tokens only, so a lower bound) of ours vs TRL's
  ``SFTTrainer(loss_type="dft")``, on randomly initialised Qwen2.5-0.5B- and 1.5B-shaped backbones
  with the embedded tokenizer and rows of ~1,000 tokens, median over steps 3-12;
- generation: completions per second, ours vs lm-eval's HF backend (and vLLM where installed) on the
  0.5B shape, greedy; and sampled (Average@16, temperature 1.0, 1,024 new tokens), our Hugging Face
  path before and after continuous batching (:func:`harness.bench.generation.measure_sampled`).

A peer that is not installed is a "not installed" row, never a failure. Run from a checkout with
``PYTHONPATH`` set where nox cannot build an environment (a GPU machine without a package registry):
``PYTHONPATH=$PWD python3 -m harness.bench --device cuda``.

The page's GPU section is :mod:`harness.bench.gpu_page`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import tasks
from harness.bench import generation as generation_bench
from harness.bench.loss import trl_dft_loss
from harness.config import Sampling, TrainConfig
from harness.data.rows import training_rows
from harness.evaluation import evaluate_loaded
from harness.fused_loss import fused_causal_lm_loss
from harness.lmeval_tasks import evaluate_task_lm_eval
from harness.models import device_and_dtype, load_model, load_tokenizer, resolve
from harness.trainer import train
from harness.vllm_engine import Engine

HEADS = {"Qwen2.5-0.5B": (151_936, 896), "Qwen2.5-7B": (152_064, 3_584)}  # (vocabulary, hidden)
LOSS_TOKENS = (8_192, 32_768)
LOSS_IMPLEMENTATIONS = ("harness", "trl", "liger", "cut-cross-entropy", "cross-entropy")
# Backbones of each shape, randomly initialised (the weights do not change the speed).
BACKBONES = {
    "Qwen2.5-0.5B": dict(
        hidden_size=896, intermediate_size=4_864, num_hidden_layers=24, num_attention_heads=14
    ),
    "Qwen2.5-1.5B": dict(
        hidden_size=1_536, intermediate_size=8_960, num_hidden_layers=28, num_attention_heads=12
    ),
}
TRAINER_IMPLEMENTATIONS = ("harness", "trl")
GENERATION_IMPLEMENTATIONS = ("harness", "lm-eval", "vllm", "sampled-padded", "sampled-continuous")
# The paper's sampled protocol for our Hugging Face path before and after continuous batching:
# Average@16 at temperature 1.0 with 1,024 new tokens, on 32 prompts, 16 prompts' worth of sequences
# in flight; the random backbone's samples end after 300 tokens on average.
SAMPLED_SHAPE, SAMPLED_MEAN_LENGTH = (32, 16, 1024, 16), 300
# What each peer imports as: its row says "not installed" where the import is not found.
PEER_MODULES = {
    "trl": "trl",
    "liger": "liger_kernel",
    "cut-cross-entropy": "cut_cross_entropy",
    "lm-eval": "lm_eval",  # a project dependency, but a GPU machine without a registry may lack it
    "vllm": "vllm",
}
STEPS, BATCH, ROW_PARTS, MAX_LENGTH, PACKED_LENGTH = 12, 16, 20, 1_100, 4_096
TIMED_STEPS = slice(2, None)  # steps 3-12: the first two compile kernels and warm the allocator
# Agreement with ours under bf16: the loss to 1e-2 relative, gradients along 4 directions to 5e-2.
LOSS_REL, GRAD_REL = 1e-2, 5e-2
IGNORE = -100


def cuda_problem() -> str | None:
    """None where CUDA runs here, else the one line that says why ``--device cuda`` cannot."""
    if not torch.backends.cuda.is_built():
        return f"--device cuda: this torch ({torch.__version__}) is built without CUDA"
    if not torch.cuda.is_available():
        return (
            f"--device cuda: no CUDA device is visible (torch {torch.__version__}, CUDA {torch.version.cuda}); "
            "the CPU benchmarks are python -m harness.bench"
        )
    return None


def missing_peer(impl: str) -> str | None:
    """``"not installed"`` where ``impl`` is a peer whose package is missing, else None."""
    module = PEER_MODULES.get(impl)
    return "not installed" if module and importlib.util.find_spec(module) is None else None


# ---- loss ---------------------------------------------------------------------------------------


def loss_inputs(vocab: int, hidden: int, tokens: int, device: torch.device, seed: int = 0):
    """As :func:`harness.bench.loss.inputs`, made on ``device``: hidden states pushed towards their
    targets so the targets' probabilities spread over (0, 1), two thirds of the tokens trained."""
    generator = torch.Generator(device=device).manual_seed(seed)
    weight = torch.randn(vocab, hidden, device=device, generator=generator).mul_(0.05)
    targets = torch.randint(0, vocab, (tokens,), device=device, generator=generator)
    targets[(torch.arange(tokens, device=device) // 64) % 3 == 0] = IGNORE
    targets[-1] = IGNORE
    rows = weight[targets.clamp(min=0)]
    boost = torch.rand(tokens, 1, device=device, generator=generator) * 26.0
    states = torch.randn(tokens, hidden, device=device, generator=generator)
    states += boost * rows / rows.pow(2).sum(1, keepdim=True)
    return states.requires_grad_(), weight.requires_grad_(), targets


def loss_of(impl: str, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``impl``'s DFT loss (plain cross-entropy for ``cross-entropy``), mean over trained tokens."""
    mask = targets != IGNORE
    trained = mask.sum()
    if impl == "harness":
        labels = torch.cat([targets.new_tensor([IGNORE]), targets[:-1]])  # aligned with the inputs
        return fused_causal_lm_loss(hidden[None], weight, labels[None], "dft", 1024)
    if impl == "trl":  # as SFTTrainer does on a Triton device: only the trained positions are scored
        return trl_dft_loss(hidden, weight, targets, compact=True)
    if impl == "liger":
        from liger_kernel.transformers.fused_linear_cross_entropy import LigerFusedLinearCrossEntropyLoss

        return LigerFusedLinearCrossEntropyLoss(use_token_scaling=True)(weight, hidden, targets)
    if impl == "cut-cross-entropy":
        from cut_cross_entropy import linear_cross_entropy

        dtype = torch.get_autocast_dtype("cuda") if hidden.is_cuda else torch.float32
        nll = linear_cross_entropy(hidden.to(dtype), weight.to(dtype), targets, reduction="none").float()
        return (nll * torch.exp(-nll).detach() * mask).sum() / trained
    if impl == "cross-entropy":
        return (
            F.cross_entropy((hidden @ weight.T).float(), targets, ignore_index=IGNORE, reduction="sum")
            / trained
        )
    raise ValueError(f"unknown implementation {impl!r}; one of {', '.join(LOSS_IMPLEMENTATIONS)}")


def measure_loss(impl: str, head: str, tokens: int, device: str = "cuda", reps: int = 3) -> dict[str, Any]:
    """One loss measurement in this process (a CPU runs it too, for the tests, timed by the clock)."""
    vocab, hidden_size = HEADS[head]
    result: dict[str, Any] = {"impl": impl, "head": head, "tokens": tokens}
    if missing_peer(impl):
        return result | {"missing": missing_peer(impl)}
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    hidden, weight, targets = loss_inputs(vocab, hidden_size, tokens, dev)

    def step() -> torch.Tensor:
        hidden.grad = weight.grad = None
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = loss_of(impl, hidden, weight, targets)
        loss.backward()
        return loss

    step()  # compiles kernels, loads libraries
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        loss = step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    generator = torch.Generator(device=dev).manual_seed(1)
    projections = {
        name: [
            float((grad.float() * torch.randn(grad.shape, device=dev, generator=generator)).sum())
            for _ in range(4)
        ]
        for name, grad in (("hidden", hidden.grad), ("weight", weight.grad))
    }
    return result | {
        "trained_tokens": int((targets != IGNORE).sum()),
        "seconds": sorted(times)[len(times) // 2],
        "peak_extra_bytes": torch.cuda.max_memory_allocated() - before if cuda else None,
        "loss": loss.item(),
        "grad_projections": projections,
    }


def loss_agreement(ours: dict[str, Any], theirs: dict[str, Any]) -> str | None:
    """None where a DFT peer gives our loss and gradients to bf16's noise, else what differs."""
    if not abs(ours["loss"] - theirs["loss"]) <= LOSS_REL * abs(ours["loss"]):
        return f"loss {theirs['loss']:.6g} vs ours {ours['loss']:.6g}"
    for name, mine in ours["grad_projections"].items():
        scale = max(abs(v) for v in mine)
        gaps = [abs(a - b) for a, b in zip(mine, theirs["grad_projections"][name], strict=True)]
        if not all(gap <= GRAD_REL * scale for gap in gaps):
            return f"grad {name} differs by {max(gaps, key=lambda g: g if g == g else math.inf) / scale:.2e} of its size"
    return None


# ---- trainer ------------------------------------------------------------------------------------


def make_backbone(shape: str, folder: Path, rows_path: Path, rows: int) -> int:
    """A randomly initialised ``shape`` backbone (Qwen2 architecture, the embedded tokenizer,
    Qwen2.5's vocabulary) in ``folder``, and ``rows`` training rows of ~1,000 tokens (a math-words
    prompt, twenty completions joined) in ``rows_path``; returns the parameter count."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=HEADS["Qwen2.5-0.5B"][0],
        num_key_value_heads=2,
        max_position_embeddings=PACKED_LENGTH,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
        eos_token_id=2,
        pad_token_id=0,
        **BACKBONES[shape],
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(folder)
    tiny = Path(resolve("tiny"))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        if (tiny / name).exists():
            shutil.copy(tiny / name, folder / name)
    source, _ = training_rows("math-words", None, 2_000)
    pick = random.Random(0)
    with rows_path.open("w") as out:
        for i in range(rows):
            parts = [row["completion"][0]["content"] for row in pick.sample(source, ROW_PARTS)]
            completion = [{"role": "assistant", "content": "\n".join(parts)}]
            out.write(json.dumps({"prompt": source[i]["prompt"], "completion": completion}) + "\n")
    return sum(p.numel() for p in model.parameters())


def measure_trainer(
    impl: str, folder: str, rows: str, device: str = "cuda", steps: int = STEPS
) -> dict[str, Any]:
    """Per-step seconds and trained tokens of ``impl`` training ``folder`` on ``rows`` (DFT, bf16
    autocast and gradient checkpointing on CUDA, each side's default batching: ours packs into rows
    of 4,096 tokens, TRL pads)."""
    if missing_peer(impl):
        return {"impl": impl, "missing": missing_peer(impl)}
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as out:
        if impl == "harness":
            seconds, tokens = _ours(folder, rows, out, device, steps)
        else:
            seconds, tokens = _trl(folder, rows, out, device, steps)
    timed_seconds, timed_tokens = seconds[TIMED_STEPS], tokens[TIMED_STEPS]
    per_step = sorted(t / s for t, s in zip(timed_tokens, timed_seconds, strict=True))
    return {
        "impl": impl,
        "steps": steps,
        "batch_size": BATCH,
        "step_seconds": seconds,
        "step_tokens": tokens,
        "trained_tokens_per_s": per_step[len(per_step) // 2],
        "peak_bytes": torch.cuda.max_memory_allocated() if device == "cuda" else None,
    }


def _ours(folder: str, rows: str, out: str, device: str, steps: int) -> tuple[list[float], list[int]]:

    config = TrainConfig(
        output_dir=out,
        model=folder,
        task="math-words",
        train_data=rows,
        objective="dft",
        steps=steps,
        batch_size=BATCH,
        micro_batch_size=BATCH,
        train_limit=steps * BATCH,
        max_length=PACKED_LENGTH,
        lr=1e-5,
        progress=False,
        device=device,
    )
    train(config)
    lines = [json.loads(line) for line in open(f"{out}/log.jsonl")]
    return [x["trained_tokens"] / x["trained_tokens_per_s"] for x in lines], [
        x["trained_tokens"] for x in lines
    ]


def _trl(folder: str, rows: str, out: str, device: str, steps: int) -> tuple[list[float], list[int]]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    stamps: list[tuple[str, float]] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            torch.cuda.is_available() and torch.cuda.synchronize()
            stamps.append(("begin", time.perf_counter()))

        def on_step_end(self, args, state, control, **kwargs):
            torch.cuda.is_available() and torch.cuda.synchronize()
            stamps.append(("end", time.perf_counter()))

    data = [json.loads(line) for line in open(rows)][: steps * BATCH]
    args = SFTConfig(
        output_dir=out,
        loss_type="dft",
        per_device_train_batch_size=BATCH,
        max_steps=steps,
        learning_rate=1e-5,
        lr_scheduler_type="cosine",
        warmup_steps=1,
        adam_beta2=0.95,
        weight_decay=0.01,
        max_length=MAX_LENGTH,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        bf16=device == "cuda",
        use_cpu=device == "cpu",
        gradient_checkpointing=device == "cuda",
        seed=0,
        disable_tqdm=True,
        # Rows in file order, so that each step's trained tokens are known from the dataset's own order.
        train_sampling_strategy="sequential",
    )
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(device)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(data),
        processing_class=AutoTokenizer.from_pretrained(folder),
        callbacks=[Clock()],
    )
    columns = trainer.train_dataset.column_names
    # Each row's trained tokens, in the column this TRL version keeps them in.
    if "completion_mask" in columns:
        trained = [sum(mask) for mask in trainer.train_dataset["completion_mask"]]
    else:
        trained = [sum(label != IGNORE for label in labels) for labels in trainer.train_dataset["labels"]]
    trainer.train()
    begins = [t for kind, t in stamps if kind == "begin"]
    ends = [t for kind, t in stamps if kind == "end"]
    tokens = [sum(trained[i * BATCH : (i + 1) * BATCH]) for i in range(steps)]
    return [e - b for b, e in zip(begins, ends, strict=True)], tokens


# ---- generation ---------------------------------------------------------------------------------


def measure_generation(impl: str, folder: str, device: str = "cuda", limit: int = 32) -> dict[str, Any]:
    """Completions per second on the first ``limit`` examples of every math-words evaluation split,
    greedy, 64 prompts per batch, the model loaded before the clock starts (lm-eval: its own load
    inside, as a user waits for it)."""
    if missing_peer(impl):
        return {"impl": impl, "missing": missing_peer(impl)}
    task = tasks.get("math-words")
    if impl.startswith("sampled-"):
        path = impl.removeprefix("sampled-")
        return generation_bench.measure_sampled(path, folder, device, SAMPLED_SHAPE, SAMPLED_MEAN_LENGTH)
    if impl == "harness":
        chosen, dtype = device_and_dtype(device)  # as lm-eval's side loads it
        model, tokenizer = load_model(folder, dtype=dtype, device=chosen), load_tokenizer(folder)
        started = time.perf_counter()
        scores = evaluate_loaded(model, tokenizer, task, limit=limit, sampling=Sampling(gen_batch_size=64))
    elif impl == "lm-eval":
        started = time.perf_counter()
        scores = evaluate_task_lm_eval(folder, "math-words", limit=limit, batch_size=64, device=device)
    else:
        with Engine(folder) as engine:
            started = time.perf_counter()
            scores = evaluate_loaded(engine, load_tokenizer(folder), task, limit=limit)
    seconds = time.perf_counter() - started
    return {
        "impl": impl,
        "completions": sum(s["n"] * s["samples_per_example"] for s in scores.values()),
        "seconds": seconds,
    }


# ---- the run and its page -----------------------------------------------------------------------

PARTS = ("loss", "trainer", "generation")


def measure(part: str, child: Callable[..., dict[str, Any]], workdir: Path) -> dict[str, Any]:
    """Every measurement of ``part``, each by ``child`` (a fresh process: ``child(module, *args)``
    returns its JSON line and raises where it fails). A peer's failure (out of memory, an API it
    changed) is its row's error; ours is the run's."""

    def peer(*args: str) -> dict[str, Any]:
        try:
            return child("harness.bench.gpu", *args)
        except Exception as error:  # the child's last line of stderr, said on the page
            if "--impl harness" in " ".join(args):
                raise
            return {"impl": args[args.index("--impl") + 1], "error": str(error)}

    runs: dict[str, Any] = {}
    if part == "loss":
        for head in HEADS:
            for tokens in LOSS_TOKENS:
                for impl in LOSS_IMPLEMENTATIONS:
                    print(f"gpu loss: {impl}, {head} head, {tokens} tokens", file=sys.stderr)
                    runs[f"{impl}@{head}@{tokens}"] = peer(
                        "loss", "--impl", impl, "--head", head, "--tokens", str(tokens)
                    )
                ours = runs[f"harness@{head}@{tokens}"]
                for impl in LOSS_IMPLEMENTATIONS[1:-1]:
                    theirs = runs[f"{impl}@{head}@{tokens}"]
                    if "loss" in theirs:
                        theirs["disagreement"] = loss_agreement(ours, theirs)
        return runs
    for shape in BACKBONES if part == "trainer" else ("Qwen2.5-0.5B",):
        folder, rows = workdir / shape, workdir / f"{shape}.jsonl"
        if not folder.exists():
            print(f"gpu: a random {shape}-shaped backbone", file=sys.stderr)
            made = child(
                "harness.bench.gpu",
                "backbone",
                "--shape",
                shape,
                "--folder",
                str(folder),
                "--rows",
                str(rows),
            )
            (workdir / f"{shape}.parameters").write_text(str(made["parameters"]))
        parameters = int((workdir / f"{shape}.parameters").read_text())
        impls = TRAINER_IMPLEMENTATIONS if part == "trainer" else GENERATION_IMPLEMENTATIONS
        for impl in impls:
            print(f"gpu {part}: {impl} on {shape}", file=sys.stderr)
            extra = ("--rows", str(rows)) if part == "trainer" else ()
            runs[f"{impl}@{shape}"] = peer(part, "--impl", impl, "--folder", str(folder), *extra) | {
                "parameters": parameters
            }
    return runs


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.bench.gpu loss|trainer|generation|backbone ...``: one measurement as JSON."""
    parser = argparse.ArgumentParser(prog="python -m harness.bench.gpu", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    loss = sub.add_parser("loss")
    loss.add_argument("--impl", required=True, choices=LOSS_IMPLEMENTATIONS)
    loss.add_argument("--head", required=True, choices=tuple(HEADS))
    loss.add_argument("--tokens", type=int, required=True)
    trainer = sub.add_parser("trainer")
    trainer.add_argument("--impl", required=True, choices=TRAINER_IMPLEMENTATIONS)
    trainer.add_argument("--folder", required=True)
    trainer.add_argument("--rows", required=True)
    generation = sub.add_parser("generation")
    generation.add_argument("--impl", required=True, choices=GENERATION_IMPLEMENTATIONS)
    generation.add_argument("--folder", required=True)
    backbone = sub.add_parser("backbone")
    backbone.add_argument("--shape", required=True, choices=tuple(BACKBONES))
    backbone.add_argument("--folder", required=True)
    backbone.add_argument("--rows", required=True)
    args = parser.parse_args(argv)
    if args.part == "loss":
        result = measure_loss(args.impl, args.head, args.tokens)
    elif args.part == "trainer":
        result = measure_trainer(args.impl, args.folder, args.rows)
    elif args.part == "generation":
        result = measure_generation(args.impl, args.folder)
    else:
        parameters = make_backbone(args.shape, Path(args.folder), Path(args.rows), STEPS * BATCH)
        result = {"shape": args.shape, "parameters": parameters}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
