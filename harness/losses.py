"""The training objectives: plain SFT cross-entropy, Dynamic Fine-Tuning (DFT) and its rivals.

DFT (arXiv 2508.05629) scales each target token's cross-entropy by that token's own probability,
detached from the graph::

    loss_t = -sg(p_t) * log p_t,    p_t = exp(-CE_t)

The weight is computed as ``exp(-CE)`` from the cross-entropy already at hand: the same value as
gathering the softmax, with no second softmax. Two variants from the follow-up literature are
available and off by default, so the defaults reproduce the paper:

- ``dft_min_weight`` (e.g. 0.1): ``w = max(p, floor)``, so EOS and rare tokens keep being learned.
- ``dft_alpha`` in [0, 1]: ``w = alpha * p + (1 - alpha)``, a mix between DFT (1) and SFT (0).

The newer objectives (:class:`Objective` lists them with their papers) are each a per-token weight
of the cross-entropy's gradient, one of them (q-family) with its own loss value, and one (ASFT) with
a KL term to the frozen starting model. Each parameter's default is its paper's, declared once in
:class:`harness.config.TrainConfig`.

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
>>> round(causal_lm_loss(logits, labels, Objective("q-family", q=1.0)).item(), 4)   # 1 - p
0.5
>>> hidden, weight = torch.randn(1, 3, 4), torch.randn(2, 4)
>>> plain = causal_lm_loss(hidden @ weight.T, labels, "dft")
>>> fused = fused_causal_lm_loss(hidden, weight, labels, "dft", chunk_size=2)
>>> torch.allclose(plain, fused)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, make_dataclass

import torch
import torch.nn.functional as F

from harness import kernels, objectives
from harness.config import OBJECTIVE_PARAMS, OBJECTIVES, TrainConfig, flag
from harness.errors import ConfigError

IGNORE_INDEX = -100
_CHECK = {f.name: f.metadata["check"] for f in fields(TrainConfig) if f.name in OBJECTIVE_PARAMS}


class _Objective:
    """Which loss to train with, and its parameters. Each objective is a per-token weight ``w_t`` of
    the token's cross-entropy gradient, detached (p = the model's probability of the target token,
    tau = ``prob_threshold``):

    - ``sft``: 1; ``dft`` (arXiv 2508.05629): sg(p), with the floor and mix variants above;
    - ``q-family`` (arXiv 2510.00526, its ``GeneralFamily-q``): the loss (1 - p^q) / q, whose
      gradient is p^q times the cross-entropy's: q -> 0 is SFT, q = 1 is DFT's gradient (the loss
      1 - p), q = 10 the paper's -p^10 up to a constant;
    - ``profit`` (arXiv 2601.09195): 1 where sg(p) > tau, else 0 (SFT on the tokens the model
      already finds plausible);
    - ``chord-phi`` (arXiv 2508.11408, CHORD's token weight phi): sg(p (1 - p)), largest at p = 1/2;
    - ``gft`` (arXiv 2604.14258, its rectification): sg(p) where p < tau, else 1;
    - ``eaft`` (arXiv 2601.02151): sg((H_K / ln K) ^ alpha), H_K the entropy of the softmax over the
      K largest logits (K = ``eaft_top_k``; LLaMA-Factory's merge divides by 3.0, ln 20 rounded);
    - ``asft`` (arXiv 2509.23753): DFT plus lambda x KL(start || model), the full-vocabulary KL from
      the frozen starting model's next-token distribution at every trained token (as the authors'
      LLaMA-Factory merge), summed with the cross-entropy and normalized the same way;
    - ``psft`` (arXiv 2508.17784): PPO's clipped surrogate with every advantage 1, the loss
      1 - min(r, clip(r, 1 - eps, 1 + eps)) with r = p / p_old, p_old the target's probability
      under the model at the start of the PSFT batch (:attr:`psft_minibatches` optimizer steps): the
      weight sg(r) where r < 1 + eps, else 0 (SFT's gradient at a batch's first step, where r = 1);
    - ``iw-sft`` (arXiv 2507.12856, the authors' code): one weight per sequence y,
      sg(clip(exp(T x mean_t [log p_t - log p_start,t]), 0, w_max)), p_start the frozen starting
      model's probability of the same target (T = ``iwsft_temperature``, w_max = ``iwsft_max_weight``);
    - ``dpo`` (arXiv 2305.18290, TRL's sigmoid loss): on a pair (chosen c, rejected r), the loss
      -log sigmoid(beta x [(log pi(c) - log pi_start(c)) - (log pi(r) - log pi_start(r))]), log pi(y)
      the sum of y's token log-probabilities; its gradient is each chosen token's cross-entropy
      gradient times +beta x sigmoid(-margin), each rejected token's times -beta x sigmoid(-margin),
      and the loss is a mean over pairs (``num_trained_tokens`` counts pairs).

    The last two are per-sequence (:attr:`harness.objectives.ObjectiveRow.per_sequence`): their
    weights read every token of a sequence, so the loss takes each position's sequence
    (``sequence_ids``; DPO's pair k is sequences 2k, chosen, and 2k + 1, rejected).

    Its fields are ``name`` and every objective parameter of :class:`harness.config.TrainConfig`, at
    the same defaults (:data:`Objective` is made from them below: one home for each parameter).
    """

    name: str

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise ConfigError(f"--objective {self.name!r}: valid objectives: {', '.join(OBJECTIVES)}")
        for param, (_, default, owners) in OBJECTIVE_PARAMS.items():
            value = getattr(self, param)
            problem = _CHECK[param](value)
            if problem:
                raise ConfigError(f"{flag(param)} {problem}")
            if value != default and self.name not in owners:
                raise ConfigError(
                    f"{flag(param)} applies to objective {', '.join(owners)} only, not {self.name!r}"
                )

    @classmethod
    def of(cls, config: TrainConfig) -> _Objective:
        """The objective a training configuration trains with."""
        return cls(config.objective, **{param: getattr(config, param) for param in OBJECTIVE_PARAMS})

    @property
    def row(self) -> objectives.ObjectiveRow:
        """Its row of the objective table: label, source, reference model, FSDP and LoRA."""
        return objectives.row(self.name)

    @property
    def top_k(self) -> int | None:
        """How many of each token's largest logits the weight reads (EAFT), else None."""
        return self.eaft_top_k if "eaft_top_k" in self.row.params else None

    @property
    def needs_reference(self) -> bool:
        """Whether the loss reads a second model's outputs: ASFT's starting model, PSFT's old policy."""
        return self.row.reference is not None

    @property
    def kl_weight(self) -> float:
        """lambda of the KL term to the frozen starting model (ASFT), else 0."""
        return self.asft_lambda if "asft_lambda" in self.row.params else 0.0

    def token_weights(
        self,
        token_nll: torch.Tensor,
        top_logits: torch.Tensor | None = None,
        old_nll: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-token gradient weights (detached), given per-token cross-entropy, for EAFT each token's
        :attr:`top_k` largest logits ``[N, K]``, and for PSFT the old policy's cross-entropy."""
        return WEIGHTS[self.name](self, token_nll.detach(), top_logits, old_nll)

    def sequence_weights(
        self, token_nll: torch.Tensor, start_nll: torch.Tensor, sequence: torch.Tensor, num_sequences: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A per-sequence objective's token weights (detached) and its loss summed over sequences
        (DPO: over pairs), from the trained tokens' cross-entropy, the starting model's, and each
        token's sequence in ``range(num_sequences)``. Where ``token_nll`` carries a gradient the sum
        does too, and it is the weights' (a test checks it)."""
        return SEQUENCE_WEIGHTS[self.name](self, token_nll, start_nll.detach(), sequence, num_sequences)

    def token_losses(
        self, token_nll: torch.Tensor, weights: torch.Tensor, old_nll: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-token loss values whose gradient is ``weights`` times the cross-entropy's: ``w * CE``,
        except where the objective has its own value (:data:`LOSS_VALUES`: q-family's (1 - p^q) / q,
        PSFT's 1 - min(r, clip(r))), with the same gradients through autograd where ``token_nll``
        carries one."""
        own = LOSS_VALUES.get(self.name)
        return own(self, token_nll, old_nll) if own is not None else weights * token_nll


# The objective as a frozen dataclass: its name and every objective parameter of TrainConfig, typed
# and defaulted as there, so a new parameter is declared once (there) and appears here.
Objective = make_dataclass(
    "Objective",
    [("name", str, field(default="sft"))]
    + [(f.name, f.type, field(default=f.default)) for f in fields(TrainConfig) if f.name in OBJECTIVE_PARAMS],
    bases=(_Objective,),
    frozen=True,
)
Objective.__module__, Objective.__doc__ = __name__, _Objective.__doc__  # Python 3.11 has no module=


# Each objective's per-token gradient weight, detached: (objective, token cross-entropy, EAFT's top
# logits, PSFT's old cross-entropy) -> weights. One function per row of harness.objectives (a test
# checks it); p = exp(-CE), from the CE at hand: no second softmax.
def _sft(o: Objective, nll, top, old) -> torch.Tensor:
    return torch.ones_like(nll)


def _dft(o: Objective, nll, top, old) -> torch.Tensor:
    weight = torch.exp(-nll)
    if o.dft_alpha != 1.0:
        weight = o.dft_alpha * weight + (1.0 - o.dft_alpha)
    if o.dft_min_weight > 0.0:
        weight = weight.clamp(min=o.dft_min_weight)
    return weight


def _eaft(o: Objective, nll, top, old) -> torch.Tensor:
    log_probs = torch.log_softmax(top.detach().float(), dim=-1)
    entropy = -(log_probs.exp() * log_probs).sum(dim=-1)
    return (entropy / math.log(top.size(-1))).pow(o.eaft_alpha)


def _psft(o: Objective, nll, top, old) -> torch.Tensor:
    ratio = torch.exp(old.detach() - nll)  # p / p_old
    return torch.where(ratio < 1.0 + o.psft_clip, ratio, torch.zeros_like(ratio))


def _gft(o: Objective, nll, top, old) -> torch.Tensor:
    p = torch.exp(-nll)
    return torch.where(p < o.prob_threshold, p, torch.ones_like(p))


def _chord_phi(o: Objective, nll, top, old) -> torch.Tensor:
    p = torch.exp(-nll)
    return p * (1.0 - p)


WEIGHTS = {
    "sft": _sft,
    "dft": _dft,
    "q-family": lambda o, nll, top, old: torch.exp(-nll).pow(o.q),
    "profit": lambda o, nll, top, old: (torch.exp(-nll) > o.prob_threshold).to(nll.dtype),
    "chord-phi": _chord_phi,
    "gft": _gft,
    "eaft": _eaft,
    "asft": _dft,  # DFT's weight; its KL term to the starting model is kl_weight's
    "psft": _psft,
}
# The objectives whose loss value is not weight x cross-entropy: (objective, CE, old CE) -> values.
LOSS_VALUES = {
    "q-family": lambda o, nll, old: -torch.expm1(-o.q * nll) / o.q,
    "psft": lambda o, nll, old: (
        1.0 - torch.minimum(r := torch.exp(old.detach() - nll), r.clamp(1.0 - o.psft_clip, 1.0 + o.psft_clip))
    ),
}


# The per-sequence objectives (rows with per_sequence): (objective, CE, the starting model's CE, each
# token's sequence, number of sequences) -> (detached token weights, the loss summed over sequences).
def _sequence_sums(values: torch.Tensor, sequence: torch.Tensor, n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=values.dtype, device=values.device).index_add(0, sequence, values)


def _iw_sft(o: Objective, nll, start_nll, sequence, n) -> tuple[torch.Tensor, torch.Tensor]:
    gain = _sequence_sums(start_nll - nll.detach(), sequence, n)  # sum of log p - log p_start
    length = _sequence_sums(torch.ones_like(nll), sequence, n).clamp(min=1.0)
    weight = torch.exp(o.iwsft_temperature * gain / length).clamp(0.0, o.iwsft_max_weight)[sequence]
    return weight, (weight * nll).sum()


def _dpo(o: Objective, nll, start_nll, sequence, n) -> tuple[torch.Tensor, torch.Tensor]:
    if n % 2:
        raise ValueError(f"DPO's sequences come in pairs (chosen 2k, rejected 2k + 1); got {n}")
    log_ratio = _sequence_sums(start_nll - nll, sequence, n)  # log pi(y) - log pi_start(y)
    margin = o.dpo_beta * (log_ratio[0::2] - log_ratio[1::2])
    side = 1.0 - 2.0 * (sequence % 2).to(nll.dtype)  # +1 chosen, -1 rejected
    weight = (o.dpo_beta * torch.sigmoid(-margin.detach()))[sequence // 2] * side
    return weight, F.softplus(-margin).sum()  # -log sigmoid(margin), stable


SEQUENCE_WEIGHTS = {"iw-sft": _iw_sft, "dpo": _dpo}


def as_objective(objective: str | Objective) -> Objective:
    return objective if isinstance(objective, Objective) else Objective(objective)


@dataclass
class LossStats:
    """Detached sums over the trained tokens of one call, for logging. The sums stay tensors on the
    loss's device, so a GPU is not made to wait for the host at every micro-batch: the trainer reads
    them once per optimizer step."""

    nll_sum: torch.Tensor
    prob_sum: torch.Tensor
    tokens: int | torch.Tensor


def _shift(labels: torch.Tensor) -> torch.Tensor:
    """Labels aligned with input_ids -> the target of each position (next token); last gets ignored."""
    return F.pad(labels[..., 1:], (0, 1), value=IGNORE_INDEX)


def _normalizer(targets: torch.Tensor, num_trained_tokens: int | float | torch.Tensor | None):
    if num_trained_tokens is None:
        return (targets != IGNORE_INDEX).sum().clamp(min=1)
    return num_trained_tokens


def _unit_normalizer(objective, targets, num_trained_tokens, num_sequences: int):
    """The default normalizer of a per-sequence objective: the pairs here (DPO), else the tokens."""
    if num_trained_tokens is None and objective.row.data == objectives.PAIRS:
        return max(num_sequences // 2, 1)
    return _normalizer(targets, num_trained_tokens)


def _sequences(objective, sequence_ids: torch.Tensor | None, num_sequences: int | None) -> torch.Tensor:
    if sequence_ids is None or num_sequences is None:
        raise ValueError(
            f"objective {objective.name!r} weighs whole sequences: give sequence_ids and num_sequences"
        )
    return sequence_ids


def causal_lm_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    objective: str | Objective = "sft",
    *,
    num_trained_tokens: int | float | torch.Tensor | None = None,
    stats: list[LossStats] | None = None,
    reference_logits: torch.Tensor | None = None,
    sequence_ids: torch.Tensor | None = None,
    num_sequences: int | None = None,
) -> torch.Tensor:
    """Scalar loss of ``objective`` from ``logits [B, T, V]`` and ``labels [B, T]``.

    ``labels`` follow the Hugging Face convention: aligned with ``input_ids`` (shifted inside) and
    ``-100`` where nothing is trained. The result is the per-token loss summed over trained tokens
    and divided by ``num_trained_tokens`` (default: their count here). Cross-entropy is computed in
    float32 whatever the logits' dtype. ASFT needs ``reference_logits``, the frozen starting
    model's on the same inputs, PSFT the old policy's. A per-sequence objective (iw-SFT, DPO) needs
    ``sequence_ids [B, T]``, each position's sequence in ``range(num_sequences)``. When ``stats`` is
    a list, one ``LossStats`` (plain NLL and probability sums) is appended to it.
    """
    objective = as_objective(objective)
    targets = _shift(labels).reshape(-1)
    flat = logits.reshape(-1, logits.size(-1)).float()
    token_nll = F.cross_entropy(flat, targets.clamp(min=0), reduction="none")
    mask = targets != IGNORE_INDEX
    token_nll = torch.where(mask, token_nll, torch.zeros_like(token_nll))
    top = flat.detach().topk(min(objective.top_k, flat.size(-1)), dim=-1).values if objective.top_k else None
    old_nll = None
    if objective.needs_reference:
        if reference_logits is None:
            raise ValueError(f"objective {objective.name!r} needs the reference model's reference_logits")
        reference = torch.log_softmax(reference_logits.reshape(flat.shape).detach().float(), dim=-1)
        old_nll = -reference.gather(1, targets.clamp(min=0).unsqueeze(1)).squeeze(1)
    if stats is not None:
        with torch.no_grad():
            probs = torch.exp(-token_nll) * mask
            stats.append(LossStats(token_nll.sum(), probs.sum(), mask.sum()))
    if objective.row.per_sequence:
        trained = mask.nonzero().squeeze(1)
        sequence = _sequences(objective, sequence_ids, num_sequences).reshape(-1)[trained]
        _, total = objective.sequence_weights(token_nll[trained], old_nll[trained], sequence, num_sequences)
        return total / _unit_normalizer(objective, targets, num_trained_tokens, num_sequences)
    weights = objective.token_weights(token_nll, top, old_nll) * mask
    total = (objective.token_losses(token_nll, weights, old_nll) * mask).sum()
    if objective.kl_weight:
        token_kl = (reference.exp() * (reference - torch.log_softmax(flat, dim=-1))).sum(dim=-1)
        total = total + objective.kl_weight * (token_kl * mask).sum()
    return total / _normalizer(targets, num_trained_tokens)


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


_OUT_DTYPE_WORKS: dict[torch.device, bool] = {}


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
    ``num_sequences`` as :func:`causal_lm_loss` does. Where Triton runs (CUDA) an objective that is
    a per-token weight of the cross-entropy goes through :mod:`harness.kernels`; otherwise, and on a
    CPU, through torch.
    """
    objective = as_objective(objective)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if objective.needs_reference and reference is None:
        raise ValueError(f"objective {objective.name!r} needs the reference model's outputs")
    targets = _shift(labels).reshape(-1)
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
        flat_ids = _sequences(objective, sequence_ids, num_sequences).reshape(-1).to(targets.device)
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
    return (_shift(labels).reshape(-1) != IGNORE_INDEX).nonzero().squeeze(1)


def uses_kernels(objective: str | Objective, device: torch.device) -> bool:
    """Whether the fused loss of ``objective`` on ``device`` runs the Triton kernels: where they run,
    for every objective that is a per-token weight of the cross-entropy alone."""
    objective = as_objective(objective)
    return objective.top_k is None and not objective.needs_reference and kernels.available(device)
