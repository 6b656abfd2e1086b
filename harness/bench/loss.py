"""The DFT loss against the implementations users would pick instead, one forward and backward of the
LM head and the loss at Qwen2.5-0.5B's head (vocabulary 151,936, hidden 896), fp32, each in a fresh
process so that one's memory cannot hide in another's peak.

- ``harness``: :func:`harness.fused_loss.fused_causal_lm_loss` (chunks of 1,024 tokens, recomputed in
  backward);
- ``trl``: TRL's own DFT path: its fused head (``trl.kernels.ChunkedLogProbFunction``, what
  ``SFTTrainer(loss_type="dft")`` calls; torch tiles on CPU, Triton on CUDA), then ``-log p * sg(p)``;
- ``llamafactory``: LLaMA-Factory's style: full logits in fp32, per-token cross-entropy, weight
  ``exp(-CE)``;
- ``official``: the paper's repository's one-line change: per-token cross-entropy times
  ``softmax(logits).gather(target)``, detached;
- ``cross-entropy``: plain SFT cross-entropy on the full logits, the reference for time and memory.

Two thirds of the tokens are trained (blocks of 64: one prompt block, two completion blocks). Peak
extra memory is the process's peak resident memory during the step minus what it held before (inputs,
weights, libraries). Each DFT implementation's loss and gradients are compared with ours: the loss
to a relative 5e-4, the gradients through fixed random projections (fp32 cross-entropy at this
vocabulary is off by ~1e-4 per token, whatever the order of summation).

``python -m harness.bench.loss --impl harness --tokens 2048`` prints one measurement as JSON.

>>> targets_of(6, vocab=10, seed=0).tolist()[:3]  # the first block of 64 is the prompt
[-100, -100, -100]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F

from harness.fused_loss import fused_causal_lm_loss

VOCAB, HIDDEN = 151_936, 896  # Qwen2.5-0.5B's LM head
CHUNK = 1024  # our fused loss's default --loss-chunk-size
IMPLEMENTATIONS = ("harness", "trl", "llamafactory", "official", "cross-entropy")
DFT_IMPLEMENTATIONS = IMPLEMENTATIONS[:-1]
PROJECTIONS = 4  # random directions each gradient is compared along
IGNORE = -100


def targets_of(tokens: int, vocab: int = VOCAB, seed: int = 0) -> torch.Tensor:
    """The next-token target of each position: blocks of 64 alternate one prompt block (ignored) and
    two completion blocks; the last position has no next token."""
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, vocab, (tokens,), generator=generator)
    prompt = (torch.arange(tokens) // 64) % 3 == 0
    targets[prompt] = IGNORE
    targets[-1] = IGNORE
    return targets


def inputs(tokens: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hidden states, the head's weight (both wanting gradients) and targets; seeded, the same in
    every process. Random logits would give every target p ~ e^-13 (and DFT a loss and gradient of
    ~0, which anything matches); so each hidden state is pushed towards its target's row by a
    uniform amount up to 26 logits, which spreads the targets' probabilities over (0, 1)."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(VOCAB, HIDDEN, generator=generator).mul_(0.05)  # in place: no second copy
    targets = targets_of(tokens, VOCAB, seed)
    rows = weight[targets.clamp(min=0)]
    boost = torch.rand(tokens, 1, generator=generator) * 26.0
    hidden = torch.randn(tokens, HIDDEN, generator=generator) + boost * rows / rows.pow(2).sum(
        1, keepdim=True
    )
    return hidden.requires_grad_(), weight.requires_grad_(), targets


def loss_of(impl: str, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``impl``'s loss, summed over trained tokens and divided by their count."""
    mask = targets != IGNORE
    trained = mask.sum()
    if impl == "harness":
        # Our loss takes labels aligned with the inputs (Hugging Face's convention) and shifts them.
        labels = torch.cat([torch.tensor([IGNORE]), targets[:-1]])
        return fused_causal_lm_loss(hidden[None], weight, labels[None], "dft", CHUNK)
    if impl == "trl":
        return trl_dft_loss(hidden, weight, targets, compact=False)
    logits = hidden @ weight.T
    if impl == "llamafactory":
        nll = F.cross_entropy(logits.float(), targets, ignore_index=IGNORE, reduction="none")
        return (nll * torch.exp(-nll).detach()).sum() / trained
    if impl == "official":
        nll = F.cross_entropy(logits, targets, ignore_index=IGNORE, reduction="none")
        p = torch.softmax(logits, dim=-1).gather(1, targets.clamp(min=0).unsqueeze(1)).squeeze(1)
        return (nll * p.detach()).sum() / trained
    if impl == "cross-entropy":
        return F.cross_entropy(logits, targets, ignore_index=IGNORE, reduction="sum") / trained
    raise ValueError(f"unknown implementation {impl!r}; one of {', '.join(IMPLEMENTATIONS)}")


