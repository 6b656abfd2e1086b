"""The objectives against closed forms, and the fused chunked path against the plain one."""

import math

import pytest
import torch

from harness.config import IGNORE_INDEX
from harness.fused_loss import fused_causal_lm_loss
from harness.losses import LossStats, Objective, causal_lm_loss

torch.set_default_dtype(torch.float32)


def test_sft_and_dft_on_uniform_two_token_logits():
    # p = 1/2 for every target: CE = ln 2, DFT = p * CE = ln 2 / 2 (the DFT paper's simplest case).
    logits = torch.zeros(2, 4, 2)
    labels = torch.tensor([[IGNORE_INDEX, 0, 1, 1], [IGNORE_INDEX, 1, 0, IGNORE_INDEX]])
    assert causal_lm_loss(logits, labels, "sft").item() == pytest.approx(math.log(2), abs=1e-7)
    assert causal_lm_loss(logits, labels, "dft").item() == pytest.approx(math.log(2) / 2, abs=1e-7)


def test_dft_gradient_is_minus_gradient_of_probability():
    # d/dz [-sg(p) log p] = -p * dlog p/dz = -dp/dz: DFT is the gradient of the expected reward.
    torch.manual_seed(0)
    logits = torch.randn(1, 2, 7, requires_grad=True)
    labels = torch.tensor([[IGNORE_INDEX, 3]])
    causal_lm_loss(logits, labels, "dft").backward()
    dft_grad = logits.grad.clone()
    logits.grad = None
    prob = torch.softmax(logits[0, 0], dim=-1)[3]
    (-prob).backward()
    assert torch.allclose(dft_grad, logits.grad, atol=1e-7)


def test_dft_weight_is_detached_probability():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]]])
    labels = torch.tensor([[IGNORE_INDEX, 1]])
    p = torch.softmax(logits[0, 0], -1)[1].item()
    expected = -p * math.log(p)
    assert causal_lm_loss(logits, labels, "dft").item() == pytest.approx(expected, rel=1e-6)


def test_weight_floor_and_mix_closed_forms():
    nll = torch.tensor([0.1, 5.0])  # p = 0.905, 0.0067
    p = torch.exp(-nll)
    floor = Objective("dft", dft_min_weight=0.1).token_weights(nll)
    assert torch.allclose(floor, torch.stack([p[0], torch.tensor(0.1)]))
    mix = Objective("dft", dft_alpha=0.25).token_weights(nll)
    assert torch.allclose(mix, 0.25 * p + 0.75)
    assert torch.equal(Objective("dft", dft_alpha=0.0).token_weights(nll), torch.ones(2))


def test_the_newer_objectives_weights_closed_forms():
    # p = 0.905, 0.5, 0.0498 and 0.00674: above and below the 0.1 threshold, and at phi's peak.
    nll = torch.tensor([0.1, math.log(2), 3.0, 5.0])
    p = torch.exp(-nll)
    assert torch.equal(Objective("profit").token_weights(nll), torch.tensor([1.0, 1.0, 0.0, 0.0]))
    assert torch.allclose(Objective("chord-phi").token_weights(nll), p * (1 - p))
    assert Objective("chord-phi").token_weights(nll)[1].item() == pytest.approx(0.25)  # its maximum
    assert torch.allclose(Objective("gft").token_weights(nll), torch.tensor([1.0, 1.0, p[2], p[3]]))


