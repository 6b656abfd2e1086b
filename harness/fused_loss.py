"""The training objectives' loss computed with the LM head, chunk by chunk: no ``[tokens, vocab]``
logits tensor is ever held whole.

Each chunk's logits are made, reduced to the statistics the loss and its gradient need, and freed;
the backward pass recomputes them (about one more head matmul of compute for far less memory). On
a GPU with Triton the statistics and the weighted gradient come from our own kernels
(:mod:`harness.kernels`). The values and gradients are those of :func:`harness.losses.causal_lm_loss`
on the full logits (a test holds the two together for every objective).

>>> import torch
>>> from harness.losses import causal_lm_loss
>>> hidden, weight, labels = torch.randn(1, 3, 4), torch.randn(2, 4), torch.tensor([[-100, 0, 1]])
>>> torch.allclose(causal_lm_loss(hidden @ weight.T, labels, "dft"),
...                fused_causal_lm_loss(hidden, weight, labels, "dft", chunk_size=2))
True
"""

from __future__ import annotations

import torch

from harness import kernels, objectives
from harness.config import IGNORE_INDEX
from harness.losses import (
    LossStats,
    Objective,
    as_objective,
    sequence_index,
    shifted_labels,
)

_OUT_DTYPE_WORKS: dict[torch.device, bool] = {}


