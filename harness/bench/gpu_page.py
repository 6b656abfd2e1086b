"""The GPU section of ``leaderboards/performance.md``, rendered from the measurements
:mod:`harness.bench.gpu` takes: ratios to the peers, model-FLOPs utilization (``6 x parameters x
trained tokens/s`` over the GPU's dense bf16 peak: trained tokens only, so a lower bound), and
"not installed" rows for the peers a run lacked.

>>> round(mfu(tokens_per_s=100_000, parameters=494_000_000, peak_tflops=989.0), 3)
0.3
>>> peak_bf16_tflops("NVIDIA H200"), peak_bf16_tflops("Tesla T4")
(989.0, None)
"""

from __future__ import annotations

from typing import Any

from harness.bench.gpu import (
    BACKBONES,
    BATCH,
    GENERATION_IMPLEMENTATIONS,
    GRAD_REL,
    HEADS,
    LOSS_IMPLEMENTATIONS,
    LOSS_REL,
    LOSS_TOKENS,
    PACKED_LENGTH,
    SAMPLED_MEAN_LENGTH,
    STEPS,
)

# Dense bf16 peak TFLOP/s by GPU name (the vendors' datasheets, without sparsity).
PEAK_BF16_TFLOPS = {
    "H200 NVL": 835.0,
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,
    "H800": 989.0,
    "GH200": 989.0,
    "GB200": 2500.0,
    "B200": 2250.0,
    "A100": 312.0,
}


def peak_bf16_tflops(gpu_name: str) -> float | None:
    """The GPU's dense bf16 peak, from its name (the longest entry it contains: an H100 PCIe is not
    an H100 SXM); None for a GPU not in the table.

    >>> peak_bf16_tflops("NVIDIA H100 PCIe"), peak_bf16_tflops("NVIDIA GB200")
    (756.0, 2500.0)
    """
    for key, tflops in sorted(PEAK_BF16_TFLOPS.items(), key=lambda item: -len(item[0])):
        if key in gpu_name:
            return tflops
    return None


def mfu(tokens_per_s: float, parameters: int, peak_tflops: float | None) -> float | None:
    """Model-FLOPs utilization: 6 FLOPs per parameter per token (forward and backward) over the peak."""
    return None if peak_tflops is None else 6 * parameters * tokens_per_s / (peak_tflops * 1e12)


def _status(run: dict[str, Any]) -> str | None:
    """What stands in a row's cells where it has no measurement: not installed, or its error."""
    if "missing" in run:
        return run["missing"]
    if "error" in run:
        return f"failed: {run['error'][:160]}"
    return None