@pytest.mark.parametrize(
    ("objective", "weight"),
    [
        ("profit", lambda p: float(p > 0.1)),
        ("chord-phi", lambda p: p * (1 - p)),
        ("gft", lambda p: p if p < 0.1 else 1.0),
    ],
)
@pytest.mark.parametrize("target", [0, 1, 2])  # p = 0.84, 0.11, 0.04 under these logits
def test_the_newer_objectives_value_and_gradient_on_one_token(objective, weight, target):
    # One trained token: loss = w * (-log p), gradient = w * (softmax - onehot), w detached.
    logits = torch.tensor([[[3.0, 0.9, 0.0], [0.0, 0.0, 0.0]]], requires_grad=True)
    labels = torch.tensor([[IGNORE_INDEX, target]])
    probs = torch.softmax(logits[0, 0].detach(), -1)
    p, w = probs[target].item(), weight(probs[target].item())
    loss = causal_lm_loss(logits, labels, objective)
    loss.backward()
    assert loss.item() == pytest.approx(-w * math.log(p), rel=1e-6, abs=1e-9)
    expected = w * (probs - torch.nn.functional.one_hot(torch.tensor(target), 3).float())
    assert torch.allclose(logits.grad[0, 0], expected, atol=1e-7)
    assert torch.equal(logits.grad[0, 1], torch.zeros(3))


def one_token(target: int):
    """Logits of one trained token (p = 0.84, 0.11, 0.04 for targets 0, 1, 2), its labels, and its
    softmax and one-hot target."""
    logits = torch.tensor([[[3.0, 0.9, 0.0], [0.0, 0.0, 0.0]]], requires_grad=True)
    probs = torch.softmax(logits[0, 0].detach(), -1)
    onehot = torch.nn.functional.one_hot(torch.tensor(target), 3).float()
    return logits, torch.tensor([[IGNORE_INDEX, target]]), probs, onehot


@pytest.mark.parametrize("target", [0, 1, 2])
@pytest.mark.parametrize("q", [0.5, 1.0, 10.0])
def test_q_family_loss_and_gradient_on_one_token(q, target):
    # loss (1 - p^q) / q; its gradient is p^q times the cross-entropy's: p^q (softmax - onehot).
    logits, labels, probs, onehot = one_token(target)
    p = probs[target].item()
    loss = causal_lm_loss(logits, labels, Objective("q-family", q=q))
    loss.backward()
    assert loss.item() == pytest.approx((1 - p**q) / q, rel=1e-6)
    assert torch.allclose(logits.grad[0, 0], p**q * (probs - onehot), atol=1e-7)


def test_q_family_ends_are_sft_and_dft():
    torch.manual_seed(4)
    logits = torch.randn(2, 5, 9)
    labels = torch.randint(0, 9, (2, 5))

    def grad(objective):
        z = logits.clone().requires_grad_(True)
        causal_lm_loss(z, labels, objective).backward()
        return z.grad

    assert torch.allclose(grad(Objective("q-family", q=1.0)), grad("dft"), atol=1e-7)  # q = 1: DFT's
    near_zero = Objective("q-family", q=1e-4)  # q -> 0: (1 - p^q) / q -> -log p, SFT
    assert torch.allclose(grad(near_zero), grad("sft"), atol=1e-3)
    sft_value = causal_lm_loss(logits, labels, "sft").item()
    assert causal_lm_loss(logits, labels, near_zero).item() == pytest.approx(sft_value, rel=1e-3)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
@pytest.mark.parametrize("target", [0, 2])
def test_eaft_weight_is_the_normalized_entropy_of_the_top_k_logits(alpha, target):
    # K = 2 of the 3 logits (3.0 and 0.9): their softmax (0.891, 0.109) has entropy H = 0.345 nats,
    # over ln 2; the weight is detached, so the gradient is w (softmax - onehot) over all 3 logits.
    logits, labels, probs, onehot = one_token(target)
    top = torch.softmax(torch.tensor([3.0, 0.9]), -1)
    w = (-(top * top.log()).sum().item() / math.log(2)) ** alpha
    loss = causal_lm_loss(logits, labels, Objective("eaft", eaft_top_k=2, eaft_alpha=alpha))
    loss.backward()
    assert loss.item() == pytest.approx(-w * math.log(probs[target].item()), rel=1e-6)
    assert torch.allclose(logits.grad[0, 0], w * (probs - onehot), atol=1e-7)
    # A flat top K is the most uncertain case: weight 1, plain SFT; a near-certain one is near 0.
    flat = Objective("eaft", eaft_top_k=3).token_weights(torch.ones(1), torch.zeros(1, 3))
    sure = Objective("eaft", eaft_top_k=3).token_weights(torch.ones(1), torch.tensor([[30.0, 0.0, 0.0]]))
    assert flat.item() == pytest.approx(1.0) and sure.item() < 1e-10


