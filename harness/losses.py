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

>>> import torch
>>> logits = torch.zeros(1, 3, 2)              # uniform over two tokens: p = 1/2 everywhere
>>> labels = torch.tensor([[-100, 0, 1]])      # Hugging Face convention: aligned with input_ids
>>> round(causal_lm_loss(logits, labels, "sft").item(), 4)   # ln 2
0.6931
>>> round(causal_lm_loss(logits, labels, "dft").item(), 4)   # ln 2 / 2
0.3466
>>> round(causal_lm_loss(logits, labels, Objective("q-family", q=1.0)).item(), 4)   # 1 - p
0.5


The same loss computed chunk by chunk with the LM head, never holding the full logits, is
:func:`harness.fused_loss.fused_causal_lm_loss`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, make_dataclass

import torch
import torch.nn.functional as F

from harness import objectives
from harness.config import IGNORE_INDEX, OBJECTIVE_PARAMS, OBJECTIVES, TrainConfig, flag
from harness.errors import ConfigError

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
        for param, declared in OBJECTIVE_PARAMS.items():
            value = getattr(self, param)
            problem = _CHECK[param](value)
            if problem:
                raise ConfigError(f"{flag(param)} {problem}")
            if value != declared.default and self.name not in declared.owners:
                raise ConfigError(
                    f"{flag(param)} applies to objective {', '.join(declared.owners)} only, not {self.name!r}"
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


def shifted_labels(labels: torch.Tensor) -> torch.Tensor:
    """Labels aligned with input_ids -> the target of each position (next token); last gets ignored."""
    return F.pad(labels[..., 1:], (0, 1), value=IGNORE_INDEX)


def token_normalizer(targets: torch.Tensor, num_trained_tokens: int | float | torch.Tensor | None):
    if num_trained_tokens is None:
        return (targets != IGNORE_INDEX).sum().clamp(min=1)
    return num_trained_tokens


def unit_normalizer(objective, targets, num_trained_tokens, num_sequences: int):
    """The default normalizer of a per-sequence objective: the pairs here (DPO), else the tokens."""
    if num_trained_tokens is None and objective.row.data == objectives.PAIRS:
        return max(num_sequences // 2, 1)
    return token_normalizer(targets, num_trained_tokens)


def sequence_index(objective, sequence_ids: torch.Tensor | None, num_sequences: int | None) -> torch.Tensor:
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
    targets = shifted_labels(labels).reshape(-1)
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
        sequence = sequence_index(objective, sequence_ids, num_sequences).reshape(-1)[trained]
        _, total = objective.sequence_weights(token_nll[trained], old_nll[trained], sequence, num_sequences)
        return total / unit_normalizer(objective, targets, num_trained_tokens, num_sequences)
    weights = objective.token_weights(token_nll, top, old_nll) * mask
    total = (objective.token_losses(token_nll, weights, old_nll) * mask).sum()
    if objective.kl_weight:
        token_kl = (reference.exp() * (reference - torch.log_softmax(flat, dim=-1))).sum(dim=-1)
        total = total + objective.kl_weight * (token_kl * mask).sum()
    return total / token_normalizer(targets, num_trained_tokens)