def trl_dft_loss(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, compact: bool
) -> torch.Tensor:
    """TRL's DFT path: its fused head (``trl.kernels.ChunkedLogProbFunction``) then ``-log p * sg(p)``,
    mean over trained tokens. ``compact``: only the trained positions are scored, as ``SFTTrainer``
    does on a Triton device (a GPU); otherwise every position, masked after (its CPU path)."""
    from trl.kernels import ChunkedLogProbFunction  # TRL is installed only by the bench sessions
    from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE

    mask = targets != IGNORE
    rows, labels = (hidden[mask], targets[mask]) if compact else (hidden, targets.clamp(min=0))
    log_probs = ChunkedLogProbFunction.apply(
        rows, weight, None, labels, 1.0, _CHUNKED_LOGPROB_CHUNK_SIZE, None, 1.0, ("log_probs",)
    )[0]
    if not compact:
        log_probs = log_probs.masked_fill(~mask, 0.0)
    return -(log_probs * log_probs.exp().detach()).sum() / mask.sum()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def measure(impl: str, tokens: int) -> dict[str, Any]:
    """One forward and backward of ``impl`` in this process: seconds, peak extra memory, the loss and
    the gradients' projections."""
    hidden, weight, targets = inputs(tokens)
    with torch.no_grad():  # imports and first-call costs, outside the measurement
        loss_of(impl, hidden[:8], weight[:64], targets[:8].clamp(max=63))
    before = _rss_bytes()
    started = time.perf_counter()
    loss = loss_of(impl, hidden, weight, targets)
    loss.backward()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    generator = torch.Generator().manual_seed(1)
    projections = {
        name: [float((grad * torch.randn(grad.shape, generator=generator)).sum()) for _ in range(PROJECTIONS)]
        for name, grad in (("hidden", hidden.grad), ("weight", weight.grad))
    }
    return {
        "impl": impl,
        "tokens": tokens,
        "trained_tokens": int((targets != IGNORE).sum()),
        "seconds": seconds,
        "peak_extra_bytes": max(0, peak - before),
        "loss": loss.item(),
        "grad_projections": projections,
        "threads": torch.get_num_threads(),
    }


def agreement(ours: dict[str, Any], theirs: dict[str, Any], rel: float = 1e-3) -> str | None:
    """None where ``theirs`` has our loss (to 5e-4 relative: full-logit fp32 cross-entropy was 1.05e-4
    off a float64 reference where ours and TRL's were 1e-6) and gradients (each projection to ``rel``
    of the largest), else what differs."""
    # Written as "not within": a NaN anywhere fails the check instead of slipping through a comparison.
    if not abs(ours["loss"] - theirs["loss"]) <= 5e-4 * abs(ours["loss"]):
        return f"loss {theirs['loss']:.6g} vs ours {ours['loss']:.6g}"
    for name, mine in ours["grad_projections"].items():
        scale = max(abs(v) for v in mine)
        gaps = [abs(a - b) for a, b in zip(mine, theirs["grad_projections"][name], strict=True)]
        if not all(gap <= rel * scale for gap in gaps):
            worst = max(gaps, key=lambda gap: gap if gap == gap else float("inf"))  # NaN counts as worst
            return f"grad {name} differs by {worst / scale:.2e} of its size"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.bench.loss", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--impl", required=True, choices=IMPLEMENTATIONS)
    parser.add_argument("--tokens", type=int, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.impl, args.tokens)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