@pytest.mark.parametrize("target", [0, 1])
def test_asft_is_dft_plus_lambda_times_the_kl_to_the_starting_model(target):
    # One token: loss p-weighted CE + lambda KL(q || p), gradient p (softmax - onehot) + lambda (softmax - q).
    logits, labels, probs, onehot = one_token(target)
    reference = torch.tensor([[[0.0, 1.0, 2.0], [5.0, 5.0, 5.0]]])  # the last position is not trained
    q = torch.softmax(reference[0, 0], -1)
    p = probs[target].item()
    kl = (q * (q.log() - probs.log())).sum().item()
    objective = Objective("asft", asft_lambda=0.3)
    loss = causal_lm_loss(logits, labels, objective, reference_logits=reference)
    loss.backward()
    assert loss.item() == pytest.approx(-p * math.log(p) + 0.3 * kl, rel=1e-6)
    assert torch.allclose(logits.grad[0, 0], p * (probs - onehot) + 0.3 * (probs - q), atol=1e-7)
    # Where the model has not moved from its start, the KL and its gradient vanish: DFT exactly.
    same = causal_lm_loss(logits.detach(), labels, objective, reference_logits=logits.detach())
    assert same.item() == pytest.approx(causal_lm_loss(logits.detach(), labels, "dft").item(), abs=1e-7)
    with pytest.raises(ValueError, match="needs the reference model.s reference_logits"):
        causal_lm_loss(logits, labels, objective)


@pytest.mark.parametrize("old", [[3.0, 0.9, 0.0], [1.0, 1.5, 0.0], [3.6, 0.0, 0.0], [2.0, 0.9, 0.0]])
def test_psft_is_the_clipped_ratio_to_the_old_policy_on_one_token(old):
    # r = p / p_old; loss 1 - min(r, clip(r, 0.8, 1.2)); gradient r (softmax - onehot) while r < 1.2,
    # else 0 (clipped: no push past the trust region). The old logits give r = 1, r > 1.2 (twice)
    # and r < 0.8 for target 0.
    logits, labels, probs, onehot = one_token(0)
    reference = torch.tensor([[old, [0.0, 0.0, 0.0]]])
    r = probs[0].item() / torch.softmax(torch.tensor(old), -1)[0].item()
    loss = causal_lm_loss(logits, labels, Objective("psft", psft_clip=0.2), reference_logits=reference)
    loss.backward()
    assert loss.item() == pytest.approx(1 - min(r, min(max(r, 0.8), 1.2)), abs=1e-6)
    weight = r if r < 1.2 else 0.0
    assert torch.allclose(logits.grad[0, 0], weight * (probs - onehot), atol=1e-6)
    if old == [3.0, 0.9, 0.0]:  # the batch's first step: the old policy is the model, SFT's gradient
        sft = logits.detach().clone().requires_grad_(True)
        causal_lm_loss(sft, labels, "sft").backward()
        assert loss.item() == 0.0 and torch.allclose(logits.grad, sft.grad, atol=1e-7)


def test_the_threshold_is_a_parameter_of_profit_and_gft():
    nll = torch.tensor([0.1, math.log(2), 3.0])  # p = 0.905, 0.5, 0.0498
    p = torch.exp(-nll)
    assert torch.equal(Objective("profit", prob_threshold=0.6).token_weights(nll), torch.tensor([1.0, 0, 0]))
    gft = Objective("gft", prob_threshold=0.6).token_weights(nll)
    assert torch.allclose(gft, torch.tensor([1.0, p[1], p[2]]))