class _FusedLinearLoss(torch.autograd.Function):
    """LM head + weighted cross-entropy, a chunk of tokens at a time, recomputed in backward.

    Only per-token scalars (log-sum-exp and weight) are kept between forward and backward, so peak
    memory grows with ``chunk_size x vocab`` instead of ``tokens x vocab``. With ``w`` the detached
    weight, d(w * nll)/d logits = w * (softmax - onehot), which backward rebuilds chunk by chunk.
    Every step on a chunk's logits is in place and the head's gradient is accumulated by ``addmm_``,
    so the extra memory is one chunk of logits plus the head's gradient: its floor.

    ASFT's KL(q || p) to the starting model's distribution q adds lambda * (softmax - q) to each
    trained token's logit gradient; q is rebuilt per chunk from the starting model's hidden states
    and head (``ref_hidden``, ``ref_weight``) and its saved log-sum-exp, so it costs more chunks of
    logits while it is made, never a ``tokens x vocab`` tensor.
    """

    # Backward rebuilds each chunk's logits: under CUDA autocast it must do so in the forward's
    # precision, or the softmax it rebuilds would not match the forward's log-sum-exp.
    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(
        ctx, hidden, weight, targets, objective, chunk_size, normalizer, ref_hidden, ref_weight, sequences
    ):
        n = hidden.size(0)
        lse, token_weight, token_nll, token_value, token_kl, ref_lse, start_nll = (
            torch.zeros(n, dtype=torch.float32, device=hidden.device) for _ in range(7)
        )
        per_sequence = objective.row.per_sequence  # weighed once every chunk is scored
        dtype = compute_dtype(hidden)
        w = weight.to(dtype)  # once, not once per chunk as autocast would
        kl = objective.kl_weight != 0.0
        for start in range(0, n, chunk_size):
            sl = slice(start, start + chunk_size)
            chunk_targets = targets[sl]
            logits = (hidden[sl].to(dtype) @ w.T).float()  # no copy in fp32
            target_logit = logits.gather(1, chunk_targets.clamp(min=0).unsqueeze(1)).squeeze(1)
            top = logits.topk(min(objective.top_k, logits.size(1)), dim=1).values if objective.top_k else None
            old_nll = None
            if objective.needs_reference:  # the other model's logits r for this chunk
                reference = (ref_hidden[sl] @ ref_weight.to(ref_hidden.dtype).T).float()
                ref_target = reference.gather(1, chunk_targets.clamp(min=0).unsqueeze(1)).squeeze(1)
                # KL(q || p) = sum_v q (r - z) - lse(r) + lse(z): the difference first, so a model
                # still at its start gives exactly 0 (as sums of q r and q z it would be a
                # cancellation of two large numbers, off by ~1e-6 in fp32).
                difference = reference - logits if kl else None
                ref_lse[sl] = _lse_(reference)
                old_nll = ref_lse[sl] - ref_target
                if kl:
                    q = reference.div_(reference.sum(dim=1, keepdim=True))
                    token_kl[sl] = (q * difference).sum(dim=1) - ref_lse[sl]
                    del q, difference
                del reference
            chunk_lse = _lse_(logits)
            mask = chunk_targets != IGNORE_INDEX
            nll = torch.where(mask, chunk_lse - target_logit, torch.zeros_like(chunk_lse))
            lse[sl] = chunk_lse
            token_nll[sl] = nll
            if per_sequence:
                start_nll[sl] = old_nll
            else:
                token_weight[sl] = objective.token_weights(nll, top, old_nll) * mask
                token_value[sl] = objective.token_losses(nll, token_weight[sl], old_nll) * mask
            if kl:
                token_kl[sl] = (token_kl[sl] + chunk_lse) * mask
            del logits  # else it lives on while the next chunk's product is made: two chunks at once
        total = token_value.sum()
        if per_sequence:  # every target here is trained: only those were selected
            token_weight, total = objective.sequence_weights(token_nll, start_nll, *sequences)
        ctx.save_for_backward(hidden, weight, targets, lse, token_weight, ref_hidden, ref_weight, ref_lse)
        ctx.chunk_size = chunk_size
        ctx.normalizer = normalizer
        ctx.kl_weight = objective.kl_weight
        ctx.mark_non_differentiable(token_nll)
        if kl:
            total = total + objective.kl_weight * token_kl.sum()
        return total / normalizer, token_nll

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad_loss, _grad_token_nll):
        hidden, weight, targets, lse, token_weight, ref_hidden, ref_weight, ref_lse = ctx.saved_tensors
        dtype = compute_dtype(hidden)  # bf16 under CUDA autocast: the products below run in it
        w = weight.to(dtype)
        grad_hidden = torch.zeros_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if ctx.needs_input_grad[1] else None
        scale = grad_loss.float() / ctx.normalizer
        kl_scale = ctx.kl_weight * scale
        for start in range(0, hidden.size(0), ctx.chunk_size):
            sl = slice(start, start + ctx.chunk_size)
            coeff = token_weight[sl] * scale
            # A chunk whose tokens all weigh 0 (PROFIT, PSFT) needs no products; asking costs a GPU a
            # synchronization per chunk, so only the CPU asks.
            if not ctx.kl_weight and not hidden.is_cuda and not bool((coeff != 0).any()):
                continue
            chunk_hidden = hidden[sl].to(dtype)
            grad_logits = (chunk_hidden @ w.T).float()
            grad_logits.sub_(lse[sl].unsqueeze(1)).exp_()  # the softmax, in the logits' own memory
            rows = torch.arange(grad_logits.size(0), device=grad_logits.device)
            chunk_targets = targets[sl].clamp(min=0)
            if ctx.kl_weight:  # (w + lambda) softmax - w onehot - lambda q
                grad_logits.mul_(coeff.unsqueeze(1) + kl_scale)
                grad_logits[rows, chunk_targets] -= coeff
                q = (ref_hidden[sl] @ ref_weight.to(ref_hidden.dtype).T).float()
                grad_logits.sub_(q.sub_(ref_lse[sl].unsqueeze(1)).exp_().mul_(kl_scale))
                del q
            else:
                grad_logits[rows, chunk_targets] -= 1.0
                grad_logits.mul_(coeff.unsqueeze(1))
            grad_logits = grad_logits.to(dtype)  # no copy in fp32
            if grad_hidden is not None:
                if dtype == hidden.dtype:
                    torch.mm(grad_logits, w, out=grad_hidden[sl])
                else:  # bf16 product, fp32 accumulation inside it, stored in the hidden states' dtype
                    grad_hidden[sl] = grad_logits @ w
            if grad_weight is not None:
                _accumulate(grad_weight, grad_logits.T, chunk_hidden)
            del grad_logits  # as in forward: one chunk of logits at a time
        if grad_weight is not None:
            grad_weight = grad_weight.to(weight.dtype)
        return grad_hidden, grad_weight, None, None, None, None, None, None, None


