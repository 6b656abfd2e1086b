"""The training objectives: plain SFT cross-entropy and Dynamic Fine-Tuning (DFT).

DFT (arXiv 2508.05629) scales each target token's cross-entropy by that token's own probability,
detached from the graph::

    loss_t = -sg(p_t) * log p_t,    p_t = exp(-CE_t)

The weight is computed as ``exp(-CE)`` from the cross-entropy already at hand: the same value as
gathering the softmax, with no second softmax. Two variants from the follow-up literature are
available and off by default, so the defaults reproduce the paper:

- ``dft_min_weight`` (e.g. 0.1): ``w = max(p, floor)``, so EOS and rare tokens keep being learned.
- ``dft_alpha`` in [0, 1]: ``w = alpha * p + (1 - alpha)``, a mix between DFT (1) and SFT (0).

Normalization: the loss is a *sum* over trained tokens divided by ``num_trained_tokens``. The
trainer passes the number of trained tokens of the whole optimizer step (all micro-batches, all
ranks), so batch 8 x accumulation 1, batch 1 x accumulation 8 and 2 ranks x batch 4 produce the
same update. Left as ``None``, it is the count in this call: a plain per-token mean.

Two public entry points:

>>> import torch
>>> logits = torch.zeros(1, 3, 2)              # uniform over two tokens: p = 1/2 everywhere
>>> labels = torch.tensor([[-100, 0, 1]])      # Hugging Face convention: aligned with input_ids
>>> round(causal_lm_loss(logits, labels, "sft").item(), 4)   # ln 2
0.6931
>>> round(causal_lm_loss(logits, labels, "dft").item(), 4)   # ln 2 / 2
0.3466
>>> hidden, weight = torch.randn(1, 3, 4), torch.randn(2, 4)
>>> plain = causal_lm_loss(hidden @ weight.T, labels, "dft")
>>> fused = fused_causal_lm_loss(hidden, weight, labels, "dft", chunk_size=2)
>>> torch.allclose(plain, fused)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.config import OBJECTIVES
from harness.errors import ConfigError

IGNORE_INDEX = -100
# ProFit (arXiv 2601.09195) trains only tokens the model already gives more than this probability;
# GFT's rectification (arXiv 2604.14258) weights by p only below it. Both papers' default: 0.1.
PROB_THRESHOLD = 0.1


@dataclass(frozen=True)
class Objective:
    """Which loss to train with, and the DFT variants' settings. Each objective is a per-token weight
    ``w_t`` of the token's cross-entropy, detached (p = the model's probability of the target):

    - ``sft``: 1; ``dft`` (arXiv 2508.05629): sg(p);
    - ``profit`` (arXiv 2601.09195): 1 where sg(p) > 0.1, else 0 (plain SFT on the tokens the model
      already finds plausible);
    - ``chord-phi`` (arXiv 2508.11408, CHORD's token weight phi): sg(p (1 - p)), largest at p = 1/2;
    - ``gft`` (arXiv 2604.14258, its rectification): sg(p) where p < 0.1, else 1.
    """

    name: str = "sft"
    dft_min_weight: float = 0.0
    dft_alpha: float = 1.0

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise ConfigError(f"--objective {self.name!r}: valid objectives: {', '.join(OBJECTIVES)}")
        if not 0.0 <= self.dft_min_weight <= 1.0:
            raise ConfigError(f"--dft-min-weight must be in [0, 1], got {self.dft_min_weight}")
        if not 0.0 <= self.dft_alpha <= 1.0:
            raise ConfigError(f"--dft-alpha must be in [0, 1], got {self.dft_alpha}")
        if self.name != "dft" and (self.dft_min_weight != 0.0 or self.dft_alpha != 1.0):
            raise ConfigError("--dft-min-weight and --dft-alpha only apply to objective 'dft'")

    def token_weights(self, token_nll: torch.Tensor) -> torch.Tensor:
        """Per-token weights (detached) given per-token cross-entropy."""
        if self.name == "sft":
            return torch.ones_like(token_nll)
        weight = torch.exp(-token_nll.detach())  # p_t, from the CE at hand: no second softmax
        if self.name == "profit":
            return (weight > PROB_THRESHOLD).to(weight.dtype)
        if self.name == "chord-phi":
            return weight * (1.0 - weight)
        if self.name == "gft":
            return torch.where(weight < PROB_THRESHOLD, weight, torch.ones_like(weight))
        if self.dft_alpha != 1.0:
            weight = self.dft_alpha * weight + (1.0 - self.dft_alpha)
        if self.dft_min_weight > 0.0:
            weight = weight.clamp(min=self.dft_min_weight)
        return weight


def as_objective(objective: str | Objective) -> Objective:
    return objective if isinstance(objective, Objective) else Objective(objective)


@dataclass
class LossStats:
    """Detached sums over the trained tokens of one call, for logging."""

    nll_sum: float
    prob_sum: float
    tokens: int


def _shift(labels: torch.Tensor) -> torch.Tensor:
    """Labels aligned with input_ids -> the target of each position (next token); last gets ignored."""
    return F.pad(labels[..., 1:], (0, 1), value=IGNORE_INDEX)


def _normalizer(targets: torch.Tensor, num_trained_tokens: int | float | torch.Tensor | None):
    if num_trained_tokens is None:
        return (targets != IGNORE_INDEX).sum().clamp(min=1)
    return num_trained_tokens


def causal_lm_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    objective: str | Objective = "sft",
    *,
    num_trained_tokens: int | float | torch.Tensor | None = None,
    stats: list[LossStats] | None = None,
) -> torch.Tensor:
    """Scalar SFT or DFT loss from ``logits [B, T, V]`` and ``labels [B, T]``.

    ``labels`` follow the Hugging Face convention: aligned with ``input_ids`` (shifted inside) and
    ``-100`` where nothing is trained. The result is the weighted token NLL summed over trained
    tokens and divided by ``num_trained_tokens`` (default: their count here). Cross-entropy is
    computed in float32 whatever the logits' dtype. When ``stats`` is a list, one ``LossStats``
    (plain NLL and probability sums) is appended to it.
    """
    objective = as_objective(objective)
    targets = _shift(labels).reshape(-1)
    flat = logits.reshape(-1, logits.size(-1)).float()
    token_nll = F.cross_entropy(flat, targets.clamp(min=0), reduction="none")
    mask = targets != IGNORE_INDEX
    token_nll = torch.where(mask, token_nll, torch.zeros_like(token_nll))
    weights = objective.token_weights(token_nll) * mask
    if stats is not None:
        with torch.no_grad():
            probs = torch.exp(-token_nll) * mask
            stats.append(LossStats(token_nll.sum().item(), probs.sum().item(), int(mask.sum())))
    return (weights * token_nll).sum() / _normalizer(targets, num_trained_tokens)


class _FusedLinearLoss(torch.autograd.Function):
    """LM head + weighted cross-entropy, a chunk of tokens at a time, recomputed in backward.

    Only per-token scalars (log-sum-exp and weight) are kept between forward and backward, so peak
    memory grows with ``chunk_size x vocab`` instead of ``tokens x vocab``. With ``w`` the detached
    weight, d(w * nll)/d logits = w * (softmax - onehot), which backward rebuilds chunk by chunk.
    Every step on a chunk's logits is in place and the head's gradient is accumulated by ``addmm_``,
    so the extra memory is one chunk of logits plus the head's gradient: its floor.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, objective, chunk_size, normalizer):
        n = hidden.size(0)
        lse = torch.zeros(n, dtype=torch.float32, device=hidden.device)
        token_weight = torch.zeros(n, dtype=torch.float32, device=hidden.device)
        token_nll = torch.zeros(n, dtype=torch.float32, device=hidden.device)
        w = weight.to(hidden.dtype)
        for start in range(0, n, chunk_size):
            sl = slice(start, start + chunk_size)
            chunk_targets = targets[sl]
            logits = (hidden[sl] @ w.T).float()  # no copy in fp32
            target_logit = logits.gather(1, chunk_targets.clamp(min=0).unsqueeze(1)).squeeze(1)
            # log-sum-exp in place (torch.logsumexp would allocate a second chunk of logits)
            top = logits.amax(dim=1, keepdim=True)
            chunk_lse = logits.sub_(top).exp_().sum(dim=1).log_().add_(top.squeeze(1))
            mask = chunk_targets != IGNORE_INDEX
            nll = torch.where(mask, chunk_lse - target_logit, torch.zeros_like(chunk_lse))
            lse[sl] = chunk_lse
            token_nll[sl] = nll
            token_weight[sl] = objective.token_weights(nll) * mask
            del logits  # else it lives on while the next chunk's product is made: two chunks at once
        ctx.save_for_backward(hidden, weight, targets, lse, token_weight)
        ctx.chunk_size = chunk_size
        ctx.normalizer = normalizer
        ctx.mark_non_differentiable(token_nll)
        loss = (token_weight * token_nll).sum() / normalizer
        return loss, token_nll

    @staticmethod
    def backward(ctx, grad_loss, _grad_token_nll):
        hidden, weight, targets, lse, token_weight = ctx.saved_tensors
        w = weight.to(hidden.dtype)
        grad_hidden = torch.zeros_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if ctx.needs_input_grad[1] else None
        scale = grad_loss.float() / ctx.normalizer
        for start in range(0, hidden.size(0), ctx.chunk_size):
            sl = slice(start, start + ctx.chunk_size)
            coeff = token_weight[sl] * scale
            if not bool((coeff != 0).any()):
                continue  # a chunk of prompt or padding: no gradient, skip the matmuls
            grad_logits = (hidden[sl] @ w.T).float()
            grad_logits.sub_(lse[sl].unsqueeze(1)).exp_()  # the softmax, in the logits' own memory
            rows = torch.arange(grad_logits.size(0), device=grad_logits.device)
            grad_logits[rows, targets[sl].clamp(min=0)] -= 1.0
            grad_logits.mul_(coeff.unsqueeze(1))
            grad_logits = grad_logits.to(hidden.dtype)  # no copy in fp32
            if grad_hidden is not None:
                torch.mm(grad_logits, w, out=grad_hidden[sl])
            if grad_weight is not None:
                _accumulate(grad_weight, grad_logits.T, hidden[sl])
            del grad_logits  # as in forward: one chunk of logits at a time
        if grad_weight is not None:
            grad_weight = grad_weight.to(weight.dtype)
        return grad_hidden, grad_weight, None, None, None, None


def _accumulate(total: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """``total += a @ b`` into the fp32 ``total`` without a ``[V, H]`` temporary where the dtypes
    allow (fp32 everywhere; bf16 on CUDA through ``out_dtype``); otherwise through one product."""
    if a.dtype == total.dtype:
        total.addmm_(a, b)
    elif total.is_cuda:
        torch.addmm(total, a, b, out_dtype=total.dtype, out=total)
    else:
        total += (a @ b).float()


def fused_causal_lm_loss(
    hidden: torch.Tensor,
    lm_head_weight: torch.Tensor,
    labels: torch.Tensor,
    objective: str | Objective = "sft",
    chunk_size: int = 1024,
    *,
    num_trained_tokens: int | float | torch.Tensor | None = None,
    stats: list[LossStats] | None = None,
) -> torch.Tensor:
    """Same value and gradients as ``causal_lm_loss(hidden @ lm_head_weight.T, labels, objective)``.

    ``hidden [B, T, H]`` is the last hidden state (after the final norm), ``lm_head_weight [V, H]``
    the output projection (no bias). Logits never exist for more than ``chunk_size`` tokens at once,
    and only the trained tokens are projected: a prompt token's logits would be multiplied by zero.
    """
    objective = as_objective(objective)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    targets = _shift(labels).reshape(-1)
    flat_hidden = hidden.reshape(-1, hidden.size(-1))
    normalizer = _normalizer(targets, num_trained_tokens)
    normalizer = float(normalizer.item() if isinstance(normalizer, torch.Tensor) else normalizer)
    trained = (targets != IGNORE_INDEX).nonzero().squeeze(1)
    if trained.numel() < targets.numel():  # the gradient of the gather is a scatter: a prompt row gets 0
        flat_hidden, targets = flat_hidden.index_select(0, trained), targets.index_select(0, trained)
    loss, token_nll = _FusedLinearLoss.apply(
        flat_hidden, lm_head_weight, targets, objective, chunk_size, normalizer
    )
    if stats is not None:
        with torch.no_grad():
            probs = torch.exp(-token_nll)
            stats.append(LossStats(token_nll.sum().item(), probs.sum().item(), targets.numel()))
    return loss