def test_unknown_objective_lists_valid_ones():
    with pytest.raises(
        ValueError,
        match="--objective 'grpo': valid objectives: sft, dft, q-family, profit, chord-phi, gft, eaft, asft, psft",
    ):
        causal_lm_loss(torch.zeros(1, 2, 2), torch.tensor([[0, 1]]), "grpo")


@pytest.mark.parametrize(
    ("objective", "params", "message"),
    [
        ("sft", {"dft_min_weight": 0.1}, "--dft-min-weight applies to objective dft only, not 'sft'"),
        ("profit", {"dft_alpha": 0.5}, "--dft-alpha applies to objective dft only, not 'profit'"),
        ("dft", {"q": 2.0}, "--q applies to objective q-family only, not 'dft'"),
        ("q-family", {"prob_threshold": 0.2}, "--prob-threshold applies to objective profit, gft only"),
        ("asft", {"eaft_top_k": 5}, "--eaft-top-k applies to objective eaft only, not 'asft'"),
        ("eaft", {"asft_lambda": 0.1}, "--asft-lambda applies to objective asft only, not 'eaft'"),
        ("q-family", {"q": 0.0}, "--q must be a positive number, got 0.0"),
        ("profit", {"prob_threshold": 1.0}, r"--prob-threshold must be in \(0, 1\), got 1.0"),
        ("eaft", {"eaft_top_k": 1}, "--eaft-top-k must be >= 2, got 1"),
        ("eaft", {"eaft_alpha": -1.0}, "--eaft-alpha must be >= 0, got -1.0"),
        ("asft", {"asft_lambda": float("nan")}, "--asft-lambda must be >= 0, got nan"),
        ("psft", {"psft_clip": 0.0}, r"--psft-clip must be in \(0, 1\), got 0.0"),
        ("psft", {"psft_minibatches": 0}, "--psft-minibatches must be >= 1, got 0"),
        ("sft", {"psft_clip": 0.3}, "--psft-clip applies to objective psft only, not 'sft'"),
    ],
)
def test_a_parameter_out_of_range_or_not_the_objectives_own_is_refused(objective, params, message):
    with pytest.raises(ValueError, match=f"^{message}"):  # never silently ignored nor replaced
        Objective(objective, **params)


def test_labels_are_shifted_and_ignored_positions_cost_nothing():
    # Only position 0 predicts a trained token (label at position 1); the rest is ignored.
    logits = torch.randn(1, 3, 5)
    labels = torch.tensor([[IGNORE_INDEX, 2, IGNORE_INDEX]])
    expected = -torch.log_softmax(logits[0, 0], -1)[2]
    assert causal_lm_loss(logits, labels, "sft").item() == pytest.approx(expected.item(), rel=1e-6)


def test_global_token_normalization_makes_splits_add_up():
    # Two halves normalized by the tokens of both equal the whole batch: the accumulation invariant.
    torch.manual_seed(1)
    logits = torch.randn(4, 6, 11)
    labels = torch.randint(0, 11, (4, 6))
    labels[:, :2] = IGNORE_INDEX
    labels[0, 3:] = IGNORE_INDEX  # uneven token counts per row, as in real batches
    total = int((labels[:, 1:] != IGNORE_INDEX).sum())
    for objective in ("sft", "dft"):
        whole = causal_lm_loss(logits, labels, objective)
        halves = sum(
            causal_lm_loss(logits[i : i + 2], labels[i : i + 2], objective, num_trained_tokens=total)
            for i in (0, 2)
        )
        assert torch.allclose(whole, halves, atol=1e-6)


