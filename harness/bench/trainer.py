"""Our trainer against TRL's ``SFTTrainer(loss_type="dft")``: trained (completion) tokens per second on
the embedded tiny backbone, the same math-words rows (each seen once), the same batch, learning rate,
schedule and maximum length, fp32 on the CPU, each in a fresh process.

Both sides count only the loop: ours the optimizer steps (``train_summary.json``), TRL its
``train_runtime`` (its dataloader included); model loading and tokenizing are outside on both. Our
trainer packs rows (its default); TRL pads them (its default, ``packing=False``). TRL's
``SFTConfig`` defaults to bf16 autocast, on a CPU too: it is turned off here, so both sides run fp32.
Left on, TRL's time measured the CPU's bf16 support rather than TRL (6.2 s on this Zen 4 with
native bf16 through oneDNN, 29.1 s on the host that made an earlier page, 103 s with torch's oneDNN
off as pinned numerics turn it off: ATen's reference bf16 GEMM).

``python -m harness.bench.trainer --impl harness`` prints one measurement as JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
from typing import Any

from harness.bench import measurement_cli
from harness.config import TrainConfig
from harness.data.rows import training_rows
from harness.models import load_model, load_tokenizer
from harness.trainer import train

STEPS, BATCH, MAX_LENGTH, LR = 8, 32, 512, 1e-3  # 256 rows: one pass, the laptop preset's batch and lr
IMPLEMENTATIONS = ("harness", "trl")


def ours(folder: str) -> dict[str, Any]:
    config = TrainConfig(
        output_dir=folder,
        model="tiny",
        task="math-words",
        objective="dft",
        steps=STEPS,
        batch_size=BATCH,
        micro_batch_size=BATCH,
        train_limit=STEPS * BATCH,
        max_length=MAX_LENGTH,
        lr=LR,
        progress=False,
        device="cpu",
    )
    summary = train(config)
    lines = [json.loads(line) for line in open(f"{folder}/log.jsonl")]
    tokens = sum(line["trained_tokens"] for line in lines)
    return {"trained_tokens": tokens, "seconds": tokens / summary["trained_tokens_per_s"], "packed": True}


def trl(folder: str) -> dict[str, Any]:
    from datasets import Dataset  # import cost, and TRL is installed only by nox -s bench
    from trl import SFTConfig, SFTTrainer

    rows, _ = training_rows("math-words", None, STEPS * BATCH, "chat")
    args = SFTConfig(
        output_dir=folder,
        loss_type="dft",
        per_device_train_batch_size=BATCH,
        gradient_accumulation_steps=1,
        max_steps=STEPS,
        learning_rate=LR,
        lr_scheduler_type="cosine",
        warmup_steps=1,  # ours: ceil(0.1 x 8 steps)
        adam_beta2=0.95,
        weight_decay=0.01,
        max_grad_norm=1.0,
        max_length=MAX_LENGTH,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,  # TRL defaults to bf16 autocast, on a CPU too: fp32 like ours
        fp16=False,
        seed=0,
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=load_model("tiny"),
        args=args,
        train_dataset=Dataset.from_list(
            [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]
        ),
        processing_class=load_tokenizer("tiny"),
    )
    tokens = sum(sum(label != -100 for label in labels) for labels in trainer.train_dataset["labels"])
    output = trainer.train()
    return {"trained_tokens": tokens, "seconds": output.metrics["train_runtime"], "packed": False}


def measure(impl: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        result = ours(folder) if impl == "harness" else trl(folder)
    return {"impl": impl, "steps": STEPS, "batch_size": BATCH, **result}


def main(argv: list[str] | None = None) -> int:
    return measurement_cli("harness.bench.trainer", __doc__.split("\n\n")[0], IMPLEMENTATIONS, measure, argv)


if __name__ == "__main__":
    sys.exit(main())