def section(gpu: dict[str, Any] | None) -> list[str]:
    """The GPU sections of ``performance.md``: measured rows and each goal met or not, or, where no
    GPU was lent to the run that wrote the page, what is not measured."""
    if not gpu:
        return [
            "## On a GPU",
            "",
            "Not measured: no GPU was lent to the run that wrote this page. `python -m harness.bench"
            " --device cuda` measures the loss (ours, TRL, Liger, cut-cross-entropy, plain cross-entropy"
            " at Qwen2.5-0.5B's and 7B's heads, 8,192 and 32,768 tokens), the trainer (ours vs TRL on"
            " 0.5B- and 1.5B-shaped backbones, with model-FLOPs utilization) and generation (ours vs"
            " lm-eval's HF backend, and vLLM) and writes its rows here. The goals: the loss no slower"
            " and no larger than TRL's at every point; the trainer at least 1.3x TRL's trained tokens/s"
            " and at least 40% MFU at the 1.5B shape.",
            "",
        ]
    device = gpu["device"]
    peak = peak_bf16_tflops(device.get("name") or "")
    lines = [
        "## On a GPU",
        "",
        f"{device.get('count', 1)} x {device.get('name')}, CUDA {device.get('cuda')}, driver"
        f" {device.get('driver')}; dense bf16 peak {f'{peak:g} TFLOP/s' if peak else 'unknown'}."
        f" Measured at commit `{(gpu['commit'] or 'unknown')[:10]}`{' (dirty)' if gpu['dirty'] else ''},"
        f" {gpu['date']}; {', '.join(f'{k} {v}' for k, v in gpu['versions'].items())}.",
        "",
    ]
    runs = gpu.get("loss")
    if runs:
        lines += [
            "### Loss: one forward and backward of the LM head and the DFT loss (bf16 autocast)",
            "",
            "Milliseconds (median of 3 after a warm-up) / peak extra GiB from the CUDA allocator; the"
            f" DFT peers are checked against ours (loss to {LOSS_REL:g} relative, gradients along four"
            f" random directions to {GRAD_REL:g} of their size: bf16's noise).",
            "",
            "| head, tokens | " + " | ".join(LOSS_IMPLEMENTATIONS) + " |",
            "|---|" + "---:|" * len(LOSS_IMPLEMENTATIONS),
        ]
        verdicts = []
        for head in HEADS:
            for tokens in LOSS_TOKENS:
                cells = []
                for impl in LOSS_IMPLEMENTATIONS:
                    run = runs[f"{impl}@{head}@{tokens}"]
                    status = _status(run)
                    if status:
                        cells.append(status)
                        continue
                    check = f" ({run['disagreement']})" if run.get("disagreement") else ""
                    cells.append(
                        f"{run['seconds'] * 1e3:,.0f} / {run['peak_extra_bytes'] / 2**30:.2f}{check}"
                    )
                lines.append(f"| {head}, {tokens:,} | " + " | ".join(cells) + " |")
                ours, trl = runs[f"harness@{head}@{tokens}"], runs[f"trl@{head}@{tokens}"]
                if not _status(trl):
                    met = (
                        ours["seconds"] <= trl["seconds"]
                        and ours["peak_extra_bytes"] <= trl["peak_extra_bytes"]
                    )
                    verdicts.append(
                        f"{head} at {tokens:,}: {ours['seconds'] / trl['seconds']:.2f}x TRL's time,"
                        f" {ours['peak_extra_bytes'] / trl['peak_extra_bytes']:.2f}x its memory"
                        f" ({'met' if met else 'NOT met'})"
                    )
        goal = "; ".join(verdicts) if verdicts else "not judged: TRL is not installed"
        lines += ["", f"Goal, no slower and no larger than TRL: {goal}.", ""]
    runs = gpu.get("trainer")
    if runs:
        lines += [
            "### Trainer: trained tokens per second (DFT, bf16 autocast, gradient checkpointing)",
            "",
            f"Random backbones of each shape, {BATCH} rows of ~1,000 tokens per step, median over steps"
            f" 3-{STEPS}; ours packs rows into {PACKED_LENGTH:,} tokens, TRL pads them (each side's"
            " default). Our step's time includes collating and copying its batch; TRL's clock"
            " (its step callbacks) starts once the batch is fetched. MFU counts trained tokens only"
            " (6 x parameters x trained tokens/s over the peak): a lower bound.",
            "",
            "| backbone | trainer | trained tokens / s | peak GiB | MFU | ours / TRL |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for shape in BACKBONES:
            ours, trl = runs[f"harness@{shape}"], runs[f"trl@{shape}"]
            for impl, run in (("ours", ours), ("TRL", trl)):
                status = _status(run)
                if status:
                    lines.append(f"| {shape} | {impl} | {status} | | | |")
                    continue
                util = mfu(run["trained_tokens_per_s"], run["parameters"], peak)
                ratio = (
                    f"{ours['trained_tokens_per_s'] / trl['trained_tokens_per_s']:.2f}x (goal 1.3x)"
                    if impl == "ours" and not _status(trl) and not _status(ours)
                    else ""
                )
                lines.append(
                    f"| {shape} | {impl} | {run['trained_tokens_per_s']:,.0f} | {run['peak_bytes'] / 2**30:.1f} |"
                    f" {f'{util:.0%}' if util is not None else '—'} | {ratio} |"
                )
        lines.append("")
    runs = gpu.get("generation")
    if runs:
        lines += [
            "### Generation: completions per second (Qwen2.5-0.5B shape, bf16)",
            "",
            "Greedy: ours, lm-eval and vLLM, the first 32 examples of every math-words split, 64 prompts per"
            " batch. Sampled, the paper's protocol (Average@16, temperature 1.0, 1,024 new tokens): our"
            " Hugging Face path before (`sampled-padded`) and after (`sampled-continuous`) continuous"
            " batching, 32 prompts, 16 prompts' worth of sequences in flight; the random backbone's"
            f" end-of-turn token is drawn with probability 1/{SAMPLED_MEAN_LENGTH} per step, so lengths vary.",
            "",
            "| evaluator | completions | time (s) | completions / s |",
            "|---|---:|---:|---:|",
        ]
        for impl in GENERATION_IMPLEMENTATIONS:
            run = runs.get(f"{impl}@Qwen2.5-0.5B", {"missing": "not measured (an older run)"})
            status = _status(run)
            if status:
                lines.append(f"| {impl} | {status} | | |")
            else:
                lines.append(
                    f"| {impl} | {run['completions']} | {run['seconds']:.1f} | {run['completions'] / run['seconds']:.1f} |"
                )
        lines.append("")
    return lines