@pytest.mark.parametrize(
    "objective",
    [
        Objective("sft"),
        Objective("dft"),
        Objective("dft", dft_min_weight=0.2),
        Objective("dft", dft_alpha=0.5),
        Objective("q-family"),
        Objective("q-family", q=0.5),
        Objective("profit"),
        Objective("chord-phi"),
        Objective("gft"),
        Objective("eaft", eaft_top_k=4),
        Objective("asft", asft_lambda=0.5),
        Objective("psft", psft_clip=0.1),
    ],
    ids=[
        "sft",
        "dft",
        "dft-floor",
        "dft-mix",
        "q10",
        "q0.5",
        "profit",
        "chord-phi",
        "gft",
        "eaft",
        "asft",
        "psft",
    ],
)
@pytest.mark.parametrize("chunk_size", [1, 5, 64])
def test_fused_matches_plain_loss_and_gradients(objective, chunk_size):
    torch.manual_seed(2)
    hidden = torch.randn(3, 7, 16, requires_grad=True)
    weight = torch.randn(50, 16, requires_grad=True)
    labels = torch.randint(0, 50, (3, 7))
    labels[:, :3] = IGNORE_INDEX
    labels[2, :] = IGNORE_INDEX  # a row with nothing to train
    ref_hidden, ref_weight = torch.randn(3, 7, 16), torch.randn(50, 16)  # ASFT's starting model
    plain = causal_lm_loss(hidden @ weight.T, labels, objective, reference_logits=ref_hidden @ ref_weight.T)
    plain.backward()
    grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    fused = fused_causal_lm_loss(
        hidden, weight, labels, objective, chunk_size=chunk_size, reference=(ref_hidden, ref_weight)
    )
    fused.backward()
    assert torch.allclose(plain, fused, atol=1e-5)
    assert torch.allclose(grads[0], hidden.grad, atol=1e-5)
    assert torch.allclose(grads[1], weight.grad, atol=1e-5)


def test_fused_respects_external_normalizer_and_reports_stats():
    torch.manual_seed(3)
    hidden, weight = torch.randn(2, 5, 8), torch.randn(13, 8)
    labels = torch.randint(0, 13, (2, 5))
    plain_stats: list[LossStats] = []
    fused_stats: list[LossStats] = []
    plain = causal_lm_loss(hidden @ weight.T, labels, "dft", num_trained_tokens=100, stats=plain_stats)
    fused = fused_causal_lm_loss(hidden, weight, labels, "dft", 3, num_trained_tokens=100, stats=fused_stats)
    assert torch.allclose(plain, fused, atol=1e-6)
    assert plain_stats[0].tokens == fused_stats[0].tokens == 8  # 2 rows x 4 shifted targets
    assert plain_stats[0].nll_sum.item() == pytest.approx(fused_stats[0].nll_sum.item(), rel=1e-5)
    assert plain_stats[0].prob_sum.item() == pytest.approx(fused_stats[0].prob_sum.item(), rel=1e-5)


def test_fused_never_keeps_tokens_by_vocab_tensors_for_backward():
    # What autograd saves between forward and backward must not grow with tokens x vocabulary.
    tokens, vocab, width, chunk = 64, 1000, 8, 16
    hidden = torch.randn(1, tokens, width, requires_grad=True)
    weight = torch.randn(vocab, width, requires_grad=True)
    labels = torch.randint(0, vocab, (1, tokens))
    saved: list[int] = []

    def pack(tensor):
        saved.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fused_causal_lm_loss(hidden, weight, labels, "dft", chunk_size=chunk).backward()
    assert max(saved) <= max(tokens * width, vocab * width)
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        causal_lm_loss(hidden @ weight.T, labels, "dft").backward()
    assert max(saved) >= tokens * vocab  # the plain path does keep them: the test can tell


def test_fused_rejects_bad_chunk_size():
    with pytest.raises(ValueError, match="chunk_size"):
        fused_causal_lm_loss(
            torch.randn(1, 2, 4), torch.randn(3, 4), torch.tensor([[0, 1]]), "sft", chunk_size=0
        )


# --- the per-sequence objectives: iw-SFT and DPO ------------------------------------------------------


