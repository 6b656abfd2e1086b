"""Triton kernels of the fused loss on a GPU: one chunk's softmax statistics and its weighted gradient.

The fused loss (:mod:`harness.losses`) projects a chunk of hidden states to logits with the matrix
library, then needs two things of each row of ``[C, V]`` logits, which torch would do in about ten
passes over the chunk (max, subtract, exp, sum, log, gather, exp, scatter, scale, cast):

- :func:`row_stats`: each row's log-sum-exp and target logit, one read of the chunk (an online
  softmax: running max and rescaled sum, in fp32 whatever the logits' dtype);
- :func:`weighted_softmax_grad_`: the cross-entropy's gradient times a per-row coefficient,
  ``coeff * (softmax - onehot)``, written over the logits in place (a read and a write), in their
  own dtype, so the two products that follow run in bf16 with fp32 accumulation.

Every objective whose gradient is a per-token weight of the cross-entropy's (sft, dft and its
variants, q-family, profit, chord-phi, gft) is these two kernels plus per-token arithmetic on
``[C]`` vectors in between. The kernels run where Triton runs: CUDA, or on a CPU under Triton's
interpreter (``TRITON_INTERPRET=1``, set before this module is imported), which is how the tests
check their values and gradients without a GPU.

>>> import torch
>>> available(torch.device("cpu"))  # a CPU runs the torch path unless Triton's interpreter is on
False
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

import torch

BLOCK = 4096  # vocabulary columns per step of a row's loop: 151,936 columns are 38 steps


def interpreted() -> bool:
    """Whether Triton's interpreter is on (kernels then run on CPU tensors, slowly)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


@functools.cache
def _triton_problem() -> str | None:
    """None where Triton imports, else why it does not (it ships with torch's CUDA builds on Linux)."""
    try:
        import triton  # noqa: F401
    except ImportError as error:  # macOS, Windows, a CPU-only torch build
        return f"Triton is not installed ({error})"
    return None


def available(device: torch.device) -> bool:
    """Whether the kernels run on ``device``: CUDA (or a CPU under the interpreter) where Triton
    imports and the kernels compile for it. A device they do not compile for is said once, in one
    line on stderr, and the loss runs through torch there."""
    # The device first: a CPU run never pays Triton's import.
    if not (device.type == "cuda" or (interpreted() and device.type == "cpu")):
        return False
    if _triton_problem() is not None:
        return False
    problem = compile_problem(str(device))
    if problem is not None:
        _warn_once(problem)
    return problem is None


@functools.cache
def compile_problem(device: str) -> str | None:
    """None where both kernels compile and run on ``device`` (tried once on a few logits), else the
    one line that says why not."""
    try:  # what training compiles: fp32 and bf16 logits, rows longer than a block
        for dtype in (torch.float32, torch.bfloat16):
            logits = torch.zeros(2, BLOCK + 8, dtype=dtype, device=device)
            targets = torch.tensor([1, -100], device=device)
            lse, _ = row_stats(logits, targets)
            weighted_softmax_grad_(logits, targets, lse, torch.ones(2, device=device))
    except Exception as error:  # a compiler's error: any type, often many lines
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        name = device
        with contextlib.suppress(Exception):  # a device too broken to name is named by its index
            name = torch.cuda.get_device_name(device) if device.startswith("cuda") else device
        return (
            f"harness: the fused loss's Triton kernels do not compile for {name} ({first[:200]}); "
            "the loss runs through torch on it"
        )
    return None


@functools.cache
def _warn_once(message: str) -> None:
    print(message, file=sys.stderr)


@functools.cache
def _kernels():
    """The two jitted kernels, made on first use (importing Triton costs ~0.5 s)."""
    import triton
    import triton.language as tl

    @triton.jit
    def row_stats_kernel(logits, stride, targets, lse_out, target_out, vocab, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        base = logits + row * stride
        columns = tl.arange(0, BLOCK)
        running_max = tl.full([BLOCK], float("-inf"), tl.float32)
        running_sum = tl.zeros([BLOCK], tl.float32)
        for start in range(0, vocab, BLOCK):
            at = start + columns
            x = tl.load(base + at, mask=at < vocab, other=float("-inf")).to(tl.float32)
            new_max = tl.maximum(running_max, x)
            # A lane that has seen only -inf keeps a sum of 0: measured from 0 instead of its own max
            # (-inf - -inf would be NaN), every exp of -inf is 0.
            shift = tl.where(new_max == float("-inf"), 0.0, new_max)
            running_sum = running_sum * tl.exp(running_max - shift) + tl.exp(x - shift)
            running_max = new_max
        row_max = tl.max(running_max, axis=0)
        lanes = running_sum * tl.exp(running_max - row_max)
        tl.store(lse_out + row, row_max + tl.log(tl.sum(lanes, axis=0)))
        target = tl.load(targets + row)
        safe = tl.where(target < 0, 0, target)  # an ignored row (-100): any column, masked by the caller
        tl.store(target_out + row, tl.load(base + safe).to(tl.float32))

    @triton.jit
    def grad_kernel(logits, stride, targets, lse, coeff, vocab, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        base = logits + row * stride
        columns = tl.arange(0, BLOCK)
        row_lse = tl.load(lse + row)
        row_coeff = tl.load(coeff + row)
        target = tl.load(targets + row)
        for start in range(0, vocab, BLOCK):
            at = start + columns
            inside = at < vocab
            x = tl.load(base + at, mask=inside, other=0.0).to(tl.float32)
            grad = tl.exp(x - row_lse) - tl.where(at == target, 1.0, 0.0)
            tl.store(base + at, (grad * row_coeff).to(logits.dtype.element_ty), mask=inside)

    return row_stats_kernel, grad_kernel


def row_stats(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's log-sum-exp and its target's logit (fp32 ``[C]`` each) of ``logits [C, V]``; an
    ignored target (``-100``) reads column 0, which the caller masks."""
    rows, vocab = logits.shape
    lse = torch.empty(rows, dtype=torch.float32, device=logits.device)
    target_logit = torch.empty_like(lse)
    if rows:
        row_stats_kernel, _ = _kernels()
        with _on(logits.device):
            row_stats_kernel[(rows,)](
                logits, logits.stride(0), targets, lse, target_logit, vocab, BLOCK=min(BLOCK, _pow2(vocab))
            )
    return lse, target_logit


def weighted_softmax_grad_(
    logits: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor, coeff: torch.Tensor
) -> torch.Tensor:
    """``logits`` overwritten by ``coeff * (softmax(logits) - onehot(targets))`` (``coeff`` fp32 ``[C]``,
    0 on ignored rows); returns ``logits``."""
    rows, vocab = logits.shape
    if rows:
        _, grad_kernel = _kernels()
        with _on(logits.device):
            grad_kernel[(rows,)](
                logits, logits.stride(0), targets, lse, coeff, vocab, BLOCK=min(BLOCK, _pow2(vocab))
            )
    return logits


def _on(device: torch.device):
    """Triton launches on the current CUDA device: make it the tensors' (``--device cuda:1`` in one
    process never sets it)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())