class _KernelLinearLoss(torch.autograd.Function):
    """The fused loss where Triton runs (:mod:`harness.kernels`): the same value and gradients as
    :class:`_FusedLinearLoss` for an objective that is a per-token weight of the cross-entropy
    (not EAFT's top-k, ASFT's or PSFT's second model), with three products per chunk instead of four.

    The weight is detached and known once a row's log-sum-exp is, so the gradient of a chunk is made
    in forward, right after its logits (as Liger's fused linear cross-entropy does): no chunk is
    projected twice, and backward only scales the two gradients by the loss's incoming gradient.
    The products run in the autocast dtype (bf16) with fp32 accumulation; the softmax statistics
    and the weights are fp32."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, hidden, weight, targets, objective, chunk_size, normalizer):
        n = hidden.size(0)
        dtype = compute_dtype(hidden)
        w = weight.to(dtype)
        want_hidden, want_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_hidden = torch.empty_like(hidden) if want_hidden else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if want_weight else None
        token_nll = torch.empty(n, dtype=torch.float32, device=hidden.device)
        token_value = torch.empty_like(token_nll)
        for start in range(0, n, chunk_size):
            sl = slice(start, start + chunk_size)
            chunk_hidden, chunk_targets = hidden[sl].to(dtype), targets[sl]
            logits = chunk_hidden @ w.T
            lse, target_logit = kernels.row_stats(logits, chunk_targets)
            mask = chunk_targets != IGNORE_INDEX
            nll = torch.where(mask, lse - target_logit, torch.zeros_like(lse))
            weights = objective.token_weights(nll) * mask
            token_nll[sl] = nll
            token_value[sl] = objective.token_losses(nll, weights) * mask
            if want_hidden or want_weight:
                grad_logits = kernels.weighted_softmax_grad_(logits, chunk_targets, lse, weights / normalizer)
                if want_hidden:
                    grad_hidden[sl] = grad_logits @ w
                if want_weight:
                    _accumulate(grad_weight, grad_logits.T, chunk_hidden)
            del logits  # one chunk of logits at a time
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.weight_dtype = weight.dtype
        ctx.mark_non_differentiable(token_nll)
        return token_value.sum() / normalizer, token_nll

    @staticmethod
    def backward(ctx, grad_loss, _grad_token_nll):
        grad_hidden, grad_weight = ctx.saved_tensors
        # In place: the saved gradients are this call's own and are freed after it. A graph kept for
        # a second backward would scale them twice; autograd's version counter refuses that one.
        if grad_hidden is not None:
            grad_hidden.mul_(grad_loss)
        if grad_weight is not None:
            grad_weight = grad_weight.mul_(grad_loss).to(ctx.weight_dtype)
        return grad_hidden, grad_weight, None, None, None, None


def compute_dtype(hidden: torch.Tensor) -> torch.dtype:
    """The dtype the LM head's products run in: CUDA autocast's (bf16) where it is on, else the
    hidden states' own (fp32 on a CPU, which keeps the CPU's numbers as they were)."""
    if hidden.is_cuda and torch.is_autocast_enabled("cuda"):
        return torch.get_autocast_dtype("cuda")
    return hidden.dtype


def _lse_(logits: torch.Tensor) -> torch.Tensor:
    """Each row's log-sum-exp, computed in place: ``logits`` is left holding exp(logits - row max)
    (``torch.logsumexp`` would allocate a second chunk). One function for the model and its
    starting point, so equal logits give bit-equal results."""
    top = logits.amax(dim=1, keepdim=True)
    return logits.sub_(top).exp_().sum(dim=1).log_().add_(top.squeeze(1))


def _accumulate(total: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """``total += a @ b`` into the fp32 ``total`` without a ``[V, H]`` temporary where the dtypes
    allow (fp32 everywhere; bf16 on CUDA through ``out_dtype``); otherwise through one product."""
    if a.dtype == total.dtype:
        total.addmm_(a, b)
        return
    if total.is_cuda and _OUT_DTYPE_WORKS.get(total.device, True):
        try:
            torch.addmm(total, a, b, out_dtype=total.dtype, out=total)
            return
        except RuntimeError:  # a GPU or build without the fp32-output bf16 GEMM: once, then the product
            _OUT_DTYPE_WORKS[total.device] = False
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
    reference: tuple[torch.Tensor, torch.Tensor] | None = None,
    trained_positions: torch.Tensor | None = None,
    sequence_ids: torch.Tensor | None = None,
    num_sequences: int | None = None,
) -> torch.Tensor:
    """Same value and gradients as ``causal_lm_loss(hidden @ lm_head_weight.T, labels, objective)``.

    ``hidden [B, T, H]`` is the last hidden state (after the final norm), ``lm_head_weight [V, H]``
    the output projection (no bias). Logits never exist for more than ``chunk_size`` tokens at once,
    and only the trained tokens are projected: a prompt token's logits would be multiplied by zero.
    ASFT and PSFT need ``reference``: the other model's (the frozen starting model, the old policy)
    hidden states and head on the same inputs. ``trained_positions``, the flat indices of the
    trained targets (:func:`trained_positions_of` the labels), spares a GPU the synchronization of
    finding them itself. A per-sequence objective (iw-SFT, DPO) needs ``sequence_ids`` and
    ``num_sequences`` as :func:`harness.losses.causal_lm_loss` does. Where Triton runs (CUDA) an objective that is
    a per-token weight of the cross-entropy goes through :mod:`harness.kernels`; otherwise, and on a
    CPU, through torch.
    """
    objective = as_objective(objective)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if objective.needs_reference and reference is None:
        raise ValueError(f"objective {objective.name!r} needs the reference model's outputs")
    targets = shifted_labels(labels).reshape(-1)
    flat_hidden = hidden.reshape(-1, hidden.size(-1))
    ref_hidden, ref_weight = reference if objective.needs_reference else (None, None)
    if ref_hidden is not None:
        ref_hidden = ref_hidden.detach().reshape(flat_hidden.shape)
    if trained_positions is None:
        trained_positions = trained_positions_of(labels)
    trained_positions = trained_positions.to(targets.device, non_blocking=True)
    trained = trained_positions.numel()
    sequences = None
    if objective.row.per_sequence:
        flat_ids = sequence_index(objective, sequence_ids, num_sequences).reshape(-1).to(targets.device)
        sequences = (flat_ids.index_select(0, trained_positions), num_sequences)
        if num_trained_tokens is None and objective.row.data == objectives.PAIRS:
            num_trained_tokens = max(num_sequences // 2, 1)
    normalizer = max(trained, 1) if num_trained_tokens is None else num_trained_tokens
    normalizer = float(normalizer.item() if isinstance(normalizer, torch.Tensor) else normalizer)
    if trained < targets.numel():  # the gradient of the gather is a scatter: a prompt row gets 0
        flat_hidden = flat_hidden.index_select(0, trained_positions)
        targets = targets.index_select(0, trained_positions)
        if ref_hidden is not None:
            ref_hidden = ref_hidden.index_select(0, trained_positions)
    if uses_kernels(objective, hidden.device):
        loss, token_nll = _KernelLinearLoss.apply(
            flat_hidden, lm_head_weight, targets, objective, chunk_size, normalizer
        )
    else:
        loss, token_nll = _FusedLinearLoss.apply(
            flat_hidden,
            lm_head_weight,
            targets,
            objective,
            chunk_size,
            normalizer,
            ref_hidden,
            None if ref_weight is None else ref_weight.detach(),
            sequences,
        )
    if stats is not None:
        with torch.no_grad():
            stats.append(LossStats(token_nll.sum(), torch.exp(-token_nll).sum(), trained))
    return loss


def trained_positions_of(labels: torch.Tensor) -> torch.Tensor:
    """The flat indices of the targets that are trained (the next token's label is not ``-100``).

    >>> trained_positions_of(torch.tensor([[-100, -100, 5, 6]])).tolist()  # targets of positions 1, 2
    [1, 2]
    """
    return (shifted_labels(labels).reshape(-1) != IGNORE_INDEX).nonzero().squeeze(1)


def uses_kernels(objective: str | Objective, device: torch.device) -> bool:
    """Whether the fused loss of ``objective`` on ``device`` runs the Triton kernels: where they run,
    for every objective that is a per-token weight of the cross-entropy alone."""
    objective = as_objective(objective)
    return objective.top_k is None and not objective.needs_reference and kernels.available(device)