def two_token_logits(probabilities: list[float]) -> torch.Tensor:
    """Logits over two tokens, one position per probability, where token 0 has that probability."""
    return torch.tensor([[[math.log(p / (1 - p)), 0.0] for p in probabilities]])


def test_dpo_on_one_pair_is_the_closed_form():
    # The starting model gives every target 1/2. The model gives the chosen answer's one token 0.8 and
    # the rejected answer's 0.4: the margin is beta * (ln(0.8 / 0.5) - ln(0.4 / 0.5)) = beta * ln 2,
    # the loss -log sigmoid(beta ln 2) = ln(1 + 2^-beta): ln 1.5 at beta 1.
    logits = two_token_logits([0.8, 0.5, 0.4, 0.5]).requires_grad_(True)
    labels = torch.tensor([[IGNORE_INDEX, 0, IGNORE_INDEX, 0]])  # targets of positions 0 and 2
    sequence_ids = torch.tensor([[0, 0, 1, 1]])  # pair 0: chosen sequence 0, rejected sequence 1
    start = torch.zeros_like(logits)  # uniform: 1/2
    for beta in (1.0, 0.1):
        loss = causal_lm_loss(
            logits,
            labels,
            Objective("dpo", dpo_beta=beta),
            reference_logits=start,
            sequence_ids=sequence_ids,
            num_sequences=2,
        )
        assert loss.item() == pytest.approx(math.log(1 + 2**-beta), rel=1e-6)
    # The chosen token's logit z: d/dz -log sigmoid(margin) = -sigmoid(-margin) beta d log p_c/dz, and
    # d log p_c / dz = 1 - p_c; the rejected one's is pushed down by the same factor (beta 0.1 here).
    loss.backward()
    pull = 0.1 / (1 + math.exp(0.1 * math.log(2)))  # beta sigmoid(-margin)
    assert logits.grad[0, 0, 0].item() == pytest.approx(-pull * (1 - 0.8), rel=1e-5)
    assert logits.grad[0, 2, 0].item() == pytest.approx(pull * (1 - 0.4), rel=1e-5)


def test_iw_sft_weighs_each_sequence_by_its_clipped_mean_log_ratio():
    # One sequence of two targets, the model at 1/2 and 1/4 where the start gives 1/4 and 1/4: the mean
    # log ratio is (ln 2 + 0) / 2, the weight sqrt(2), the loss sqrt(2) x (ln 2 + ln 4) / 2 per token.
    logits = two_token_logits([0.5, 0.25, 0.5])
    start = two_token_logits([0.25, 0.25, 0.5])
    labels = torch.tensor([[IGNORE_INDEX, 0, 0]])
    ids = torch.zeros(1, 3, dtype=torch.long)
    loss = causal_lm_loss(logits, labels, "iw-sft", reference_logits=start, sequence_ids=ids, num_sequences=1)
    assert loss.item() == pytest.approx(math.sqrt(2) * 1.5 * math.log(2), rel=1e-6)
    # T scales the log ratio (T = 4: weight 4); a ratio far above the start's is clipped to w_max.
    loss = causal_lm_loss(
        logits, labels, Objective("iw-sft", iwsft_temperature=4.0), reference_logits=start,
        sequence_ids=ids, num_sequences=1,
    )  # fmt: skip
    assert loss.item() == pytest.approx(4 * 1.5 * math.log(2), rel=1e-6)
    far = two_token_logits([0.01, 0.01, 0.5])
    loss = causal_lm_loss(logits, labels, "iw-sft", reference_logits=far, sequence_ids=ids, num_sequences=1)
    assert loss.item() == pytest.approx(16 * 1.5 * math.log(2), rel=1e-6)
    # A model still at its start weighs every sequence 1: iw-SFT is then SFT, value and gradient.
    at_start = causal_lm_loss(
        start, labels, "iw-sft", reference_logits=start, sequence_ids=ids, num_sequences=1
    )
    assert at_start.item() == pytest.approx(causal_lm_loss(start, labels, "sft").item(), rel=1e-7)


