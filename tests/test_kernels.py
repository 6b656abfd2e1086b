"""The Triton kernels of the fused loss (harness.kernels), checked on a CPU through Triton's
interpreter: each in a fresh process, since ``TRITON_INTERPRET`` is read when a kernel is made."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from harness import kernels
from harness.fused_loss import fused_causal_lm_loss, uses_kernels
from harness.losses import Objective

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(kernels._triton_problem() is not None, reason="Triton is not installed")


def interpreted(script: str) -> dict:
    """Run ``script`` with Triton's interpreter on; its last line of output, read as JSON."""
    env = {"TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_without_the_interpreter_a_cpu_runs_the_torch_path():
    assert not kernels.available(torch.device("cpu"))
    assert not uses_kernels("dft", torch.device("cpu"))
    # EAFT reads each row's top-k logits and ASFT/PSFT a second model: never the kernels.
    assert not any(uses_kernels(Objective(name), torch.device("cuda")) for name in ("eaft", "asft", "psft"))


@pytest.mark.slow
def test_the_kernels_give_the_plain_losses_values_and_gradients():
    # Every objective the kernels serve: the plain loss's value over full logits, and the torch
    # path's gradients (which tests/test_losses.py holds to the plain loss's), with a
    # vocabulary that is not a multiple of the kernel's block, prompt rows and chunks that split the
    # batch unevenly; and the statistics of logits so large that exp overflows fp32 without the
    # running max, or -inf where a vocabulary is masked.
    result = interpreted(
        """
        import json, torch
        from harness import kernels
        from harness.losses import Objective, causal_lm_loss
        from harness.fused_loss import fused_causal_lm_loss, uses_kernels

        kernels.BLOCK = 64  # several steps of the row loop at this small vocabulary
        torch.manual_seed(0)
        vocab, hidden_size = 203, 16
        objectives = [Objective("sft"), Objective("dft"), Objective("dft", dft_min_weight=0.1),
                      Objective("dft", dft_alpha=0.5), Objective("q-family", q=2.0),
                      Objective("profit", prob_threshold=0.01), Objective("chord-phi"), Objective("gft")]
        out = {"uses_kernels": all(uses_kernels(o, torch.device("cpu")) for o in objectives)}
        available = kernels.available
        for objective in objectives:
            hidden = torch.randn(2, 9, hidden_size) * 0.5  # logits ~ N(0, 0.6^2): p near 1/203
            weight = torch.randn(vocab, hidden_size) * 0.3
            labels = torch.randint(0, vocab, (2, 9))
            labels[0, :4] = -100  # a prompt
            labels[1, 4] = (hidden[1, 3] @ weight.T).argmax()  # one target the model already favours
            values, grads = {}, {}
            for path in ("plain", "torch", "kernels"):
                h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
                kernels.available = lambda device, path=path: path == "kernels"
                if path == "plain":
                    loss = causal_lm_loss(h @ w.T, labels, objective, num_trained_tokens=11.0)
                else:
                    loss = fused_causal_lm_loss(h, w, labels, objective, chunk_size=5, num_trained_tokens=11.0)
                (3 * loss).backward()  # an incoming gradient other than 1 scales both gradients
                values[path], grads[path] = loss.item(), (h.grad, w.grad)
            kernels.available = available
            gap = lambda a, b: ((a - b).abs().max() / a.abs().max()).item()
            out[f"{objective}"] = {
                "loss": abs(values["plain"] - values["kernels"]) / abs(values["plain"]),
                "hidden": gap(grads["torch"][0], grads["kernels"][0]),
                "weight": gap(grads["torch"][1], grads["kernels"][1]),
            }
        # bf16 logits: the statistics stay fp32, the gradient is written in bf16.
        logits = torch.randn(7, vocab) * 4
        targets = torch.tensor([0, 5, -100, 202, 64, 63, 128])
        lse, target_logit = kernels.row_stats(logits.bfloat16(), targets)
        exact = logits.bfloat16().float()
        out["bf16_lse"] = (lse - exact.logsumexp(1)).abs().max().item()
        grad = kernels.weighted_softmax_grad_(logits.bfloat16(), targets, lse, torch.full((7,), 0.5))
        onehot = torch.zeros(7, vocab)
        onehot[[0, 1, 3, 4, 5, 6], [0, 5, 202, 64, 63, 128]] = 1
        expected = 0.5 * (exact.softmax(1) - onehot)
        out["bf16_grad_dtype"] = str(grad.dtype)
        out["bf16_grad"] = (grad.float() - expected).abs().max().item()
        huge = torch.randn(3, vocab) * 1000
        huge[1, 100:] = float("-inf")
        lse, _ = kernels.row_stats(huge, torch.tensor([1, 2, 3]))
        out["huge_lse"] = ((lse - huge.logsumexp(1)).abs() / huge.logsumexp(1).abs()).max().item()
        print(json.dumps(out))
        """
    )
    assert result.pop("uses_kernels") is True
    assert result.pop("bf16_lse") < 1e-5
    assert result.pop("bf16_grad_dtype") == "torch.bfloat16"
    assert result.pop("bf16_grad") < 4e-3  # bf16 rounding of values up to 0.5
    assert result.pop("huge_lse") < 1e-6
    assert len(result) == 8
    for objective, gaps in result.items():
        assert gaps["loss"] < 1e-5 and gaps["hidden"] < 1e-5 and gaps["weight"] < 1e-5, (objective, gaps)


@pytest.mark.slow
def test_a_training_step_through_the_kernels_matches_the_torch_path():
    # The trainer's module on the embedded backbone: one DFT step through the kernels and one
    # through torch, same loss, same gradients to fp32 round-off.
    result = interpreted(
        """
        import json, torch
        from harness import kernels, losses
        from harness.models import load_model
        from harness.forward import CausalLMWithLoss

        torch.manual_seed(0)
        labels = torch.randint(0, 100, (2, 12))
        labels[:, :5] = -100
        inputs = torch.randint(0, 100, (2, 12))
        results, twice = [], []
        for use in (True, False):
            kernels.available = lambda device, use=use: use
            model = load_model("tiny")
            module = CausalLMWithLoss(model, losses.Objective("dft"), chunk_size=4)
            loss = module(input_ids=inputs, labels=labels)
            loss.backward(retain_graph=True)
            head = model.get_output_embeddings().weight.grad
            results.append((loss.item(), head.clone()))
            try:
                loss.backward()
                twice.append("allowed")
            except RuntimeError as error:
                twice.append(str(error))
        (a, ga), (b, gb) = results
        print(json.dumps({"loss": abs(a - b), "head": ((ga - gb).abs().max() / ga.abs().max()).item(),
                          "twice": twice}))
        """
    )
    assert result["loss"] < 1e-6 and result["head"] < 1e-5
    # The kernels' gradients are made in forward and scaled in place: a second backward is refused.
    assert "modified by an inplace operation" in result["twice"][0] and result["twice"][1] == "allowed"


def test_kernels_that_do_not_compile_are_one_line_and_the_loss_runs_through_torch(monkeypatch, capsys):
    def broken():
        raise RuntimeError("PTX .version 9.9 does not support .target sm_61\nmore compiler output")

    monkeypatch.setenv("TRITON_INTERPRET", "1")  # a device the kernels would otherwise run on
    monkeypatch.setattr(kernels, "_kernels", broken)
    kernels.compile_problem.cache_clear()
    kernels._warn_once.cache_clear()
    try:
        assert not uses_kernels("dft", torch.device("cpu"))
        assert not kernels.available(torch.device("cpu"))  # said once, not at every call
        hidden, weight = torch.randn(1, 4, 8, requires_grad=True), torch.randn(11, 8)
        loss = fused_causal_lm_loss(hidden, weight, torch.tensor([[-100, 1, 2, 3]]), "dft")
        loss.backward()
        assert torch.isfinite(hidden.grad).all()
    finally:
        kernels.compile_problem.cache_clear()
        kernels._warn_once.cache_clear()
    err = capsys.readouterr().err
    assert err == (
        "harness: the fused loss's Triton kernels do not compile for cpu (PTX .version 9.9 does not "
        "support .target sm_61); the loss runs through torch on it\n"
    )


@pytest.mark.gpu
@pytest.mark.parametrize("objective", ["sft", "dft", "q-family"])
def test_on_cuda_the_kernels_give_the_torch_paths_loss_and_gradients(objective, monkeypatch):
    # fp32 on the GPU: the kernels against the torch path to fp32 round-off; under bf16 autocast
    # both paths run their products in bf16, so they agree to bf16's noise.
    torch.manual_seed(0)
    hidden = (torch.randn(2, 300, 64, device="cuda") * 0.5).requires_grad_()
    weight = (torch.randn(5000, 64, device="cuda") * 0.3).requires_grad_()
    labels = torch.randint(0, 5000, (2, 300), device="cuda")
    labels[:, :100] = -100
    for autocast, tolerance in ((False, 1e-4), (True, 3e-2)):
        results = []
        for use in (True, False):
            monkeypatch.setattr(kernels, "available", lambda device, use=use: use)
            hidden.grad = weight.grad = None
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                loss = fused_causal_lm_loss(hidden, weight, labels, objective, chunk_size=128)
            loss.backward()
            results.append((loss.item(), hidden.grad.clone(), weight.grad.clone()))
        (a, ha, wa), (b, hb, wb) = results
        assert abs(a - b) <= tolerance * abs(b)
        for x, y in ((ha, hb), (wa, wb)):
            assert (x - y).abs().max() <= tolerance * y.abs().max()