@pytest.mark.parametrize("objective", ["iw-sft", "dpo"])
def test_per_sequence_weights_are_the_gradient_of_the_sum(objective):
    # The weights the fused loss uses in backward are d(loss sum)/d(CE_t), which autograd gives from
    # the sum itself: one definition of each objective, two uses.
    torch.manual_seed(0)
    nll = torch.rand(9, dtype=torch.float64, requires_grad=True)
    start = torch.rand(9, dtype=torch.float64)
    sequence = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 3])
    params = {"dpo_beta": 0.7} if objective == "dpo" else {"iwsft_temperature": 0.7}
    weights, total = Objective(objective, **params).sequence_weights(nll, start, sequence, 4)
    (grad,) = torch.autograd.grad(total, nll)
    assert not weights.requires_grad and torch.allclose(grad, weights)
    if objective == "dpo":  # chosen tokens (even sequences) learned, rejected ones unlearned
        assert (weights[sequence % 2 == 0] > 0).all() and (weights[sequence % 2 == 1] < 0).all()
    else:  # one weight per sequence
        assert len({round(w, 12) for w in weights[sequence == 2].tolist()}) == 1


@pytest.mark.parametrize("objective", ["iw-sft", "dpo"])
@pytest.mark.parametrize("chunk_size", [1, 3, 64])
def test_per_sequence_fused_matches_plain_loss_and_gradients_on_packed_rows(objective, chunk_size):
    # Two packed rows of two sequences each, prompts ignored; the fused path weighs every sequence
    # only after all its chunks are scored.
    torch.manual_seed(1)
    hidden = torch.randn(2, 7, 5, dtype=torch.float64)
    head = torch.randn(11, 5, dtype=torch.float64)
    start_hidden, start_head = (
        torch.randn(2, 7, 5, dtype=torch.float64),
        torch.randn(11, 5, dtype=torch.float64),
    )
    labels = torch.randint(0, 11, (2, 7))
    labels[:, [0, 4]] = IGNORE_INDEX  # each sequence's first token is prompt
    ids = torch.tensor([[0, 0, 0, 0, 1, 1, 1], [2, 2, 2, 2, 3, 3, 3]])
    plain_in, fused_in = (hidden.clone().requires_grad_(True) for _ in range(2))
    plain_head, fused_head = (head.clone().requires_grad_(True) for _ in range(2))
    plain = causal_lm_loss(
        plain_in @ plain_head.T, labels, objective, reference_logits=start_hidden @ start_head.T,
        sequence_ids=ids, num_sequences=4,
    )  # fmt: skip
    fused = fused_causal_lm_loss(
        fused_in, fused_head, labels, objective, chunk_size, reference=(start_hidden, start_head),
        sequence_ids=ids, num_sequences=4,
    )  # fmt: skip
    (plain + 0).backward()
    fused.backward()
    assert fused.item() == pytest.approx(plain.item(), rel=1e-6)
    assert torch.allclose(fused_in.grad, plain_in.grad, atol=1e-6)
    assert torch.allclose(fused_head.grad, plain_head.grad, atol=1e-6)


def test_per_sequence_objectives_need_the_sequences_and_dpo_whole_pairs():
    logits, labels = torch.zeros(1, 3, 2), torch.tensor([[IGNORE_INDEX, 0, 1]])
    with pytest.raises(ValueError, match="weighs whole sequences: give sequence_ids and num_sequences"):
        causal_lm_loss(logits, labels, "dpo", reference_logits=logits)
    with pytest.raises(
        ValueError, match=r"DPO's sequences come in pairs \(chosen 2k, rejected 2k \+ 1\); got 3"
    ):
        causal_lm_loss(logits, labels, "dpo", reference_logits=logits,
                       sequence_ids=torch.tensor([[0, 1, 2]]), num_sequences=3)  # fmt: skip
